//! `micros(x)`: an amount in micro-units, exactly.

use std::sync::{Arc, LazyLock};

use arrow::array::Int64Array;
use arrow::datatypes::DataType;
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::decimal::{div_round, scaled_at};

/// `x` × 1,000,000 as INT64, from the amount's exact decimal value, rounded half away
/// from zero: the exact counterpart of `CAST(x * 1000000 AS INT64)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Micros {
    signature: Signature,
}

impl Micros {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for Micros {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "An amount in micro-units (x × 1,000,000) as INT64, exactly, rounded half away from zero.",
        "micros(x)",
    )
    .with_sql_example("SELECT SUM(micros(cost)) / 1e6 FROM gcp_billing_export")
    .with_argument("x", "An amount (FLOAT64, NUMERIC or INT64).")
    .build()
});

impl ScalarUDFImpl for Micros {
    fn name(&self) -> &str {
        "micros"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [x] = take_function_args(self.name(), &arrays)?;
        let out = (0..x.len())
            .map(|i| {
                let Some(nanos) = scaled_at(x, i)? else {
                    return Ok(None);
                };
                let q = div_round(nanos, 1000);
                match i64::try_from(q) {
                    Ok(v) => Ok(Some(v)),
                    Err(_) => exec_err!("micros: {q} is out of the range of INT64"),
                }
            })
            .collect::<Result<Int64Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
