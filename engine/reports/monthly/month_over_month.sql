SELECT "ProviderName" AS provider, "BillingCurrency" AS currency,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${month}' THEN "BilledCost" ELSE 0 END) AS this_month,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${previous}' THEN "BilledCost" ELSE 0 END) AS previous_month,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${month}' THEN "BilledCost" ELSE 0 END)
        - SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${previous}' THEN "BilledCost" ELSE 0 END) AS change
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') IN ('${month}', '${previous}')
GROUP BY 1, 2
ORDER BY 1, 2
