//! `billq gen`: synthetic exports, the same bytes for the same seed, that billq reads
//! and reconciles like real ones.

use std::path::Path;

use crate::common::*;

fn generate(out: &Path, rows: &str, months: &str, seed: &str) {
    let run = billq()
        .args([
            "gen",
            "--provider",
            "gcp",
            "--rows",
            rows,
            "--months",
            months,
        ])
        .args(["--seed", seed, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn gcp_exports_are_deterministic_and_convert_like_real_ones() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(a.path(), "3000", "3", "7");
    generate(b.path(), "3000", "3", "7");
    generate(c.path(), "3000", "3", "8");
    let bytes = |dir: &Path| {
        files_below(dir)
            .into_iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        files_below(a.path()),
        [
            "gcp_billing_export_202401.jsonl.gz",
            "gcp_billing_export_202402.jsonl.gz",
            "gcp_billing_export_202403.jsonl.gz"
        ]
    );
    assert_eq!(bytes(a.path()), bytes(b.path()));
    assert_ne!(bytes(a.path()), bytes(c.path()));

    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[a.path()]);
    assert_verified(store.path());
    // 1000 rows a month: a tax and a correction per account at its end, and some
    // usage of the month before (late usage) after the first month.
    assert_eq!(
        query_csv(
            store.path(),
            "SELECT invoice.month AS m, COUNT(*) AS n, \
             COUNT(*) FILTER (WHERE cost_type = 'tax') AS taxes, \
             COUNT(*) FILTER (WHERE cost_type = 'adjustment') AS corrections, \
             COUNT(*) FILTER (WHERE to_char(usage_start_time, '%Y%m') < invoice.month) > 0 AS late, \
             COUNT(DISTINCT billing_account_id) AS accounts \
             FROM gcp_billing_export GROUP BY 1 ORDER BY 1",
        ),
        "m,n,taxes,corrections,late,accounts\n\
         202401,1000,2,2,false,2\n\
         202402,1000,2,2,true,2\n\
         202403,1000,2,2,true,2\n"
    );
}
