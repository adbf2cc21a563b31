//! `money_sum(x)`: the exact decimal sum of money amounts.

use std::sync::{Arc, LazyLock};

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use crate::decimal::{PRECISION, SCALE, money_type, scaled_at};

/// Sums amounts exactly as NUMERIC: each FLOAT64 at the decimal value it was written
/// with, never through float addition. NULL when there are no non-NULL amounts.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MoneySum {
    signature: Signature,
}

impl MoneySum {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for MoneySum {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Exact sum of money amounts as NUMERIC (Decimal128(38, 9)): FLOAT64 amounts count at \
         the decimal value they were written with, so 0.1 + 0.2 is 0.3.",
        "money_sum(x)",
    )
    .with_sql_example("SELECT invoice.month, money_sum(cost) FROM gcp_billing_export GROUP BY 1")
    .with_argument("x", "An amount (FLOAT64, NUMERIC or INT64).")
    .build()
});

impl AggregateUDFImpl for MoneySum {
    fn name(&self) -> &str {
        "money_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(money_type())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MoneyAccumulator { sum: None }))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("sum", money_type(), true))])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct MoneyAccumulator {
    sum: Option<i128>,
}

impl MoneyAccumulator {
    fn add(&mut self, values: &ArrayRef) -> Result<()> {
        for i in 0..values.len() {
            if let Some(v) = scaled_at(values, i)? {
                match self.sum.unwrap_or(0).checked_add(v) {
                    Some(s) => self.sum = Some(s),
                    None => return exec_err!("money_sum overflow"),
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for MoneyAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Decimal128(self.sum, PRECISION, SCALE))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0])
    }
}
