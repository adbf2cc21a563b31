//! Conformance over the shared sample exports beside the clone (`../shared`), which a
//! newcomer's machine does not have: ignored by default, run by `.ci/run` with
//! `--ignored`. `BILLQ_SHARED` names another folder.
//!
//! Expected totals were summed independently (Python's `decimal` over the files' text).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    let path = std::env::var_os("BILLQ_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    // Without `..`, as billq names the files it reads.
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// (file below shared/, table, rows, exact money totals as printed by convert)
const CASES: [(&str, &str, u64, &[&str]); 29] = [
    (
        "seed-queries/data/invoice_example.jsonl",
        "gcp_billing_export",
        14,
        &["cost=1128.575871", "credits.amount=-8.100913"],
    ),
    (
        "seed-queries/data/labels_example.jsonl",
        "gcp_billing_export",
        7,
        &["cost=24", "credits.amount=0"],
    ),
    (
        "seed-queries/data/cud_example.jsonl",
        "gcp_billing_export",
        6,
        &["cost=405", "credits.amount=-118.5"],
    ),
    (
        "seed-queries/data/hierarchy_tags_example.jsonl",
        "gcp_billing_export",
        5,
        &["cost=33.789", "credits.amount=-1.005"],
    ),
    (
        "realdata/gcp/legacy_file_export_google-platform-demo-2014-01-15.json",
        "gcp_file_export",
        33,
        &["cost.amount=126.993265"],
    ),
    (
        "realdata/gcp/legacy_file_export_analytics-bigquery-demo-2014-01-15.json",
        "gcp_file_export",
        5,
        &["cost.amount=0"],
    ),
    (
        "realdata/aws-cur/focus_converters_cur_legacy_anon.csv",
        "aws_cur",
        1281,
        &[
            "line_item_unblended_cost=1.6823086974",
            "line_item_blended_cost=1.6823086974",
        ],
    ),
    (
        "realdata/aws-cur/koku_cur_athena_style_columns_2022-07-01.csv",
        "aws_cur",
        2,
        &["line_item_unblended_cost=0"],
    ),
    (
        "realdata/aws-cur/koku_nise_local_bucket/koku-local-1.csv.gz",
        "aws_cur",
        13380,
        &[
            "line_item_unblended_cost=143227.76367818761501799105",
            "line_item_blended_cost=143227.76367818761501799105",
        ],
    ),
    (
        "realdata/aws-cur/Oct2018-WorkshopCUR-00001.snappy.parquet",
        "aws_cur",
        119307,
        &[
            "line_item_unblended_cost=4064.4831315379",
            "line_item_blended_cost=4064.4831300796",
        ],
    ),
    (
        "realdata/aws-cur/Nov2018-WorkshopCUR-00001.snappy.parquet",
        "aws_cur",
        124340,
        &[
            "line_item_unblended_cost=3505.3269681268",
            "line_item_blended_cost=3505.3269694921",
        ],
    ),
    (
        "realdata/aws-cur/Dec2018-WorkshopCUR-00001.snappy.parquet",
        "aws_cur",
        91264,
        &[
            "line_item_unblended_cost=408.3759924354",
            "line_item_blended_cost=408.375995125",
        ],
    ),
    (
        "realdata/aws-dbr/scopely_details_detailed_with_tags.csv",
        "aws_dbr",
        8,
        &["UnBlendedCost=0.08805964", "BlendedCost=0.08805964"],
    ),
    (
        "realdata/aws-dbr/3pillarlabs_billingsample.csv",
        "aws_dbr",
        1977,
        &["UnBlendedCost=12932", "BlendedCost=12932"],
    ),
    (
        "realdata/azure/finops_toolkit_EA_ActualCost_Small.csv",
        "azure_cost",
        11,
        &["costInBillingCurrency=8.5450077867419368"],
    ),
    (
        "realdata/azure/finops_toolkit_EA_AmortizedCost_Small.csv",
        "azure_cost",
        28,
        &["costInBillingCurrency=16.296932136636644627485419"],
    ),
    (
        "realdata/azure/finops_toolkit_EA_NoRows.csv",
        "azure_cost",
        0,
        &["costInBillingCurrency=0"],
    ),
    (
        "realdata/azure/focus_converters_ea_export_anon.csv",
        "azure_cost",
        27,
        &["costInBillingCurrency=1.26136926505726"],
    ),
    (
        "realdata/azure/koku_ea_v2.csv",
        "azure_cost",
        5,
        &["costInBillingCurrency=19.998413754"],
    ),
    (
        "realdata/azure/koku_mca_camelcase_v2.csv",
        "azure_cost",
        4,
        &[
            "costInBillingCurrency=0.0000262412",
            "costInUsd=0.0000262412",
            "paygCostInBillingCurrency=0.0000262412",
        ],
    ),
    (
        "realdata/azure/koku_payg_v1_camelcased.csv",
        "azure_cost",
        3,
        &["costInBillingCurrency=0.00011016"],
    ),
    (
        "realdata/azure/koku_payg_v1_costreport.csv",
        "azure_cost",
        3,
        &["costInBillingCurrency=0.00011016"],
    ),
    (
        "realdata/azure/opencost_headerset_BOM.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0"],
    ),
    (
        "realdata/azure/opencost_headerset_Enterprise.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0"],
    ),
    (
        "realdata/azure/opencost_headerset_EnterpriseCamel.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0.012", "costInUsd=0.012"],
    ),
    (
        "realdata/azure/opencost_headerset_German.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0.075"],
    ),
    (
        "realdata/azure/opencost_headerset_PayAsYouGo.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0.075"],
    ),
    (
        "realdata/azure/opencost_headerset_YA.csv",
        "azure_cost",
        1,
        &["costInBillingCurrency=0.075"],
    ),
    (
        "realdata/focus/focus10_sample_1000.csv",
        "focus_export",
        1000,
        &[
            "BilledCost=20.52022672899",
            "ContractedCost=14.97626039326",
            "EffectiveCost=14.97651418586",
            "ListCost=20.39090575119",
        ],
    ),
];

