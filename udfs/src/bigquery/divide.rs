//! `bq_divide(x, y)` and `bq_safe_divide(x, y)`: BigQuery's `/` and `SAFE_DIVIDE`.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, Decimal128Array, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion::common::utils::take_function_args;

use crate::decimal::div_round;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Division as BigQuery does it: INT64 / INT64 is FLOAT64 (DataFusion truncates to an
/// integer), NUMERIC stays NUMERIC (scale 9, rounded half away from zero), FLOAT64
/// wins over both. Division by zero is an error, or NULL for the safe variant.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqDivide {
    signature: Signature,
    safe: bool,
}

impl BqDivide {
    /// `bq_divide`, or `bq_safe_divide` when `safe`.
    pub fn new(safe: bool) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            safe,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "BigQuery's division: FLOAT64 for integers, NUMERIC (scale 9) for NUMERIC, FLOAT64 when \
         either side is FLOAT64. bq_divide fails on division by zero; bq_safe_divide returns NULL.",
        "bq_divide(x, y)",
    )
    .with_argument("x", "The dividend.")
    .with_argument("y", "The divisor.")
    .build()
});

const SCALE: i8 = 9;

impl ScalarUDFImpl for BqDivide {
    fn name(&self) -> &str {
        if self.safe {
            "bq_safe_divide"
        } else {
            "bq_divide"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let numeric = |t: &DataType| t.is_numeric() || t.is_null();
        if !arg_types.iter().all(numeric) {
            return plan_err!("cannot divide {} by {}", arg_types[0], arg_types[1]);
        }
        let decimal =
            |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
        let float = |t: &DataType| t.is_floating();
        if arg_types.iter().any(decimal) && !arg_types.iter().any(float) {
            Ok(DataType::Decimal128(38, SCALE))
        } else {
            Ok(DataType::Float64)
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [x, y] = take_function_args(self.name(), &arrays)?;
        let out_type = args.return_field.data_type().clone();
        let x = cast(x, &out_type)?;
        let y = cast(y, &out_type)?;
        fn zero<T>(safe: bool) -> Result<Option<T>> {
            if safe {
                Ok(None)
            } else {
                exec_err!("division by zero")
            }
        }
        let result: Arc<dyn Array> = if let DataType::Decimal128(..) = out_type {
            let (x, y) = (
                x.as_primitive::<Decimal128Type>(),
                y.as_primitive::<Decimal128Type>(),
            );
            let unit = 10i128.pow(SCALE as u32);
            let out = x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| match (a, b) {
                    (Some(_), Some(0)) => zero(self.safe),
                    (Some(a), Some(b)) => {
                        let Some(n) = a.checked_mul(unit) else {
                            return exec_err!("numeric overflow in division");
                        };
                        Ok(Some(div_round(n, b)))
                    }
                    _ => Ok(None),
                })
                .collect::<Result<Decimal128Array>>()?
                .with_precision_and_scale(38, SCALE)?;
            Arc::new(out)
        } else {
            let (x, y) = (
                x.as_primitive::<Float64Type>(),
                y.as_primitive::<Float64Type>(),
            );
            let out = x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| match (a, b) {
                    (Some(_), Some(0.0)) => zero(self.safe),
                    (Some(a), Some(b)) => Ok(Some(a / b)),
                    _ => Ok(None),
                })
                .collect::<Result<Float64Array>>()?;
            Arc::new(out)
        };
        Ok(ColumnarValue::Array(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
