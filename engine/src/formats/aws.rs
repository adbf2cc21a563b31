//! AWS billing exports: the Cost and Usage Report in CSV (legacy `category/Name`
//! headers, or the Athena-style `snake_case` ones) or in Athena's Parquet, and the
//! Detailed Billing Report in CSV.
//!
//! A first pass checks that every row has as many fields as the header (a ragged row
//! is refused with its line number) and finds, among the columns whose names say
//! money, quantity or date, those whose every value parses: they become exact
//! `Decimal128(38, 24)` (14 integer digits, 24 decimals: the synthetic CUR samples
//! print doubles with 21) and UTC timestamps; everything else stays text, as written.
//! A column that should be a number but holds text is kept as text, with a warning.
//!
//! CUR columns are named by AWS's Athena rule (`lineItem/UnblendedCost` →
//! `line_item_unblended_cost`); `resourceTags/user:Name` columns become one map,
//! `resource_tags`, keyed as AWS writes the tag (`user:Name`), so keys that differ
//! only by case stay apart; `costCategory/...` columns become `cost_category`.
//! DBR columns keep their own names, and `is_total_row` marks the StatementTotal,
//! InvoiceTotal, AccountTotal and Rounding rows that must not be summed with usage.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{BATCH_SIZE, BatchSource, ExportKind, Rejected, open_text};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Scale of AWS money and quantity columns.
pub const SCALE: i8 = 24;

/// The canonical schema of a CUR Parquet file: its doubles (costs, rates, amounts)
/// become the exact decimals of the CSV path, its timestamps microseconds in UTC, and
/// its maps (CUR 2.0's `product`, `discount`, ...) maps of text, as in CSV.
pub fn canonical_parquet_schema(file: &Schema) -> SchemaRef {
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Float32 | DataType::Float64 => DataType::Decimal128(38, SCALE),
                DataType::Timestamp(_, _) => {
                    DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
                }
                DataType::Map(_, _) => map_type(),
                other => other.clone(),
            };
            Field::new(f.name(), t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// What a CSV header or a Parquet file's columns say the file is.
pub fn detect(header: &[String]) -> Option<ExportKind> {
    let has = |n: &str| header.iter().any(|h| h == n);
    if header
        .iter()
        .any(|h| h.starts_with("lineItem/") || h.starts_with("line_item_"))
    {
        Some(ExportKind::AwsCur)
    } else if has("RecordType") && (has("UnBlendedCost") || has("Cost")) {
        Some(ExportKind::AwsDbr)
    } else {
        None
    }
}

pub use billq_udfs::aws_name::athena_name;

const NUMBER_WORDS: [&str; 10] = [
    "cost",
    "discount",
    "rate",
    "amount",
    "fee",
    "factor",
    "commitment",
    "quantity",
    "blendedcost",
    "unblendedcost",
];
const TEXT_WORDS: [&str; 9] = [
    "id",
    "code",
    "arn",
    "type",
    "description",
    "name",
    "term",
    "unit",
    "class",
];

/// Whether a column's name says it holds money or a quantity.
fn numeric_name(name: &str) -> bool {
    let words: Vec<String> = athena_name(name).split('_').map(str::to_string).collect();
    words.iter().any(|w| NUMBER_WORDS.contains(&w.as_str()))
        && !words
            .last()
            .is_some_and(|w| TEXT_WORDS.contains(&w.as_str()))
}

/// Whether a column's name says it holds a date and time.
fn date_name(name: &str) -> bool {
    athena_name(name).ends_with("_date")
}

/// A decimal text at scale 24, exactly (`12.5`, `-0.0000001`, `1.801E-7`); `None` if
/// it is not a number or has more digits than the scale keeps.
pub fn parse_decimal(text: &str) -> Option<i128> {
    let t = text.trim();
    let (number, exponent) = match t.split_once(['e', 'E']) {
        Some((n, e)) => (n, e.parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let shift = exponent - frac.len() as i32 + i32::from(SCALE);
    if shift < 0 {
        let div = 10i128.checked_pow((-shift) as u32)?;
        if v % div != 0 {
            return None;
        }
        v /= div;
    } else {
        v = v.checked_mul(10i128.checked_pow(shift as u32)?)?;
    }
    if v.unsigned_abs() >= 10u128.pow(38) {
        return None;
    }
    Some(if negative { -v } else { v })
}

/// A timestamp as AWS writes them (`2023-11-01T00:00:00Z`, `2022-07-01 00:00:00.000`,
/// `2014-09-01 00:00:00`), in microseconds since the epoch; no zone means UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim();
    arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, t)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// How one output column is made from the CSV fields.
#[derive(Debug, Clone)]
enum Column {
    Text(usize),
    Decimal(usize),
    Timestamp(usize),
    /// A map from several fields: (key, field index).
    Map(Vec<(String, usize)>),
    /// `RecordType` is one of the DBR's total rows.
    TotalRow(usize),
    /// A CUR 2.0 map column, written in CSV as a JSON object.
    JsonMap(usize),
}

/// CUR 2.0's map columns: in Parquet they are maps, in CSV JSON objects.
const CUR2_MAPS: [&str; 5] = [
    "resource_tags",
    "cost_category",
    "product",
    "discount",
    "tags",
];

/// A JSON object's entries as text: strings as they are, numbers and booleans as
/// written (so amounts stay exact); `null` entries are left out.
fn json_entries(text: &str) -> serde_json::Result<Vec<(String, String)>> {
    let map: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(text)?;
    let mut out = Vec::with_capacity(map.len());
    for (key, raw) in map {
        let raw = raw.get();
        if raw == "null" {
            continue;
        }
        let value = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw)?
        } else {
            raw.to_string()
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Facts about a file from the first pass.
struct Survey {
    header: Vec<String>,
    numeric: Vec<bool>,
    dates: Vec<bool>,
    warnings: Vec<String>,
    /// Ragged rows set aside in lenient mode.
    rejected: Vec<(u64, Vec<String>)>,
}

/// A reader of an AWS CSV export.
pub struct AwsCsv<'p> {
    display: String,
    kind: ExportKind,
    schema: SchemaRef,
    columns: Vec<Column>,
    records: csv::StringRecordsIntoIter<Box<dyn std::io::BufRead + Send + 'p>>,
    width: usize,
    warnings: Vec<String>,
    rejected: Rejected,
}

fn csv_reader<R: Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader)
}

