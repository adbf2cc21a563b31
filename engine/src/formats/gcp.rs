//! Google Cloud billing exports: the documented schemas as Arrow types, and how a
//! file's fields tell which export it is.
//!
//! The standard and detailed (resource-level) exports share one schema, the detailed
//! one adding `resource` and `price`; the pricing export has its own. Field order is
//! the order of Google's documentation, which is also what `TO_JSON_STRING` prints.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use super::ExportKind;

fn string(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn float(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, timestamp_type(), true)
}

/// BigQuery's TIMESTAMP: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// BigQuery's NUMERIC: 38 digits, 9 of them after the point.
pub fn numeric_type() -> DataType {
    DataType::Decimal128(38, 9)
}

fn record(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

fn repeated(name: &str, fields: Vec<Field>) -> Field {
    let item = Field::new("item", DataType::Struct(Fields::from(fields)), true);
    Field::new(name, DataType::List(Arc::new(item)), true)
}

fn key_value(name: &str) -> Field {
    repeated(name, vec![string("key"), string("value")])
}

/// Fields of the standard usage cost export, in Google's order.
fn standard_fields() -> Vec<Field> {
    vec![
        string("billing_account_id"),
        record("service", vec![string("id"), string("description")]),
        record("sku", vec![string("id"), string("description")]),
        timestamp("usage_start_time"),
        timestamp("usage_end_time"),
        record(
            "project",
            vec![
                string("id"),
                string("number"),
                string("name"),
                key_value("labels"),
                string("ancestry_numbers"),
                repeated(
                    "ancestors",
                    vec![string("resource_name"), string("display_name")],
                ),
            ],
        ),
        key_value("labels"),
        key_value("system_labels"),
        record(
            "location",
            vec![
                string("location"),
                string("country"),
                string("region"),
                string("zone"),
            ],
        ),
        repeated(
            "tags",
            vec![
                string("key"),
                string("value"),
                Field::new("inherited", DataType::Boolean, true),
                string("namespace"),
            ],
        ),
        timestamp("export_time"),
        float("cost"),
        string("currency"),
        float("currency_conversion_rate"),
        record(
            "usage",
            vec![
                float("amount"),
                string("unit"),
                float("amount_in_pricing_units"),
                string("pricing_unit"),
            ],
        ),
        repeated(
            "credits",
            vec![
                string("name"),
                float("amount"),
                string("full_name"),
                string("id"),
                string("type"),
            ],
        ),
        record("invoice", vec![string("month"), string("publisher_type")]),
        string("cost_type"),
        record(
            "adjustment_info",
            vec![
                string("id"),
                string("description"),
                string("mode"),
                string("type"),
            ],
        ),
        float("cost_at_list"),
        string("transaction_type"),
        string("seller_name"),
        record("subscription", vec![string("instance_id")]),
        record(
            "consumption_model",
            vec![string("id"), string("description")],
        ),
    ]
}

/// Fields only the detailed (resource-level) export has.
fn resource_fields() -> Vec<Field> {
    vec![
        record("resource", vec![string("name"), string("global_name")]),
        record(
            "price",
            vec![
                Field::new("effective_price", numeric_type(), true),
                Field::new("tier_start_amount", numeric_type(), true),
                string("unit"),
                Field::new("pricing_unit_quantity", numeric_type(), true),
            ],
        ),
    ]
}

fn tiered_rates(name: &str) -> Field {
    repeated(
        name,
        vec![
            Field::new("pricing_unit_quantity", numeric_type(), true),
            Field::new("start_usage_amount", numeric_type(), true),
            Field::new("usd_amount", numeric_type(), true),
            Field::new("account_currency_amount", numeric_type(), true),
        ],
    )
}

/// Fields of the pricing export.
fn pricing_fields() -> Vec<Field> {
    let strings = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    vec![
        timestamp("export_time"),
        record("sku", vec![string("id"), string("description")]),
        record("service", vec![string("id"), string("description")]),
        strings("product_taxonomy"),
        record("geo_taxonomy", vec![string("type"), strings("regions")]),
        string("pricing_unit"),
        string("pricing_unit_description"),
        string("account_currency_code"),
        float("currency_conversion_rate"),
        record(
            "list_price",
            vec![timestamp("effective_until"), tiered_rates("tiered_rates")],
        ),
        record(
            "billing_account_price",
            vec![timestamp("effective_until"), tiered_rates("tiered_rates")],
        ),
        string("billing_account_id"),
        string("business_entity_name"),
    ]
}

/// Fields of the pre-BigQuery file export (JSON), numbers as in the file.
fn file_export_fields() -> Vec<Field> {
    vec![
        string("accountId"),
        string("lineItemId"),
        string("description"),
        timestamp("startTime"),
        timestamp("endTime"),
        string("projectNumber"),
        string("projectId"),
        string("projectName"),
        key_value("projectLabels"),
        repeated(
            "measurements",
            vec![
                string("measurementId"),
                Field::new("sum", numeric_type(), true),
                string("unit"),
            ],
        ),
        repeated(
            "credits",
            vec![
                string("creditId"),
                Field::new("amount", numeric_type(), true),
                string("currency"),
            ],
        ),
        record(
            "cost",
            vec![
                Field::new("amount", numeric_type(), true),
                string("currency"),
            ],
        ),
    ]
}

/// The documented schema of one kind of GCP export (empty for other providers).
pub fn documented_schema(kind: ExportKind) -> SchemaRef {
    let fields = match kind {
        ExportKind::GcpStandard => standard_fields(),
        ExportKind::GcpResource => {
            let mut f = standard_fields();
            f.extend(resource_fields());
            f
        }
        ExportKind::GcpPricing => pricing_fields(),
        ExportKind::GcpFileExport => file_export_fields(),
        // AWS and Azure exports have no fixed schema: each delivery's columns are its own.
        ExportKind::AwsCur
        | ExportKind::AwsDbr
        | ExportKind::AzureCost
        | ExportKind::AzureUsage
        | ExportKind::AzureRateCard
        | ExportKind::FocusExport => vec![],
    };
    Arc::new(Schema::new(fields))
}

/// Which GCP export a record with these top-level field names belongs to.
pub fn detect_kind<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<ExportKind> {
    let names: Vec<&str> = names.into_iter().collect();
    let has = |n: &str| names.contains(&n);
    if has("lineItemId") {
        Some(ExportKind::GcpFileExport)
    } else if has("usage_start_time") && (has("resource") || has("price")) {
        Some(ExportKind::GcpResource)
    } else if has("usage_start_time") || (has("cost") && has("invoice")) {
        Some(ExportKind::GcpStandard)
    } else if has("list_price") || (has("pricing_unit") && has("sku")) {
        Some(ExportKind::GcpPricing)
    } else {
        None
    }
}

/// Lays a file's inferred schema over the documented one: documented fields keep
/// their documented type and order, fields the documentation does not know are kept
/// (appended, with the type inferred from the data), recursively inside records.
pub fn overlay(documented: &Fields, inferred: &Fields) -> Fields {
    let mut out: Vec<Field> = documented
        .iter()
        .map(|doc| match inferred.find(doc.name()) {
            Some((_, inf)) => overlay_field(doc, inf),
            None => doc.as_ref().clone(),
        })
        .collect();
    for inf in inferred {
        if documented.find(inf.name()).is_none() {
            out.push(inf.as_ref().clone());
        }
    }
    Fields::from(out)
}

fn overlay_field(doc: &Field, inf: &Field) -> Field {
    match (doc.data_type(), inf.data_type()) {
        (DataType::Struct(d), DataType::Struct(i)) => {
            doc.clone().with_data_type(DataType::Struct(overlay(d, i)))
        }
        (DataType::List(d), DataType::List(i)) => match (d.data_type(), i.data_type()) {
            (DataType::Struct(ds), DataType::Struct(is)) => {
                let item = d
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Struct(overlay(ds, is)));
                doc.clone().with_data_type(DataType::List(Arc::new(item)))
            }
            _ => doc.clone(),
        },
        _ => doc.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_export_from_its_fields() {
        assert_eq!(
            detect_kind(["billing_account_id", "usage_start_time", "cost"]),
            Some(ExportKind::GcpStandard)
        );
        assert_eq!(
            detect_kind(["usage_start_time", "resource", "cost"]),
            Some(ExportKind::GcpResource)
        );
        assert_eq!(
            detect_kind(["export_time", "sku", "list_price"]),
            Some(ExportKind::GcpPricing)
        );
        assert_eq!(
            detect_kind(["lineItemId", "startTime"]),
            Some(ExportKind::GcpFileExport)
        );
        assert_eq!(detect_kind(["a", "b"]), None);
    }

    #[test]
    fn overlay_keeps_documented_types_and_unknown_fields() {
        let doc = documented_schema(ExportKind::GcpStandard);
        let inferred = Fields::from(vec![
            Field::new("cost", DataType::Int64, true),
            Field::new("brand_new", DataType::Utf8, true),
            Field::new(
                "invoice",
                DataType::Struct(Fields::from(vec![
                    Field::new("month", DataType::Utf8, true),
                    Field::new("extra", DataType::Boolean, true),
                ])),
                true,
            ),
        ]);
        let merged = overlay(doc.fields(), &inferred);
        assert_eq!(
            merged.find("cost").unwrap().1.data_type(),
            &DataType::Float64
        );
        assert_eq!(merged.last().unwrap().name(), "brand_new");
        let DataType::Struct(invoice) = merged.find("invoice").unwrap().1.data_type() else {
            panic!("invoice is a record")
        };
        let names: Vec<_> = invoice.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["month", "publisher_type", "extra"]);
    }
}
