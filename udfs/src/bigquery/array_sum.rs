//! `bq_array_sum(array)`: BigQuery's `SUM` over an array's elements.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, Int64Builder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Sums a list's elements keeping BigQuery's result type: INT64 for integers,
/// NUMERIC (the element's scale) for decimals, FLOAT64 for floats. NULL for a NULL or
/// empty array, or one of NULLs only, as `SUM` over no rows.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqArraySum {
    signature: Signature,
}

impl BqArraySum {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for BqArraySum {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Sum of an array's elements with BigQuery's SUM result type (INT64, NUMERIC or FLOAT64); \
         NULL when there are none. What `(SELECT SUM(x) FROM UNNEST(arr) x)` plans to.",
        "bq_array_sum(array)",
    )
    .with_argument("array", "An array of numbers.")
    .build()
});

fn element_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => Some(f.data_type()),
        _ => None,
    }
}

impl ScalarUDFImpl for BqArraySum {
    fn name(&self) -> &str {
        "bq_array_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match element_type(&arg_types[0]) {
            Some(t) if t.is_integer() => Ok(DataType::Int64),
            Some(DataType::Decimal128(_, s)) => Ok(DataType::Decimal128(38, *s)),
            Some(t) if t.is_floating() || t.is_null() => Ok(DataType::Float64),
            _ if arg_types[0].is_null() => Ok(DataType::Float64),
            _ => plan_err!(
                "bq_array_sum expects an array of numbers, got {}",
                arg_types[0]
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [list] = take_function_args(self.name(), &arrays)?;
        let out_type = args.return_field.data_type().clone();
        let rows = list.len();
        let (offsets, values): (Vec<usize>, ArrayRef) = match list.data_type() {
            DataType::List(_) => {
                let l = list.as_list::<i32>();
                (
                    l.value_offsets().iter().map(|&o| o as usize).collect(),
                    l.values().clone(),
                )
            }
            DataType::LargeList(_) => {
                let l = list.as_list::<i64>();
                (
                    l.value_offsets().iter().map(|&o| o as usize).collect(),
                    l.values().clone(),
                )
            }
            _ => (
                vec![0; rows + 1],
                arrow::array::new_null_array(&DataType::Float64, 0),
            ),
        };
        let range = |row: usize| {
            if list.is_valid(row) {
                offsets[row]..offsets[row + 1]
            } else {
                0..0
            }
        };
        let result: ArrayRef = match out_type {
            DataType::Int64 => {
                let v = cast(&values, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                let mut b = Int64Builder::with_capacity(rows);
                for row in 0..rows {
                    let mut sum: Option<i64> = None;
                    for i in range(row).filter(|&i| v.is_valid(i)) {
                        let Some(s) = sum.unwrap_or(0).checked_add(v.value(i)) else {
                            return exec_err!("int64 overflow in SUM");
                        };
                        sum = Some(s);
                    }
                    b.append_option(sum);
                }
                Arc::new(b.finish())
            }
            DataType::Decimal128(p, s) => {
                let v = values.as_primitive::<Decimal128Type>();
                let mut b =
                    Decimal128Builder::with_capacity(rows).with_precision_and_scale(p, s)?;
                for row in 0..rows {
                    let mut sum: Option<i128> = None;
                    for i in range(row).filter(|&i| v.is_valid(i)) {
                        sum = Some(sum.unwrap_or(0) + v.value(i));
                    }
                    b.append_option(sum);
                }
                Arc::new(b.finish())
            }
            _ => {
                let v = cast(&values, &DataType::Float64)?;
                let v = v.as_primitive::<Float64Type>();
                let mut b = Float64Builder::with_capacity(rows);
                for row in 0..rows {
                    let mut sum: Option<f64> = None;
                    for i in range(row).filter(|&i| v.is_valid(i)) {
                        sum = Some(sum.unwrap_or(0.0) + v.value(i));
                    }
                    b.append_option(sum);
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
