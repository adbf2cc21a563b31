//! `billq report monthly` over GCP, AWS and Azure test data: every number worked out
//! from the fixtures, the same bytes from the same data, and the HTML rendered by a
//! real headless Chromium (which `scripts/test` installs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// A store with GCP (seed invoice example), AWS (legacy CUR) and Azure (EA, MCA) data.
fn multi_cloud_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[
            &testdata("seed-queries/data/invoice_example.jsonl"),
            &testdata("aws/cur_legacy_2024-01_2024-02.csv"),
            &testdata("azure/ea_actual_2023-09.csv"),
            &testdata("azure/mca_2023-10.csv"),
        ],
    );
    store
}

/// `billq report monthly` over `store` (with `config`, if any) into `out`.
fn run_report(store: &Path, month: &str, config: Option<&Path>, out: &Path) -> Output {
    let mut cmd = billq();
    cmd.args(["report", "monthly", "--month", month, "--data"])
        .arg(store);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--out").arg(out).output().unwrap()
}

fn report(store: &Path, month: &str, out: &Path) {
    let run = run_report(store, month, None, out);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn monthly_report_numbers_are_the_bills() {
    let store = multi_cloud_store();
    let out = tempfile::tempdir().unwrap();
    report(store.path(), "2023-10", out.path());
    // GCP's October invoice (invoice.month 202310): 1000.45 usage + 10.0003 tax -
    // 0.0049 rounding = 1010.4454; Azure's MCA October billing period: 1.84 + 5.6 +
    // 0.912 = 8.352 EUR.
    assert_eq!(
        read(out.path(), "invoice_totals.csv"),
        "provider,billing_account_id,invoice_month,currency,total\n\
         azure,mca:1234,2023-10,EUR,8.352\n\
         gcp,123456-ABCDEF-123456,2023-10,USD,1010.4454\n"
    );
    // September: Azure EA 616.91149968 USD, nothing for GCP.
    assert_eq!(
        read(out.path(), "month_over_month.csv"),
        "provider,currency,this_month,previous_month,change\n\
         Google Cloud,USD,1010.4454,0,1010.4454\n\
         Microsoft,EUR,8.352,0,8.352\n\
         Microsoft,USD,0,616.91149968,-616.91149968\n"
    );
    assert_eq!(
        read(out.path(), "by_charge.csv"),
        "provider,charge_category,currency,billed,effective\n\
         Google Cloud,Adjustment,USD,-0.0049,-0.0049\n\
         Google Cloud,Tax,USD,10.0003,10.0003\n\
         Google Cloud,Usage,USD,1000.45,1000.45\n\
         Microsoft,Usage,EUR,8.352,8.352\n"
    );
    // GCP's October rows are all Compute Engine; the MCA rows are 1.84 storage, 5.6
    // functions and 0.912 virtual machines.
    assert_eq!(
        read(out.path(), "by_service.csv"),
        "provider,service,currency,total\n\
         Google Cloud,Compute Engine,USD,1010.4454\n\
         Microsoft,Functions,EUR,5.6\n\
         Microsoft,Storage,EUR,1.84\n\
         Microsoft,Virtual Machines,EUR,0.912\n"
    );
    assert_eq!(
        read(out.path(), "by_project.csv"),
        "provider,project,currency,total\n\
         Google Cloud,Example Project,USD,1010.4454\n\
         Microsoft,Fabrikam Data,EUR,8.352\n"
    );
    // Six months back from October: the EA's September and October's two bills (the
    // AWS months are 2024, GCP's other month 2020).
    assert_eq!(
        read(out.path(), "trend.csv"),
        "month,currency,total\n\
         2023-09,USD,616.91149968\n\
         2023-10,EUR,8.352\n\
         2023-10,USD,1010.4454\n"
    );
    // Against September: the EA's VM (2.304 + 613.2), bandwidth and disks went away.
    assert_eq!(
        read(out.path(), "top_movers.csv"),
        "provider,service,currency,this_month,previous_month,change\n\
         Google Cloud,Compute Engine,USD,1010.4454,0,1010.4454\n\
         Microsoft,Virtual Machines,USD,0,615.504,-615.504\n\
         Microsoft,Functions,EUR,5.6,0,5.6\n\
         Microsoft,Storage,EUR,1.84,0,1.84\n\
         Microsoft,Bandwidth,USD,0,1.0875,-1.0875\n\
         Microsoft,Virtual Machines,EUR,0.912,0,0.912\n\
         Microsoft,Storage,USD,0,0.31999968,-0.31999968\n"
    );
    assert_eq!(
        read(out.path(), "domain_total.csv"),
        "currency,providers,billing_accounts,total\n\
         EUR,1,1,8.352\n\
         USD,1,1,1010.4454\n"
    );
    // September's EA rows by meter category (bandwidth 1.0875, disks 0.31999968, the
    // VM 2.304 and its reservation 613.2), October's as above.
    assert_eq!(
        read(out.path(), "trend_by_service.csv"),
        "month,service,currency,total\n\
         2023-09,Bandwidth,USD,1.0875\n\
         2023-09,Storage,USD,0.31999968\n\
         2023-09,Virtual Machines,USD,615.504\n\
         2023-10,Functions,EUR,5.6\n\
         2023-10,Storage,EUR,1.84\n\
         2023-10,Virtual Machines,EUR,0.912\n\
         2023-10,Compute Engine,USD,1010.4454\n"
    );
    // MCA rows carry tags; the seed invoice rows have no labels.
    assert_eq!(
        read(out.path(), "untagged.csv"),
        "provider,currency,total,untagged,untagged_percent\n\
         Google Cloud,USD,1010.4454,1010.4454,100.0\n\
         Microsoft,EUR,8.352,0,0.0\n"
    );
    assert!(read(out.path(), "invoice_totals.json").contains(
        r#"{"provider": "gcp", "billing_account_id": "123456-ABCDEF-123456", "invoice_month": "2023-10", "currency": "USD", "total": 1010.4454}"#
    ));
    assert!(read(out.path(), "summary.md").contains(
        "| provider | billing_account_id | invoice_month | currency | total |\n| --- | --- | --- | --- | --- |\n| azure | mca:1234 | 2023-10 | EUR | 8.352 |\n"
    ));
}

/// Every file of a report, with the `generated` line taken out.
fn contents(dir: &Path) -> Vec<(String, String)> {
    files_below(dir)
        .into_iter()
        .map(|f| {
            let text = read(dir, &f);
            let kept: Vec<&str> = text
                .lines()
                .map(|l| match l.find("generated ") {
                    Some(i) => &l[..i],
                    None => l,
                })
                .collect();
            (f, kept.join("\n"))
        })
        .collect()
}

#[test]
fn same_data_same_bytes() {
    let store = multi_cloud_store();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    report(store.path(), "2023-10", a.path());
    report(store.path(), "2023-10", b.path());
    assert_eq!(contents(a.path()).len(), 28);
    assert_eq!(contents(a.path()), contents(b.path()));
}

#[test]
fn a_bad_month_is_a_clear_error() {
    let store = multi_cloud_store();
    let out = tempfile::tempdir().unwrap();
    let run = run_report(store.path(), "2023-13", None, out.path());
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(run.stderr).unwrap(),
        "billq: --month \"2023-13\" is not YYYY-MM\n"
    );
}

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8(found.stdout).ok()?;
            (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
        })
        .expect("a headless Chromium (scripts/test installs Debian's chromium)")
}

