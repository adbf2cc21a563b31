//! Realistic synthetic billing exports, deterministic per seed and streamed (constant
//! memory), for tests and benchmarks of very large exports. Each provider's export is
//! written in its real delivery format, one file per month: usage over the months,
//! services, SKUs and resources drawn from Zipf distributions, log-normal costs,
//! taxes, corrections, and late usage (usage of one month billed in the next).
//!
//! - GCP: the standard usage cost export as `bq extract` writes it (newline-delimited
//!   JSON, gzip), 0-10 labels and 0-3 credits a row, costs with 6 decimals, each
//!   project's ancestry (folders, organization) and 0-3 resource tags a row.
//! - AWS: a legacy Cost and Usage Report, `cur/<yyyymmdd-yyyymmdd>/<assembly>/
//!   cur-1.csv.gz` with the period's `cur-Manifest.json`, costs with 10 decimals and
//!   `resourceTags/user:*` columns.
//! - Azure: an EA actual-cost export, `costs/<yyyymmdd-yyyymmdd>/costs_<id>.csv`
//!   (BOM, CRLF, US dates, tags without braces).
//!
//! With [`Format::Parquet`], the same rows (the same seed gives the same bill) are
//! written as the providers' Parquet deliveries: the GCP export as `bq extract
//! --destination_format PARQUET` writes it (doubles for money, UTC timestamps, repeated
//! records as lists), and AWS's as a CUR 2.0 (Data Exports) export,
//! `cur2/data/BILLING_PERIOD=<yyyy-mm>/cur2-00001.snappy.parquet` with its manifest
//! under `cur2/metadata/`, `snake_case` columns, doubles, and `product` and
//! `resource_tags` maps.

mod gcp;
mod sink;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, MapFieldNames, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

pub use gcp::gcp;
use sink::{Columns, Sink};

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
    pub format: Format,
}

/// The files to write the rows as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Each provider's own export: GCP NDJSON.gz, legacy CUR CSV.gz, Azure CSV.
    Export,
    /// Parquet: a BigQuery extract of the GCP export, a CUR 2.0 export of AWS's.
    Parquet,
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

