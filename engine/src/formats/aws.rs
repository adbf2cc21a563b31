//! AWS billing exports: the Cost and Usage Report in CSV (legacy `category/Name`
//! headers, Athena-style or CUR 2.0 `snake_case` ones) or in Parquet, and the Detailed
//! Billing Report in CSV: what their columns mean ([`roles`], for the CSV reader) and
//! the canonical shape of the Parquet variants.
//!
//! Columns whose names say money, quantity or date are typed (exact decimals, UTC
//! timestamps) where every value parses; everything else stays text, as written.
//! CUR columns are named by AWS's Athena rule (`lineItem/UnblendedCost` →
//! `line_item_unblended_cost`); `resourceTags/user:Name` columns become one map,
//! `resource_tags`, keyed as AWS writes the tag (`user:Name`), so keys that differ
//! only by case stay apart; `costCategory/...` columns become `cost_category`; CUR
//! 2.0's map columns (JSON objects in its CSV) become maps of text. DBR columns keep
//! their own names, and `is_total_row` marks the StatementTotal, InvoiceTotal,
//! AccountTotal and Rounding rows that must not be summed with usage.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::ExportKind;
use super::csv_export::{Role, SCALE, map_type};

/// The canonical schema of a CUR Parquet file: its doubles (costs, rates, amounts)
/// become the exact decimals of the CSV path, its timestamps microseconds in UTC, and
/// its maps (CUR 2.0's `product`, `discount`, ...) maps of text, as in CSV.
pub fn canonical_parquet_schema(file: &Schema) -> SchemaRef {
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Float32 | DataType::Float64 => DataType::Decimal128(38, SCALE),
                DataType::Timestamp(_, _) => {
                    DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
                }
                DataType::Map(_, _) => map_type(),
                other => other.clone(),
            };
            Field::new(f.name(), t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// What a CSV header or a Parquet file's columns say the file is.
pub fn detect(header: &[String]) -> Option<ExportKind> {
    let has = |n: &str| header.iter().any(|h| h == n);
    if header
        .iter()
        .any(|h| h.starts_with("lineItem/") || h.starts_with("line_item_"))
    {
        Some(ExportKind::AwsCur)
    } else if has("RecordType") && (has("UnBlendedCost") || has("Cost")) {
        Some(ExportKind::AwsDbr)
    } else {
        None
    }
}

pub use billq_udfs::aws_name::athena_name;

const NUMBER_WORDS: [&str; 10] = [
    "cost",
    "discount",
    "rate",
    "amount",
    "fee",
    "factor",
    "commitment",
    "quantity",
    "blendedcost",
    "unblendedcost",
];
const TEXT_WORDS: [&str; 9] = [
    "id",
    "code",
    "arn",
    "type",
    "description",
    "name",
    "term",
    "unit",
    "class",
];

/// Whether a column's name says it holds money or a quantity.
fn numeric_name(name: &str) -> bool {
    let words: Vec<String> = athena_name(name).split('_').map(str::to_string).collect();
    words.iter().any(|w| NUMBER_WORDS.contains(&w.as_str()))
        && !words
            .last()
            .is_some_and(|w| TEXT_WORDS.contains(&w.as_str()))
}

/// Whether a column's name says it holds a date and time.
fn date_name(name: &str) -> bool {
    athena_name(name).ends_with("_date")
}

/// CUR 2.0's map columns: in Parquet they are maps, in CSV JSON objects.
const CUR2_MAPS: [&str; 5] = [
    "resource_tags",
    "cost_category",
    "product",
    "discount",
    "tags",
];

/// What each column of an AWS CSV export is; `None` if the header is not AWS's.
pub fn roles(header: &[String]) -> Option<(ExportKind, Vec<Role>)> {
    let kind = detect(header)?;
    let roles = header
        .iter()
        .map(|h| {
            if kind == ExportKind::AwsDbr {
                if h == "RecordType" {
                    return Role::RecordType(h.clone());
                }
            } else if CUR2_MAPS.contains(&h.as_str()) {
                return Role::Json(h.clone());
            } else if let Some(key) = h.strip_prefix("resourceTags/") {
                return Role::Entry {
                    map: "resource_tags",
                    key: key.to_string(),
                };
            } else if let Some(key) = h.strip_prefix("costCategory/") {
                return Role::Entry {
                    map: "cost_category",
                    key: key.to_string(),
                };
            }
            let name = match kind {
                ExportKind::AwsCur => athena_name(h),
                _ => h.clone(),
            };
            if numeric_name(h) {
                let money = kind.money_columns().contains(&name.as_str());
                Role::Number { name, money }
            } else if date_name(h) {
                Role::Date(name)
            } else {
                Role::Text(name)
            }
        })
        .collect();
    Some((kind, roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_what_is_money_and_what_is_a_map() {
        assert!(numeric_name("lineItem/UnblendedCost"));
        assert!(numeric_name("UsageQuantity"));
        assert!(!numeric_name("pricing/RateCode"));
        assert!(!numeric_name("lineItem/CurrencyCode"));
        assert!(date_name("lineItem/UsageStartDate"));
        let header: Vec<String> = [
            "lineItem/UnblendedCost",
            "resourceTags/user:Name",
            "product",
        ]
        .map(String::from)
        .to_vec();
        let (kind, roles) = roles(&header).unwrap();
        assert_eq!(kind, ExportKind::AwsCur);
        assert_eq!(
            roles,
            vec![
                Role::Number {
                    name: "line_item_unblended_cost".into(),
                    money: true
                },
                Role::Entry {
                    map: "resource_tags",
                    key: "user:Name".into()
                },
                Role::Json("product".into()),
            ]
        );
    }
}
