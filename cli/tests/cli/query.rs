//! `billq query`, `tables`, `schema` and `demo`.

use crate::common::*;

fn seed_table() -> String {
    format!(
        "project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX={}",
        testdata("seed-queries/data/cud_example.jsonl").display()
    )
}

#[test]
fn a_seed_query_runs_verbatim_on_a_bigquery_path() {
    let out = billq()
        .args(["query", "--format", "csv", "--table", &seed_table(), "-f"])
        .arg(testdata("seed-queries/queries/Q07_commitment_fees.sql"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines[1..].sort();
    assert_eq!(
        lines,
        [
            "invoice_month,commitment_fees",
            "202401,120.0",
            "202402,100.0"
        ]
    );
}

fn run_format(format: &str) -> String {
    stdout_of(
        billq()
            .args(["query", "--format", format, "--table", &seed_table()])
            .arg("SELECT invoice.month AS m, COUNT(*) AS n, SUM(credits_total(credits)) AS credits \
                  FROM `project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX` GROUP BY 1 ORDER BY 1"),
    )
}

#[test]
fn output_formats() {
    assert_eq!(
        run_format("csv"),
        "m,n,credits\n202401,3,-100.000000000\n202402,3,-18.500000000\n"
    );
    assert_eq!(
        run_format("json"),
        "[{\"m\":\"202401\",\"n\":3,\"credits\":-100.000000000},{\"m\":\"202402\",\"n\":3,\"credits\":-18.500000000}]\n"
    );
    assert_eq!(
        run_format("ndjson"),
        "{\"m\":\"202401\",\"n\":3,\"credits\":-100.000000000}\n{\"m\":\"202402\",\"n\":3,\"credits\":-18.500000000}\n"
    );
    assert_eq!(
        run_format("markdown"),
        "| m | n | credits |\n| --- | --- | --- |\n| 202401 | 3 | -100.000000000 |\n| 202402 | 3 | -18.500000000 |\n"
    );
    assert_eq!(
        run_format("table"),
        "+--------+---+----------------+\n\
         | m      | n | credits        |\n\
         +--------+---+----------------+\n\
         | 202401 | 3 | -100.000000000 |\n\
         | 202402 | 3 | -18.500000000  |\n\
         +--------+---+----------------+\n"
    );
}

#[test]
fn csv_has_nulls_as_empty_fields_and_full_precision() {
    let out = billq()
        .args([
            "query",
            "--dialect",
            "datafusion",
            "--format",
            "csv",
            "--table",
            &seed_table(),
        ])
        .arg("SELECT CAST(NULL AS VARCHAR) AS a, 0.1 + 0.2 AS b")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "a,b\n,0.30000000000000004\n"
    );
}

#[test]
fn parquet_output_is_written_atomically_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.parquet");
    stdout_of(
        billq()
            .args(["query", "--format", "parquet", "-o"])
            .arg(&file)
            .args(["--table", &seed_table(), "SELECT 1 AS one"]),
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(files_below(dir.path()), ["out.parquet"]);
}

#[test]
fn tables_and_schema() {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[
            &testdata("seed-queries/data"),
            &testdata("gcp/legacy_file_export_sample.json"),
        ],
    );
    let tables = billq()
        .args(["tables", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(tables.stdout).unwrap(),
        // The tables, and the focus view over them.
        "focus\ngcp_billing_export\ngcp_file_export\n"
    );
    let schema = billq()
        .args(["schema", "gcp_billing_export", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    let text = String::from_utf8(schema.stdout).unwrap();
    assert!(text.starts_with("billing_account_id: "), "{text}");
    assert!(
        text.contains("\nusage_start_time: Timestamp(µs, \"UTC\")\n"),
        "{text}"
    );
    assert!(text.contains("\ncost: Float64\n"), "{text}");
}

#[test]
fn explain_rewrite_prints_the_sql_datafusion_runs() {
    let out = billq()
        .args(["query", "--explain-rewrite", "--table", &seed_table()])
        .arg("SELECT cost FROM `project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX`")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "SELECT cost FROM \"project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX\"\n"
    );
}

#[test]
fn demo_prints_invoice_totals_of_the_bundled_exports() {
    let out = billq().args(["-q", "demo"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("| invoice_month | currency | line_items |"),
        "{text}"
    );
    assert!(
        text.contains("| 202006        | USD      | 4          |"),
        "{text}"
    );
}

#[test]
fn shell_runs_multi_line_statements_and_commands() {
    let out = output_with_stdin(
        billq()
            .args(["shell", "--table", &seed_table()])
            .env("HOME", tempfile::tempdir().unwrap().path()),
        b"\\d\nSELECT COUNT(*) AS n\nFROM `project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX`;\n\\q\n",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\nproject.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX\n"),
        "{text}"
    );
    assert!(text.contains("| n |\n+---+\n| 6 |\n"), "{text}");
}
