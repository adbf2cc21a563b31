//! Export formats: how a file is recognised, which table its rows belong to, and how
//! it is read as a stream of Arrow record batches in its provider's documented schema.
//!
//! Every reader is a [`BatchSource`]; conversion, verification and `--table` queries
//! see only that trait, so a new provider is one more reader behind it.

pub mod aws;
pub mod azure;
mod azure_api;
pub mod conform;
pub mod csv_export;
mod extract;
mod focus;
pub mod gcp;
mod gcp_file_export;
mod json_arrays;
mod ndjson;
mod packing;
mod times;

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::progress::Progress;
pub use packing::Packing;
use packing::open_text;

/// Rows per record batch read from a source.
pub const BATCH_SIZE: usize = 8192;

/// The kind of export a file holds; each kind is one table of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportKind {
    /// GCP standard usage cost export.
    GcpStandard,
    /// GCP detailed (resource-level) usage cost export.
    GcpResource,
    /// GCP pricing export.
    GcpPricing,
    /// GCP's pre-BigQuery file export (JSON).
    GcpFileExport,
    /// AWS Cost and Usage Report (legacy, Athena-style or CUR 2.0 columns).
    AwsCur,
    /// AWS Detailed Billing Report (legacy).
    AwsDbr,
    /// Azure Cost Management export (actual or amortized cost, EA, MCA or pay-as-you-go).
    AzureCost,
    /// Azure Usage Aggregates API pages.
    AzureUsage,
    /// Azure RateCard API replies, one row per price tier.
    AzureRateCard,
    /// A provider's FinOps FOCUS export.
    FocusExport,
}

impl ExportKind {
    /// Every kind, in a stable order.
    pub const ALL: [ExportKind; 10] = [
        ExportKind::GcpStandard,
        ExportKind::GcpResource,
        ExportKind::GcpPricing,
        ExportKind::GcpFileExport,
        ExportKind::AwsCur,
        ExportKind::AwsDbr,
        ExportKind::AzureCost,
        ExportKind::AzureUsage,
        ExportKind::AzureRateCard,
        ExportKind::FocusExport,
    ];

    /// The table name a store registers this kind under.
    pub fn table(self) -> &'static str {
        match self {
            ExportKind::GcpStandard => "gcp_billing_export",
            ExportKind::GcpResource => "gcp_billing_export_resource",
            ExportKind::GcpPricing => "gcp_pricing_export",
            ExportKind::GcpFileExport => "gcp_file_export",
            ExportKind::AwsCur => "aws_cur",
            ExportKind::AwsDbr => "aws_dbr",
            ExportKind::AzureCost => "azure_cost",
            ExportKind::AzureUsage => "azure_usage",
            ExportKind::AzureRateCard => "azure_ratecard",
            ExportKind::FocusExport => "focus_export",
        }
    }

    /// The kind whose table has this name.
    pub fn from_table(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.table() == name)
    }

    /// The provider folder of the store.
    pub fn provider(self) -> &'static str {
        match self {
            ExportKind::AwsCur | ExportKind::AwsDbr => "aws",
            ExportKind::AzureCost | ExportKind::AzureUsage | ExportKind::AzureRateCard => "azure",
            ExportKind::FocusExport => "focus",
            _ => "gcp",
        }
    }

    /// The column naming the billing account a row is billed to.
    pub fn account_column(self) -> &'static str {
        match self {
            ExportKind::GcpFileExport => "accountId",
            ExportKind::AwsCur => "bill_payer_account_id",
            ExportKind::AwsDbr => "PayerAccountId",
            ExportKind::AzureCost => "billingAccountId",
            ExportKind::AzureUsage => "subscriptionId",
            ExportKind::AzureRateCard => "currency",
            ExportKind::FocusExport => "BillingAccountId",
            _ => "billing_account_id",
        }
    }

    /// Columns that identify a line item, a value per row: never worth a dictionary.
    pub fn line_item_ids(self) -> &'static [&'static str] {
        match self {
            ExportKind::AwsCur => &["identity_line_item_id"],
            ExportKind::AwsDbr => &["RecordId"],
            _ => &[],
        }
    }

    /// Money columns (dotted paths through records and arrays) whose exact totals
    /// the catalog records and `verify` reconciles.
    pub fn money_columns(self) -> &'static [&'static str] {
        match self {
            ExportKind::GcpStandard | ExportKind::GcpResource => {
                &["cost", "cost_at_list", "credits.amount"]
            }
            ExportKind::GcpPricing => &[
                "list_price.tiered_rates.usd_amount",
                "list_price.tiered_rates.account_currency_amount",
                "billing_account_price.tiered_rates.usd_amount",
                "billing_account_price.tiered_rates.account_currency_amount",
            ],
            ExportKind::GcpFileExport => &["cost.amount", "credits.amount"],
            ExportKind::AwsCur => &[
                "line_item_unblended_cost",
                "line_item_blended_cost",
                "line_item_net_unblended_cost",
                "pricing_public_on_demand_cost",
                "reservation_effective_cost",
                "savings_plan_savings_plan_effective_cost",
            ],
            ExportKind::AwsDbr => &["UnBlendedCost", "BlendedCost"],
            ExportKind::AzureCost => &[
                "costInBillingCurrency",
                "costInUsd",
                "paygCostInBillingCurrency",
            ],
            // Not money, but what must reconcile: metered quantities and prices.
            ExportKind::AzureUsage => &["quantity"],
            ExportKind::AzureRateCard => &["rate"],
            ExportKind::FocusExport => {
                &["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"]
            }
        }
    }

    /// The time column rows are sorted by within a stored file.
    pub fn time_column(self) -> &'static str {
        match self {
            ExportKind::GcpStandard | ExportKind::GcpResource => "usage_start_time",
            ExportKind::GcpPricing => "export_time",
            ExportKind::GcpFileExport => "startTime",
            ExportKind::AwsCur => "line_item_usage_start_date",
            ExportKind::AwsDbr => "UsageStartDate",
            ExportKind::AzureCost => "date",
            ExportKind::AzureUsage => "usageStartTime",
            ExportKind::AzureRateCard => "effectiveDate",
            ExportKind::FocusExport => "ChargePeriodStart",
        }
    }
}