/// A UTC date and time, to the second.
#[derive(Clone, Copy)]
struct Time {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Time {
    fn new(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, as the CUR writes times.
    fn parse_iso(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let n = |from: usize, to: usize| text.get(from..to)?.parse::<u32>().ok();
        (b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z')
            .then_some(())?;
        Some(Self::new(
            n(0, 4)?,
            n(5, 7)?,
            n(8, 10)?,
            n(11, 13)?,
            n(14, 16)?,
            n(17, 19)?,
        ))
    }

    /// Microseconds since the Unix epoch.
    fn micros(self) -> i64 {
        // Days from 1970-01-01 of the proleptic Gregorian date (Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((i64::from(self.month) + 9) % 12) + 2) / 5 + i64::from(self.day) - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        seconds * 1_000_000
    }
}

/// As the GCP export writes times: `2024-01-31 23:00:00 UTC`.
impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
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

/// Where CUR 2.0 puts a legacy CUR column.
#[derive(Clone, Copy)]
enum Cur2 {
    Text(&'static str),
    Double(&'static str),
    Time(&'static str),
    /// An entry of a map column: (map, key).
    Entry(&'static str, &'static str),
}

/// The report's columns: legacy name, and CUR 2.0's.
const CUR_COLUMNS: [(&str, Cur2); 23] = [
    ("identity/LineItemId", Cur2::Text("identity_line_item_id")),
    (
        "identity/TimeInterval",
        Cur2::Text("identity_time_interval"),
    ),
    ("bill/BillingEntity", Cur2::Text("bill_billing_entity")),
    ("bill/PayerAccountId", Cur2::Text("bill_payer_account_id")),
    (
        "bill/BillingPeriodStartDate",
        Cur2::Time("bill_billing_period_start_date"),
    ),
    (
        "bill/BillingPeriodEndDate",
        Cur2::Time("bill_billing_period_end_date"),
    ),
    (
        "lineItem/UsageAccountId",
        Cur2::Text("line_item_usage_account_id"),
    ),
    (
        "lineItem/LineItemType",
        Cur2::Text("line_item_line_item_type"),
    ),
    (
        "lineItem/UsageStartDate",
        Cur2::Time("line_item_usage_start_date"),
    ),
    (
        "lineItem/UsageEndDate",
        Cur2::Time("line_item_usage_end_date"),
    ),
    ("lineItem/ProductCode", Cur2::Text("line_item_product_code")),
    ("lineItem/UsageType", Cur2::Text("line_item_usage_type")),
    (
        "lineItem/UsageAmount",
        Cur2::Double("line_item_usage_amount"),
    ),
    (
        "lineItem/CurrencyCode",
        Cur2::Text("line_item_currency_code"),
    ),
    (
        "lineItem/UnblendedRate",
        Cur2::Double("line_item_unblended_rate"),
    ),
    (
        "lineItem/UnblendedCost",
        Cur2::Double("line_item_unblended_cost"),
    ),
    (
        "lineItem/BlendedCost",
        Cur2::Double("line_item_blended_cost"),
    ),
    (
        "lineItem/LineItemDescription",
        Cur2::Text("line_item_line_item_description"),
    ),
    (
        "product/ProductName",
        Cur2::Entry("product", "product_name"),
    ),
    (
        "pricing/publicOnDemandCost",
        Cur2::Double("pricing_public_on_demand_cost"),
    ),
    (
        "resourceTags/user:Name",
        Cur2::Entry("resource_tags", "user_name"),
    ),
    (
        "resourceTags/user:team",
        Cur2::Entry("resource_tags", "user_team"),
    ),
    (
        "resourceTags/user:env",
        Cur2::Entry("resource_tags", "user_env"),
    ),
];

impl Cur2 {
    /// The CUR 2.0 column this is (in), and Data Exports' name for its type.
    fn column(self) -> (&'static str, &'static str) {
        match self {
            Cur2::Text(name) => (name, "string"),
            Cur2::Double(name) => (name, "double"),
            Cur2::Time(name) => (name, "timestamp"),
            Cur2::Entry(map, _) => (map, "map<string,string>"),
        }
    }

    /// The Arrow type of its column.
    fn data_type(self) -> DataType {
        match self {
            Cur2::Text(_) => DataType::Utf8,
            Cur2::Double(_) => DataType::Float64,
            Cur2::Time(_) => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Cur2::Entry(..) => {
                let entries = Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ]);
                DataType::Map(
                    Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
                    false,
                )
            }
        }
    }
}

/// CUR 2.0's columns, each once (a map where its first entry is).
fn cur2_columns() -> Vec<Cur2> {
    let mut columns: Vec<Cur2> = Vec::new();
    for (_, c) in CUR_COLUMNS {
        if !columns.iter().any(|seen| seen.column() == c.column()) {
            columns.push(c);
        }
    }
    columns
}

/// The Arrow schema of a CUR 2.0 Parquet file.
fn cur2_schema() -> SchemaRef {
    let fields: Vec<Field> = cur2_columns()
        .into_iter()
        .map(|c| Field::new(c.column().0, c.data_type(), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Writes a CUR row: a CSV line of the legacy report, or a row of its CUR 2.0
/// Parquet file.
fn cur_row(w: &mut Sink<Cur2Columns>, values: &[&str]) -> std::io::Result<()> {
    w.row(
        |text| writeln!(text, "{}", values.join(",")),
        |columns| columns.push(values),
    )
}

/// A CUR 2.0 column being built.
enum Cur2Values {
    Text(StringBuilder),
    Double(Float64Builder),
    Time(TimestampMillisecondBuilder),
    Map(Box<MapBuilder<StringBuilder, StringBuilder>>),
}

/// CUR 2.0's columns; the value of `CUR_COLUMNS[i]` goes into `columns[into[i]]`
/// (empty values as nulls, entries in their maps).
struct Cur2Columns {
    columns: Vec<Cur2Values>,
    into: Vec<usize>,
}

impl Cur2Columns {
    fn new() -> Self {
        let targets = cur2_columns();
        let columns = targets
            .iter()
            .map(|c| match c {
                Cur2::Text(_) => Cur2Values::Text(StringBuilder::new()),
                Cur2::Double(_) => Cur2Values::Double(Float64Builder::new()),
                Cur2::Time(_) => {
                    Cur2Values::Time(TimestampMillisecondBuilder::new().with_timezone("UTC"))
                }
                Cur2::Entry(..) => Cur2Values::Map(Box::new(MapBuilder::new(
                    Some(MapFieldNames {
                        entry: "key_value".into(),
                        key: "key".into(),
                        value: "value".into(),
                    }),
                    StringBuilder::new(),
                    StringBuilder::new(),
                ))),
            })
            .collect();
        let into = CUR_COLUMNS
            .iter()
            .map(|(_, c)| {
                targets
                    .iter()
                    .position(|t| t.column() == c.column())
                    .expect("every CUR column has its CUR 2.0 column")
            })
            .collect();
        Self { columns, into }
    }

    fn push(&mut self, values: &[&str]) {
        for (((_, column), value), &i) in CUR_COLUMNS.iter().zip(values).zip(&self.into) {
            let present = !value.is_empty();
            match (&mut self.columns[i], column) {
                (Cur2Values::Text(b), _) => b.append_option(present.then_some(*value)),
                (Cur2Values::Double(b), _) => b.append_option(
                    present.then(|| value.parse().expect("a number the generator wrote")),
                ),
                (Cur2Values::Time(b), _) => b.append_option(present.then(|| {
                    Time::parse_iso(value)
                        .expect("a time the generator wrote")
                        .micros()
                        / 1000
                })),
                (Cur2Values::Map(b), Cur2::Entry(_, key)) => {
                    if present {
                        b.keys().append_value(key);
                        b.values().append_value(value);
                    }
                }
                (Cur2Values::Map(_), _) => unreachable!("a map holds entries only"),
            }
        }
        for column in &mut self.columns {
            if let Cur2Values::Map(b) = column {
                b.append(true).expect("as many keys as values");
            }
        }
    }
}

impl Columns for Cur2Columns {
    fn take(&mut self) -> Vec<ArrayRef> {
        self.columns
            .iter_mut()
            .map(|c| match c {
                Cur2Values::Text(b) => Arc::new(b.finish()) as ArrayRef,
                Cur2Values::Double(b) => Arc::new(b.finish()),
                Cur2Values::Time(b) => Arc::new(b.finish()),
                Cur2Values::Map(b) => Arc::new(b.finish()),
            })
            .collect()
    }
}

/// A tag value, or none one time in three.
fn tag(rng: &mut Rng, values: &[&str]) -> String {
    if rng.below(3) == 0 {
        String::new()
    } else {
        values[rng.below(values.len())].to_string()
    }
}

/// Writes AWS's Cost and Usage Report into `out`: a legacy CUR (CSV.gz, with
/// manifests) or, as Parquet, a CUR 2.0 export.
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
        let delivery = format!("{:016x}-{m:04x}", rng.next());
        let (key, manifest) = match options.format {
            Format::Export => {
                let period = format!("{year}{mon:02}01-{ny}{nm:02}01");
                (
                    format!("cur/{period}/{delivery}/cur-1.csv.gz"),
                    format!("cur/{period}/cur-Manifest.json"),
                )
            }
            Format::Parquet => {
                let period = format!("BILLING_PERIOD={year}-{mon:02}");
                (
                    format!("cur2/data/{period}/cur2-00001.snappy.parquet"),
                    format!("cur2/metadata/{period}/cur2-Manifest.json"),
                )
            }
        };
        let path = out.join(&key);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut w = Sink::create(&path, options.format, || {
            (cur2_schema(), Cur2Columns::new())
        })
        .map_err(io)?;
        if let Sink::Text(text) = &mut w {
            let header: Vec<&str> = CUR_COLUMNS.iter().map(|(name, _)| *name).collect();
            writeln!(text, "{}", header.join(",")).map_err(io)?;
        }
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
            let (from, to) = (format!("{at}:00:00Z"), format!("{at}:59:59Z"));
            let cost = format!("{cost:.10}");
            cur_row(
                &mut w,
                &[
                    &format!("{m}-{i}"),
                    &format!("{from}/{to}"),
                    "AWS",
                    payer,
                    &start,
                    &end,
                    accounts[i as usize % accounts.len()],
                    "Usage",
                    &from,
                    &to,
                    code,
                    usage_type,
                    &format!("{amount:.10}"),
                    "USD",
                    &format!("{rate:.10}"),
                    &cost,
                    &cost,
                    &format!("{product} usage"),
                    product,
                    &format!("{:.10}", amount * rate * 1.1),
                    &name,
                    &team,
                    &env,
                ],
            )
            .map_err(io)?;
        }
        for (k, (kind, value)) in [("Tax", total * 0.08), ("Credit", -total * 0.01)]
            .into_iter()
            .enumerate()
            .take(special as usize)
        {
            let value = format!("{value:.10}");
            cur_row(
                &mut w,
                &[
                    &format!("{m}-x{k}"),
                    &format!("{start}/{end}"),
                    "AWS",
                    payer,
                    &start,
                    &end,
                    payer,
                    kind,
                    &start,
                    &end,
                    "AWS",
                    kind,
                    "",
                    "USD",
                    "",
                    &value,
                    &value,
                    kind,
                    "AWS",
                    "",
                    "",
                    "",
                    "",
                ],
            )
            .map_err(io)?;
        }
        w.close().map_err(io)?;
        files.push(path);
        let manifest_path = out.join(manifest);
        let text = match options.format {
            Format::Export => {
                let columns: Vec<String> = CUR_COLUMNS
                    .iter()
                    .map(|(c, _)| {
                        let (category, name) = c.split_once('/').unwrap_or(("", c));
                        format!(r#"{{"category":"{category}","name":"{name}"}}"#)
                    })
                    .collect();
                format!(
                    r#"{{"assemblyId":"{delivery}","account":"{payer}","columns":[{}],"charset":"UTF-8","compression":"GZIP","contentType":"text/csv","reportName":"cur","billingPeriod":{{"start":"{year}{mon:02}01T000000.000Z","end":"{ny}{nm:02}01T000000.000Z"}},"bucket":"billing","reportKeys":["reports/{key}"]}}"#,
                    columns.join(",")
                )
            }
            Format::Parquet => {
                let columns: Vec<String> = cur2_columns()
                    .into_iter()
                    .map(|c| {
                        let (name, kind) = c.column();
                        format!(r#"{{"name":"{name}","type":"{kind}"}}"#)
                    })
                    .collect();
                format!(
                    r#"{{"version":"1.0","exportArn":"arn:aws:bcm-data-exports:us-east-1:{payer}:export/cur2","exportName":"cur2","executionId":"{delivery}","billingPeriod":{{"start":"{start}","end":"{end}"}},"columns":[{}],"dataFiles":["s3://billing/{key}"]}}"#,
                    columns.join(",")
                )
            }
        };
        let io = |source| Error::Io {
            path: manifest_path.clone(),
            source,
        };
        if let Some(dir) = manifest_path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&manifest_path, text).map_err(io)?;
        files.push(manifest_path);
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
    if options.format == Format::Parquet {
        return Err(Error::Invalid(
            "Azure exports are generated as CSV only (--format export)".into(),
        ));
    }
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

    #[test]
    fn times_count_from_the_epoch_and_read_as_the_cur_writes_them() {
        assert_eq!(Time::new(1970, 1, 1, 0, 0, 0).micros(), 0);
        let t = Time::parse_iso("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(t.micros(), 1_709_251_199_000_000);
        assert_eq!(t.to_string(), "2024-02-29 23:59:59 UTC");
        assert_eq!(Time::new(2000, 3, 1, 0, 0, 0).micros(), 951_868_800_000_000);
        assert!(Time::parse_iso("2024-02-29 23:59:59").is_none());
    }
}
