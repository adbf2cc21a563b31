-- Month-end projection by run rate: the month's cost so far over the days up to the
-- last day with charges, times the days of the month. A closed month projects to its
-- total.
WITH month AS (
    SELECT "ProviderName" AS provider, "BillingCurrency" AS currency,
        SUM("BilledCost") AS to_date,
        CAST(date_part('day', MAX("ChargePeriodStart")) AS BIGINT) AS days_elapsed,
        CAST(date_part('day', MIN("BillingPeriodStart") + INTERVAL '1 month' - INTERVAL '1 day') AS BIGINT) AS days_in_month
    FROM focus
    WHERE to_char("BillingPeriodStart", '%Y-%m') = '${month}'
        AND to_char("ChargePeriodStart", '%Y-%m') = '${month}'
    GROUP BY 1, 2
)
SELECT provider, currency, to_date, days_elapsed, days_in_month,
    CAST(CAST(to_date AS DECIMAL(38, 12)) * days_in_month / days_elapsed AS DECIMAL(38, 6)) AS projected
FROM month
ORDER BY 1, 2
