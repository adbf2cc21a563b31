//! Conversion, the catalog and reconciliation.

use std::path::Path;

use crate::common::*;

fn seed(name: &str) -> std::path::PathBuf {
    testdata(&format!("seed-queries/data/{name}"))
}

#[test]
fn converts_seed_exports_and_reconciles_exactly() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata("seed-queries/data")]);
    assert!(log.contains("invoice_example.jsonl -> gcp_billing_export (14 rows, 3 file(s); cost=1128.575871, cost_at_list=1128.575871, credits.amount=-8.100913)"), "{log}");
    // Net totals per invoice month are BigQuery's answers of the docs' first query.
    let csv = query_csv(
        store.path(),
        "SELECT invoice.month AS m, SUM(net_cost(cost, credits)) AS total FROM gcp_billing_export \
         WHERE billing_account_id = '123456-ABCDEF-123456' AND invoice.month IN ('202006','202310','202311') \
         GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(
        csv,
        "m,total\n202006,111.412131000\n202310,1010.445400000\n202311,-1.382573000\n"
    );
    let verify = billq()
        .args(["verify", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(verify.stdout).unwrap();
    assert!(verify.status.success(), "{stdout}");
    assert!(
        stdout.ends_with("4 source(s) verified, 0 mismatch(es)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  credits.amount: source -8.100913, catalog -8.100913, store -8.100913\n"),
        "{stdout}"
    );
}

#[test]
fn stores_partitioned_sorted_parquet() {
    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[&seed("invoice_example.jsonl")]);
    let files = files_below(store.path());
    assert!(files.contains(&".lock".to_string()));
    let parquet: Vec<_> = files.iter().filter(|f| f.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 3, "{files:?}");
    assert!(parquet.iter().all(|f| f.starts_with(
        "gcp/gcp_billing_export/billing_account_id=123456-ABCDEF-123456/invoice_month=20"
    )));
    assert!(files.contains(&"_billq_catalog.json".to_string()));
    for file in parquet {
        let reader = std::fs::File::open(store.path().join(file)).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(reader).unwrap();
        let meta = builder.metadata().clone();
        let sorting = meta
            .row_group(0)
            .sorting_columns()
            .expect("sorting columns recorded");
        let time_index = builder.schema().index_of("usage_start_time").unwrap();
        // A sorting column names a leaf column of the Parquet schema.
        let leaf = meta
            .file_metadata()
            .schema_descr()
            .column(sorting[0].column_idx as usize);
        assert_eq!(leaf.path().string(), "usage_start_time");
        assert_eq!(
            meta.file_metadata().schema_descr().column(0).name(),
            "billing_account_id"
        );
        let mut times = Vec::new();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let col = batch
                .column(time_index)
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .unwrap();
            times.extend(col.values().iter().copied());
        }
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{file}: {times:?}");
        assert_eq!(
            meta.row_group(0).column(0).compression(),
            parquet::basic::Compression::LZ4_RAW
        );
    }
}

#[test]
fn a_rerun_converts_only_what_changed_and_replaces_redelivered_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let export = dir.path().join("export.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(seed("invoice_example.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    std::fs::write(&export, lines[..3].join("\n")).unwrap();
    let first = convert(&store, &[&export]);
    assert!(first.starts_with("converted "), "{first}");
    let again = convert(&store, &[&export]);
    assert_eq!(again, format!("unchanged {}\n", export.display()));

    // Re-delivered with more rows: replaces, never doubles.
    std::fs::write(&export, lines.join("\n")).unwrap();
    let replaced = convert(&store, &[&export]);
    assert!(replaced.starts_with("replaced "), "{replaced}");
    assert_eq!(
        query_csv(&store, "SELECT COUNT(*) AS n FROM gcp_billing_export"),
        "n\n14\n"
    );
    let parquet = files_below(&store)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .count();
    assert_eq!(parquet, 3, "superseded files are removed");
}

#[test]
fn unknown_fields_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("new_fields.jsonl");
    std::fs::write(
        &export,
        r#"{"billing_account_id":"A","usage_start_time":"2024-01-01 00:00:00 UTC","cost":1.5,"invoice":{"month":"202401","brand_new":"x"},"green_score":7}"#,
    )
    .unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&export]);
    let csv = query_csv(
        &store,
        "SELECT invoice.brand_new AS b, green_score, usage_start_time FROM gcp_billing_export",
    );
    assert_eq!(
        csv,
        "b,green_score,usage_start_time\nx,7,2024-01-01T00:00:00Z\n"
    );
}

