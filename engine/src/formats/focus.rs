//! FinOps FOCUS exports (CSV), as the providers deliver them (AWS Data Exports' FOCUS
//! 1.0, Azure's FOCUS cost export, ...): the `focus_export` table, under FOCUS's own
//! column names. Costs and quantities are exact decimals, the period columns UTC
//! timestamps, `Tags` a map; the literal `NULL` the spec's samples write for a missing
//! value is a NULL.

use super::ExportKind;
use super::csv_export::Role;

/// FOCUS's cost columns (money).
const COSTS: [&str; 4] = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"];

/// FOCUS's other numbers.
const NUMBERS: [&str; 5] = [
    "ConsumedQuantity",
    "PricingQuantity",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "CommitmentDiscountQuantity",
];

const DATES: [&str; 4] = [
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
];

/// What each column of a FOCUS export is; `None` if the header is not FOCUS.
pub fn roles(header: &[String]) -> Option<(ExportKind, Vec<Role>)> {
    let has = |n: &str| header.iter().any(|h| h == n);
    if !(has("BilledCost") && has("ChargePeriodStart") && has("BillingAccountId")) {
        return None;
    }
    let roles = header
        .iter()
        .map(|h| {
            let name = h.clone();
            if COSTS.contains(&h.as_str()) {
                Role::Number { name, money: true }
            } else if NUMBERS.contains(&h.as_str()) {
                Role::Number { name, money: false }
            } else if DATES.contains(&h.as_str()) {
                Role::Date(name)
            } else if h == "Tags" {
                Role::Json(name)
            } else {
                Role::Text(name)
            }
        })
        .collect();
    Some((ExportKind::FocusExport, roles))
}
