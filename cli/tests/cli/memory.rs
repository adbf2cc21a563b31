//! `--memory-limit`: a query past the limit spills to disk and answers the same.

use crate::common::*;

/// Costs are summed as decimals: a FLOAT64 sum's last digit depends on the order in
/// which the threads' partial sums merge, and the two runs compared must agree.
const GROUPED: &str = "SELECT usage_start_time, sku.id AS sku, project.id AS project, \
     SUM(CAST(cost AS DECIMAL(38, 9))) AS cost \
     FROM gcp_billing_export GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3";

fn query(store: &std::path::Path, limit: Option<&str>, sql: &str) -> String {
    let mut cmd = csv_query(billq(), store, "datafusion");
    if let Some(limit) = limit {
        cmd.args(["--memory-limit", limit]);
    }
    stdout_of(cmd.arg(sql))
}

#[test]
fn a_sort_past_the_memory_limit_spills_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    stdout_of(
        billq()
            .args([
                "gen",
                "--provider",
                "gcp",
                "--rows",
                "60000",
                "--months",
                "1",
            ])
            .arg("--out")
            .arg(&export),
    );
    let store = dir.path().join("store");
    convert(&store, &[&export]);

    // The sorted groups (3.2 MB of Arrow arrays) do not fit in the 4 MiB pool an 8 MiB
    // limit leaves (the process holds more than the limit's other half): the sorts must
    // spill, whichever way the threads interleave.
    let plan = query(&store, Some("8MiB"), &format!("EXPLAIN ANALYZE {GROUPED}"));
    let sort = plan
        .lines()
        .find(|l| l.contains("RowSortExec: expr=[sum(gcp_billing_export.cost)"))
        .unwrap_or_else(|| panic!("no sort in {plan}"));
    let spills: u64 = sort
        .split("spill_count=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no spill count in {sort}"));
    assert!(spills > 0, "{sort}");

    let limited = query(&store, Some("8MiB"), GROUPED);
    assert_eq!(limited, query(&store, None, GROUPED));
    assert!(
        limited.lines().count() > 50_000,
        "{}",
        limited.lines().count()
    );

    let out = billq()
        .args(["query", "--memory-limit", "64KiB", "--data"])
        .arg(&store)
        .arg(GROUPED)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    // One line naming the largest consumers; which operator runs out first depends on
    // the threads' timing. The process holds more than the limit before the query, so
    // half of it is taken off.
    assert!(
        err.starts_with("billq: ")
            && err.contains("Resources exhausted: Additional allocation failed for ")
            && err.contains(" with top memory consumers (across reservations) as: ")
            && err.ends_with(
                "fair(pool_size: 32.0 KB: the limit 64.0 KB less 32.0 KB the process holds \
                 outside the pool)\n"
            )
            && err.lines().count() == 1,
        "{err}"
    );
}
