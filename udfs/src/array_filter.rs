//! `array_filter(list, x -> predicate)`: DataFusion's, with the filtered lists'
//! offsets counted in one pass over the kept elements.
//!
//! BigQuery's `UNNEST(labels) l WHERE l.key = 'env'` and `(SELECT ... FROM
//! UNNEST(credits) c WHERE ...)` become `array_filter` over every row's list (see
//! the engine's `sql::bigquery` rewrites). DataFusion's version counts each row's kept
//! elements by slicing the predicate's bitmap per row, which took more time than
//! evaluating the predicate on lists of a few labels. This one evaluates the lambda
//! the same way and otherwise answers the same: nulls stay null, a null predicate
//! drops its element, a list with every element kept is returned as it came.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, GenericListArray, OffsetSizeTrait};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{filter, prep_null_mask_filter, take_arrays};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::{list_values, list_values_row_number};
use datafusion::common::{Result, exec_err};
use datafusion::functions_nested::array_filter::ArrayFilter as DataFusionArrayFilter;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs,
    HigherOrderSignature, HigherOrderUDFImpl, LambdaParametersProgress, ValueOrLambda,
};

/// `array_filter`, as DataFusion's but for how the kept elements are counted.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct ArrayFilter {
    datafusion: DataFusionArrayFilter,
}

impl ArrayFilter {
    pub fn new() -> Self {
        Self::default()
    }
}

impl HigherOrderUDFImpl for ArrayFilter {
    fn name(&self) -> &str {
        self.datafusion.name()
    }

    fn aliases(&self) -> &[String] {
        self.datafusion.aliases()
    }

    fn signature(&self) -> &HigherOrderSignature {
        self.datafusion.signature()
    }

    fn lambda_parameters(
        &self,
        step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        self.datafusion.lambda_parameters(step, fields)
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<Arc<Field>> {
        self.datafusion.return_field_from_args(args)
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.datafusion.coerce_value_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.datafusion.documentation()
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Lambda(lambda)] = args.args.as_slice()
        else {
            return exec_err!("array_filter expects a list and a lambda");
        };
        let list = list.to_array(args.number_rows)?;
        let values = list_values(&list)?;
        let kept = lambda.evaluate(&[&|| Ok(Arc::clone(&values))], |captures| {
            Ok(take_arrays(
                captures,
                &list_values_row_number(&list)?,
                None,
            )?)
        })?;
        let kept = kept.into_array(values.len())?;
        let Some(kept) = kept.as_any().downcast_ref::<BooleanArray>() else {
            return exec_err!(
                "array_filter's lambda must return booleans, not {}",
                kept.data_type()
            );
        };
        let filtered: ArrayRef = match list.data_type() {
            DataType::List(field) => {
                Arc::new(filter_lists(list.as_list::<i32>(), field, &values, kept)?)
            }
            DataType::LargeList(field) => {
                Arc::new(filter_lists(list.as_list::<i64>(), field, &values, kept)?)
            }
            other => return exec_err!("array_filter expects a list, not {other}"),
        };
        Ok(ColumnarValue::Array(filtered))
    }
}

