//! The `focus` view across clouds: one table of FOCUS columns over every provider's
//! rows, each provider's billed cost equal to its own invoice amounts.

use crate::common::*;

#[test]
fn focus_view_spans_gcp_aws_and_azure_with_their_invoice_totals() {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[
            &testdata("seed-queries/data/invoice_example.jsonl"),
            &testdata("aws/cur_legacy_2024-01_2024-02.csv"),
            &testdata("azure/ea_actual_2023-09.csv"),
            &testdata("azure/focus_2023-09.csv"),
        ],
    );
    // GCP: cost plus credits of testdata/seed-queries/data/invoice_example.jsonl
    // (111.412131 in 2020-06; 1000.45 + 10.0003 - 0.0049 in 2023-10; 3.29 + 0.33 -
    // 5.002573 in 2023-11). AWS: the CUR's unblended cost. Azure: the EA export's
    // cost, and the FOCUS export's BilledCost.
    assert_eq!(
        query_csv(
            store.path(),
            r#"SELECT "x_SourceTable", "ProviderName", "BillingCurrency",
                SUM("BilledCost") AS billed, COUNT(*) AS n
            FROM focus GROUP BY 1, 2, 3 ORDER BY 1"#,
        ),
        "x_SourceTable,ProviderName,BillingCurrency,billed,n\n\
         aws_cur,AWS,USD,0.103600283820000000000000,5\n\
         azure_cost,Microsoft,USD,616.911499680000000000000000,4\n\
         focus_export,Microsoft,USD,615.504000000000000000000000,3\n\
         gcp_billing_export,Google Cloud,USD,1120.474958000000000000000000,14\n"
    );
    // The same question in BigQuery's dialect, by invoice month and provider.
    assert_eq!(
        query_csv_in(
            store.path(),
            "bigquery",
            "SELECT FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) AS month, ProviderName, \
             SUM(BilledCost) AS billed FROM focus WHERE x_SourceTable != 'focus_export' \
             GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        "month,ProviderName,billed\n\
         202006,Google Cloud,111.412131000000000000000000\n\
         202309,Microsoft,616.911499680000000000000000\n\
         202310,Google Cloud,1010.445400000000000000000000\n\
         202311,Google Cloud,-1.382573000000000000000000\n\
         202401,AWS,0.011600283820000000000000\n\
         202402,AWS,0.092000000000000000000000\n"
    );
}