/// A stream of record batches read from one export file.
pub trait BatchSource: Send {
    /// The kind of export the file holds.
    fn kind(&self) -> ExportKind;
    /// The schema of every batch: the documented schema plus the file's own extra fields.
    fn schema(&self) -> SchemaRef;
    /// The next batch, or `None` at the end of the file.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>>;
    /// What the reader noticed and kept as it was (text where numbers were expected).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Rows set aside in lenient mode: their line and raw fields, header first.
    fn rejected(&self) -> Option<Rejected> {
        None
    }
    /// Columns renamed from the source's own names: (column, name in the file).
    fn source_names(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// For a reader whose decoding can run on other threads: the decoder of the raw
    /// chunks [`BatchSource::next_chunk`] reads. Decoded in order, the chunks are the
    /// batches [`BatchSource::next_batch`] returns.
    fn chunk_decoder(&self) -> Option<Arc<dyn DecodeChunk>> {
        None
    }
    /// The raw input of the next batch, for the [`BatchSource::chunk_decoder`].
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        Ok(None)
    }
}

/// The raw input of one batch, read in order and decoded on any thread.
#[derive(Debug)]
pub enum Chunk {
    /// Lines of text (newline-delimited JSON), with the (line number, end offset in
    /// `text`) of each.
    Lines {
        text: Vec<u8>,
        lines: Vec<(u64, usize)>,
    },
    /// CSV records, split into fields.
    Records(csv_export::Records),
    /// A batch as a columnar file stores it, not yet conformed to the documented
    /// schema, and the file's row number of its first row (from 1).
    Stored { batch: RecordBatch, first_row: u64 },
}

/// Decodes raw chunks into batches; shared by the threads that decode.
pub trait DecodeChunk: Send + Sync {
    fn decode(&self, chunk: Chunk) -> Result<RecordBatch>;
}

/// Rows a lenient read set aside, to be quarantined beside the store.
#[derive(Debug, Clone, Default)]
pub struct Rejected {
    pub header: Vec<String>,
    /// (line, fields) of each rejected row.
    pub rows: Vec<(u64, Vec<String>)>,
}

/// How a file is encoded, found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Newline-delimited JSON (`bq extract --destination_format NEWLINE_DELIMITED_JSON`).
    NdJson,
    /// One JSON array of records (GCP's pre-BigQuery file export).
    JsonArray,
    /// Apache Parquet.
    Parquet,
    /// Apache Avro object container file.
    Avro,
    /// Comma-separated values with a header (AWS exports).
    Csv,
}

/// What [`sniff`] found: the encoding and how the file packs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub encoding: Encoding,
    pub packing: Packing,
}

