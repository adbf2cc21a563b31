SELECT "ProviderName" AS provider, COALESCE("SubAccountName", "SubAccountId") AS project,
    "BillingCurrency" AS currency, SUM("BilledCost") AS total
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1, 2, 3
ORDER BY total DESC, 1, 2
