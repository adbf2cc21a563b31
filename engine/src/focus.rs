//! The `focus` view: every provider's rows in the FinOps Open Cost and Usage
//! Specification's columns (FOCUS 1.2, ratified May 2025; FOCUS 1.0 exports such as
//! the FinOps Foundation's samples lack its newer columns, which are NULL there),
//! registered over whichever of
//! `gcp_billing_export`, `aws_cur`, `azure_cost` and `focus_export` a session has.
//!
//! Each provider's mapping is one function below: a FOCUS column and the SQL that
//! makes it from the provider's columns (a column a table lacks is NULL). Costs are
//! exact `Decimal(38, 24)` (the stores' scale), periods UTC timestamps, `Tags` a map of text.
//! `x_SourceTable` names the table a row comes from, so its original columns stay
//! reachable there.
//!
//! - GCP: `BilledCost` is `cost` plus its credits (what the invoice charges),
//!   `EffectiveCost` the same, `ListCost` `cost_at_list`, `ContractedCost` `cost`;
//!   `cost_type` `regular` is Usage, `tax` Tax, `adjustment` Credit,
//!   `rounding_error` Adjustment.
//! - AWS: `BilledCost` is `line_item_unblended_cost`; `EffectiveCost` amortizes
//!   commitments as AWS's FOCUS export does (`reservation_effective_cost` for
//!   DiscountedUsage, `savings_plan_savings_plan_effective_cost` for
//!   SavingsPlanCoveredUsage, 0 for SavingsPlanNegation, RIFee, SavingsPlanRecurringFee
//!   and SavingsPlanUpfrontFee, the unblended cost otherwise); `ListCost`
//!   `pricing_public_on_demand_cost`. Line item types map to Usage, Tax, Credit
//!   (Credit, Refund, discounts) and Purchase (fees).
//! - Azure: `BilledCost`, `EffectiveCost` and `ContractedCost` are
//!   `costInBillingCurrency` (an amortized export amortizes), `ListCost`
//!   `paygCostInBillingCurrency`; `chargeType` Usage, Purchase, Refund (Credit), Tax.
//! - FOCUS exports pass through.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use crate::error::Result;

/// The FOCUS 1.2 columns of the view (in the spec's alphabetical order), with their
/// SQL types. Those a provider's mapping does not make are NULL.
const COLUMNS: [(&str, Kind); 57] = [
    ("AvailabilityZone", Kind::Text),
    ("BilledCost", Kind::Money),
    ("BillingAccountId", Kind::Text),
    ("BillingAccountName", Kind::Text),
    ("BillingAccountType", Kind::Text),
    ("BillingCurrency", Kind::Text),
    ("BillingPeriodEnd", Kind::Time),
    ("BillingPeriodStart", Kind::Time),
    ("CapacityReservationId", Kind::Text),
    ("CapacityReservationStatus", Kind::Text),
    ("ChargeCategory", Kind::Text),
    ("ChargeClass", Kind::Text),
    ("ChargeDescription", Kind::Text),
    ("ChargeFrequency", Kind::Text),
    ("ChargePeriodEnd", Kind::Time),
    ("ChargePeriodStart", Kind::Time),
    ("CommitmentDiscountCategory", Kind::Text),
    ("CommitmentDiscountId", Kind::Text),
    ("CommitmentDiscountName", Kind::Text),
    ("CommitmentDiscountQuantity", Kind::Money),
    ("CommitmentDiscountStatus", Kind::Text),
    ("CommitmentDiscountType", Kind::Text),
    ("CommitmentDiscountUnit", Kind::Text),
    ("ConsumedQuantity", Kind::Money),
    ("ConsumedUnit", Kind::Text),
    ("ContractedCost", Kind::Money),
    ("ContractedUnitPrice", Kind::Money),
    ("EffectiveCost", Kind::Money),
    ("InvoiceId", Kind::Text),
    ("InvoiceIssuerName", Kind::Text),
    ("ListCost", Kind::Money),
    ("ListUnitPrice", Kind::Money),
    ("PricingCategory", Kind::Text),
    ("PricingCurrency", Kind::Text),
    ("PricingCurrencyContractedUnitPrice", Kind::Money),
    ("PricingCurrencyEffectiveCost", Kind::Money),
    ("PricingCurrencyListUnitPrice", Kind::Money),
    ("PricingQuantity", Kind::Money),
    ("PricingUnit", Kind::Text),
    ("ProviderName", Kind::Text),
    ("PublisherName", Kind::Text),
    ("RegionId", Kind::Text),
    ("RegionName", Kind::Text),
    ("ResourceId", Kind::Text),
    ("ResourceName", Kind::Text),
    ("ResourceType", Kind::Text),
    ("ServiceCategory", Kind::Text),
    ("ServiceName", Kind::Text),
    ("ServiceSubcategory", Kind::Text),
    ("SkuId", Kind::Text),
    ("SkuMeter", Kind::Text),
    ("SkuPriceDetails", Kind::Text),
    ("SkuPriceId", Kind::Text),
    ("SubAccountId", Kind::Text),
    ("SubAccountName", Kind::Text),
    ("SubAccountType", Kind::Text),
    ("Tags", Kind::Tags),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Time,
    Money,
    Tags,
}

