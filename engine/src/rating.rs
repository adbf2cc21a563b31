//! Azure spend from usage and rates, as views over `azure_usage` and `azure_ratecard`
//! (registered when a session has both):
//!
//! Rate cards are told apart by `rateCard` (the reply's file name): `azure_rated` and
//! `azure_projection` price with the first by name, `azure_whatif` with each.
//!
//! - `azure_rated`: each usage row priced by its meter's rate card entry. Within a
//!   billing month, per subscription and meter, usage is taken in usage order
//!   (`usageStartTime`, then `id`): the first `includedQuantity` units are free, and
//!   each further unit is priced by the tier (`tierMinimum`) its running total falls
//!   in. Exact decimals (`cost` at 24 decimals).
//! - `azure_whatif`: the same usage re-rated in every region of the rate card, by the
//!   meter of the same name, category and subcategory there, with every rate card
//!   (`whatifRateCard`, `whatifRegion`, `whatifCost`), beside the actual `cost`.
//! - `azure_projection`: a month-end projection per subscription and billing month
//!   from month-to-date cost, by run rate: `projectedCost = costToDate / daysElapsed ×
//!   daysInMonth`, where `daysElapsed` runs from the month's first day to the last day
//!   with usage; the interval is `projectedCost ± 1.96 × s × √daysRemaining`, with `s`
//!   the sample standard deviation of the daily costs (a normal approximation; its
//!   bounds are estimates, as doubles).

use datafusion::prelude::SessionContext;

use crate::error::Result;

/// Usage rows with their month's running total per subscription and meter, joined to
/// the rate cards' tiers on `join`; each row's cost in each matched tier.
fn tier_costs(join: &str) -> String {
    format!(
        r#"WITH usage AS (
    SELECT *, date_trunc('month', "usageStartTime") AS "billingMonth",
        SUM("quantity") OVER (
            PARTITION BY "subscriptionId", "meterId", date_trunc('month', "usageStartTime")
            ORDER BY "usageStartTime", "id" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS "runningQuantity"
    FROM azure_usage
), tiers AS (
    SELECT "rateCard", "meterId" AS "rateMeterId", "meterName" AS "rateMeterName",
        "meterCategory" AS "rateMeterCategory", "meterSubCategory" AS "rateMeterSubCategory",
        "meterRegion" AS "rateRegion", "currency", "includedQuantity", "tierMinimum", "rate",
        LEAD("tierMinimum") OVER (
            PARTITION BY "rateCard", "meterId" ORDER BY "tierMinimum"
        ) AS "tierEnd"
    FROM azure_ratecard
), first_card AS (
    SELECT MIN("rateCard") AS "firstCard" FROM azure_ratecard
)
SELECT u."id", u."subscriptionId", u."meterId", u."meterName", u."meterCategory",
    u."meterSubCategory", u."meterRegion", u."unit", u."usageStartTime", u."billingMonth",
    u."quantity", u."tags", t."rateCard", t."rateRegion", t."currency",
    CAST(GREATEST(0,
        LEAST(u."runningQuantity" - t."includedQuantity",
              COALESCE(t."tierEnd", u."runningQuantity" - t."includedQuantity"))
        - GREATEST(u."runningQuantity" - u."quantity" - t."includedQuantity", t."tierMinimum")
    ) AS DECIMAL(38, 12)) * CAST(t."rate" AS DECIMAL(38, 12)) AS "tierCost"
FROM usage u CROSS JOIN first_card f JOIN tiers t ON {join}"#
    )
}

/// The columns that identify a usage row, for grouping its tiers back together.
const USAGE_COLUMNS: &str = r#""id", "subscriptionId", "meterId", "meterName", "meterCategory",
    "meterSubCategory", "meterRegion", "unit", "usageStartTime", "billingMonth", "quantity",
    "tags", "rateCard", "currency""#;

