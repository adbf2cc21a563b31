SELECT "ProviderName" AS provider, "ChargeCategory" AS charge_category,
    "BillingCurrency" AS currency, SUM("BilledCost") AS billed,
    SUM("EffectiveCost") AS effective
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
