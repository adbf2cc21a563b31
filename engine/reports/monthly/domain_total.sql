-- The whole domain's bill: every provider and billing account of the stores, per
-- currency (the sum of invoice_totals).
SELECT "BillingCurrency" AS currency, COUNT(DISTINCT "ProviderName") AS providers,
    COUNT(DISTINCT "BillingAccountId") AS billing_accounts, SUM("BilledCost") AS total
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1
ORDER BY 1
