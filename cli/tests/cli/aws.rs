//! AWS exports: the Cost and Usage Report and the Detailed Billing Report in CSV.
//! Expected totals were summed independently (Python's `decimal` over the files).

use crate::common::*;

const CUR: &str = "aws/cur_legacy_2024-01_2024-02.csv";
const DBR: &str =
    "aws/dbr_111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv";

#[test]
fn legacy_cur_converts_to_exact_athena_named_columns() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata(CUR)]);
    assert!(
        log.contains("-> aws_cur (5 rows, 2 file(s); line_item_blended_cost=0.10160028382, line_item_net_unblended_cost=0, line_item_unblended_cost=0.10360028382, pricing_public_on_demand_cost=0.20240028382,"),
        "{log}"
    );
    let files = files_below(store.path());
    assert!(
        files
            .iter()
            .any(|f| f
                .starts_with("aws/aws_cur/billing_account_id=111122223333/invoice_month=202401/")),
        "{files:?}"
    );
    let csv = query_csv(
        store.path(),
        "SELECT date_trunc('month', bill_billing_period_start_date) AS m, line_item_line_item_type AS t, \
         SUM(line_item_unblended_cost) AS c FROM aws_cur GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert_eq!(
        csv,
        "m,t,c\n\
         2024-01-01T00:00:00Z,Tax,0.001200000000000000000000\n\
         2024-01-01T00:00:00Z,Usage,0.010400283820000000000000\n\
         2024-02-01T00:00:00Z,Credit,-0.100000000000000000000000\n\
         2024-02-01T00:00:00Z,Usage,0.192000000000000000000000\n"
    );
    assert_verified(store.path());
}

#[test]
fn resource_tags_are_one_map_keyed_as_aws_writes_them() {
    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[&testdata(CUR)]);
    let csv = query_csv(
        store.path(),
        "SELECT identity_line_item_id AS id, tag(resource_tags, 'user:Name') AS upper, \
         tag(resource_tags, 'user:name') AS lower, resource_tags['user:team'] AS team, \
         tag(cost_category, 'CostCenter') AS cc FROM aws_cur ORDER BY 1",
    );
    assert_eq!(
        csv,
        "id,upper,lower,team,cc\na1,web-1,,platform,CC-100\na2,,logs,data,\na3,,,,\nb1,batch,,platform,CC-200\nb2,,,,\n"
    );
}

#[test]
fn dbr_keeps_its_names_and_marks_total_rows() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata(DBR)]);
    assert!(log.contains("-> aws_dbr (5 rows, "), "{log}");
    assert!(log.contains("UnBlendedCost=0.0348074)"), "{log}");
    let csv = query_csv(
        store.path(),
        "SELECT SUM(\"UnBlendedCost\") FILTER (WHERE NOT is_total_row) AS usage, \
         SUM(\"UnBlendedCost\") FILTER (WHERE \"RecordType\" = 'StatementTotal') AS statement, \
         COUNT(*) FILTER (WHERE is_total_row) AS totals, MIN(\"UsageStartDate\") AS start FROM aws_dbr",
    );
    assert_eq!(
        csv,
        "usage,statement,totals,start\n0.011603700000000000000000,0.011603700000000000000000,3,2015-03-01T00:00:00Z\n"
    );
}

#[test]
fn ragged_rows_are_refused_with_their_line() {
    let store = tempfile::tempdir().unwrap();
    let src = testdata("aws/cur_ragged.csv").canonicalize().unwrap();
    let out = try_convert(store.path(), &[&src]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "billq: {}:3: 20 fields, but the header has 22 (a ragged row, or a header longer than its rows)\n",
            src.display()
        )
    );
}

#[test]
fn a_money_value_that_is_not_an_amount_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(testdata(CUR))
        .unwrap()
        .replace("0.1920000000,0.1900000000", "lots,0.1900000000");
    let src = dir.path().join("bad.csv");
    std::fs::write(&src, text).unwrap();
    let out = try_convert(&dir.path().join("s"), &[&src]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "billq: {}:5: column lineItem/UnblendedCost: \"lots\" is not an amount\n",
            src.display()
        )
    );
}

