//! `bq_outer_elements(array)`: what `LEFT JOIN UNNEST(array)` joins a row to.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MutableArrayData, NullArray, OffsetSizeTrait,
    make_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The array's elements, or a single NULL element in place of an empty or NULL array.
/// A batch where every array has elements is returned as it is; others are copied
/// once, where `CASE WHEN cardinality(a) > 0 THEN a ELSE [NULL] END` evaluated the
/// array twice and merged the branches.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqOuterElements {
    signature: Signature,
}

impl BqOuterElements {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for BqOuterElements {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "The array's elements, or one NULL element for an empty or NULL array: the rows a \
         LEFT JOIN UNNEST(array) joins, as unnest(bq_outer_elements(array)).",
        "bq_outer_elements(array)",
    )
    .with_argument("array", "Any array.")
    .build()
});

/// The element field of the result: the input's, made nullable.
fn element(t: &DataType) -> Result<FieldRef> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => {
            Ok(Arc::new(f.as_ref().clone().with_nullable(true)))
        }
        DataType::Null => Ok(Arc::new(Field::new_list_field(DataType::Null, true))),
        other => exec_err!("bq_outer_elements expects an array, not {other}"),
    }
}

impl ScalarUDFImpl for BqOuterElements {
    fn name(&self) -> &str {
        "bq_outer_elements"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let [t] = take_function_args(self.name(), arg_types)?;
        let item = element(t)?;
        Ok(match t {
            DataType::LargeList(_) => DataType::LargeList(item),
            _ => DataType::List(item),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [array] = take_function_args(self.name(), &arrays)?;
        let item = element(array.data_type())?;
        let outer = match array.data_type() {
            DataType::LargeList(_) => outer(array.as_list::<i64>(), item)?,
            DataType::List(_) => outer(array.as_list::<i32>(), item)?,
            _ => {
                let nulls: ArrayRef = Arc::new(NullArray::new(array.len()));
                let offsets =
                    OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(1, array.len()));
                Arc::new(GenericListArray::new(item, offsets, nulls, None))
            }
        };
        Ok(ColumnarValue::Array(outer))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn outer<O: OffsetSizeTrait>(list: &GenericListArray<O>, item: FieldRef) -> Result<ArrayRef> {
    let offsets = list.value_offsets();
    let has_elements = |row: usize| list.is_valid(row) && offsets[row + 1] > offsets[row];
    let values = list.values();
    if (0..list.len()).all(has_elements) {
        let offsets = list.offsets().clone();
        return Ok(Arc::new(GenericListArray::new(
            item,
            offsets,
            values.clone(),
            None,
        )));
    }
    let data = values.to_data();
    let mut elements = MutableArrayData::new(vec![&data], true, values.len() + list.len());
    let mut lengths = Vec::with_capacity(list.len());
    for row in 0..list.len() {
        if has_elements(row) {
            let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
            elements.try_extend(0, start, end)?;
            lengths.push(end - start);
        } else {
            elements.try_extend_nulls(1)?;
            lengths.push(1);
        }
    }
    Ok(Arc::new(GenericListArray::<O>::new(
        item,
        OffsetBuffer::from_lengths(lengths),
        make_array(elements.freeze()),
        None,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListArray};
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::Int64Type;
    use datafusion::config::ConfigOptions;

    fn call(array: ArrayRef) -> ArrayRef {
        let udf = BqOuterElements::new();
        let field = Arc::new(Field::new("a", array.data_type().clone(), true));
        let return_type = udf.return_type(&[array.data_type().clone()]).unwrap();
        let args = ScalarFunctionArgs {
            number_rows: array.len(),
            args: vec![ColumnarValue::Array(array)],
            arg_fields: vec![field],
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args).unwrap() {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(_) => unreachable!("an array"),
        }
    }

    fn lists(rows: Vec<Option<Vec<Option<i64>>>>) -> ArrayRef {
        Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(rows))
    }

    #[test]
    fn empty_and_null_arrays_become_one_null_element() {
        let input = lists(vec![
            Some(vec![Some(1), None, Some(3)]),
            Some(vec![]),
            None,
            Some(vec![Some(4)]),
        ]);
        let expected = lists(vec![
            Some(vec![Some(1), None, Some(3)]),
            Some(vec![None]),
            Some(vec![None]),
            Some(vec![Some(4)]),
        ]);
        assert_eq!(call(input).as_ref(), expected.as_ref());
    }

    #[test]
    fn arrays_that_all_have_elements_are_kept_as_they_are() {
        // A slice, whose offsets do not start at 0, and a NULL list over elements.
        let values = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]));
        let field = Arc::new(Field::new_list_field(DataType::Int64, true));
        let full = ListArray::new(
            field,
            OffsetBuffer::from_lengths([1, 2, 2]),
            values,
            Some(NullBuffer::from(vec![true, true, false])),
        );
        let kept = call(Arc::new(full.slice(0, 2)));
        assert_eq!(kept.as_list::<i32>().value_offsets(), &[0, 1, 3]);
        assert_eq!(kept.to_data().child_data()[0].len(), 5);
        let with_null = call(Arc::new(full.slice(1, 2)));
        assert_eq!(
            with_null.as_ref(),
            lists(vec![Some(vec![Some(2), Some(3)]), Some(vec![None])]).as_ref()
        );
    }
}
