//! Functions over the billing exports' own shapes (credits, labels, money).

pub mod credits_total;
pub mod lookup;
pub mod micros;
pub mod money_sum;
pub mod net_cost;
pub mod tags_map;

use arrow::array::{Array, ArrayRef, AsArray, StructArray};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::DocSection;

/// The documentation section of these functions.
pub(crate) const SECTION: DocSection = DocSection {
    include: true,
    label: "Billing Functions",
    description: None,
};

/// Checks that `t` is a list of records with an `amount` field (`credits`).
fn check_credits_type(function: &str, t: &DataType) -> Result<()> {
    if let DataType::List(item) | DataType::LargeList(item) = t {
        match item.data_type() {
            DataType::Struct(fields) if fields.find("amount").is_some() => return Ok(()),
            // An empty array literal, `[]`.
            DataType::Null => return Ok(()),
            _ => {}
        }
    }
    if t.is_null() {
        return Ok(());
    }
    plan_err!("{function} expects an array of records with an amount field (credits), got {t}")
}

/// Per row, the exact sum of `credits[].amount` at scale 9; NULL and empty lists sum to 0.
/// With `types`, only credits whose `type` equals the row's value count.
fn credit_sums(credits: &ArrayRef, types: Option<&ArrayRef>) -> Result<Vec<i128>> {
    if credits.data_type().is_null() {
        return Ok(vec![0; credits.len()]);
    }
    let (offsets, values): (Vec<usize>, ArrayRef) = match credits.data_type() {
        DataType::List(_) => {
            let l = credits.as_list::<i32>();
            (
                l.value_offsets().iter().map(|&o| o as usize).collect(),
                l.values().clone(),
            )
        }
        DataType::LargeList(_) => {
            let l = credits.as_list::<i64>();
            (
                l.value_offsets().iter().map(|&o| o as usize).collect(),
                l.values().clone(),
            )
        }
        other => return exec_err!("expected credits, got {other}"),
    };
    if values.data_type().is_null() {
        return Ok(vec![0; credits.len()]);
    }
    let records = values.as_any().downcast_ref::<StructArray>();
    let Some(amount) = records.and_then(|r| r.column_by_name("amount")) else {
        return exec_err!("credits have no amount field");
    };
    let wanted = types
        .map(|t| arrow::compute::cast(t, &DataType::Utf8))
        .transpose()?;
    let kinds = match (&wanted, records.and_then(|r| r.column_by_name("type"))) {
        (Some(_), Some(k)) => Some(arrow::compute::cast(k, &DataType::Utf8)?),
        (Some(_), None) => return exec_err!("credits have no type field to filter on"),
        (None, _) => None,
    };
    let mut sums = Vec::with_capacity(credits.len());
    for row in 0..credits.len() {
        let mut sum = 0i128;
        if credits.is_valid(row) {
            for i in offsets[row]..offsets[row + 1] {
                if let (Some(w), Some(k)) = (&wanted, &kinds) {
                    let (w, k) = (w.as_string::<i32>(), k.as_string::<i32>());
                    if w.is_null(row) || k.is_null(i) || w.value(row) != k.value(i) {
                        continue;
                    }
                }
                if let Some(v) = crate::decimal::scaled_at(amount, i)? {
                    sum += v;
                }
            }
        }
        sums.push(sum);
    }
    Ok(sums)
}