/// Broken samples: (file below shared/, the error line after the path, rows kept and
/// rows set aside by `--lenient`).
const REFUSED: [(&str, &str, u64, u64); 2] = [
    (
        "realdata/aws-cur/koku_test_cur.csv",
        ":2: 130 fields, but the header has 131 (a ragged row, or a header longer than its rows)",
        0,
        19,
    ),
    (
        "realdata/aws-cur/koku_cur_tags_costcategory_2023-11.csv",
        ":7: 194 fields, but the header has 200 (a ragged row, or a header longer than its rows)",
        24,
        2,
    ),
];

/// Runs `billq convert [FLAGS] PATH --out STORE`.
fn convert(path: &Path, store: &Path, flags: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_billq"))
        .arg("convert")
        .args(flags)
        .arg(path)
        .arg("--out")
        .arg(store)
        .output()
        .unwrap()
}

/// Runs a DataFusion-dialect query on a store; returns its CSV output.
fn query_csv(store: &Path, sql: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_billq"))
        .args([
            "query",
            "--dialect",
            "datafusion",
            "--format",
            "csv",
            "--data",
        ])
        .arg(store)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that `billq verify` reconciles all `sources` of the store.
fn assert_verified(store: &Path, sources: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_billq"))
        .args(["verify", "--data"])
        .arg(store)
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert!(
        report.ends_with(&format!("{sources} source(s) verified, 0 mismatch(es)\n")),
        "{report}"
    );
}

#[test]
#[ignore = "needs ../shared; run by .ci/run"]
fn every_shared_export_converts_and_reconciles_exactly_and_broken_ones_are_refused() {
    let root = shared();
    assert!(
        root.join("seed-queries").is_dir(),
        "no shared folder at {}",
        root.display()
    );
    let store = tempfile::tempdir().unwrap();
    for (file, table, rows, totals) in CASES {
        let path = root.join(file);
        let out = convert(&path, store.path(), &[]);
        let log = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{file}: {log}");
        let expected = format!("converted {} -> {table} ({rows} rows, ", path.display());
        assert!(log.starts_with(&expected), "{file}: {log}");
        for total in totals {
            let shown = log.contains(&format!("; {total},"))
                || log.contains(&format!(", {total},"))
                || log.contains(&format!("; {total})"))
                || log.contains(&format!(", {total})"));
            assert!(shown, "{file}: {total}: {log}");
        }
    }
    assert_verified(store.path(), 29);

    // Microsoft's documented example replies of the Usage and RateCard APIs, taken
    // out of the docs' envelope (`responses."200".body`): billq reads raw replies.
    let replies = tempfile::tempdir().unwrap();
    for (name, table, line) in [
        (
            "GetUsageAggregatesList",
            "azure_usage",
            "(1 rows, 1 file(s); quantity=0.057865)",
        ),
        (
            "GetRateCard",
            "azure_ratecard",
            "(2 rows, 1 file(s); rate=2.98)",
        ),
    ] {
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("realdata/azure/azure_rest_specs_{name}.json")))
                .unwrap(),
        )
        .unwrap();
        let reply = replies.path().join(format!("{name}.json"));
        std::fs::write(&reply, spec["responses"]["200"]["body"].to_string()).unwrap();
        let out = convert(&reply, store.path(), &[]);
        let log = String::from_utf8(out.stderr).unwrap();
        assert!(
            log.starts_with(&format!(
                "converted {} -> {table} {line}\n",
                reply.display()
            )),
            "{log}"
        );
    }

    // The focus view over everything converted: the FOCUS sample passes through with
    // its providers' totals, and every table's billed cost is its native cost.
    assert_eq!(
        query_csv(
            store.path(),
            r#"SELECT "ProviderName", COUNT(*) AS n, SUM("BilledCost") AS billed,
                SUM("EffectiveCost") AS effective
            FROM focus WHERE "x_SourceTable" = 'focus_export' GROUP BY 1 ORDER BY 1"#,
        ),
        "ProviderName,n,billed,effective\n\
         AWS,942,18.006638618400000000000000,13.000000000000000000000000\n\
         Microsoft,51,1.976514185860000000000000,1.976514185860000000000000\n\
         Oracle,7,0.537073924730000000000000,0.000000000000000000000000\n",
    );
    assert_eq!(
        query_csv(
            store.path(),
            r#"SELECT
                (SELECT SUM("BilledCost") FROM focus WHERE "x_SourceTable" = 'azure_cost')
                  = (SELECT SUM("costInBillingCurrency") FROM azure_cost) AS azure,
                (SELECT SUM("BilledCost") FROM focus WHERE "x_SourceTable" = 'aws_cur')
                  = (SELECT SUM(line_item_unblended_cost) FROM aws_cur) AS aws,
                (SELECT SUM("BilledCost") FROM focus WHERE "x_SourceTable" = 'gcp_billing_export')
                  = (SELECT SUM(net_cost(cost, credits)) FROM gcp_billing_export) AS gcp"#,
        ),
        "azure,aws,gcp\ntrue,true,true\n",
    );

    // koku's nise bucket: its manifest disagrees with its data (column list, billing
    // period); converting the folder reports both and keeps the data's own view.
    let bucket = root.join("realdata/aws-cur/koku_nise_local_bucket");
    let (manifest, data) = (
        bucket.join("koku-local-Manifest.json"),
        bucket.join("koku-local-1.csv.gz"),
    );
    let nise = tempfile::tempdir().unwrap();
    let out = convert(&bucket, nise.path(), &[]);
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "warning: {}: lists 57 columns, but {} has 130 (88 not listed, e.g. ",
            manifest.display(),
            data.display()
        )) && log.contains("; 15 listed but absent, e.g. "),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "warning: {}: billing period 201808, but 12604 of 13380 rows of {} bill in other periods (201806: 3300, 201807: 9304): each row is stored under its own bill_billing_period_start_date\n",
            manifest.display(),
            data.display()
        )),
        "{log}"
    );
    for (file, error, kept, set_aside) in REFUSED {
        let path = root.join(file);
        let out = convert(&path, store.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let expected = format!("billq: {}{error}\n", path.display());
        assert_eq!(String::from_utf8(out.stderr).unwrap(), expected);
        let lenient = convert(&path, store.path(), &["--lenient"]);
        let log = String::from_utf8(lenient.stderr).unwrap();
        assert!(lenient.status.success(), "{file}: {log}");
        assert!(log.contains(&format!("({kept} rows, ")), "{file}: {log}");
        assert!(
            log.contains(&format!(" {set_aside} row(s) set aside in ")),
            "{file}: {log}"
        );
    }
    assert_verified(store.path(), 33);
}
