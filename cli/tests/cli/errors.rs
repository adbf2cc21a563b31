//! Bad input: one clear line naming file, line and field; non-zero exit; store untouched.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Converts `src` into a store that already holds good data; returns stderr after
/// checking the exit code and that the store did not change.
fn refused(src: &Path) -> String {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[&testdata("seed-queries/data/labels_example.jsonl")],
    );
    let before = (catalog_bytes(store.path()), files_below(store.path()));
    let out = try_convert(store.path(), &[src]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (catalog_bytes(store.path()), files_below(store.path())),
        before
    );
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const GOOD: &str = r#"{"billing_account_id":"A","usage_start_time":"2024-01-01 00:00:00 UTC","cost":1.5,"invoice":{"month":"202401"}}"#;

#[test]
fn truncated_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(testdata("gcp/gcp_billing_export_2024q1.jsonl.gz")).unwrap();
    let p = write(dir.path(), "cut.jsonl.gz", &full[..full.len() / 2]);
    let err = refused(&p);
    assert!(
        err.starts_with(&format!("billq: {}:", p.display())),
        "{err}"
    );
    assert!(
        err.ends_with(": truncated gzip stream (unexpected end of file)\n"),
        "{err}"
    );
}

#[test]
fn malformed_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.jsonl",
        format!("{GOOD}\n{GOOD}\n{{\"cost\": 1.0,\n").as_bytes(),
    );
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}:3: malformed JSON at column 13: EOF while parsing a value\n",
            p.display()
        )
    );
}

/// Lines after the first 5,000, which a conversion infers the schema from: a
/// malformed line, a line that is not an object and a wrong value are found there too.
#[test]
fn bad_lines_past_the_inferred_sample() {
    let dir = tempfile::tempdir().unwrap();
    let good = format!("{GOOD}\n").repeat(6_000);
    for (bad, message) in [
        (
            "{\"cost\": 1.0,",
            "malformed JSON at column 13: EOF while parsing a value",
        ),
        (
            "[1, 2]",
            "malformed JSON: expected an object ({...}) on each line",
        ),
        (
            &GOOD.replace("\"cost\":1.5", "\"cost\":\"a lot\""),
            "field 'cost': failed to parse \"a lot\" as Float64",
        ),
    ] {
        let p = write(
            dir.path(),
            "bad.jsonl",
            format!("{good}{bad}\n{GOOD}\n").as_bytes(),
        );
        assert_eq!(
            refused(&p),
            format!("billq: {}:6001: {message}\n", p.display())
        );
    }
}

#[test]
fn wrong_type_in_a_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD.replace("\"cost\":1.5", "\"cost\":\"a lot\"");
    let p = write(
        dir.path(),
        "bad.jsonl",
        format!("{GOOD}\n{bad}\n").as_bytes(),
    );
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}:2: field 'cost': failed to parse \"a lot\" as Float64\n",
            p.display()
        )
    );
}

#[test]
fn wrong_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD.replace("2024-01-01 00:00:00 UTC", "yesterday");
    let p = write(
        dir.path(),
        "bad.jsonl",
        format!("{GOOD}\n{GOOD}\n{bad}\n").as_bytes(),
    );
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}:3: field 'usage_start_time': failed to parse \"yesterday\" as \
             Timestamp(µs, \"UTC\"): Parser error: Error parsing timestamp from 'yesterday': \
             timestamp must contain at least 10 characters\n",
            p.display()
        )
    );
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.jsonl", b"\n\n");
    assert_eq!(
        refused(&p),
        format!("billq: {}: empty file: no rows\n", p.display())
    );
}

#[test]
fn unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bill.txt", b"hello\nworld\n");
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}: unknown format: expected newline-delimited JSON, a JSON array, CSV, Parquet or Avro (first byte 'h')\n",
            p.display()
        )
    );
    let csv = write(dir.path(), "bill.csv", b"a,b\n1,2\n");
    assert_eq!(
        refused(&csv),
        format!(
            "billq: {}: unknown format: CSV whose header is not a billing export billq knows (AWS Cost and Usage Report or Detailed Billing Report, Azure cost export)\n",
            csv.display()
        )
    );
}

#[test]
fn json_that_is_not_a_billing_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "other.jsonl", b"{\"name\": \"x\"}\n");
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}: unknown format: JSON records have none of the fields of a GCP billing export (usage_start_time, cost, list_price, lineItemId)\n",
            p.display()
        )
    );
}

#[test]
fn missing_path() {
    assert_eq!(
        refused(Path::new("/no/such/dir/export.jsonl")),
        "billq: /no/such/dir/export.jsonl: no such file or directory\n"
    );
}