impl Kind {
    /// `expr` brought to the view's type.
    fn cast(self, expr: &str) -> String {
        match self {
            Kind::Text => format!("CAST({expr} AS VARCHAR)"),
            Kind::Time => format!("arrow_cast({expr}, 'Timestamp(µs, \"UTC\")')"),
            Kind::Money => format!("CAST({expr} AS DECIMAL(38, 24))"),
            Kind::Tags => format!("tags_map({expr})"),
        }
    }
}

/// A table's columns, to write SQL that works whichever of them it has.
struct Table<'a> {
    name: &'a str,
    columns: &'a [String],
}

impl Table<'_> {
    /// The quoted column, or NULL when the table lacks it.
    fn col(&self, name: &str) -> String {
        if self.columns.iter().any(|c| c == name) {
            format!("\"{name}\"")
        } else {
            "NULL".into()
        }
    }

    /// A field of a record column (`service.description`), or NULL.
    fn field(&self, column: &str, field: &str) -> String {
        if self.columns.iter().any(|c| c == column) {
            format!("get_field(\"{column}\", '{field}')")
        } else {
            "NULL".into()
        }
    }

    /// The first of `names` the table has, or NULL.
    fn first(&self, names: &[&str]) -> String {
        names
            .iter()
            .find(|n| self.columns.iter().any(|c| c == *n))
            .map_or_else(|| "NULL".into(), |n| format!("\"{n}\""))
    }
}

/// `text` as an SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn gcp(t: &Table) -> BTreeMap<&'static str, String> {
    let credits = if t.columns.iter().any(|c| c == "credits") {
        "\"credits\""
    } else {
        "NULL"
    };
    let month = t.field("invoice", "month");
    let period_start = format!("to_timestamp(concat({month}, '01'), '%Y%m%d')");
    BTreeMap::from([
        ("ProviderName", lit("Google Cloud")),
        ("PublisherName", lit("Google Cloud")),
        ("InvoiceIssuerName", lit("Google Cloud")),
        ("BillingAccountId", t.col("billing_account_id")),
        ("SubAccountId", t.field("project", "id")),
        ("SubAccountName", t.field("project", "name")),
        ("BillingCurrency", t.col("currency")),
        ("BillingPeriodStart", period_start.clone()),
        (
            "BillingPeriodEnd",
            format!("{period_start} + INTERVAL '1 month'"),
        ),
        ("ChargePeriodStart", t.col("usage_start_time")),
        ("ChargePeriodEnd", t.col("usage_end_time")),
        (
            "ChargeCategory",
            format!(
                "CASE {} WHEN 'regular' THEN 'Usage' WHEN 'tax' THEN 'Tax' \
                 WHEN 'adjustment' THEN 'Credit' WHEN 'rounding_error' THEN 'Adjustment' END",
                t.col("cost_type")
            ),
        ),
        ("ChargeDescription", t.field("sku", "description")),
        (
            "BilledCost",
            format!("net_cost({}, {credits})", t.col("cost")),
        ),
        (
            "EffectiveCost",
            format!("net_cost({}, {credits})", t.col("cost")),
        ),
        (
            "ListCost",
            format!("net_cost({}, NULL)", t.col("cost_at_list")),
        ),
        (
            "ContractedCost",
            format!("net_cost({}, NULL)", t.col("cost")),
        ),
        (
            "PricingQuantity",
            t.field("usage", "amount_in_pricing_units"),
        ),
        ("PricingUnit", t.field("usage", "pricing_unit")),
        ("ConsumedQuantity", t.field("usage", "amount")),
        ("ConsumedUnit", t.field("usage", "unit")),
        ("ServiceName", t.field("service", "description")),
        ("RegionId", t.field("location", "region")),
        ("ResourceId", t.field("resource", "global_name")),
        ("ResourceName", t.field("resource", "name")),
        ("SkuId", t.field("sku", "id")),
        ("SkuPriceId", t.col("price_id")),
        ("ChargeFrequency", lit("Usage-Based")),
        ("BillingAccountType", lit("Billing Account")),
        ("SubAccountType", lit("Project")),
        ("PricingCurrency", t.col("currency")),
        ("Tags", t.col("labels")),
    ])
}

