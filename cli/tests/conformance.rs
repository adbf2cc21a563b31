//! Conformance over the shared sample exports beside the clone (`../shared`), which a
//! newcomer's machine does not have: ignored by default, run by `.ci/run` with
//! `--ignored`. `BILLQ_SHARED` names another folder.
//!
//! Expected totals were summed independently (Python's `decimal` over the files' text).

use std::path::PathBuf;

use assert_cmd::Command;

fn shared() -> PathBuf {
    std::env::var_os("BILLQ_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// (file below shared/, table, rows, exact money totals as printed by convert)
const CASES: [(&str, &str, u64, &str); 6] = [
    (
        "seed-queries/data/invoice_example.jsonl",
        "gcp_billing_export",
        14,
        "cost=1128.575871, cost_at_list=1128.575871, credits.amount=-8.100913",
    ),
    (
        "seed-queries/data/labels_example.jsonl",
        "gcp_billing_export",
        7,
        "cost=24, cost_at_list=24, credits.amount=0",
    ),
    (
        "seed-queries/data/cud_example.jsonl",
        "gcp_billing_export",
        6,
        "cost=405, cost_at_list=405, credits.amount=-118.5",
    ),
    (
        "seed-queries/data/hierarchy_tags_example.jsonl",
        "gcp_billing_export",
        5,
        "cost=33.789, cost_at_list=33.789, credits.amount=-1.005",
    ),
    (
        "realdata/gcp/legacy_file_export_google-platform-demo-2014-01-15.json",
        "gcp_file_export",
        33,
        "cost.amount=126.993265, credits.amount=0",
    ),
    (
        "realdata/gcp/legacy_file_export_analytics-bigquery-demo-2014-01-15.json",
        "gcp_file_export",
        5,
        "cost.amount=0, credits.amount=0",
    ),
];

#[test]
#[ignore = "needs ../shared; run by .ci/run"]
fn every_shared_gcp_export_converts_and_reconciles_exactly() {
    let root = shared();
    assert!(
        root.join("seed-queries").is_dir(),
        "no shared folder at {}",
        root.display()
    );
    let store = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin!("billq");
    for (file, table, rows, money) in CASES {
        let path = root.join(file);
        let out = Command::new(bin)
            .arg("convert")
            .arg(&path)
            .arg("--out")
            .arg(store.path())
            .output()
            .unwrap();
        let log = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{file}: {log}");
        let expected = format!("converted {} -> {table} ({rows} rows, ", path.display());
        assert!(log.starts_with(&expected), "{file}: {log}");
        assert!(
            log.trim_end().ends_with(&format!("; {money})")),
            "{file}: {log}"
        );
    }
    let out = Command::new(bin)
        .args(["verify", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert!(
        report.ends_with("6 source(s) verified, 0 mismatch(es)\n"),
        "{report}"
    );
}
