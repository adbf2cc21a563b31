-- Services whose cost changed most from the previous month.
SELECT "ProviderName" AS provider, "ServiceName" AS service, "BillingCurrency" AS currency,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${month}' THEN "BilledCost" ELSE 0 END) AS this_month,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${previous}' THEN "BilledCost" ELSE 0 END) AS previous_month,
    SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${month}' THEN "BilledCost" ELSE 0 END)
        - SUM(CASE WHEN to_char("BillingPeriodStart", '%Y-%m') = '${previous}' THEN "BilledCost" ELSE 0 END) AS change
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') IN ('${month}', '${previous}')
GROUP BY 1, 2, 3
ORDER BY abs(change) DESC, 1, 2
LIMIT 10