/// The line a record starts on. The csv crate counts lines one short in CRLF files,
/// so the record number (plus the header) bounds it from below.
fn line_of(position: Option<&csv::Position>) -> u64 {
    position.map_or(0, |p| p.line().max(p.record() + 1))
}

fn csv_error(display: &str, e: csv::Error) -> Error {
    if let csv::ErrorKind::Io(io) = e.kind() {
        // A broken compressed stream: the csv crate does not know the line.
        return Error::BadFile {
            path: display.to_string(),
            message: super::io_message(io),
        };
    }
    let line = line_of(e.position());
    Error::BadRow {
        path: display.to_string(),
        line,
        message: format!("unreadable CSV: {e}"),
    }
}

fn survey(
    path: &Path,
    display: &str,
    packing: super::Packing,
    lenient: bool,
) -> Result<(ExportKind, Survey)> {
    let mut reader = csv_reader(open_text(path, packing, None)?);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(display, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let kind = detect(&header).ok_or_else(|| Error::UnknownFormat {
        path: display.to_string(),
        reason:
            "CSV whose header is neither an AWS Cost and Usage Report nor a Detailed Billing Report"
                .into(),
    })?;
    let money: Vec<bool> = header
        .iter()
        .map(|h| {
            let name = if kind == ExportKind::AwsCur {
                athena_name(h)
            } else {
                h.clone()
            };
            kind.money_columns().contains(&name.as_str())
        })
        .collect();
    // Tag and cost category values become map entries, always text.
    let json = |h: &str| kind == ExportKind::AwsCur && CUR2_MAPS.contains(&h);
    let mapped = |h: &str| {
        json(h)
            || (kind == ExportKind::AwsCur
                && (h.starts_with("resourceTags/") || h.starts_with("costCategory/")))
    };
    let json: Vec<bool> = header.iter().map(|h| json(h)).collect();
    let mut numeric: Vec<bool> = header
        .iter()
        .map(|h| !mapped(h) && numeric_name(h))
        .collect();
    let mut dates: Vec<bool> = header
        .iter()
        .map(|h| !mapped(h) && date_name(h) && !numeric_name(h))
        .collect();
    let mut warned = vec![false; header.len()];
    let mut warnings = Vec::new();
    let mut rejected = Vec::new();
    let mut rows = 0u64;
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(display, e))?;
        let line = line_of(record.position());
        if record.len() != header.len() && lenient {
            rejected.push((line, record.iter().map(str::to_string).collect()));
            continue;
        }
        if record.len() != header.len() {
            return Err(Error::BadRow {
                path: display.to_string(),
                line,
                message: format!(
                    "{} fields, but the header has {} (a ragged row, or a header longer than its rows)",
                    record.len(),
                    header.len()
                ),
            });
        }
        rows += 1;
        for (i, value) in record.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            if json[i]
                && let Err(e) = json_entries(value)
            {
                return Err(Error::BadRow {
                    path: display.to_string(),
                    line,
                    message: format!("column {}: not a JSON object of values ({e})", header[i]),
                });
            }
            if numeric[i] && parse_decimal(value).is_none() {
                if money[i] {
                    return Err(Error::BadRow {
                        path: display.to_string(),
                        line,
                        message: format!("column {}: {value:?} is not an amount", header[i]),
                    });
                }
                numeric[i] = false;
                warned[i] = true;
                warnings.push(format!(
                    "{display}:{line}: column {} holds {value:?}, not a number: kept as text",
                    header[i]
                ));
            }
            if dates[i] && parse_timestamp(value).is_none() {
                dates[i] = false;
                warned[i] = true;
                warnings.push(format!(
                    "{display}:{line}: column {} holds {value:?}, not a date: kept as text",
                    header[i]
                ));
            }
            if !warned[i] && looks_spreadsheet_mangled(&header[i], value) {
                warned[i] = true;
                warnings.push(format!(
                    "{display}:{line}: {} is {value:?}, an id a spreadsheet turned into a number: kept as text",
                    header[i]
                ));
                dates[i] = false;
            }
        }
    }
    if rows == 0 && rejected.is_empty() {
        return Err(Error::EmptyFile {
            path: display.to_string(),
        });
    }
    Ok((
        kind,
        Survey {
            header,
            numeric,
            dates,
            warnings,
            rejected,
        },
    ))
}