fn aws(t: &Table) -> BTreeMap<&'static str, String> {
    let kind = t.col("line_item_line_item_type");
    let unblended = t.col("line_item_unblended_cost");
    let effective = format!(
        "CASE {kind} WHEN 'DiscountedUsage' THEN {} WHEN 'SavingsPlanCoveredUsage' THEN {} \
         WHEN 'SavingsPlanNegation' THEN 0 WHEN 'RIFee' THEN 0 \
         WHEN 'SavingsPlanRecurringFee' THEN 0 WHEN 'SavingsPlanUpfrontFee' THEN 0 \
         ELSE {unblended} END",
        t.col("reservation_effective_cost"),
        t.col("savings_plan_savings_plan_effective_cost"),
    );
    let product = |legacy: &str, key: &str| {
        let map = if t.columns.iter().any(|c| c == "product") {
            format!("tag(\"product\", {})", lit(key))
        } else {
            "NULL".into()
        };
        format!("COALESCE({}, {map})", t.col(legacy))
    };
    BTreeMap::from([
        ("ProviderName", lit("AWS")),
        (
            "PublisherName",
            t.first(&["line_item_legal_entity", "bill_billing_entity"]),
        ),
        ("InvoiceIssuerName", t.col("bill_invoicing_entity")),
        ("BillingAccountId", t.col("bill_payer_account_id")),
        ("BillingAccountName", t.col("bill_payer_account_name")),
        ("SubAccountId", t.col("line_item_usage_account_id")),
        ("SubAccountName", t.col("line_item_usage_account_name")),
        ("BillingCurrency", t.col("line_item_currency_code")),
        (
            "BillingPeriodStart",
            t.col("bill_billing_period_start_date"),
        ),
        ("BillingPeriodEnd", t.col("bill_billing_period_end_date")),
        ("ChargePeriodStart", t.col("line_item_usage_start_date")),
        ("ChargePeriodEnd", t.col("line_item_usage_end_date")),
        (
            "ChargeCategory",
            format!(
                "CASE WHEN {kind} IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', \
                 'SavingsPlanNegation') THEN 'Usage' WHEN {kind} = 'Tax' THEN 'Tax' \
                 WHEN {kind} IN ('Credit', 'Refund') OR {kind} LIKE '%Discount' THEN 'Credit' \
                 WHEN {kind} IN ('Fee', 'RIFee', 'SavingsPlanRecurringFee', \
                 'SavingsPlanUpfrontFee') THEN 'Purchase' ELSE 'Adjustment' END"
            ),
        ),
        (
            "ChargeDescription",
            t.col("line_item_line_item_description"),
        ),
        ("BilledCost", unblended.clone()),
        ("EffectiveCost", effective),
        ("ListCost", t.col("pricing_public_on_demand_cost")),
        ("ContractedCost", unblended),
        ("PricingQuantity", t.col("line_item_usage_amount")),
        ("PricingUnit", t.col("pricing_unit")),
        ("ConsumedQuantity", t.col("line_item_usage_amount")),
        (
            "ServiceName",
            product("product_product_name", "product_name"),
        ),
        ("RegionId", product("product_region_code", "region")),
        ("RegionName", t.col("product_location")),
        ("ResourceId", t.col("line_item_resource_id")),
        ("SkuId", t.col("product_sku")),
        ("AvailabilityZone", t.col("line_item_availability_zone")),
        ("InvoiceId", t.col("bill_invoice_id")),
        ("ListUnitPrice", t.col("pricing_public_on_demand_rate")),
        ("ContractedUnitPrice", t.col("line_item_unblended_rate")),
        ("PricingCurrency", t.col("line_item_currency_code")),
        (
            "CommitmentDiscountId",
            format!(
                "COALESCE({}, {})",
                t.col("reservation_reservation_a_r_n"),
                t.col("savings_plan_savings_plan_a_r_n")
            ),
        ),
        ("BillingAccountType", lit("Billing Account")),
        ("SubAccountType", lit("Account")),
        ("Tags", t.col("resource_tags")),
    ])
}

