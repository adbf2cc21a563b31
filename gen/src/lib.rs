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
//!
//! With [`Format::Parquet`], the same rows (the same seed gives the same bill) are
//! written as the providers' Parquet deliveries: the GCP export as `bq extract
//! --destination_format PARQUET` writes it (doubles for money, UTC timestamps, repeated
//! records as lists), and AWS's as a CUR 2.0 (Data Exports) export,
//! `cur2/data/BILLING_PERIOD=<yyyy-mm>/cur2-00001.snappy.parquet` with its manifest
//! under `cur2/metadata/`, `snake_case` columns, doubles, and `product` and
//! `resource_tags` maps.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

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
        let path = out.join(match options.format {
            Format::Export => format!("gcp_billing_export_{year}{mon:02}.jsonl.gz"),
            Format::Parquet => format!("gcp_billing_export_{year}{mon:02}-000000000000.parquet"),
        });
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut w = create(&path, options.format, gcp_parquet_schema)?;
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

/// The schema of a BigQuery Parquet extract of the standard usage cost export (the
/// fields the generator writes).
fn gcp_parquet_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let double = |name: &str| Field::new(name, DataType::Float64, true);
    let time = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )
    };
    let record = |name: &str, fields: Vec<Field>| {
        Field::new(name, DataType::Struct(Fields::from(fields)), true)
    };
    let repeated = |name: &str, fields: Vec<Field>| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new(
                "element",
                DataType::Struct(Fields::from(fields)),
                true,
            ))),
            true,
        )
    };
    let key_values = |name: &str| repeated(name, vec![text("key"), text("value")]);
    let id_description = |name: &str| record(name, vec![text("id"), text("description")]);
    Arc::new(Schema::new(vec![
        text("billing_account_id"),
        id_description("service"),
        id_description("sku"),
        time("usage_start_time"),
        time("usage_end_time"),
        record(
            "project",
            vec![
                text("id"),
                text("number"),
                text("name"),
                key_values("labels"),
            ],
        ),
        key_values("labels"),
        key_values("system_labels"),
        record(
            "location",
            vec![text("location"), text("country"), text("region")],
        ),
        time("export_time"),
        double("cost"),
        text("currency"),
        double("currency_conversion_rate"),
        record(
            "usage",
            vec![
                double("amount"),
                text("unit"),
                double("amount_in_pricing_units"),
                text("pricing_unit"),
            ],
        ),
        repeated(
            "credits",
            vec![
                text("name"),
                double("amount"),
                text("full_name"),
                text("id"),
                text("type"),
            ],
        ),
        record("invoice", vec![text("month")]),
        text("cost_type"),
        double("cost_at_list"),
    ]))
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

/// Rows per Parquet row group: the writer holds one group's pages in memory.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A file being written: text as it is (gzip), or JSON objects, one a line, decoded by
/// a schema and written as Parquet.
trait Rows: Write {
    /// Writes what is buffered and closes the file.
    fn close(self: Box<Self>) -> std::io::Result<()>;
}

impl Rows for Gz {
    fn close(self: Box<Self>) -> std::io::Result<()> {
        self.into_inner().map_err(|e| e.into_error())?.finish()?;
        Ok(())
    }
}

impl Rows for BufWriter<ParquetRows> {
    fn close(self: Box<Self>) -> std::io::Result<()> {
        self.into_inner().map_err(|e| e.into_error())?.finish()
    }
}

/// A new file (its parent folders made); `schema` is the Parquet file's.
fn create(
    path: &Path,
    format: Format,
    schema: impl FnOnce() -> SchemaRef,
) -> Result<Box<dyn Rows>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    Ok(match format {
        Format::Export => Box::new(BufWriter::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))),
        Format::Parquet => Box::new(BufWriter::new(
            ParquetRows::new(file, schema()).map_err(io)?,
        )),
    })
}

fn finish(w: Box<dyn Rows>, path: &Path) -> Result<()> {
    w.close().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// JSON objects in, Parquet row groups out (snappy, as BigQuery and AWS write them).
struct ParquetRows {
    decoder: arrow::json::reader::Decoder,
    writer: ArrowWriter<File>,
}

impl ParquetRows {
    fn new(file: File, schema: SchemaRef) -> std::io::Result<Self> {
        let decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(ROW_GROUP_ROWS)
            .with_strict_mode(true)
            .build_decoder()
            .map_err(std::io::Error::other)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema, Some(properties)).map_err(std::io::Error::other)?;
        Ok(Self { decoder, writer })
    }

    /// Writes the rows decoded so far.
    fn write_batch(&mut self) -> std::io::Result<()> {
        if let Some(batch) = self.decoder.flush().map_err(std::io::Error::other)? {
            self.writer.write(&batch).map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.write_batch()?;
        self.writer.close().map_err(std::io::Error::other)?;
        Ok(())
    }
}

impl Write for ParquetRows {
    /// Decodes `buf`; the decoder stops short of its end when its batch is full.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let used = self.decoder.decode(rest).map_err(std::io::Error::other)?;
            rest = &rest[used..];
            if !rest.is_empty() {
                self.write_batch()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

/// Writes a CUR row: a CSV line of the legacy report, or a CUR 2.0 JSON object for
/// its Parquet file (empty values as nulls, entries in their maps).
fn cur_row(w: &mut impl Write, format: Format, values: &[&str]) -> std::io::Result<()> {
    if format == Format::Export {
        return writeln!(w, "{}", values.join(","));
    }
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut maps: Vec<(&str, Vec<String>)> = Vec::new();
    for ((_, column), value) in CUR_COLUMNS.iter().zip(values) {
        let quoted = || serde_json::Value::from(*value).to_string();
        match *column {
            Cur2::Entry(map, key) => {
                if !maps.iter().any(|(m, _)| *m == map) {
                    maps.push((map, Vec::new()));
                }
                if !value.is_empty()
                    && let Some((_, entries)) = maps.iter_mut().find(|(m, _)| *m == map)
                {
                    entries.push(format!("\"{key}\":{}", quoted()));
                }
            }
            _ if value.is_empty() => {}
            Cur2::Double(name) => fields.push((name, value.to_string())),
            Cur2::Text(name) | Cur2::Time(name) => fields.push((name, quoted())),
        }
    }
    let members: Vec<String> = fields
        .into_iter()
        .map(|(name, value)| format!("\"{name}\":{value}"))
        .chain(
            maps.into_iter()
                .map(|(map, entries)| format!("\"{map}\":{{{}}}", entries.join(","))),
        )
        .collect();
    writeln!(w, "{{{}}}", members.join(","))
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
        let mut w = create(&path, options.format, cur2_schema)?;
        if options.format == Format::Export {
            let header: Vec<&str> = CUR_COLUMNS.iter().map(|(name, _)| *name).collect();
            writeln!(w, "{}", header.join(",")).map_err(io)?;
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
                options.format,
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
                options.format,
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
        finish(w, &path)?;
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
}