/// `3.57E+11` in an account or record id column.
fn looks_spreadsheet_mangled(header: &str, value: &str) -> bool {
    let id = header.ends_with("Id") || header.ends_with("_id") || header.ends_with("ID");
    id && value.contains(['E', 'e'])
        && value
            .replace(['E', 'e', '+', '.'], "")
            .bytes()
            .all(|b| b.is_ascii_digit())
}

impl<'p> AwsCsv<'p> {
    /// Surveys the file, then opens it for reading.
    pub fn open(
        path: &Path,
        display: &str,
        packing: super::Packing,
        progress: Option<&'p dyn Progress>,
        lenient: bool,
    ) -> Result<Self> {
        let (kind, survey) = survey(path, display, packing, lenient)?;
        let (fields, columns) = plan(kind, &survey);
        let reader = csv_reader(open_text(path, packing, progress)?);
        Ok(Self {
            display: display.to_string(),
            kind,
            schema: Arc::new(Schema::new(fields)),
            columns,
            records: reader.into_records(),
            width: survey.header.len(),
            warnings: survey.warnings,
            rejected: Rejected {
                header: survey.header.clone(),
                rows: survey.rejected,
            },
        })
    }
}

fn map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The output fields and how each is made.
fn plan(kind: ExportKind, s: &Survey) -> (Vec<Field>, Vec<Column>) {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    let mut tags = Vec::new();
    let mut categories = Vec::new();
    for (i, h) in s.header.iter().enumerate() {
        if kind == ExportKind::AwsCur {
            if CUR2_MAPS.contains(&h.as_str()) {
                fields.push(Field::new(h, map_type(), true));
                columns.push(Column::JsonMap(i));
                continue;
            }
            if let Some(key) = h.strip_prefix("resourceTags/") {
                tags.push((key.to_string(), i));
                continue;
            }
            if let Some(key) = h.strip_prefix("costCategory/") {
                categories.push((key.to_string(), i));
                continue;
            }
        }
        let mut name = match kind {
            ExportKind::AwsCur => athena_name(h),
            _ => h.clone(),
        };
        while fields.iter().any(|f: &Field| f.name() == &name) {
            name.push_str("_2");
        }
        let (data_type, column) = if s.numeric[i] {
            (DataType::Decimal128(38, SCALE), Column::Decimal(i))
        } else if s.dates[i] {
            (
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                Column::Timestamp(i),
            )
        } else {
            (DataType::Utf8, Column::Text(i))
        };
        fields.push(Field::new(name, data_type, true));
        columns.push(column);
        if kind == ExportKind::AwsDbr && h == "RecordType" {
            fields.push(Field::new("is_total_row", DataType::Boolean, true));
            columns.push(Column::TotalRow(i));
        }
    }
    for (name, entries) in [("resource_tags", tags), ("cost_category", categories)] {
        if !entries.is_empty() {
            fields.push(Field::new(name, map_type(), true));
            columns.push(Column::Map(entries));
        }
    }
    (fields, columns)
}

