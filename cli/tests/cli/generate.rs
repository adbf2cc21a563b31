//! `billq gen`: synthetic exports, the same bytes for the same seed, that billq reads
//! and reconciles like real ones.

use std::path::Path;

use crate::common::*;

fn generate(out: &Path, rows: &str, months: &str, seed: &str) {
    generate_for("gcp", out, rows, months, seed);
}

fn generate_for(provider: &str, out: &Path, rows: &str, months: &str, seed: &str) {
    generate_as(provider, "export", out, rows, months, seed);
}

fn generate_as(provider: &str, format: &str, out: &Path, rows: &str, months: &str, seed: &str) {
    stdout_of(
        billq()
            .args([
                "gen",
                "--provider",
                provider,
                "--format",
                format,
                "--rows",
                rows,
            ])
            .args(["--months", months, "--seed", seed, "--out"])
            .arg(out),
    );
}

/// Generates `provider`'s export and its Parquet delivery from one seed, converts each
/// into its own store (no manifest warning, verified) and returns both stores.
fn both_formats(provider: &str) -> [tempfile::TempDir; 2] {
    ["export", "parquet"].map(|format| {
        let (out, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate_as(provider, format, out.path(), "3000", "2", "11");
        let log = convert(store.path(), &[out.path()]);
        assert!(!log.contains("warning"), "{log}");
        assert_verified(store.path());
        store
    })
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

#[test]
fn gcp_rows_carry_project_ancestry_and_resource_tags() {
    let (out, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(out.path(), "3000", "1", "7");
    convert(store.path(), &[out.path()]);
    // Project 1 sits in a folder of the organization, project 3 in a folder's folder;
    // ancestors run from the project up, ancestry numbers from the organization down.
    assert_eq!(
        query_csv_in(
            store.path(),
            "bigquery",
            "SELECT DISTINCT project.id, project.ancestry_numbers AS numbers, \
             TO_JSON_STRING(project.ancestors) AS ancestors FROM gcp_billing_export \
             WHERE project.id IN ('project-001', 'project-003') ORDER BY 1",
        ),
        "id,numbers,ancestors\n\
         project-001,/821092389413/5678/,\"[{\"\"resource_name\"\":\"\"projects/100001\"\",\"\"display_name\"\":\"\"Project 1\"\"},\
         {\"\"resource_name\"\":\"\"folders/5678\"\",\"\"display_name\"\":\"\"Data\"\"},\
         {\"\"resource_name\"\":\"\"organizations/821092389413\"\",\"\"display_name\"\":\"\"example.com\"\"}]\"\n\
         project-003,/821092389413/1234/3456/,\"[{\"\"resource_name\"\":\"\"projects/100003\"\",\"\"display_name\"\":\"\"Project 3\"\"},\
         {\"\"resource_name\"\":\"\"folders/3456\"\",\"\"display_name\"\":\"\"Platform\"\"},\
         {\"\"resource_name\"\":\"\"folders/1234\"\",\"\"display_name\"\":\"\"Engineering\"\"},\
         {\"\"resource_name\"\":\"\"organizations/821092389413\"\",\"\"display_name\"\":\"\"example.com\"\"}]\"\n"
    );
    // Cost centres are inherited from the organization's key on most projects;
    // environments and colours are set on resources, colours under the project's key.
    assert_eq!(
        query_csv_in(
            store.path(),
            "bigquery",
            "SELECT t.key, t.inherited, t.namespace = '821092389413' AS organization_key, \
             COUNT(DISTINCT t.value) AS `values` \
             FROM gcp_billing_export, UNNEST(tags) t GROUP BY 1, 2, 3 ORDER BY 1",
        ),
        "key,inherited,organization_key,values\n\
         color,false,false,3\n\
         cost_center,true,true,6\n\
         environment,false,true,3\n"
    );
    // Taxes and corrections belong to no project and carry no tags; of the usage rows,
    // those of projects without a cost centre whose resources have neither tag carry none.
    assert_eq!(
        query_csv_in(
            store.path(),
            "bigquery",
            "SELECT cost_type, COUNT(*) AS n, COUNTIF(ARRAY_LENGTH(tags) > 0) AS tagged, \
             COUNTIF(project.ancestors IS NOT NULL) AS placed \
             FROM gcp_billing_export GROUP BY 1 ORDER BY 1",
        ),
        "cost_type,n,tagged,placed\n\
         adjustment,2,0,0\n\
         regular,2996,2534,2996\n\
         tax,2,0,0\n"
    );
}

#[test]
fn aws_and_azure_exports_come_in_their_delivery_layouts() {
    let (aws, azure) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate_for("aws", aws.path(), "2000", "2", "5");
    generate_for("azure", azure.path(), "2000", "2", "5");
    let aws_files = files_below(aws.path());
    assert_eq!(aws_files.len(), 4, "{aws_files:?}");
    assert!(aws_files.contains(&"cur/20240101-20240201/cur-Manifest.json".to_string()));
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[aws.path(), azure.path()]);
    // The manifests match their data: no warning.
    assert!(!log.contains("warning"), "{log}");
    assert_verified(store.path());
    assert_eq!(
        query_csv(
            store.path(),
            "SELECT to_char(bill_billing_period_start_date, '%Y-%m') AS m, COUNT(*) AS n, \
             COUNT(*) FILTER (WHERE line_item_line_item_type = 'Tax') AS taxes, \
             COUNT(*) FILTER (WHERE line_item_line_item_type = 'Credit') AS credits, \
             COUNT(DISTINCT line_item_usage_account_id) AS accounts \
             FROM aws_cur GROUP BY 1 ORDER BY 1",
        ),
        "m,n,taxes,credits,accounts\n2024-01,1000,1,1,3\n2024-02,1000,1,1,3\n"
    );
    // Azure: one refund in 500 rows, US dates read as dates, tags without braces as maps.
    assert_eq!(
        query_csv(
            store.path(),
            r#"SELECT to_char("billingPeriodStartDate", '%Y-%m') AS m, COUNT(*) AS n,
                COUNT(*) FILTER (WHERE "chargeType" = 'Refund') AS refunds,
                COUNT(*) FILTER (WHERE tag("tags", 'env') IS NOT NULL) AS tagged
            FROM azure_cost GROUP BY 1 ORDER BY 1"#,
        ),
        "m,n,refunds,tagged\n2024-01,1000,2,1000\n2024-02,1000,2,1000\n"
    );
}

#[test]
fn parquet_deliveries_carry_the_same_bill_as_the_exports() {
    // GCP: a BigQuery Parquet extract (doubles, lists of records) of the NDJSON rows.
    // Exact sums: a FLOAT64 sum depends on the order partitions' partial sums meet in.
    let [json, parquet] = both_formats("gcp");
    let gcp = "SELECT invoice.month AS m, COUNT(*) AS n, money_sum(cost) AS cost, \
               money_sum((SELECT SUM(c.amount) FROM UNNEST(credits) c)) AS credits, \
               SUM(ARRAY_LENGTH(labels)) AS labels, MIN(usage_start_time) AS first \
               FROM gcp_billing_export GROUP BY 1 ORDER BY 1";
    let totals = query_csv_in(json.path(), "bigquery", gcp);
    assert_eq!(totals.lines().count(), 3, "{totals}");
    assert_eq!(query_csv_in(parquet.path(), "bigquery", gcp), totals);
    // Row for row, every field.
    let rows = "SELECT * FROM gcp_billing_export \
                ORDER BY usage_start_time, billing_account_id, sku.id, cost";
    let all = query_csv(json.path(), rows);
    assert_eq!(all.lines().count(), 3001);
    assert_eq!(query_csv(parquet.path(), rows), all);

    // AWS: a CUR 2.0 export (snake_case, doubles, maps, `user_` tag keys) of the
    // legacy CUR's rows.
    let [csv, parquet] = both_formats("aws");
    let aws = |team: &str| {
        format!(
            "SELECT to_char(bill_billing_period_start_date, '%Y-%m') AS m, COUNT(*) AS n, \
             SUM(line_item_unblended_cost) AS cost, SUM(line_item_usage_amount) AS usage, \
             COUNT(resource_tags['{team}']) AS tagged, \
             MAX(line_item_usage_start_date) AS last FROM aws_cur GROUP BY 1 ORDER BY 1"
        )
    };
    let totals = query_csv(csv.path(), &aws("user:team"));
    assert_eq!(totals.lines().count(), 3, "{totals}");
    assert_eq!(query_csv(parquet.path(), &aws("user_team")), totals);
    assert_eq!(
        query_csv(
            parquet.path(),
            "SELECT product['product_name'] AS p FROM aws_cur \
             WHERE line_item_line_item_type = 'Tax' LIMIT 1"
        ),
        "p\nAWS\n"
    );
}

#[test]
fn azure_has_no_parquet_delivery_to_generate() {
    let out = tempfile::tempdir().unwrap();
    let output = billq()
        .args([
            "gen",
            "--provider",
            "azure",
            "--format",
            "parquet",
            "--rows",
            "10",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "billq: Azure exports are generated as CSV only (--format export)\n"
    );
}
