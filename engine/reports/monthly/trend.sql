SELECT to_char("BillingPeriodStart", '%Y-%m') AS month, "BillingCurrency" AS currency,
    SUM("BilledCost") AS total
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') <= '${month}'
    AND to_char("BillingPeriodStart", '%Y-%m') > '${six_months_ago}'
GROUP BY 1, 2
ORDER BY 1, 2
