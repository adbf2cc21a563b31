//! Realistic synthetic billing exports, deterministic per seed and streamed (constant
//! memory), for tests and benchmarks of very large exports. Each provider's export is
//! written in its real delivery format, one file per month: usage over the months,
//! services, SKUs and resources drawn from Zipf distributions, log-normal costs,
//! taxes, corrections, and late usage (usage of one month billed in the next).
//!
//! - GCP: the standard usage cost export as `bq extract` writes it (newline-delimited
//!   JSON, gzip), 0-10 labels and 0-3 credits a row, costs with 6 decimals.
//! - AWS: a legacy Cost and Usage Report, `cur/<yyyymmdd-yyyymmdd>/<assembly>/
//!   cur-1.csv.gz` with the period's `cur-Manifest.json`, costs with 10 decimals and
//!   `resourceTags/user:*` columns.
//! - Azure: an EA actual-cost export, `costs/<yyyymmdd-yyyymmdd>/costs_<id>.csv`
//!   (BOM, CRLF, US dates, tags without braces).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What can go wrong writing an export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// SplitMix64: small, fast, and the same stream for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Zipf(s = 1.1) over `n` ranks, by its cumulative weights.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        Self(
            (1..=n)
                .map(|k| {
                    total += 1.0 / (k as f64).powf(1.1);
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let x = rng.unit() * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|c| *c < x).min(self.0.len() - 1)
    }
}

const SERVICES: [(&str, &str); 12] = [
    ("6F81-5844-456A", "Compute Engine"),
    ("95FF-2EF5-5EA1", "Cloud Storage"),
    ("24E6-581D-38E5", "BigQuery"),
    ("9662-B51E-5089", "Cloud SQL"),
    ("CCD8-9BF1-090E", "Kubernetes Engine"),
    ("152E-C115-5142", "Cloud Run"),
    ("E505-1604-58F8", "Networking"),
    ("58CD-E7C3-72CA", "Cloud Logging"),
    ("29E7-DA93-CA13", "Cloud Functions"),
    ("A1E8-BE35-7EBC", "Pub/Sub"),
    ("2062-016F-44A2", "Cloud Memorystore"),
    ("5490-F7B7-8DF6", "Vertex AI"),
];
const REGIONS: [&str; 6] = [
    "us-central1",
    "us-east1",
    "europe-west1",
    "europe-west4",
    "asia-east1",
    "australia-southeast1",
];
const LABEL_KEYS: [&str; 10] = [
    "env",
    "team",
    "app",
    "cost-center",
    "owner",
    "tier",
    "region",
    "version",
    "component",
    "customer",
];
const CREDIT_TYPES: [(&str, &str); 3] = [
    ("SUSTAINED_USAGE_DISCOUNT", "Sustained Usage Discount"),
    ("COMMITTED_USAGE_DISCOUNT", "Committed Use Discount"),
    ("PROMOTION", "Free Trial"),
];

/// What to generate.
pub struct Options {
    /// Rows in all, taxes and corrections included.
    pub rows: u64,
    /// Months of usage, from January 2024.
    pub months: u32,
    pub seed: u64,
}

