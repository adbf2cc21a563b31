-- Six months of cost per service (the top 8 services of the period; the rest as
-- "other"), for the stacked chart.
WITH period AS (
    SELECT to_char("BillingPeriodStart", '%Y-%m') AS month, "ServiceName" AS service,
        "BillingCurrency" AS currency, "BilledCost" AS cost
    FROM focus
    WHERE to_char("BillingPeriodStart", '%Y-%m') <= '${month}'
        AND to_char("BillingPeriodStart", '%Y-%m') > '${six_months_ago}'
), top AS (
    SELECT service FROM period GROUP BY service ORDER BY SUM(cost) DESC, service LIMIT 8
)
SELECT p.month, COALESCE(t.service, 'other') AS service, p.currency, SUM(p.cost) AS total
FROM period p LEFT JOIN top t ON p.service = t.service
GROUP BY 1, 2, 3
ORDER BY 1, 3, 2
