//! # billq-udfs
//!
//! Billing functions for DataFusion, usable from BigQuery and DataFusion SQL alike.
//! One function per file, each a `ScalarUDFImpl` with its documentation:
//!
//! - [`billing::credits_total`]: exact sum of a row's `credits[].amount`;
//! - [`billing::net_cost`]: `cost` plus its credits, exactly;
//! - [`billing::micros`]: an amount in micro-units, exactly;
//! - [`billing::money_sum`]: the exact decimal sum of amounts (an aggregate);
//! - [`billing::lookup`]: `label`, `has_label`, `tag` key lookups;
//! - [`bigquery`]: BigQuery semantics where DataFusion's built-ins differ
//!   (`to_json_string`, `bq_divide`, `bq_safe_divide`, `bq_cast_int64`, `bq_array_sum`,
//!   `bq_outer_elements`, `bq_date_trunc`);
//! - [`array_filter`]: DataFusion's `array_filter`, faster on many short lists.
//!
//! Money comes out as `Decimal128(38, 9)` (BigQuery's NUMERIC): a FLOAT64 amount is
//! taken at the shortest decimal that reads back as the same double (the text the
//! export carried), so sums of these results are exact.

pub mod array_filter;
pub mod aws_name;
pub mod bigquery;
pub mod billing;
pub mod decimal;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Every scalar function of this crate.
pub fn all_scalar() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(billing::credits_total::CreditsTotal::new())),
        Arc::new(ScalarUDF::from(billing::net_cost::NetCost::new())),
        Arc::new(ScalarUDF::from(billing::micros::Micros::new())),
        Arc::new(ScalarUDF::from(billing::lookup::KeyLookup::new(
            billing::lookup::Lookup::Label,
        ))),
        Arc::new(ScalarUDF::from(billing::lookup::KeyLookup::new(
            billing::lookup::Lookup::HasLabel,
        ))),
        Arc::new(ScalarUDF::from(billing::lookup::KeyLookup::new(
            billing::lookup::Lookup::Tag,
        ))),
        Arc::new(ScalarUDF::from(billing::tags_map::TagsMap::new())),
        Arc::new(ScalarUDF::from(bigquery::array_sum::BqArraySum::new())),
        Arc::new(ScalarUDF::from(bigquery::cast_int64::BqCastInt64::new())),
        Arc::new(ScalarUDF::from(bigquery::divide::BqDivide::new(false))),
        Arc::new(ScalarUDF::from(bigquery::divide::BqDivide::new(true))),
        Arc::new(ScalarUDF::from(
            bigquery::format_timestamp::BqFormatTimestamp::new(),
        )),
        Arc::new(ScalarUDF::from(
            bigquery::to_json_string::ToJsonString::new(),
        )),
        Arc::new(ScalarUDF::from(
            bigquery::outer_elements::BqOuterElements::new(),
        )),
        Arc::new(ScalarUDF::from(bigquery::date_trunc::BqDateTrunc::new())),
    ]
}

/// Every aggregate function of this crate.
pub fn all_aggregate() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::from(
        billing::money_sum::MoneySum::new(),
    ))]
}

/// Registers every function of this crate with `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for udf in all_scalar() {
        ctx.register_udf(udf.as_ref().clone());
    }
    for udaf in all_aggregate() {
        ctx.register_udaf(udaf.as_ref().clone());
    }
    let array_filter = HigherOrderUDF::from(array_filter::ArrayFilter::new());
    ctx.register_higher_order_function(Arc::new(array_filter));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<_> = all_scalar().iter().map(|f| f.name().to_string()).collect();
        names.extend(all_aggregate().iter().map(|f| f.name().to_string()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(all_scalar().iter().all(|f| f.documentation().is_some()));
        assert!(all_aggregate().iter().all(|f| f.documentation().is_some()));
    }
}
