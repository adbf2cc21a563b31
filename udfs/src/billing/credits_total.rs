//! `credits_total(credits)`: the exact sum of a row's credit amounts.

use std::sync::{Arc, LazyLock};

use arrow::array::Decimal128Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{check_credits_type, credit_sums};
use crate::decimal::{PRECISION, SCALE, money_type};

/// Sums `credits[].amount` of each row exactly, as NUMERIC, optionally of one credit
/// `type`; 0 when there are none.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CreditsTotal {
    signature: Signature,
}

impl CreditsTotal {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(1),
                    datafusion::logical_expr::TypeSignature::Any(2),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl Default for CreditsTotal {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Exact sum of the amounts of a row's credits (GCP `credits` array), as NUMERIC \
         (Decimal128(38, 9)). NULL or empty credits give 0. The same as \
         `IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)` without unnesting, exactly.",
        "credits_total(credits [, type])",
    )
    .with_sql_example(
        "SELECT invoice.month, SUM(credits_total(credits)) FROM gcp_billing_export GROUP BY 1",
    )
    .with_argument("credits", "An array of records with an `amount` field.")
    .with_argument(
        "type",
        "Only credits of this `type` (`COMMITTED_USAGE_DISCOUNT`, `FREE_TIER`, ...).",
    )
    .build()
});

impl ScalarUDFImpl for CreditsTotal {
    fn name(&self) -> &str {
        "credits_total"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_credits_type(self.name(), &arg_types[0])?;
        Ok(money_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let sums = credit_sums(&arrays[0], arrays.get(1))?;
        let out = Decimal128Array::from(sums).with_precision_and_scale(PRECISION, SCALE)?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