/// Recognises a local file's encoding from its content (through gzip or zip, for all
/// but Parquet, which cannot be read from a stream).
pub fn sniff(path: &Path, display: &str) -> Result<Sniffed> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = [0u8; 4];
    let n = read_up_to(file, &mut raw).map_err(|e| Error::io(path, e))?;
    let packing = packing::detect(path, display, &raw[..n])?;
    let mut reader = open_text(path, packing, None)?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut reader, &mut head).map_err(|e| read_error(display, 1, e))?;
    let head = &head[..n];
    let first = head
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
        .map_or_else(|| first_non_space(&mut reader), |b| Ok(Some(b)))
        .map_err(|e| read_error(display, 1, e))?;
    let encoding = match first {
        None => {
            return Err(Error::EmptyFile {
                path: display.to_string(),
            });
        }
        Some(_) if packing == Packing::Plain && head == b"PAR1" => Encoding::Parquet,
        Some(_) if head == b"Obj\x01" => Encoding::Avro,
        Some(b'{') => Encoding::NdJson,
        Some(b'[') => Encoding::JsonArray,
        Some(_) if head.contains(&b',') || first_line_has_comma(&mut reader) => Encoding::Csv,
        Some(other) => {
            return Err(Error::UnknownFormat {
                path: display.to_string(),
                reason: format!(
                    "expected newline-delimited JSON, a JSON array, CSV, Parquet or Avro (first byte {:?})",
                    other as char
                ),
            });
        }
    };
    Ok(Sniffed { encoding, packing })
}

/// Rows a sampled inference reads before the file is decoded.
pub const SAMPLE: usize = 5_000;

/// How much of a file its schema is inferred from (newline-delimited JSON), or its
/// columns' types surveyed (CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inference {
    /// The first lines: one pass over the file. A later line that the sample did not
    /// foresee ends the read with [`Error::SchemaWidened`].
    Sample,
    /// Every line: a pass to infer, then one to decode.
    Whole,
}

/// Reads the export file at `path` through `read`, which gets its batches: from a
/// sampled schema first and, if the sample proved too narrow, again from the whole
/// file's. With `lenient`, rows of the wrong shape are set aside (see
/// [`BatchSource::rejected`]) instead of refused.
pub fn read_export<T>(
    path: &Path,
    display: &str,
    progress: Option<&dyn Progress>,
    lenient: bool,
    mut read: impl FnMut(Box<dyn BatchSource + '_>) -> Result<T>,
) -> Result<T> {
    match read(open(path, display, progress, lenient, Inference::Sample)?) {
        Err(Error::SchemaWidened { .. }) => {
            read(open(path, display, progress, lenient, Inference::Whole)?)
        }
        other => other,
    }
}

/// Opens the export file at `path` for reading as batches.
fn open<'p>(
    path: &Path,
    display: &str,
    progress: Option<&'p dyn Progress>,
    lenient: bool,
    inference: Inference,
) -> Result<Box<dyn BatchSource + 'p>> {
    let sniffed = sniff(path, display)?;
    if matches!(sniffed.encoding, Encoding::NdJson)
        && let Some(reply) = azure_api::ApiReply::open(path, display, sniffed.packing)?
    {
        return Ok(Box::new(reply));
    }
    match sniffed.encoding {
        Encoding::NdJson => Ok(Box::new(ndjson::JsonLines::open(
            path,
            display,
            sniffed.packing,
            progress,
            inference,
        )?)),
        Encoding::JsonArray => Ok(Box::new(gcp_file_export::open(
            path,
            display,
            sniffed.packing,
        )?)),
        Encoding::Parquet => Ok(Box::new(extract::Extract::parquet(path, display)?)),
        Encoding::Csv => Ok(Box::new(csv_export::CsvExport::open(
            path,
            display,
            sniffed.packing,
            progress,
            lenient,
            &[aws::roles, azure::roles, focus::roles],
            inference,
        )?)),
        Encoding::Avro => Ok(Box::new(extract::Extract::avro(
            path,
            display,
            sniffed.packing,
            progress,
        )?)),
    }
}

/// What an I/O error met while unpacking a file means to a user.
fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "truncated gzip stream (unexpected end of file)".to_string()
        }
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            format!("corrupt compressed data: {e}")
        }
        _ => e.to_string(),
    }
}

/// Turns an I/O error met while reading line `line` of a file into a user-facing one.
fn read_error(display: &str, line: u64, e: std::io::Error) -> Error {
    let message = io_message(&e);
    Error::BadRow {
        path: display.to_string(),
        line,
        message,
    }
}

/// Whether the rest of the first line holds a comma (a CSV header).
fn first_line_has_comma(reader: &mut dyn BufRead) -> bool {
    let mut line = Vec::new();
    let _ = reader.take(1 << 20).read_until(b'\n', &mut line);
    line.contains(&b',')
}

fn first_non_space(reader: &mut dyn BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(pos) = buf.iter().position(|b| !b.is_ascii_whitespace()) {
            return Ok(Some(buf[pos]));
        }
        let len = buf.len();
        reader.consume(len);
    }
}

fn read_up_to(mut r: impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The schema of a kind with a file's extra fields laid over it.
fn schema_for(kind: ExportKind, inferred: &arrow::datatypes::Fields) -> SchemaRef {
    let documented = gcp::documented_schema(kind);
    Arc::new(arrow::datatypes::Schema::new(gcp::overlay(
        documented.fields(),
        inferred,
    )))
}
