//! `net_cost(cost, credits)`: cost after credits, exactly.

use std::sync::{Arc, LazyLock};

use arrow::array::Decimal128Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{check_credits_type, credit_sums};
use crate::decimal::{PRECISION, SCALE, money_type, scaled_at};

/// `cost` plus the sum of its credits (credits are negative), as NUMERIC.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NetCost {
    signature: Signature,
}

impl NetCost {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl Default for NetCost {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Cost net of credits, exactly, as NUMERIC (Decimal128(38, 9)): `cost` plus the \
         amounts of `credits`. NULL when cost is NULL.",
        "net_cost(cost, credits)",
    )
    .with_sql_example("SELECT invoice.month, SUM(net_cost(cost, credits)) AS total FROM gcp_billing_export GROUP BY 1")
    .with_argument("cost", "The row's cost (FLOAT64 or NUMERIC).")
    .with_argument("credits", "An array of records with an `amount` field.")
    .build()
});

impl ScalarUDFImpl for NetCost {
    fn name(&self) -> &str {
        "net_cost"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(arg_types[0].is_numeric() || arg_types[0].is_null()) {
            return datafusion::common::plan_err!(
                "net_cost expects a numeric cost, got {}",
                arg_types[0]
            );
        }
        check_credits_type(self.name(), &arg_types[1])?;
        Ok(money_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [cost, credits] = take_function_args(self.name(), &arrays)?;
        let sums = credit_sums(credits, None)?;
        let out = (0..cost.len())
            .map(|i| Ok(scaled_at(cost, i)?.map(|c| c + sums[i])))
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(PRECISION, SCALE)?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