#[test]
fn cur_parquet_doubles_become_the_decimals_they_were_written_as() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    convert(&store, &[&testdata(CUR)]);
    // An Athena-style Parquet delivery, with costs as doubles as AWS writes them.
    let parquet = dir.path().join("athena.parquet");
    query_to_parquet(
        &store,
        &parquet,
        "SELECT identity_line_item_id, bill_payer_account_id, bill_billing_period_start_date, \
             line_item_usage_start_date, \
             CAST(CAST(line_item_unblended_cost AS VARCHAR) AS DOUBLE) AS line_item_unblended_cost \
             FROM aws_cur",
    );
    let log = convert(&dir.path().join("second"), &[&parquet]);
    assert!(
        log.contains("athena.parquet -> aws_cur (5 rows, 2 file(s); "),
        "{log}"
    );
    assert!(
        log.contains(" line_item_unblended_cost=0.10360028382,"),
        "{log}"
    );
}

#[test]
fn lenient_sets_ragged_rows_aside_counted_and_verifiable() {
    let store = tempfile::tempdir().unwrap();
    let src = testdata("aws/cur_ragged.csv").canonicalize().unwrap();
    let out = billq()
        .args(["convert", "--lenient"])
        .arg(&src)
        .arg("--out")
        .arg(store.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8(out.stderr).unwrap();
    let rejects = first_file_under(store.path(), "_rejects/");
    assert!(
        log.starts_with(&format!(
            "converted {} -> aws_cur (2 rows, 1 file(s), 1 row(s) set aside in {}; ",
            src.display(),
            store.path().join(&rejects).display()
        )),
        "{log}"
    );
    assert!(log.contains(" line_item_unblended_cost=0.0116,"), "{log}");
    let quarantined = std::fs::read_to_string(store.path().join(&rejects)).unwrap();
    let lines: Vec<&str> = quarantined.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("line,identity/LineItemId,"));
    assert!(
        lines[1].starts_with("3,a2,") && lines[1].ends_with(",# pasted comment"),
        "{}",
        lines[1]
    );
    assert_verified(store.path());
}

/// Rows after the first 5,000, which a conversion surveys before decoding: checked as
/// they are decoded, with the same messages, warnings and quarantine.
#[test]
fn rows_past_the_surveyed_sample_are_checked_as_they_decode() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(testdata(CUR)).unwrap();
    let (header, row) = {
        let mut lines = text.lines();
        (lines.next().unwrap(), lines.next().unwrap())
    };
    // Lines 2-6001 good, line 6002 as given, then a good row.
    let file = |name: &str, line: &str| {
        let path = dir.path().join(name);
        let body = format!("{row}\n").repeat(6_000);
        std::fs::write(&path, format!("{header}\n{body}{line}\n{row}\n")).unwrap();
        path
    };
    let refused = |src: &std::path::Path| {
        let out = try_convert(&dir.path().join("refused"), &[src]);
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stderr).unwrap()
    };
    let lots = file(
        "lots.csv",
        &row.replace(
            ",0.0104000000,0.0104000000,Amazon",
            ",lots,0.0104000000,Amazon",
        ),
    );
    assert_eq!(
        refused(&lots),
        format!(
            "billq: {}:6002: column lineItem/UnblendedCost: \"lots\" is not an amount\n",
            lots.display()
        )
    );
    let short = file("short.csv", row.rsplitn(3, ',').nth(2).unwrap());
    assert_eq!(
        refused(&short),
        format!(
            "billq: {}:6002: 20 fields, but the header has 22 (a ragged row, or a header longer than its rows)\n",
            short.display()
        )
    );
    let lenient = dir.path().join("lenient");
    let out = billq()
        .args(["convert", "--lenient"])
        .arg(&short)
        .arg("--out")
        .arg(&lenient)
        .output()
        .unwrap();
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(
        log.contains("-> aws_cur (6001 rows, 1 file(s), 1 row(s) set aside in "),
        "{log}"
    );
    assert_verified(&lenient);

    // A quantity that is not a number, and an id a spreadsheet mangled: the file is
    // read again as the whole file's survey says, with its warnings.
    let odd = file(
        "odd.csv",
        &row.replace(",1.0000000000,USD,", ",n/a,USD,")
            .replace(",111122223333,", ",1.11122E+11,"),
    );
    let store = dir.path().join("odd");
    let log = convert(&store, &[&odd]);
    for warning in [
        format!(
            "{}:6002: column lineItem/UsageAmount holds \"n/a\", not a number: kept as text",
            odd.display()
        ),
        format!(
            "{}:6002: bill/PayerAccountId is \"1.11122E+11\", an id a spreadsheet turned into a number: kept as text",
            odd.display()
        ),
    ] {
        assert!(log.contains(&warning), "{log}");
    }
    assert!(log.contains("-> aws_cur (6002 rows, "), "{log}");
    assert_verified(&store);
    assert_eq!(
        query_csv(
            &store,
            "SELECT MIN(arrow_typeof(line_item_usage_amount)) AS t, SUM(line_item_unblended_cost) AS cost, \
             COUNT(*) FILTER (WHERE line_item_usage_amount = 'n/a') AS odd FROM aws_cur"
        ),
        "t,cost,odd\nUtf8View,62.420800000000000000000000,1\n"
    );
}

