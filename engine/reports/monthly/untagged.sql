-- Cost of rows without any tag or label, and its share of the provider's cost.
SELECT "ProviderName" AS provider, "BillingCurrency" AS currency,
    SUM("BilledCost") AS total,
    SUM(CASE WHEN cardinality(map_keys("Tags")) = 0 THEN "BilledCost" ELSE 0 END) AS untagged,
    round(CAST(SUM(CASE WHEN cardinality(map_keys("Tags")) = 0 THEN "BilledCost" ELSE 0 END) AS DOUBLE)
        / NULLIF(CAST(SUM("BilledCost") AS DOUBLE), 0) * 100, 2) AS untagged_percent
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1, 2
ORDER BY 1, 2
