-- Cost by project or team, across providers and billing accounts, as the config's
-- [[projects]] assign rows (by account or tag); the rest is "(unassigned)". The rows
-- of a currency add up to its invoice totals.
SELECT "x_Project" AS project, "BillingCurrency" AS currency, SUM("BilledCost") AS total
FROM focus_projects
WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
GROUP BY 1, 2
ORDER BY 2, total DESC, 1
