-- Usage from earlier months billed in this month's invoice (late charges, corrections).
SELECT "ProviderName" AS provider, to_char("ChargePeriodStart", '%Y-%m') AS usage_month,
    "BillingCurrency" AS currency, COUNT(*) AS charges, SUM("BilledCost") AS total
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
    AND to_char("ChargePeriodStart", '%Y-%m') < '${month}'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
