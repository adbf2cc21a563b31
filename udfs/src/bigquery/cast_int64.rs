//! `bq_cast_int64(x)`: BigQuery's `CAST(x AS INT64)`.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion::common::utils::take_function_args;

use crate::decimal::div_round;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Casts to INT64 as BigQuery does: floats and NUMERIC round half away from zero
/// (DataFusion's cast truncates); strings parse; out of range is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqCastInt64 {
    signature: Signature,
}

impl BqCastInt64 {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for BqCastInt64 {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "CAST(x AS INT64) with BigQuery's rounding: half away from zero for FLOAT64 and NUMERIC.",
        "bq_cast_int64(x)",
    )
    .with_argument("x", "A number or a string.")
    .build()
});

impl ScalarUDFImpl for BqCastInt64 {
    fn name(&self) -> &str {
        "bq_cast_int64"
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
        let out: Int64Array = match x.data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                let f = cast(x, &DataType::Float64)?;
                f.as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(round_f64).transpose())
                    .collect::<Result<_>>()?
            }
            DataType::Decimal128(_, s) => {
                let div = 10i128.pow(*s as u32);
                x.as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            let q = div_round(v, div);
                            i64::try_from(q).or_else(|_| exec_err!("int64 overflow: {v}"))
                        })
                        .transpose()
                    })
                    .collect::<Result<_>>()?
            }
            _ => cast(x, &DataType::Int64)?.as_primitive().clone(),
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn round_f64(v: f64) -> Result<i64> {
    let r = v.round();
    if r.is_finite() && r >= i64::MIN as f64 && r < i64::MAX as f64 {
        Ok(r as i64)
    } else {
        exec_err!("int64 overflow: {v}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(super::round_f64(2.5).unwrap(), 3);
        assert_eq!(super::round_f64(-2.5).unwrap(), -3);
        assert_eq!(super::round_f64(79140979.000000001).unwrap(), 79140979);
        assert!(super::round_f64(f64::NAN).is_err());
    }
}