fn azure(t: &Table) -> BTreeMap<&'static str, String> {
    let cost = t.col("costInBillingCurrency");
    let date = t.col("date");
    // Pay-as-you-go exports have no billing period: the month of the charge.
    let period = format!(
        "COALESCE({}, date_trunc('month', {date}))",
        t.col("billingPeriodStartDate")
    );
    BTreeMap::from([
        ("ProviderName", lit("Microsoft")),
        (
            "PublisherName",
            t.first(&["publisherName", "publisherType"]),
        ),
        ("InvoiceIssuerName", lit("Microsoft")),
        (
            "BillingAccountId",
            format!(
                "COALESCE({}, {})",
                t.col("billingAccountId"),
                t.col("subscriptionId")
            ),
        ),
        ("BillingAccountName", t.col("billingAccountName")),
        ("SubAccountId", t.col("subscriptionId")),
        ("SubAccountName", t.col("subscriptionName")),
        ("BillingCurrency", t.col("billingCurrency")),
        ("BillingPeriodStart", period.clone()),
        ("BillingPeriodEnd", format!("{period} + INTERVAL '1 month'")),
        ("ChargePeriodStart", date.clone()),
        ("ChargePeriodEnd", format!("{date} + INTERVAL '1 day'")),
        (
            "ChargeCategory",
            format!(
                "CASE {} WHEN 'Purchase' THEN 'Purchase' WHEN 'Refund' THEN 'Credit' \
                 WHEN 'Tax' THEN 'Tax' ELSE 'Usage' END",
                t.col("chargeType")
            ),
        ),
        ("ChargeDescription", t.col("meterName")),
        ("BilledCost", cost.clone()),
        ("EffectiveCost", cost.clone()),
        ("ListCost", t.col("paygCostInBillingCurrency")),
        ("ContractedCost", cost),
        ("PricingQuantity", t.col("quantity")),
        ("PricingUnit", t.col("unitOfMeasure")),
        ("ConsumedQuantity", t.col("quantity")),
        ("ConsumedUnit", t.col("unitOfMeasure")),
        ("ServiceName", t.col("meterCategory")),
        ("ServiceCategory", t.col("serviceFamily")),
        ("RegionId", t.col("resourceLocation")),
        ("RegionName", t.col("meterRegion")),
        ("ResourceId", t.col("resourceId")),
        ("ResourceName", t.col("resourceName")),
        ("SkuId", t.col("meterId")),
        ("InvoiceId", t.col("invoiceId")),
        (
            "ChargeFrequency",
            format!(
                "CASE {} WHEN 'UsageBased' THEN 'Usage-Based' WHEN 'OneTime' THEN 'One-Time' \
                 WHEN 'Recurring' THEN 'Recurring' END",
                t.col("frequency")
            ),
        ),
        (
            "PricingCategory",
            format!(
                "CASE {} WHEN 'OnDemand' THEN 'Standard' WHEN 'Spot' THEN 'Dynamic' \
                 WHEN 'Reservation' THEN 'Committed' WHEN 'SavingsPlan' THEN 'Committed' END",
                t.col("pricingModel")
            ),
        ),
        ("ListUnitPrice", t.col("payGPrice")),
        ("ContractedUnitPrice", t.col("unitPrice")),
        (
            "CommitmentDiscountId",
            t.first(&["benefitId", "reservationId"]),
        ),
        (
            "CommitmentDiscountName",
            t.first(&["benefitName", "reservationName"]),
        ),
        (
            "PricingCurrency",
            t.first(&["pricingCurrency", "billingCurrency"]),
        ),
        ("BillingAccountType", lit("Billing Account")),
        ("SubAccountType", lit("Subscription")),
        ("Tags", t.col("tags")),
    ])
}

fn focus_export(t: &Table) -> BTreeMap<&'static str, String> {
    COLUMNS
        .iter()
        .map(|(name, _)| (*name, t.col(name)))
        .collect()
}

/// The tables the view reads, with their mappings.
type Mapping = fn(&Table) -> BTreeMap<&'static str, String>;
const SOURCES: [(&str, Mapping); 4] = [
    ("gcp_billing_export", gcp),
    ("aws_cur", aws),
    ("azure_cost", azure),
    ("focus_export", focus_export),
];

/// The view's SQL over the tables of `tables` it knows; `None` if it knows none.
pub fn sql(tables: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let parts: Vec<String> = SOURCES
        .iter()
        .filter_map(|(name, mapping)| {
            let columns = tables.get(*name)?;
            let table = Table { name, columns };
            let mapped = mapping(&table);
            let select: Vec<String> = COLUMNS
                .iter()
                .map(|(column, kind)| {
                    let expr = mapped.get(column).map_or("NULL", String::as_str);
                    format!("{} AS \"{column}\"", kind.cast(expr))
                })
                .chain(std::iter::once(format!(
                    "CAST({} AS VARCHAR) AS \"x_SourceTable\"",
                    lit(table.name)
                )))
                .collect();
            Some(format!("SELECT {} FROM {}", select.join(", "), table.name))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\nUNION ALL\n"))
}

/// Registers `focus` over the tables the session has; returns whether it did.
pub async fn register(
    ctx: &SessionContext,
    tables: &BTreeMap<String, Vec<String>>,
) -> Result<bool> {
    let Some(sql) = sql(tables) else {
        return Ok(false);
    };
    ctx.sql(&format!("CREATE OR REPLACE VIEW focus AS {sql}"))
        .await?;
    Ok(true)
}
