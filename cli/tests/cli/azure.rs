//! Azure cost exports: every header variant lands in `azure_cost` under the cost-details
//! field reference's names, with exact totals (summed independently with Python's
//! `decimal` over the files in `testdata/azure`).

use crate::common::*;

#[test]
fn every_header_variant_lands_in_azure_cost_exactly() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata("azure")]);
    let dir = testdata("azure").canonicalize().unwrap();
    for (file, rows, totals) in [
        (
            "ea_actual_2023-09.csv",
            4,
            "costInBillingCurrency=616.91149968, costInUsd=0, paygCostInBillingCurrency=0",
        ),
        (
            "ea_no_rows.csv",
            0,
            "costInBillingCurrency=0, costInUsd=0, paygCostInBillingCurrency=0",
        ),
        (
            "german_2021-02.csv",
            2,
            "costInBillingCurrency=0.2, costInUsd=0, paygCostInBillingCurrency=0",
        ),
        (
            "mca_2023-10.csv",
            3,
            "costInBillingCurrency=8.352, costInUsd=9.1473, paygCostInBillingCurrency=9.264",
        ),
        (
            "mca_2024-03.csv",
            2,
            "costInBillingCurrency=18.6, costInUsd=20.3298, paygCostInBillingCurrency=18.6",
        ),
        (
            "payg_2019-07.csv",
            2,
            "costInBillingCurrency=1.44000648, costInUsd=0, paygCostInBillingCurrency=0",
        ),
    ] {
        let path = dir.join(file);
        let files = usize::from(rows > 0);
        assert!(
            log.contains(&format!(
                "converted {} -> azure_cost ({rows} rows, {files} file(s); {totals})\n",
                path.display()
            )),
            "{file}: {log}"
        );
    }
    assert!(
        log.contains(&format!(
            "warning: {}: a header and no rows (an export of a period without charges)\n",
            dir.join("ea_no_rows.csv").display()
        )),
        "{log}"
    );
    let files = files_below(store.path());
    for partition in [
        "azure/azure_cost/billing_account_id=8611537/invoice_month=202309/",
        "azure/azure_cost/billing_account_id=mca%3A1234/invoice_month=202310/",
        // Pay-as-you-go: no billing account, the subscription is billed.
        "azure/azure_cost/billing_account_id=0039de71-0000-4000-8000-000000000003/invoice_month=201907/",
        "azure/azure_cost/billing_account_id=11111111-0000-4000-8000-000000000004/invoice_month=202102/",
    ] {
        assert!(
            files.iter().any(|f| f.starts_with(partition)),
            "{partition}: {files:?}"
        );
    }
    assert_verified(store.path());
}

/// Runs a BigQuery-dialect query (column names as written, no quotes) as CSV.
fn bigquery_csv(store: &std::path::Path, sql: &str) -> String {
    query_csv_in(store, "bigquery", sql)
}

#[test]
fn dates_money_tags_and_additional_info_are_typed() {
    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[&testdata("azure")]);
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT FORMAT_TIMESTAMP('%Y-%m', date) AS month, billingCurrency, \
             SUM(costInBillingCurrency) AS cost, SUM(quantity) AS quantity, COUNT(*) AS n \
             FROM azure_cost GROUP BY 1, 2 ORDER BY 1",
        ),
        "month,billingCurrency,cost,quantity,n\n\
         2019-07,USD,1.440006480000000000000000,24.000144000000000000000000,2\n\
         2021-02,EUR,0.200000000000000000000000,8.000000000000000000000000,2\n\
         2023-09,USD,616.911499680000000000000000,37.533333300000000000000000,4\n\
         2023-10,EUR,8.352000000000000000000000,400110.000000000000000000000000,3\n\
         2024-03,EUR,18.600000000000000000000000,1000250.000000000000000000000000,2\n"
    );
    // EA tags come without braces; AdditionalInfo is JSON text; both are maps.
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT resourceName, tag(tags, 'env') AS env, tag(tags, 'team') AS team, \
             tag(additionalInfo, 'VCPUs') AS vcpus, chargeType \
             FROM azure_cost WHERE billingAccountId = '8611537' ORDER BY date",
        ),
        "resourceName,env,team,vcpus,chargeType\n\
         web-1,prod,web,2,Usage\n\
         web-1-os,prod,,,Usage\n\
         ,,,,Usage\n\
         ,,,,Purchase\n"
    );
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT tag(tags, 'project') AS project, tag(additionalInfo, 'ServiceType') AS st, \
             has_label(additionalInfo, 'ImageType') AS has_image, effectivePrice \
             FROM azure_cost WHERE subscriptionId LIKE '0039de71%' ORDER BY date",
        ),
        "project,st,has_image,effectivePrice\n\
         p1,,false,0.045000000000000000000000\n\
         p2,Standard_A1,false,0.060000000000000000000000\n"
    );
}