/// `YYYYMM` of the month `m` months after January 2024.
fn month(m: u32) -> (u32, u32) {
    (2024 + m / 12, m % 12 + 1)
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `x` with 6 decimals, as JSON writes it.
fn amount(x: f64) -> String {
    let text = format!("{x:.6}");
    if text == "-0.000000" {
        "0.000000".into()
    } else {
        text
    }
}

/// Writes a GCP standard usage cost export into `out`; returns the files written.
pub fn gcp(options: &Options, out: &Path) -> Result<Vec<PathBuf>> {
    check(options, out)?;
    let mut rng = Rng(options.seed);
    let (services, skus, projects) = (Zipf::new(SERVICES.len()), Zipf::new(50), Zipf::new(200));
    let accounts = ["01A2B3-C4D5E6-F7A8B9", "0F1E2D-3C4B5A-697887"];
    let per_month = options.rows.div_ceil(u64::from(options.months));
    let mut files = Vec::new();
    let mut written = 0u64;
    for m in 0..options.months {
        let (year, mon) = month(m);
        let path = out.join(format!("gcp_billing_export_{year}{mon:02}.jsonl.gz"));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut w = gz(&path)?;
        let rows = per_month.min(options.rows - written);
        let hours = u64::from(days_in(year, mon)) * 24;
        // Taxes and corrections take two rows an account at the month's end.
        let special = if rows >= 4 { 4 } else { 0 };
        let mut totals = [0.0f64; 2];
        for i in 0..rows - special {
            let account = (i % 2) as usize;
            let hour = i * hours / (rows - special).max(1);
            let (day, h) = (hour / 24 + 1, hour % 24);
            // One row in 200 is last month's usage, invoiced now (late usage).
            let (uy, um, ud) = usage_day(&mut rng, m, day);
            let s = services.draw(&mut rng);
            let (service_id, service) = SERVICES[s];
            let sku = skus.draw(&mut rng);
            let project = projects.draw(&mut rng);
            let region = REGIONS[(s + project) % REGIONS.len()];
            let cost = (rng.normal() * 1.2 - 2.0).exp();
            totals[account] += cost;
            let labels: Vec<String> = (0..rng.below(11))
                .map(|k| {
                    format!(
                        r#"{{"key":"{}","value":"v{}"}}"#,
                        LABEL_KEYS[k],
                        rng.below(5)
                    )
                })
                .collect();
            let credits: Vec<String> = (0..rng.below(4))
                .map(|c| {
                    let (kind, name) = CREDIT_TYPES[c];
                    format!(
                        r#"{{"name":"{name}","amount":{},"full_name":"{name}","id":"{kind}-{sku}","type":"{kind}"}}"#,
                        amount(-cost * 0.1 * rng.unit())
                    )
                })
                .collect();
            let start = format!("{uy}-{um:02}-{ud:02} {h:02}:00:00 UTC");
            let end = format!("{uy}-{um:02}-{ud:02} {h:02}:59:59 UTC");
            writeln!(
                w,
                r#"{{"billing_account_id":"{}","service":{{"id":"{service_id}","description":"{service}"}},"sku":{{"id":"{service_id}-SKU-{sku:04}","description":"{service} SKU {sku}"}},"usage_start_time":"{start}","usage_end_time":"{end}","project":{{"id":"project-{project:03}","number":"{}","name":"Project {project}","labels":[{{"key":"team","value":"t{}"}}]}},"labels":[{}],"system_labels":[],"location":{{"location":"{region}","country":"US","region":"{region}"}},"export_time":"{year}-{mon:02}-{day:02} {h:02}:30:00 UTC","cost":{},"currency":"USD","currency_conversion_rate":1,"usage":{{"amount":{},"unit":"seconds","amount_in_pricing_units":{},"pricing_unit":"hour"}},"credits":[{}],"invoice":{{"month":"{year}{mon:02}"}},"cost_type":"regular","cost_at_list":{}}}"#,
                accounts[account],
                100_000 + project,
                project % 17,
                labels.join(","),
                amount(cost),
                3600,
                1,
                credits.join(","),
                amount(cost * 1.25),
            )
            .map_err(io)?;
        }
        for (account, id) in accounts.iter().enumerate().take(special as usize / 2) {
            // Two rows each: the month's tax and a correction.
            let last = days_in(year, mon);
            for (kind, value) in [
                ("tax", totals[account] * 0.08),
                ("adjustment", -totals[account] * 0.002),
            ] {
                writeln!(
                    w,
                    r#"{{"billing_account_id":"{id}","service":{{"id":"{}","description":"{}"}},"sku":{{"id":"{kind}","description":"{kind}"}},"usage_start_time":"{year}-{mon:02}-{last:02} 00:00:00 UTC","usage_end_time":"{year}-{mon:02}-{last:02} 23:59:59 UTC","labels":[],"system_labels":[],"cost":{},"currency":"USD","currency_conversion_rate":1,"credits":[],"invoice":{{"month":"{year}{mon:02}"}},"cost_type":"{kind}"}}"#,
                    SERVICES[0].0,
                    SERVICES[0].1,
                    amount(value),
                )
                .map_err(io)?;
            }
        }
        written += rows;
        finish(w, &path)?;
        files.push(path);
        if written >= options.rows {
            break;
        }
    }
    Ok(files)
}

/// Checks the options and makes the output folder.
fn check(options: &Options, out: &Path) -> Result<()> {
    if options.months == 0 || options.rows == 0 {
        return Err(Error::Invalid(
            "--rows and --months must be at least 1".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })
}

type Gz = BufWriter<flate2::write::GzEncoder<File>>;

/// A buffered gzip writer to a new file (its parent folders made).
fn gz(path: &Path) -> Result<Gz> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    Ok(BufWriter::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    )))
}