/// Chunks of a file decode on several threads; rows still keep the file's order
/// (rows of the same usage time stay as they came).
#[test]
fn rows_keep_the_file_order_whatever_thread_decoded_them() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("ties.jsonl");
    let lines: String = (0..30_000)
        .map(|i| {
            format!(
                "{{\"billing_account_id\":\"A\",\"usage_start_time\":\"2024-01-01 00:00:00 UTC\",\"cost\":{i},\"invoice\":{{\"month\":\"202401\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(&export, lines).unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&export]);
    let csv = query_csv(&store, "SELECT cost FROM gcp_billing_export");
    let expected: String = std::iter::once("cost".to_string())
        .chain((0..30_000).map(|i| format!("{i}.0")))
        .map(|l| l + "\n")
        .collect();
    assert!(csv == expected, "rows out of order");
}

/// A field that first appears after the lines the schema is inferred from (5,000)
/// is kept too: the file is read again with the whole file's schema.
#[test]
fn unknown_fields_past_the_inferred_sample_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("late_field.jsonl");
    let row = r#"{"billing_account_id":"A","usage_start_time":"2024-01-01 00:00:00 UTC","cost":0.25,"invoice":{"month":"202401"}}"#;
    let late = r#"{"billing_account_id":"A","usage_start_time":"2024-01-02 00:00:00 UTC","cost":0.5,"invoice":{"month":"202401"},"green_score":7}"#;
    std::fs::write(
        &export,
        format!("{}{late}\n", format!("{row}\n").repeat(6_000)),
    )
    .unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&export]);
    let csv = query_csv(
        &store,
        "SELECT COUNT(*) AS n, SUM(green_score) AS g, SUM(cost) AS cost FROM gcp_billing_export",
    );
    assert_eq!(csv, "n,g,cost\n6001,7,1500.5\n");
    assert_verified(&store);
}

#[test]
fn json_times_in_every_form_bigquery_and_arrow_write() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("times.jsonl");
    let row = |n: u32, time: &str| {
        format!(r#"{{"billing_account_id":"A","cost":{n},"invoice":{{"month":"202401"}}{time}}}"#)
    };
    let rows = [
        row(1, r#","usage_start_time":"2024-01-01 00:00:00 UTC""#),
        row(2, r#","usage_start_time":"2024-01-01T01:30:00.25Z""#),
        row(3, r#","usage_start_time":"2024-01-01 03:00:00+02:00""#),
        row(4, r#","usage_start_time":1704067200000001"#),
        row(5, ""),
    ];
    std::fs::write(&export, rows.join("\n")).unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&export]);
    assert_eq!(
        query_csv(
            &store,
            "SELECT cost, CAST(usage_start_time AS BIGINT) AS t \
             FROM gcp_billing_export ORDER BY cost"
        ),
        "cost,t\n1.0,1704067200000000\n2.0,1704072600250000\n3.0,1704070800000000\n\
         4.0,1704067200000001\n5.0,\n"
    );
}

#[test]
fn legacy_file_export_is_its_own_table() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(
        store.path(),
        &[&testdata("gcp/legacy_file_export_sample.json")],
    );
    assert!(
        log.contains(
            "-> gcp_file_export (3 rows, 1 file(s); cost.amount=5.769626, credits.amount=0)"
        ),
        "{log}"
    );
    let csv = query_csv(
        store.path(),
        "SELECT \"startTime\", SUM(cost['amount']) AS cost, SUM(measurements[1]['sum']) AS s FROM gcp_file_export GROUP BY 1",
    );
    assert_eq!(
        csv,
        "startTime,cost,s\n2014-01-14T08:00:00Z,5.769626000,119624397618750848.000000000\n"
    );
}

#[test]
fn a_parquet_extract_converts_to_the_same_totals() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&seed("labels_example.jsonl")]);
    let extract = dir.path().join("extract.parquet");
    query_to_parquet(&store, &extract, "SELECT * FROM gcp_billing_export");
    let second = dir.path().join("second");
    let log = convert(&second, &[&extract]);
    assert!(
        log.contains("extract.parquet -> gcp_billing_export (7 rows, 1 file(s); cost=24,"),
        "{log}"
    );
}