#[test]
fn original_header_names_stay_reachable() {
    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[&testdata("azure")]);
    let out = billq()
        .args(["schema", "azure_cost", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    let schema = String::from_utf8(out.stdout).unwrap();
    for line in [
        "costInBillingCurrency: Decimal128(38, 24) (in the source: Cost, PreTaxCost, PreTaxCost (PreTaxCost))\n",
        "subscriptionId: Utf8View (in the source: Abonnement-GUID (SubscriptionGuid), SubscriptionGuid)\n",
        "date: Timestamp(µs, \"UTC\") (in the source: UsageDateTime, UsageDateTime (UsageDateTime))\n",
        "tags: Map(\"entries\": non-null Struct(\"keys\": non-null Utf8, \"values\": Utf8), unsorted) (in the source: Tags (Tags))\n",
    ] {
        assert!(schema.contains(line), "{line}{schema}");
    }
}

#[test]
fn usage_pages_and_rate_card_read_as_their_apis_reply() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata("azure/api")]);
    for line in [
        "ratecard_payg_usd.json -> azure_ratecard (7 rows, 1 file(s); rate=0.2518)\n",
        "usage_2024-05_page1.json -> azure_usage (6 rows, 1 file(s); quantity=222)\n",
        "usage_2024-05_page2.json -> azure_usage (4 rows, 1 file(s); quantity=136)\n",
    ] {
        assert!(log.contains(line), "{line}{log}");
    }
    // instanceData (a JSON string in the reply) opened into its fields and tags.
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT meterId, location, tag(tags, 'team') AS team, COUNT(*) AS n, SUM(quantity) AS q \
             FROM azure_usage GROUP BY 1, 2, 3 ORDER BY 1",
        ),
        "meterId,location,team,n,q\n\
         m-blob,eastus,data,5,250.000000000000000000000000\n\
         m-vm-a1,eastus,,5,108.000000000000000000000000\n"
    );
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT meterRegion, tierMinimum, rate, includedQuantity FROM azure_ratecard \
             WHERE meterName = 'LRS Data Stored' AND rateCard = 'ratecard_payg_usd' ORDER BY 1, 2",
        ),
        "meterRegion,tierMinimum,rate,includedQuantity\n\
         EU West,0.000000000000000000000000,0.026000000000000000000000,5.000000000000000000000000\n\
         EU West,100.000000000000000000000000,0.025000000000000000000000,5.000000000000000000000000\n\
         US East,0.000000000000000000000000,0.024000000000000000000000,5.000000000000000000000000\n\
         US East,100.000000000000000000000000,0.023600000000000000000000,5.000000000000000000000000\n\
         US East,1000.000000000000000000000000,0.023200000000000000000000,5.000000000000000000000000\n"
    );
}

#[test]
fn whatif_rerates_usage_in_another_region() {
    let store = tempfile::tempdir().unwrap();
    convert(store.path(), &[&testdata("azure/api")]);
    let run = |region: &str| {
        billq()
            .args(["whatif", "--region", region, "--format", "csv", "--data"])
            .arg(store.path())
            .output()
            .unwrap()
    };
    // Worked out in testdata/golden/azure_rating.slt.
    let out = run("EU West");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "whatifRateCard,whatifRegion,meterCategory,meterName,currency,quantity,cost,whatifCost,difference\n\
         ratecard_payg_usd,EU West,Virtual Machines,A1 VM,USD,108.000000000000000000000000,6.480000000000000000000000,7.560000000000000000000000,1.080000000000000000000000\n\
         ratecard_payg_usd,EU West,Storage,LRS Data Stored,USD,250.000000000000000000000000,5.822000000000000000000000,6.225000000000000000000000,0.403000000000000000000000\n"
    );
    let out = billq()
        .args([
            "whatif",
            "--rate-card",
            "ratecard_sponsorship_usd",
            "--format",
            "csv",
            "--data",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "whatifRateCard,whatifRegion,meterCategory,meterName,currency,quantity,cost,whatifCost,difference\n\
         ratecard_sponsorship_usd,US East,Virtual Machines,A1 VM,USD,108.000000000000000000000000,6.480000000000000000000000,5.400000000000000000000000,-1.080000000000000000000000\n\
         ratecard_sponsorship_usd,US East,Storage,LRS Data Stored,USD,250.000000000000000000000000,5.822000000000000000000000,5.000000000000000000000000,-0.822000000000000000000000\n"
    );
    let out = run("Mars");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "billq: the rate cards have no meters in region \"Mars\" (known: EU West, US East)\n"
    );
}

#[test]
fn focus_export_keeps_focus_names_and_reads_null_as_null() {
    let store = tempfile::tempdir().unwrap();
    let log = convert(store.path(), &[&testdata("azure/focus_2023-09.csv")]);
    assert!(
        log.contains("-> focus_export (3 rows, 1 file(s); BilledCost=615.504, ContractedCost=615.504, EffectiveCost=3.984, ListCost=617.808)\n"),
        "{log}"
    );
    // The reservation is bought (BilledCost) and used (EffectiveCost) in other rows.
    assert_eq!(
        bigquery_csv(
            store.path(),
            "SELECT ChargeCategory, SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, \
             COUNT(RegionId) AS regions, tag(Tags, 'team') AS team \
             FROM focus_export GROUP BY 1, 5 ORDER BY 1, 5",
        ),
        "ChargeCategory,billed,effective,regions,team\n\
         Purchase,613.200000000000000000000000,0.000000000000000000000000,0,\n\
         Usage,2.304000000000000000000000,3.984000000000000000000000,2,web\n"
    );
}
