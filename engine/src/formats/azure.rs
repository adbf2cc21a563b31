//! Azure Cost Management exports (CSV): what their columns mean, whatever header
//! variant a file has. Columns take the camelCase names of Microsoft's cost-details
//! field reference (`date`, `costInBillingCurrency`, `meterCategory`, `resourceId`,
//! `tags`, `additionalInfo`, ...):
//!
//! - EA PascalCase (`CostInBillingCurrency`, `MeterCategory`) and MCA camelCase are
//!   the same names;
//! - the older layouts use Microsoft's documented equivalents: `Cost` and `PreTaxCost`
//!   are `costInBillingCurrency`, `UsageDateTime` is `date`, `UsageQuantity` is
//!   `quantity`, `SubscriptionGuid` is `subscriptionId`, `InstanceId` is `resourceId`,
//!   `ResourceRate` is `effectivePrice`, `Currency` is `billingCurrency`;
//! - localised headers carry the English name in brackets
//!   (`Abonnement-GUID (SubscriptionGuid)`): the bracketed name is used.
//!
//! `tags` (JSON, sometimes without its braces) and `additionalInfo` (JSON text) become
//! maps; costs, prices and quantities exact decimals; dates (`09/01/2023`, `3/1/21`,
//! ISO) UTC timestamps. The catalog keeps each file's original header names.

use super::ExportKind;
use super::csv_export::Role;

/// Microsoft's names for the older headers, by lower-cased header.
const ALIASES: [(&str, &str); 14] = [
    ("cost", "costInBillingCurrency"),
    ("pretaxcost", "costInBillingCurrency"),
    ("usagedatetime", "date"),
    ("usagequantity", "quantity"),
    ("subscriptionguid", "subscriptionId"),
    ("instanceid", "resourceId"),
    ("instancename", "resourceId"),
    ("resourcerate", "effectivePrice"),
    ("currency", "billingCurrency"),
    ("billingcurrencycode", "billingCurrency"),
    ("metersubcategory", "meterSubCategory"),
    ("resourcegroupname", "resourceGroup"),
    ("paygprice", "payGPrice"),
    ("invoicesection", "invoiceSectionName"),
];

/// Cost columns: refused when a value is not an amount.
const MONEY: [&str; 5] = [
    "costInBillingCurrency",
    "costInPricingCurrency",
    "costInUsd",
    "paygCostInBillingCurrency",
    "paygCostInUsd",
];

/// Other numbers: prices, quantities, rates.
const NUMBERS: [&str; 5] = [
    "quantity",
    "effectivePrice",
    "unitPrice",
    "payGPrice",
    "exchangeRatePricingToBilling",
];

const DATES: [&str; 6] = [
    "date",
    "billingPeriodStartDate",
    "billingPeriodEndDate",
    "servicePeriodStartDate",
    "servicePeriodEndDate",
    "exchangeRateDate",
];

const MAPS: [&str; 2] = ["tags", "additionalInfo"];

/// The field-reference name of an Azure export header.
pub fn field_name(header: &str) -> String {
    let h = header.trim();
    let english = h
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" ("))
        .map_or(h, |(_, inner)| inner);
    let lower = english.to_ascii_lowercase();
    if let Some((_, name)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
        return (*name).to_string();
    }
    let mut chars = english.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

/// What each column of an Azure cost export is; `None` if the header is not one.
pub fn roles(header: &[String]) -> Option<(ExportKind, Vec<Role>)> {
    let names: Vec<String> = header.iter().map(|h| field_name(h)).collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if !(has("meterCategory") && has("costInBillingCurrency")) {
        return None;
    }
    let roles = names
        .into_iter()
        .map(|name| {
            if MONEY.contains(&name.as_str()) {
                Role::Number { name, money: true }
            } else if NUMBERS.contains(&name.as_str()) {
                Role::Number { name, money: false }
            } else if DATES.contains(&name.as_str()) {
                Role::Date(name)
            } else if MAPS.contains(&name.as_str()) {
                Role::Json(name)
            } else {
                Role::Text(name)
            }
        })
        .collect();
    Some((ExportKind::AzureCost, roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_variant_gets_the_field_reference_name() {
        for (header, name) in [
            ("CostInBillingCurrency", "costInBillingCurrency"),
            ("costInBillingCurrency", "costInBillingCurrency"),
            ("Cost", "costInBillingCurrency"),
            ("PreTaxCost", "costInBillingCurrency"),
            ("preTaxCost", "costInBillingCurrency"),
            ("UsageDateTime (UsageDateTime)", "date"),
            ("Abonnement-GUID (SubscriptionGuid)", "subscriptionId"),
            (
                "Kategorie der Verbrauchseinheit (MeterCategory)",
                "meterCategory",
            ),
            ("MeterSubcategory", "meterSubCategory"),
            (
                "Zusätzliche Informationen (AdditionalInfo)",
                "additionalInfo",
            ),
            ("Tags", "tags"),
            ("BillingAccountId", "billingAccountId"),
            ("PayGPrice", "payGPrice"),
        ] {
            assert_eq!(field_name(header), name, "{header}");
        }
    }
}