/// Writes a CUR delivery as AWS lays it out: the period's manifest naming the
/// assembly, the data under the assembly's folder, and the manifest's copy there.
fn deliver(root: &std::path::Path, assembly: &str, csv: &str) {
    let period = root.join("cur/myreport/20240101-20240201");
    std::fs::create_dir_all(period.join(assembly)).unwrap();
    std::fs::write(period.join(assembly).join("myreport-1.csv"), csv).unwrap();
    let manifest = format!(
        r#"{{"assemblyId":"{assembly}","reportKeys":["cur/myreport/20240101-20240201/{assembly}/myreport-1.csv"]}}"#
    );
    std::fs::write(
        period.join(assembly).join("myreport-Manifest.json"),
        &manifest,
    )
    .unwrap();
    std::fs::write(period.join("myreport-Manifest.json"), &manifest).unwrap();
}

#[test]
fn a_redelivered_period_replaces_the_earlier_assembly() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = dir.path().join("store");
    let cur = std::fs::read_to_string(testdata(CUR)).unwrap();
    deliver(&bucket, "asm-1", &cur);
    let first = convert(&store, &[&bucket]);
    assert!(
        first.contains("/asm-1/myreport-1.csv -> aws_cur (5 rows, "),
        "{first}"
    );

    let corrected = cur.replace("0.1920000000,0.1900000000", "0.2920000000,0.1900000000");
    deliver(&bucket, "asm-2", &corrected);
    let second = convert(&store, &[&bucket]);
    assert!(
        second.contains("/asm-2/myreport-1.csv -> aws_cur (5 rows, "),
        "{second}"
    );
    assert!(!second.contains("/asm-1/myreport-1.csv -> "), "{second}");
    assert!(
        second.contains(&format!(
            "superseded {}",
            bucket
                .join("cur/myreport/20240101-20240201/asm-1/myreport-1.csv")
                .display()
        )),
        "{second}"
    );
    assert_eq!(
        query_csv(
            &store,
            "SELECT COUNT(*) AS n, SUM(line_item_unblended_cost) AS c FROM aws_cur"
        ),
        "n,c\n5,0.203600283820000000000000\n"
    );
    assert_verified(&store);
}

const CUR2: &str = "aws/cur2/billing";

#[test]
fn cur2_export_reads_its_maps_and_tags_answer_like_legacy_cur() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata(CUR2), &testdata(CUR)]);
    assert!(
        log.contains("billing-00001.csv.gz -> aws_cur (5 rows, 1 file(s); line_item_blended_cost=0.1385, line_item_net_unblended_cost=0, line_item_unblended_cost=0.1385, pricing_public_on_demand_cost=0.0334, reservation_effective_cost=0, savings_plan_savings_plan_effective_cost=0.0624)"),
        "{log}"
    );
    assert!(!log.contains("warning"), "{log}");
    // Map columns from JSON text: numbers stay as written; tags by either key form.
    let csv = query_csv(
        store.path(),
        "SELECT identity_line_item_id AS id, tag(resource_tags, 'user:Name') AS name, \
         tag(resource_tags, 'user_team') AS team, product['region'] AS region, \
         tag(discount, 'edp_discount') AS edp, discount_total_discount AS d \
         FROM aws_cur WHERE identity_line_item_id IN ('a1', 'a2', 'c2-1', 'c2-2', 'c2-5') ORDER BY 1",
    );
    assert_eq!(
        csv,
        "id,name,team,region,edp,d\n\
         a1,web-1,platform,,,\n\
         a2,,data,,,\n\
         c2-1,web-1,platform,us-east-1,,\n\
         c2-2,logs,,us-east-1,,\n\
         c2-5,,,us-east-1,-0.003,-0.003000000000000000000000\n"
    );
    // A CUR 2.0 query from Athena runs on both generations of rows.
    assert_eq!(
        query_csv_in(
            store.path(),
            "athena",
            "SELECT resource_tags['user_name'] AS name, sum(line_item_unblended_cost) AS cost \
             FROM aws_cur GROUP BY 1 ORDER BY 1",
        ),
        "name,cost\n\
         batch,0.192000000000000000000000\n\
         logs,0.023000283820000000000000\n\
         web-1,0.020800000000000000000000\n\
         ,0.006300000000000000000000\n"
    );
    assert_verified(store.path());
}