#[test]
fn unreadable_url() {
    let err = refused(Path::new("http://127.0.0.1:9/billing/export.jsonl"));
    assert!(
        err.starts_with("billq: http://127.0.0.1:9/billing/export.jsonl: cannot read: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = billq()
        .args(["query", "--data"])
        .arg(dir.path())
        .arg("SELECT 1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "billq: {}: not a billq store (no _billq_catalog.json); create one with `billq convert SRC --out DIR`\n",
            dir.path().display()
        )
    );
}

#[test]
fn a_store_another_conversion_is_writing() {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[&testdata("seed-queries/data/labels_example.jsonl")],
    );
    let held = std::fs::File::options()
        .write(true)
        .open(store.path().join(".lock"))
        .unwrap();
    held.lock().unwrap();
    let out = try_convert(
        store.path(),
        &[&testdata("seed-queries/data/cud_example.jsonl")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "billq: {}: another billq convert is writing this store; try again when it is done\n",
            store.path().display()
        )
    );
    held.unlock().unwrap();
    convert(
        store.path(),
        &[&testdata("seed-queries/data/cud_example.jsonl")],
    );
}

const DBR_ZIP: &str =
    "aws/111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv.zip";

#[test]
fn truncated_zip() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(testdata(DBR_ZIP)).unwrap();
    let p = write(dir.path(), "cut.csv.zip", &full[..full.len() / 2]);
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}: corrupt zip archive: invalid Zip archive: Could not find EOCD\n",
            p.display()
        )
    );
}

#[test]
fn zip_member_with_damaged_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(testdata(DBR_ZIP)).unwrap();
    // The member's data starts after the 30-byte local header and its name.
    let name_len = usize::from(u16::from_le_bytes([bytes[26], bytes[27]]));
    bytes[30 + name_len + 40] ^= 0x55;
    let p = write(dir.path(), "damaged.csv.zip", &bytes);
    let err = refused(&p);
    assert!(err.starts_with(&format!("billq: {}", p.display())), "{err}");
    assert!(err.contains("corrupt compressed data: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn cur2_map_column_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "cur2.csv",
        b"bill_payer_account_id,bill_billing_period_start_date,line_item_unblended_cost,resource_tags\n\
          1,2024-03-01T00:00:00Z,1.5,\"{\"\"user_name\"\": \"\"a\"\"}\"\n\
          1,2024-03-01T00:00:00Z,2.5,user_name=b\n",
    );
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}:3: column resource_tags: not a JSON object of values (key must be a string at line 1 column 2)\n",
            p.display()
        )
    );
}

/// A CUR 2.0 export folder with the fixture's file under `data/BILLING_PERIOD=2024-03/`
/// at each of `deliveries` (execution folders, or "" for the period folder itself).
fn cur2_export(dir: &Path, deliveries: &[&str], manifest: Option<&str>) -> PathBuf {
    let export = dir.join("billing");
    let data = std::fs::read(testdata(
        "aws/cur2/billing/data/BILLING_PERIOD=2024-03/billing-00001.csv.gz",
    ))
    .unwrap();
    for d in deliveries {
        let folder = export.join("data/BILLING_PERIOD=2024-03").join(d);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("billing-00001.csv.gz"), &data).unwrap();
    }
    if let Some(m) = manifest {
        let folder = export.join("metadata/BILLING_PERIOD=2024-03");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("billing-Manifest.json"), m).unwrap();
    }
    export
}

#[test]
fn several_deliveries_and_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let export = cur2_export(
        dir.path(),
        &["20240310T0000Z-e1", "20240311T0000Z-e2"],
        None,
    );
    assert_eq!(
        refused(&export),
        format!(
            "billq: {}/data/BILLING_PERIOD=2024-03/: 2 deliveries (20240310T0000Z-e1, 20240311T0000Z-e2) and no manifest to tell the current one; include the report's manifest\n",
            export.display()
        )
    );
}

#[test]
fn manifest_naming_a_file_that_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let export = cur2_export(
        dir.path(),
        &["e1"],
        Some(
            r#"{"dataFiles": ["s3://b/billing/data/BILLING_PERIOD=2024-03/e1/billing-00001.csv.gz", "s3://b/billing/data/BILLING_PERIOD=2024-03/e1/billing-00002.csv.gz"]}"#,
        ),
    );
    assert_eq!(
        refused(&export),
        format!(
            "billq: {0}/metadata/BILLING_PERIOD=2024-03/billing-Manifest.json: names {0}/data/BILLING_PERIOD=2024-03/e1/billing-00002.csv.gz, which is not there: an incomplete delivery\n",
            export.display()
        )
    );
}

#[test]
fn cur2_parquet_amount_that_is_not_a_number() {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cur2-00001.snappy.parquet");
    // 10000 rows, more than one batch: the bad amount is in the second.
    let n = 10_000;
    let start = 1_709_251_200_000; // 2024-03-01T00:00:00Z
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "bill_payer_account_id",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|_| "111122223333"),
            )),
        ),
        (
            "bill_billing_period_start_date",
            Arc::new(
                TimestampMillisecondArray::from_iter_values((0..n).map(|_| start))
                    .with_timezone("UTC"),
            ),
        ),
        (
            "line_item_usage_start_date",
            Arc::new(
                TimestampMillisecondArray::from_iter_values((0..n).map(|i| start + i * 1000))
                    .with_timezone("UTC"),
            ),
        ),
        (
            "line_item_unblended_cost",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| if i == 8999 { f64::NAN } else { 0.125 }),
            )),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&p).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert_eq!(
        refused(&p),
        format!(
            "billq: {}: row 9000, line_item_unblended_cost: NaN is not an amount of money\n",
            p.display()
        )
    );
}