fn rated() -> String {
    format!(
        r#"SELECT {USAGE_COLUMNS}, SUM("tierCost") AS "cost"
FROM ({}) GROUP BY {USAGE_COLUMNS}"#,
        tier_costs(r#"u."meterId" = t."rateMeterId" AND t."rateCard" = f."firstCard""#)
    )
}

fn whatif() -> String {
    let same_meter = r#"u."meterName" = t."rateMeterName"
    AND u."meterCategory" = t."rateMeterCategory"
    AND u."meterSubCategory" IS NOT DISTINCT FROM t."rateMeterSubCategory""#;
    format!(
        r#"SELECT r.*, w."whatifRateCard", w."whatifRegion", w."whatifCost",
    w."whatifCost" - r."cost" AS "difference"
FROM azure_rated r JOIN (
    SELECT "id", "rateCard" AS "whatifRateCard", "rateRegion" AS "whatifRegion",
        SUM("tierCost") AS "whatifCost"
    FROM ({}) GROUP BY "id", "rateCard", "rateRegion"
) w ON r."id" = w."id""#,
        tier_costs(same_meter)
    )
}

const PROJECTION: &str = r#"WITH daily AS (
    SELECT "subscriptionId", "billingMonth", "currency", date_trunc('day', "usageStartTime") AS "day",
        SUM("cost") AS "cost"
    FROM azure_rated GROUP BY 1, 2, 3, 4
), month AS (
    SELECT "subscriptionId", "billingMonth", "currency", SUM("cost") AS "costToDate",
        COUNT(*) AS "daysWithUsage",
        CAST(date_part('day', MAX("day")) AS BIGINT) AS "daysElapsed",
        CAST(date_part('day', "billingMonth" + INTERVAL '1 month' - INTERVAL '1 day') AS BIGINT) AS "daysInMonth",
        stddev(CAST("cost" AS DOUBLE)) AS "dailyStddev"
    FROM daily GROUP BY 1, 2, 3
)
SELECT *, "daysInMonth" - "daysElapsed" AS "daysRemaining",
    CAST("costToDate" AS DECIMAL(38, 12)) * "daysInMonth" / "daysElapsed" AS "projectedCost",
    CAST("costToDate" AS DOUBLE) * "daysInMonth" / "daysElapsed"
        - 1.96 * COALESCE("dailyStddev", 0) * sqrt(CAST("daysInMonth" - "daysElapsed" AS DOUBLE)) AS "projectedLow",
    CAST("costToDate" AS DOUBLE) * "daysInMonth" / "daysElapsed"
        + 1.96 * COALESCE("dailyStddev", 0) * sqrt(CAST("daysInMonth" - "daysElapsed" AS DOUBLE)) AS "projectedHigh"
FROM month"#;

/// Per rate card and meter, the actual cost of the usage and its cost in `region`
/// and/or with `rate_card` (by `azure_whatif`), biggest difference first.
pub fn whatif_by_meter(region: Option<&str>, rate_card: Option<&str>) -> String {
    let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let filter: Vec<String> = [
        region.map(|r| format!(r#""whatifRegion" = {}"#, text(r))),
        rate_card.map(|c| format!(r#""whatifRateCard" = {}"#, text(c))),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        r#"SELECT * FROM (
    SELECT "whatifRateCard", "whatifRegion", "meterCategory", "meterName", "currency",
        SUM("quantity") AS "quantity", SUM("cost") AS "cost",
        SUM("whatifCost") AS "whatifCost", SUM("difference") AS "difference"
    FROM azure_whatif WHERE {}
    GROUP BY 1, 2, 3, 4, 5
) ORDER BY abs("difference") DESC, 1, 2, 3, 4"#,
        if filter.is_empty() {
            "true".to_string()
        } else {
            filter.join(" AND ")
        }
    )
}

/// Registers the rating views if `ctx` has both Azure API tables; returns their names.
pub async fn register(ctx: &SessionContext) -> Result<Vec<String>> {
    if !(ctx.table_exist("azure_usage")? && ctx.table_exist("azure_ratecard")?) {
        return Ok(Vec::new());
    }
    let views = [
        ("azure_rated", rated()),
        ("azure_whatif", whatif()),
        ("azure_projection", PROJECTION.to_string()),
    ];
    let mut names = Vec::new();
    for (name, sql) in views {
        ctx.sql(&format!("CREATE OR REPLACE VIEW {name} AS {sql}"))
            .await?;
        names.push(name.to_string());
    }
    Ok(names)
}
