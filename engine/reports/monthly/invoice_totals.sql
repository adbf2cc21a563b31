-- One row per provider, billing account, invoice month and currency: the billed cost
-- (GCP by invoice.month, AWS and Azure by billing period).
SELECT
    CASE "ProviderName" WHEN 'Google Cloud' THEN 'gcp' WHEN 'AWS' THEN 'aws'
        WHEN 'Microsoft' THEN 'azure' ELSE lower("ProviderName") END AS provider,
    "BillingAccountId" AS billing_account_id,
    to_char("BillingPeriodStart", '%Y-%m') AS invoice_month,
    "BillingCurrency" AS currency,
    SUM("BilledCost") AS total
FROM focus
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 4