#[test]
fn failed_run_leaves_the_previous_state_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&seed("labels_example.jsonl")]);
    let before = catalog_bytes(&store);
    let files_before = files_below(&store);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"cost\": 1.0, \"usage_start_time\": \"2024-01-01 00:00:00 UTC\"}\n{oops\n",
    )
    .unwrap();
    let out = try_convert(&store, &[&seed("cud_example.jsonl"), &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(catalog_bytes(&store), before);
    assert_eq!(files_below(&store), files_before);
    assert_eq!(
        query_csv(&store, "SELECT SUM(cost) AS c FROM gcp_billing_export"),
        "c\n24.0\n"
    );
}

#[test]
fn files_a_killed_run_left_behind_are_invisible_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&seed("labels_example.jsonl")]);
    let stored = first_parquet(&store);
    let orphan = store.join(Path::new(&stored).with_file_name("orphan.parquet"));
    std::fs::copy(store.join(&stored), &orphan).unwrap();
    std::fs::create_dir_all(store.join(".staging/123")).unwrap();
    assert_eq!(
        query_csv(&store, "SELECT COUNT(*) AS n FROM gcp_billing_export"),
        "n\n7\n"
    );
    convert(&store, &[&seed("cud_example.jsonl")]);
    assert!(!orphan.exists());
    assert!(!store.join(".staging").exists());
}

#[test]
fn verify_reports_a_store_that_lost_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let export = dir.path().join("e.jsonl");
    std::fs::copy(seed("labels_example.jsonl"), &export).unwrap();
    convert(&store, &[&export]);
    // Replace the stored file by one holding fewer rows, behind the catalog's back.
    let stored = first_parquet(&store);
    let fewer = dir.path().join("fewer.parquet");
    query_to_parquet(
        &store,
        &fewer,
        "SELECT * FROM gcp_billing_export WHERE cost < 4",
    );
    std::fs::copy(&fewer, store.join(&stored)).unwrap();
    let out = billq()
        .args(["verify", "--data"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "MISMATCH {} (gcp_billing_export)\n  rows: source 7, catalog 7, store 5\n",
            export.display()
        )),
        "{stdout}"
    );
}

#[test]
fn detailed_and_pricing_exports_have_their_own_tables() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(
        store.path(),
        &[
            &testdata("gcp/gcp_billing_export_resource_sample.jsonl"),
            &testdata("gcp/gcp_pricing_export_sample.jsonl"),
        ],
    );
    assert!(log.contains("-> gcp_billing_export_resource (2 rows, 1 file(s); cost=0.022034, cost_at_list=0, credits.amount=-0.004362)"), "{log}");
    assert!(log.contains("-> gcp_pricing_export (2 rows, 1 file(s); billing_account_price.tiered_rates.account_currency_amount=0.01963, billing_account_price.tiered_rates.usd_amount=0.01963, list_price.tiered_rates.account_currency_amount=0.331811, list_price.tiered_rates.usd_amount=0.331811)"), "{log}");
    let csv = query_csv(
        store.path(),
        "SELECT resource.name AS r, price.effective_price AS p FROM gcp_billing_export_resource ORDER BY usage_start_time",
    );
    assert_eq!(csv, "r,p\ninstance-1,0.120000000\ninstance-1,0.021811000\n");
    let csv = query_csv(
        store.path(),
        "SELECT sku.id AS s, cardinality(list_price.tiered_rates) AS tiers, product_taxonomy[2] AS t FROM gcp_pricing_export ORDER BY 1",
    );
    assert_eq!(
        csv,
        "s,tiers,t\n6B8F-E63D-832B,3,Network\nCF4E-A0C7-E3BF,1,Compute\n"
    );
}

#[test]
fn avro_extracts_plain_and_gzipped_convert_to_the_same_totals() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&seed("labels_example.jsonl")]);
    let stored = first_parquet(&store);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(store.join(stored)).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let avro = dir.path().join("extract.avro");
    let mut writer = arrow_avro::writer::AvroWriter::new(
        std::fs::File::create(&avro).unwrap(),
        batches[0].schema().as_ref().clone(),
    )
    .unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    let gz = dir.path().join("extract.avro.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    std::io::copy(&mut std::fs::File::open(&avro).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    let log = convert(&dir.path().join("second"), &[&avro, &gz]);
    for name in ["extract.avro", "extract.avro.gz"] {
        assert!(log.contains(&format!("{name} -> gcp_billing_export (7 rows, 1 file(s); cost=24, cost_at_list=24, credits.amount=0)")), "{log}");
    }
}
