//! AWS's naming rule for CUR columns and tag keys, shared by the engine (column
//! names) and `tag()` (which finds a legacy `user:Name` tag under CUR 2.0's
//! `user_name` key and the other way round).

/// AWS's Athena column name of a CUR header: `lineItem/UnblendedCost` →
/// `line_item_unblended_cost`.
pub fn athena_name(header: &str) -> String {
    let mut out = String::with_capacity(header.len() + 8);
    let chars: Vec<char> = header.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase())
                    && next.is_some_and(|n| n.is_ascii_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_names_follow_aws_rule() {
        for (header, name) in [
            ("lineItem/UnblendedCost", "line_item_unblended_cost"),
            ("bill/PayerAccountId", "bill_payer_account_id"),
            ("identity/LineItemId", "identity_line_item_id"),
            (
                "pricing/publicOnDemandCost",
                "pricing_public_on_demand_cost",
            ),
            (
                "savingsPlan/SavingsPlanEffectiveCost",
                "savings_plan_savings_plan_effective_cost",
            ),
            ("product/usagetype", "product_usagetype"),
            ("product/fromRegionCode", "product_from_region_code"),
            ("product/ebsOptimized", "product_ebs_optimized"),
            ("reservation/EBSOptimized", "reservation_ebs_optimized"),
        ] {
            assert_eq!(athena_name(header), name, "{header}");
        }
    }
}