/// `list` (of `field`s) with only the elements of `values` (its elements, from the first list's
/// start) where `kept` is true.
fn filter_lists<O: OffsetSizeTrait>(
    list: &GenericListArray<O>,
    field: &FieldRef,
    values: &ArrayRef,
    kept: &BooleanArray,
) -> Result<GenericListArray<O>> {
    let kept = match kept.null_count() {
        0 => kept.clone(),
        _ => prep_null_mask_filter(kept),
    };
    if kept.true_count() == kept.len() {
        return Ok(list.clone());
    }
    let first = list.offsets()[0].as_usize();
    let mut set = kept.values().set_indices().peekable();
    let mut count = 0;
    let ends = list.offsets()[1..].iter().map(|end| {
        let end = end.as_usize() - first;
        while set.next_if(|i| *i < end).is_some() {
            count += 1;
        }
        O::usize_as(count)
    });
    let offsets = std::iter::once(O::usize_as(0)).chain(ends).collect();
    Ok(GenericListArray::try_new(
        Arc::clone(field),
        OffsetBuffer::new(offsets),
        filter(values.as_ref(), &kept)?,
        list.nulls().cloned(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, ListArray, RecordBatch, StringArray, StructArray};
    use arrow::datatypes::{Int32Type, Schema};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The same query through DataFusion's `array_filter` and this one.
    async fn both(sql: &str, batch: RecordBatch) -> (String, String) {
        let mut answers = Vec::new();
        for ours in [false, true] {
            let config = SessionConfig::new().set_str("datafusion.sql_parser.dialect", "duckdb");
            let ctx = SessionContext::new_with_config(config);
            if ours {
                ctx.register_higher_order_function(Arc::new(ArrayFilter::new().into()));
            }
            ctx.register_batch("t", batch.clone()).unwrap();
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            answers.push(
                arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string(),
            );
        }
        let ours = answers.pop().unwrap();
        (answers.pop().unwrap(), ours)
    }

    #[tokio::test]
    async fn answers_as_datafusion_does_on_nulls_empties_slices_and_captures() {
        // Lists: [1, 2, 3], null, [], [4, null, 6], [7], a sliced-off first row.
        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(0)]),
            Some(vec![Some(1), Some(2), Some(3)]),
            None,
            Some(vec![]),
            Some(vec![Some(4), None, Some(6)]),
            Some(vec![Some(7)]),
        ])
        .slice(1, 5);
        let n = Int32Array::from(vec![1, 5, 0, 3, 9]);
        let batch = RecordBatch::try_from_iter([
            ("l", Arc::new(lists) as ArrayRef),
            ("n", Arc::new(n) as ArrayRef),
        ])
        .unwrap();
        for predicate in ["x -> x % 2 = 1", "x -> x > n", "x -> x > 0", "x -> x > 100"] {
            let sql = format!("SELECT array_filter(l, {predicate}) AS f FROM t");
            let (datafusion, ours) = both(&sql, batch.clone()).await;
            assert_eq!(ours, datafusion, "{predicate}");
        }
        let (_, ours) = both("SELECT array_filter(l, x -> x % 2 = 1) AS f FROM t", batch).await;
        let want = [
            "+--------+",
            "| f      |",
            "+--------+",
            "| [1, 3] |",
            "|        |",
            "| []     |",
            "| []     |",
            "| [7]    |",
            "+--------+",
        ];
        assert_eq!(ours, want.join("\n"));
    }

    #[tokio::test]
    async fn labels_by_key_then_unnested() {
        let keys = StringArray::from(vec![Some("env"), Some("team"), Some("env"), None]);
        let values = StringArray::from(vec!["prod", "a", "dev", "x"]);
        let labels = StructArray::try_from(vec![
            ("key", Arc::new(keys) as ArrayRef),
            ("value", Arc::new(values) as ArrayRef),
        ])
        .unwrap();
        let field = Arc::new(Field::new_list_field(labels.data_type().clone(), true));
        let lists = ListArray::new(
            field,
            OffsetBuffer::from_lengths([2, 0, 2]),
            Arc::new(labels),
            None,
        );
        let cost = Int32Array::from(vec![10, 20, 30]);
        let schema = Schema::new(vec![
            Field::new("labels", lists.data_type().clone(), true),
            Field::new("cost", DataType::Int32, false),
        ]);
        let batch =
            RecordBatch::try_new(Arc::new(schema), vec![Arc::new(lists), Arc::new(cost)]).unwrap();
        let sql = "SELECT u['value'] AS v, cost FROM (SELECT unnest(array_filter(labels, x -> x['key'] = 'env')) AS u, cost FROM t) ORDER BY v";
        let (datafusion, ours) = both(sql, batch).await;
        assert_eq!(ours, datafusion);
        assert!(
            ours.contains("| dev  | 30   |") && ours.contains("| prod | 10   |"),
            "{ours}"
        );
    }
}