const TOTAL_ROWS: [&str; 4] = ["StatementTotal", "InvoiceTotal", "AccountTotal", "Rounding"];

impl AwsCsv<'_> {
    fn build(&self, records: &[csv::StringRecord]) -> Result<RecordBatch> {
        let arrays = self
            .columns
            .iter()
            .map(|c| -> Result<ArrayRef> {
                Ok(match c {
                    Column::Text(i) => {
                        let mut b = StringBuilder::new();
                        records
                            .iter()
                            .for_each(|r| b.append_option(Some(&r[*i]).filter(|v| !v.is_empty())));
                        Arc::new(b.finish())
                    }
                    Column::Decimal(i) => {
                        let mut b = Decimal128Builder::new().with_precision_and_scale(38, SCALE)?;
                        records
                            .iter()
                            .for_each(|r| b.append_option(parse_decimal(&r[*i])));
                        Arc::new(b.finish())
                    }
                    Column::Timestamp(i) => {
                        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                        records
                            .iter()
                            .for_each(|r| b.append_option(parse_timestamp(&r[*i])));
                        Arc::new(b.finish())
                    }
                    Column::TotalRow(i) => {
                        let mut b = BooleanBuilder::new();
                        records
                            .iter()
                            .for_each(|r| b.append_value(TOTAL_ROWS.contains(&&r[*i])));
                        Arc::new(b.finish())
                    }
                    Column::JsonMap(i) => {
                        let mut b =
                            MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                        for r in records {
                            // Checked in the survey: every value parses.
                            for (key, value) in json_entries(&r[*i]).unwrap_or_default() {
                                b.keys().append_value(key);
                                b.values().append_value(value);
                            }
                            b.append(true)?;
                        }
                        Arc::new(b.finish())
                    }
                    Column::Map(entries) => {
                        let mut b =
                            MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                        for r in records {
                            for (key, i) in entries {
                                if !r[*i].is_empty() {
                                    b.keys().append_value(key);
                                    b.values().append_value(&r[*i]);
                                }
                            }
                            b.append(true)?;
                        }
                        Arc::new(b.finish())
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let arrays = arrays
            .into_iter()
            .zip(self.schema.fields())
            .map(|(a, f)| arrow::compute::cast(&a, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

impl BatchSource for AwsCsv<'_> {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn rejected(&self) -> Option<Rejected> {
        (!self.rejected.rows.is_empty()).then(|| self.rejected.clone())
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut records = Vec::with_capacity(BATCH_SIZE);
        while records.len() < BATCH_SIZE {
            let Some(record) = self.records.next() else {
                break;
            };
            let record = record.map_err(|e| csv_error(&self.display, e))?;
            let set_aside = |r: &csv::StringRecord| {
                self.rejected
                    .rows
                    .iter()
                    .any(|(line, _)| *line == line_of(r.position()))
            };
            if record.len() == self.width {
                records.push(record);
            } else if !set_aside(&record) {
                return Err(Error::BadFile {
                    path: self.display.clone(),
                    message: "changed while it was read".into(),
                });
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        self.build(&records).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_names_decide_what_is_money() {
        assert_eq!(parse_decimal("0.0000000001"), Some(100_000_000_000_000));
        assert_eq!(parse_decimal("-12.5"), Some(-125 * 10i128.pow(23)));
        assert_eq!(parse_decimal("1.801E-7"), Some(180_100_000_000_000_000));
        assert_eq!(
            parse_decimal("2.5893953072562468e-05"),
            Some(25_893_953_072_562_468_000)
        );
        assert_eq!(parse_decimal("1e5"), Some(100_000 * 10i128.pow(24)));
        assert_eq!(parse_decimal("1e-25"), None);
        assert_eq!(parse_decimal("123456789012345"), None);
        assert_eq!(parse_decimal("abc"), None);
        assert!(numeric_name("lineItem/UnblendedCost"));
        assert!(numeric_name("UsageQuantity"));
        assert!(!numeric_name("pricing/RateCode"));
        assert!(!numeric_name("lineItem/CurrencyCode"));
        assert!(date_name("lineItem/UsageStartDate"));
        assert_eq!(
            parse_timestamp("2022-07-01 00:00:00.000"),
            Some(1_656_633_600_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-01T00:00:00.000Z"),
            Some(1_698_796_800_000_000)
        );
        assert!(looks_spreadsheet_mangled("PayerAccountId", "3.57E+11"));
        assert!(!looks_spreadsheet_mangled("PayerAccountId", "123456789012"));
    }
}