fn finish(w: Gz, path: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .finish()
        .map_err(io)?;
    Ok(())
}

/// The rows of each month: (month index, rows), `rows` spread over `months`.
fn months(options: &Options) -> Vec<(u32, u64)> {
    let per = options.rows.div_ceil(u64::from(options.months));
    let mut left = options.rows;
    (0..options.months)
        .map(|m| {
            let n = per.min(left);
            left -= n;
            (m, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A usage day of month `m` (index), or, one time in 200 after the first month, the
/// last day of the month before: usage billed late.
fn usage_day(rng: &mut Rng, m: u32, day: u64) -> (u32, u32, u64) {
    let (year, mon) = month(m);
    if m > 0 && rng.below(200) == 0 {
        let (py, pm) = month(m - 1);
        (py, pm, u64::from(days_in(py, pm)))
    } else {
        (year, mon, day)
    }
}

const AWS_PRODUCTS: [(&str, &str, &str); 8] = [
    (
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "BoxUsage:m5.large",
    ),
    (
        "AmazonS3",
        "Amazon Simple Storage Service",
        "TimedStorage-ByteHrs",
    ),
    (
        "AmazonRDS",
        "Amazon Relational Database Service",
        "InstanceUsage:db.r5.large",
    ),
    ("AWSLambda", "AWS Lambda", "Lambda-GB-Second"),
    (
        "AmazonCloudWatch",
        "AmazonCloudWatch",
        "CW:MetricMonitorUsage",
    ),
    ("AmazonDynamoDB", "Amazon DynamoDB", "TimedStorage-ByteHrs"),
    (
        "AmazonEKS",
        "Amazon Elastic Kubernetes Service",
        "AmazonEKS-Hours:perCluster",
    ),
    (
        "AWSDataTransfer",
        "AWS Data Transfer",
        "DataTransfer-Out-Bytes",
    ),
];

const CUR_COLUMNS: [&str; 23] = [
    "identity/LineItemId",
    "identity/TimeInterval",
    "bill/BillingEntity",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedRate",
    "lineItem/UnblendedCost",
    "lineItem/BlendedCost",
    "lineItem/LineItemDescription",
    "product/ProductName",
    "pricing/publicOnDemandCost",
    "resourceTags/user:Name",
    "resourceTags/user:team",
    "resourceTags/user:env",
];

/// A tag value, or none one time in three.
fn tag(rng: &mut Rng, values: &[&str]) -> String {
    if rng.below(3) == 0 {
        String::new()
    } else {
        values[rng.below(values.len())].to_string()
    }
}

/// Writes a legacy AWS Cost and Usage Report (with manifests) into `out`.
pub fn aws(options: &Options, out: &Path) -> Result<Vec<PathBuf>> {
    check(options, out)?;
    let mut rng = Rng(options.seed);
    let (products, resources) = (Zipf::new(AWS_PRODUCTS.len()), Zipf::new(500));
    let payer = "111122223333";
    let accounts = [payer, "444455556666", "777788889999"];
    let mut files = Vec::new();
    for (m, rows) in months(options) {
        let (year, mon) = month(m);
        let (ny, nm) = month(m + 1);
        let period = format!("{year}{mon:02}01-{ny}{nm:02}01");
        let assembly = format!("{:016x}-{m:04x}", rng.next());
        let key = format!("cur/{period}/{assembly}/cur-1.csv.gz");
        let path = out.join(&key);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut w = gz(&path)?;
        writeln!(w, "{}", CUR_COLUMNS.join(",")).map_err(io)?;
        let start = format!("{year}-{mon:02}-01T00:00:00Z");
        let end = format!("{ny}-{nm:02}-01T00:00:00Z");
        let hours = u64::from(days_in(year, mon)) * 24;
        let special = if rows >= 2 { 2 } else { 0 };
        let mut total = 0.0;
        for i in 0..rows - special {
            let hour = i * hours / (rows - special).max(1);
            let (uy, um, ud) = usage_day(&mut rng, m, hour / 24 + 1);
            let h = hour % 24;
            let (code, product, usage_type) = AWS_PRODUCTS[products.draw(&mut rng)];
            let amount = (rng.normal() * 0.8 + 1.0).exp();
            let rate = (rng.normal() - 3.0).exp();
            let cost = amount * rate;
            total += cost;
            let name = format!("r-{:03}", resources.draw(&mut rng));
            let team = tag(&mut rng, &["web", "data", "platform", "ml"]);
            let env = tag(&mut rng, &["prod", "dev", "staging"]);
            let at = format!("{uy}-{um:02}-{ud:02}T{h:02}");
            writeln!(
                w,
                "{m}-{i},{at}:00:00Z/{at}:59:59Z,AWS,{payer},{start},{end},{},Usage,{at}:00:00Z,{at}:59:59Z,{code},{usage_type},{amount:.10},USD,{rate:.10},{cost:.10},{cost:.10},{product} usage,{product},{:.10},{name},{team},{env}",
                accounts[i as usize % accounts.len()],
                cost * 1.1,
            )
            .map_err(io)?;
        }
        for (k, (kind, value)) in [("Tax", total * 0.08), ("Credit", -total * 0.01)]
            .into_iter()
            .enumerate()
            .take(special as usize)
        {
            writeln!(
                w,
                "{m}-x{k},{start}/{end},AWS,{payer},{start},{end},{payer},{kind},{start},{end},AWS,{kind},,USD,,{value:.10},{value:.10},{kind},AWS,,,,",
            )
            .map_err(io)?;
        }
        finish(w, &path)?;
        files.push(path);
        let manifest = out.join(format!("cur/{period}/cur-Manifest.json"));
        let columns: Vec<String> = CUR_COLUMNS
            .iter()
            .map(|c| {
                let (category, name) = c.split_once('/').unwrap_or(("", c));
                format!(r#"{{"category":"{category}","name":"{name}"}}"#)
            })
            .collect();
        let text = format!(
            r#"{{"assemblyId":"{assembly}","account":"{payer}","columns":[{}],"charset":"UTF-8","compression":"GZIP","contentType":"text/csv","reportName":"cur","billingPeriod":{{"start":"{year}{mon:02}01T000000.000Z","end":"{ny}{nm:02}01T000000.000Z"}},"bucket":"billing","reportKeys":["reports/{key}"]}}"#,
            columns.join(",")
        );
        std::fs::write(&manifest, text).map_err(|source| Error::Io {
            path: manifest.clone(),
            source,
        })?;
        files.push(manifest);
    }
    Ok(files)
}

const AZURE_METERS: [(&str, &str, &str, &str); 6] = [
    ("Virtual Machines", "Dsv3 Series", "D2s v3", "1 Hour"),
    (
        "Storage",
        "Standard SSD Managed Disks",
        "E10 LRS Disk",
        "1/Month",
    ),
    ("Bandwidth", "", "Standard Data Transfer Out", "1 GB"),
    ("Azure App Service", "Premium v3 Plan", "P1 v3", "1 Hour"),
    ("SQL Database", "General Purpose", "vCore", "1 Hour"),
    ("Azure Monitor", "Log Analytics", "Data Ingestion", "1 GB"),
];

const AZURE_HEADER: &str = "\u{feff}BillingAccountId,BillingAccountName,BillingPeriodStartDate,BillingPeriodEndDate,SubscriptionId,SubscriptionName,Date,MeterCategory,MeterSubCategory,MeterName,Quantity,EffectivePrice,Cost,UnitPrice,BillingCurrency,ResourceId,Tags,AdditionalInfo,ChargeType,PricingModel,UnitOfMeasure\r\n";

/// Writes Azure EA actual-cost exports (one CSV a month) into `out`.
pub fn azure(options: &Options, out: &Path) -> Result<Vec<PathBuf>> {
    check(options, out)?;
    let mut rng = Rng(options.seed);
    let (meters, resources) = (Zipf::new(AZURE_METERS.len()), Zipf::new(300));
    let subscriptions = [
        "64e355d7-0000-4000-8000-00000000000a",
        "64e355d7-0000-4000-8000-00000000000b",
    ];
    let mut files = Vec::new();
    for (m, rows) in months(options) {
        let (year, mon) = month(m);
        let last = days_in(year, mon);
        let period = format!("{year}{mon:02}01-{year}{mon:02}{last:02}");
        let path = out.join(format!("costs/{period}/costs_{:016x}.csv", rng.next()));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut w = BufWriter::new(File::create(&path).map_err(io)?);
        w.write_all(AZURE_HEADER.as_bytes()).map_err(io)?;
        let (start, end) = (
            format!("{mon:02}/01/{year}"),
            format!("{mon:02}/{last:02}/{year}"),
        );
        for i in 0..rows {
            let (uy, um, ud) = usage_day(&mut rng, m, i * u64::from(last) / rows + 1);
            let (category, sub, meter, unit) = AZURE_METERS[meters.draw(&mut rng)];
            let quantity = (rng.normal() * 0.7 + 2.0).exp();
            let price = (rng.normal() * 0.8 - 3.0).exp();
            let subscription = subscriptions[i as usize % 2];
            let resource = resources.draw(&mut rng);
            // One row in 500 refunds half of its charge (a correction).
            let (charge, cost) = if i % 500 == 499 {
                ("Refund", -quantity * price * 0.5)
            } else {
                ("Usage", quantity * price)
            };
            writeln!(
                w,
                "8611537,Contoso EA,{start},{end},{subscription},Contoso {},{um:02}/{ud:02}/{uy},{category},{sub},{meter},{quantity:.8},{price:.8},{cost:.10},{price:.8},USD,/subscriptions/{subscription}/resourceGroups/rg-{}/providers/Microsoft.Compute/virtualMachines/vm-{resource:03},\"\"\"env\"\": \"\"{}\"\",\"\"team\"\": \"\"t{}\"\"\",\"{{\"\"ServiceType\"\":\"\"{meter}\"\"}}\",{charge},OnDemand,{unit}\r",
                i % 2,
                resource % 7,
                ["prod", "dev"][resource % 2],
                resource % 5,
            )
            .map_err(io)?;
        }
        w.flush().map_err(io)?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_zipf_favours_low_ranks() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        assert_eq!(a.next(), b.next());
        let z = Zipf::new(10);
        let mut counts = [0; 10];
        for _ in 0..10_000 {
            counts[z.draw(&mut a)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[9]);
        assert_eq!(amount(-0.0000001), "0.000000");
        assert_eq!(days_in(2024, 2), 29);
    }
}