#[test]
fn the_html_report_renders_its_charts_in_chromium() {
    let store = multi_cloud_store();
    let out = tempfile::tempdir().unwrap();
    report(store.path(), "2023-10", out.path());
    let html = out.path().join("report.html");
    let page = format!("file://{}", html.display());
    let profile = tempfile::tempdir().unwrap();
    let headless = |extra: &[&str]| {
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&page)
            .output()
            .unwrap()
    };
    let dom = headless(&["--dump-dom"]);
    assert!(dom.status.success());
    let dom = String::from_utf8(dom.stdout).unwrap();
    // Charts of invoice totals, services, projects, teams, movers, trend and the
    // stacked trend by service.
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 7, "{dom}");
    // Bars: 2 invoices, 4 services, 2 projects, 2 teams (unassigned: no config), 7
    // movers, 3 months of trend, 7 month-and-service parts of the stacked trend.
    assert_eq!(
        dom.matches("<rect class=\"bar\"").count(),
        2 + 4 + 2 + 2 + 7 + 3 + 7,
        "{dom}"
    );
    assert!(dom.contains("<h1>Cloud spend: 2023-10</h1>"));
    let shot = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map_or_else(|| out.path().to_path_buf(), PathBuf::from)
        .join("report-2023-10.png");
    let screenshot = headless(&[
        "--window-size=1280,2400",
        &format!("--screenshot={}", shot.display()),
    ]);
    let log = String::from_utf8_lossy(&screenshot.stderr).to_string();
    assert!(screenshot.status.success(), "{log}");
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a blank page? {} bytes", png.len());
}