#[test]
fn dbr_zip_reads_as_its_csv() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(
        store.path(),
        &[&testdata(
            "aws/111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv.zip",
        )],
    );
    assert!(log.contains("-> aws_dbr (5 rows, "), "{log}");
    assert!(log.contains("UnBlendedCost=0.0348074)"), "{log}");
    assert_verified(store.path());
}

#[test]
fn a_manifest_that_disagrees_with_its_data_is_reported_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testdata(CUR), dir.path().join("cur-1.csv")).unwrap();
    std::fs::write(
        dir.path().join("cur-Manifest.json"),
        r#"{"assemblyId": "a1", "reportKeys": ["/cur/20240101-20240201/a1/cur-1.csv"],
            "billingPeriod": {"start": "20240101T000000.000Z", "end": "20240201T000000.000Z"},
            "columns": [{"category": "identity", "name": "LineItemId"},
                        {"category": "lineItem", "name": "UnblendedCost"},
                        {"category": "lineItem", "name": "NotInTheData"}]}"#,
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[dir.path()]);
    let manifest = dir.path().join("cur-Manifest.json");
    let data = dir.path().join("cur-1.csv");
    assert!(
        log.contains(&format!(
            "warning: {}: lists 3 columns, but {} has 20 (18 not listed, e.g. bill_billing_period_end_date, bill_billing_period_start_date, bill_payer_account_id; 1 listed but absent, e.g. line_item_not_in_the_data): the file's own header is used\n",
            manifest.display(),
            data.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "warning: {}: billing period 202401, but 2 of 5 rows of {} bill in other periods (202402: 2): each row is stored under its own bill_billing_period_start_date\n",
            manifest.display(),
            data.display()
        )),
        "{log}"
    );
    let csv = query_csv(
        store.path(),
        "SELECT COUNT(*) AS n, SUM(line_item_unblended_cost) AS c FROM aws_cur",
    );
    assert_eq!(csv, "n,c\n5,0.103600283820000000000000\n");
}

#[test]
fn cur2_parquet_maps_land_as_the_csv_maps_do() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(
        store.path(),
        &[&testdata(CUR2), &testdata("aws/cur2_parquet/billing")],
    );
    assert!(
        log.contains("billing-00001.snappy.parquet -> aws_cur (3 rows, 1 file(s); line_item_blended_cost=0.0647, line_item_net_unblended_cost=0, line_item_unblended_cost=0.0647,"),
        "{log}"
    );
    let csv = query_csv(
        store.path(),
        "SELECT date_trunc('month', bill_billing_period_start_date) AS m, \
         tag(resource_tags, 'user:Name') AS name, tag(discount, 'edp_discount') AS edp, \
         SUM(line_item_unblended_cost) AS c FROM aws_cur GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    assert_eq!(
        csv,
        "m,name,edp,c\n\
         2024-03-01T00:00:00Z,logs,,0.023000000000000000000000\n\
         2024-03-01T00:00:00Z,web-1,,0.010400000000000000000000\n\
         2024-03-01T00:00:00Z,,-0.003,-0.003000000000000000000000\n\
         2024-03-01T00:00:00Z,,,0.108100000000000000000000\n\
         2024-04-01T00:00:00Z,logs,,0.046000000000000000000000\n\
         2024-04-01T00:00:00Z,web-1,,0.020800000000000000000000\n\
         2024-04-01T00:00:00Z,,-0.0021,-0.002100000000000000000000\n"
    );
    assert_verified(store.path());
}