#[test]
fn budgets_exceeded_or_projected_over_give_exit_code_4() {
    let store = multi_cloud_store();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("billq.toml");
    std::fs::write(
        &config,
        "[[budgets]]\nname = \"gcp\"\nprovider = \"gcp\"\ncurrency = \"USD\"\nmonthly = \"2000\"\n\n\
         [[budgets]]\nname = \"azure-mca\"\nprovider = \"azure\"\nbilling_account_id = \"mca:1234\"\n\
         currency = \"EUR\"\nmonthly = \"50\"\n\n\
         [[budgets]]\nname = \"all-usd\"\ncurrency = \"USD\"\nmonthly = \"1000\"\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    let run = run_report(store.path(), "2023-10", Some(&config), &out);
    assert_eq!(run.status.code(), Some(4));
    let log = String::from_utf8(run.stderr).unwrap();
    // Azure's 8.352 EUR in the first 3 days of October runs at 8.352 / 3 × 31 = 86.304.
    assert!(
        log.ends_with(
            "billq: budget azure-mca is projected over for 2023-10: 8.352 spent, 86.304 projected, budget 50\n\
             billq: budget all-usd is over for 2023-10: 1010.4454 spent, 1010.4454 projected, budget 1000\n"
        ),
        "{log}"
    );
    assert_eq!(
        read(&out, "budgets.csv"),
        "name,budget,actual,projected,status\n\
         gcp,2000,1010.4454,1010.4454,ok\n\
         azure-mca,50,8.352,86.304,projected over\n\
         all-usd,1000,1010.4454,1010.4454,over\n"
    );
    assert_eq!(
        read(&out, "projection.csv"),
        "provider,currency,to_date,days_elapsed,days_in_month,projected\n\
         Google Cloud,USD,1010.4454,31,31,1010.4454\n\
         Microsoft,EUR,8.352,3,31,86.304\n"
    );
}

#[test]
fn late_charges_are_earlier_usage_on_this_invoice() {
    let store = multi_cloud_store();
    let out = tempfile::tempdir().unwrap();
    report(store.path(), "2023-11", out.path());
    // The seed invoice's October usage credited on the November invoice.
    assert_eq!(
        read(out.path(), "late_charges.csv"),
        "provider,usage_month,currency,charges,total\n\
         Google Cloud,2023-10,USD,1,-5.002573\n"
    );
}

#[test]
fn projects_from_the_config_split_the_bill_across_providers() {
    let store = multi_cloud_store();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("billq.toml");
    std::fs::write(
        &config,
        "[[projects]]\nname = \"data\"\ntags = { env = \"prod\" }\n\n\
         [[projects]]\nname = \"platform\"\naccounts = [\"123456-ABCDEF-123456\"]\n\n\
         [[budgets]]\nname = \"data-eur\"\nproject = \"data\"\ncurrency = \"EUR\"\nmonthly = \"20\"\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    let run = run_report(store.path(), "2023-10", Some(&config), &out);
    // The data team's 2.752 EUR so far, at October's EUR run rate (86.304 / 8.352),
    // comes to 28.437333 by month end: over its 20.
    assert_eq!(run.status.code(), Some(4));
    assert_eq!(
        read(&out, "budgets.csv"),
        "name,budget,actual,projected,status\n\
         data-eur,20,2.752,28.437333,projected over\n"
    );
    // MCA rows tagged env=prod: storage 1.84 + virtual machines 0.912 = 2.752; the
    // env=dev functions (5.6) are nobody's; GCP's account is the platform's. Each
    // currency adds up to its invoice total (8.352 EUR, 1010.4454 USD).
    assert_eq!(
        read(&out, "by_team.csv"),
        "project,currency,total\n\
         (unassigned),EUR,5.6\n\
         data,EUR,2.752\n\
         platform,USD,1010.4454\n"
    );
}

#[test]
fn the_config_names_the_store_for_cron() {
    let store = multi_cloud_store();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("billq.toml"),
        format!("store = {:?}\n", store.path().display().to_string()),
    )
    .unwrap();
    stdout_of(
        billq()
            .current_dir(dir.path())
            .args(["report", "monthly", "--month", "2023-10", "--out", "out"]),
    );
    assert!(
        read(&dir.path().join("out"), "invoice_totals.csv")
            .ends_with("gcp,123456-ABCDEF-123456,2023-10,USD,1010.4454\n")
    );
}

#[test]
fn a_month_with_all_three_clouds() {
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[
            &testdata("gcp/gcp_billing_export_2024q1.jsonl.gz"),
            &testdata("aws/cur2/billing"),
            &testdata("azure/mca_2024-03.csv"),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    report(store.path(), "2024-03", out.path());
    // GCP: cost plus credits of the demo export's March invoice per billing account
    // (summed with Python's decimal over the file); AWS: the CUR 2.0 export's
    // unblended cost (0.0104 + 0.023 + 0.096 + 0.0121 - 0.003); Azure: 4.6 + 14 EUR.
    assert_eq!(
        read(out.path(), "invoice_totals.csv"),
        "provider,billing_account_id,invoice_month,currency,total\n\
         aws,111122223333,2024-03,USD,0.1385\n\
         azure,mca:1234,2024-03,EUR,18.6\n\
         gcp,012345-6789AB-CDEF01,2024-03,USD,518.120456\n\
         gcp,98A7B6-C5D4E3-F2A1B0,2024-03,USD,173.839255\n"
    );
    assert_eq!(
        read(out.path(), "domain_total.csv"),
        "currency,providers,billing_accounts,total\n\
         EUR,1,1,18.6\n\
         USD,2,3,692.098211\n"
    );
}
