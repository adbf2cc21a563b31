//! The providers' CSV exports (AWS's CUR and DBR, Azure's cost exports), read by one
//! reader: each provider only says what its headers mean, as a [`Role`] per column.
//!
//! A survey of the first [`SAMPLE`] rows checks that the typed columns hold what their
//! names promise: numbers become exact `Decimal128(38, 24)` (14 integer digits, 24
//! decimals: the synthetic CUR samples print doubles with 21), dates UTC timestamps,
//! JSON objects maps of text. A number or date column holding something else is kept
//! as text, with a warning; a money column holding something that is not an amount is
//! refused with its line and column. Every row must have as many fields as the header:
//! a ragged row is refused with its line number, or set aside with `--lenient`.
//!
//! The rest of the file is checked as it is decoded, on every core, in the same pass.
//! A value the sample did not foresee makes the decoder survey the whole file, which
//! either names the bad line as above or returns [`Error::SchemaWidened`] (a column
//! kept as text, a warning to give), and the file is read again from the whole
//! survey ([`super::Inference::Whole`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use billq_udfs::decimal::ten_pow;

use super::{
    BATCH_SIZE, BatchSource, Chunk, DecodeChunk, ExportKind, Inference, Packing, Rejected, SAMPLE,
    open_text,
};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Scale of the money and quantity decimals of CSV exports.
pub const SCALE: i8 = 24;

/// What a CSV column is, by its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Text, as written, under this name.
    Text(String),
    /// An exact decimal; a money column refuses values that are not amounts.
    Number { name: String, money: bool },
    /// A date and time.
    Date(String),
    /// A JSON object (with or without its braces), read as a map of text.
    Json(String),
    /// An entry of the map column `map`, under `key` (`resourceTags/user:Name`).
    Entry { map: &'static str, key: String },
    /// The DBR's `RecordType`: text, and an `is_total_row` column after it.
    RecordType(String),
}

impl Role {
    fn downgraded(&self) -> Role {
        match self {
            Role::Number { name, .. } | Role::Date(name) => Role::Text(name.clone()),
            other => other.clone(),
        }
    }
}

/// An exact decimal at scale 24 of a number's text (`12.5`, `-0.0000001`, `1.801E-7`);
/// `None` if it is not a number or has more digits than the scale keeps.
pub fn parse_decimal(text: &str) -> Option<i128> {
    let t = text.trim_ascii();
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
    // At most 38 digits after leading zeros: the sum below cannot overflow.
    let int = int.trim_start_matches('0');
    if int.len() + frac.len() > 38 {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    let shift = exponent - frac.len() as i32 + i32::from(SCALE);
    if shift < 0 {
        let div = ten_pow(shift.unsigned_abs())?;
        if v % div != 0 {
            return None;
        }
        v /= div;
    } else {
        v = v.checked_mul(ten_pow(shift as u32)?)?;
    }
    if v.unsigned_abs() >= 10u128.pow(38) {
        return None;
    }
    Some(if negative { -v } else { v })
}

/// A date and time as the exports write them, in microseconds since the epoch, UTC
/// where no zone is given: ISO 8601 (`2023-11-01T00:00:00Z`, `2022-07-01 00:00:00.000`)
/// or US month-first dates (`09/01/2023`, `3/1/2021`, `3/1/21`, Azure's EA exports).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim_ascii();
    if let Ok(micros) = super::times::parse_utc(t) {
        return Some(micros);
    }
    let (date, time) = t.split_once(' ').unwrap_or((t, ""));
    let mut parts = date.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let year: i32 = match y.len() {
        4 => y.parse().ok()?,
        2 => 2000 + y.parse::<i32>().ok()?,
        _ => return None,
    };
    let day = chrono::NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)?;
    let at = if time.is_empty() {
        day.and_hms_opt(0, 0, 0)?
    } else {
        chrono::NaiveDateTime::parse_from_str(&format!("{day} {time}"), "%Y-%m-%d %H:%M:%S")
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(&format!("{day} {time}"), "%Y-%m-%d %H:%M")
            })
            .ok()?
    };
    Some(at.and_utc().timestamp_micros())
}

/// A JSON object's entries as text: strings as they are, numbers and booleans as
/// written (so amounts stay exact); `null` entries are left out. Azure writes tags
/// without the enclosing braces (`"env": "prod","team": "x"`): those are added.
pub fn json_entries(text: &str) -> serde_json::Result<Vec<(String, String)>> {
    let t = text.trim();
    let wrapped;
    let object = if t.starts_with('{') {
        t
    } else {
        wrapped = format!("{{{t}}}");
        &wrapped
    };
    let map: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(object)?;
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

/// The map type of tags and other key/value columns: text keys and values, the type
/// `tags_map` returns.
pub use billq_udfs::billing::tags_map::map_type;

/// The text a kind of export writes for a missing value, besides the empty field:
/// FOCUS's samples write `NULL`.
fn null_text(kind: ExportKind) -> Option<&'static str> {
    (kind == ExportKind::FocusExport).then_some("NULL")
}

/// A provider's reading of a CSV header: the export kind and each column's role;
/// `None` if the header is not that provider's.
pub type Rules = fn(&[String]) -> Option<(ExportKind, Vec<Role>)>;

/// How one output column is made from the CSV fields.
#[derive(Debug, Clone)]
enum Column {
    Text(usize),
    Decimal(usize),
    Timestamp(usize),
    JsonMap(usize),
    /// A map from several fields: (key, field index).
    Map(Vec<(String, usize)>),
    /// `RecordType` is one of the DBR's total rows.
    TotalRow(usize),
}

/// Facts about a file (or its first rows) from a survey.
struct Survey {
    kind: ExportKind,
    header: Vec<String>,
    roles: Vec<Role>,
    warnings: Vec<String>,
    /// Ragged rows set aside in lenient mode.
    rejected: Vec<(u64, Vec<String>)>,
    /// The last line surveyed, if the survey stopped at its sample; `None` if it read
    /// the whole file.
    sampled_to: Option<u64>,
    /// Whether a warning was given for each column.
    warned: Vec<bool>,
}

/// A reader of a provider's CSV export: records are parsed in order, and a
/// [`Build`] turns each chunk of them into a batch, on any thread.
pub struct CsvExport<'p> {
    display: String,
    kind: ExportKind,
    build: Arc<Build>,
    reader: csv::Reader<Box<dyn std::io::BufRead + Send + 'p>>,
    /// The record read last, its buffers kept for the next.
    record: csv::StringRecord,
    width: usize,
    /// The longest chunk's text so far: the next one's is allocated that long.
    chunk_bytes: usize,
    lenient: bool,
    /// Ragged rows up to this line were set aside by the survey.
    surveyed_to: u64,
    warnings: Vec<String>,
    rejected: Rejected,
    renamed: Vec<(String, String)>,
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

/// Whether a column's name says it holds ids.
fn is_id(header: &str) -> bool {
    header.ends_with("Id") || header.ends_with("_id") || header.ends_with("ID")
}

/// `3.57E+11` in an id column: a spreadsheet turned the id into a number.
fn looks_spreadsheet_mangled(header: &str, value: &str) -> bool {
    is_id(header)
        && value.contains(['E', 'e'])
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'E' | b'e' | b'+' | b'.'))
}

/// A row with a different number of fields than the header.
fn ragged(display: &str, line: u64, fields: usize, header: usize) -> Error {
    Error::BadRow {
        path: display.to_string(),
        line,
        message: format!(
            "{fields} fields, but the header has {header} (a ragged row, or a header longer than its rows)"
        ),
    }
}

/// Surveys the file's rows, the first `limit` of them if given.
fn survey(
    path: &Path,
    display: &str,
    packing: Packing,
    lenient: bool,
    rules: &[Rules],
    limit: Option<usize>,
) -> Result<Survey> {
    let mut reader = csv_reader(open_text(path, packing, None)?);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(display, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let (kind, mut roles) = rules
        .iter()
        .find_map(|r| r(&header))
        .ok_or_else(|| Error::UnknownFormat {
            path: display.to_string(),
            reason: "CSV whose header is not a billing export billq knows (AWS Cost and Usage Report or Detailed Billing Report, Azure cost export)".into(),
        })?;
    let mut warned = vec![false; header.len()];
    let mut warnings = Vec::new();
    let mut rejected = Vec::new();
    let mut rows = 0u64;
    let mut sampled_to = None;
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_error(display, e))?;
        let line = line_of(record.position());
        if limit.is_some_and(|limit| n == limit) {
            sampled_to = Some(line - 1);
            break;
        }
        if record.len() != header.len() && lenient {
            rejected.push((line, record.iter().map(str::to_string).collect()));
            continue;
        }
        if record.len() != header.len() {
            return Err(ragged(display, line, record.len(), header.len()));
        }
        rows += 1;
        for (i, value) in record.iter().enumerate() {
            if value.is_empty() || Some(value) == null_text(kind) {
                continue;
            }
            let bad = |what: &str| Error::BadRow {
                path: display.to_string(),
                line,
                message: format!("column {}: {value:?} is not {what}", header[i]),
            };
            let kept_as_text = match &roles[i] {
                Role::Number { money: true, .. } if parse_decimal(value).is_none() => {
                    return Err(bad("an amount"));
                }
                Role::Number { .. } if parse_decimal(value).is_none() => Some("a number"),
                Role::Date(_) if parse_timestamp(value).is_none() => Some("a date"),
                Role::Json(_) => {
                    if let Err(e) = json_entries(value) {
                        return Err(Error::BadRow {
                            path: display.to_string(),
                            line,
                            message: format!(
                                "column {}: not a JSON object of values ({e})",
                                header[i]
                            ),
                        });
                    }
                    None
                }
                Role::Text(_) if !warned[i] && looks_spreadsheet_mangled(&header[i], value) => {
                    warned[i] = true;
                    warnings.push(format!(
                        "{display}:{line}: {} is {value:?}, an id a spreadsheet turned into a number: kept as text",
                        header[i]
                    ));
                    None
                }
                _ => None,
            };
            if let Some(what) = kept_as_text {
                roles[i] = roles[i].downgraded();
                warned[i] = true;
                warnings.push(format!(
                    "{display}:{line}: column {} holds {value:?}, not {what}: kept as text",
                    header[i]
                ));
            }
        }
    }
    if rows == 0 && rejected.is_empty() {
        warnings.push(format!(
            "{display}: a header and no rows (an export of a period without charges)"
        ));
    }
    Ok(Survey {
        kind,
        header,
        roles,
        warnings,
        rejected,
        sampled_to,
        warned,
    })
}

impl<'p> CsvExport<'p> {
    /// Surveys the file (its first rows, or all of them) with the first of `rules`
    /// that knows its header, then opens it for reading.
    pub fn open(
        path: &Path,
        display: &str,
        packing: Packing,
        progress: Option<&'p dyn Progress>,
        lenient: bool,
        rules: &[Rules],
        inference: Inference,
    ) -> Result<Self> {
        let limit = (inference == Inference::Sample).then_some(SAMPLE);
        let survey = survey(path, display, packing, lenient, rules, limit)?;
        let (fields, columns) = plan(&survey.roles);
        let renamed = columns
            .iter()
            .zip(&fields)
            .filter_map(|(c, f)| match c {
                Column::Text(i)
                | Column::Decimal(i)
                | Column::Timestamp(i)
                | Column::JsonMap(i)
                    if &survey.header[*i] != f.name() =>
                {
                    Some((f.name().clone(), survey.header[*i].clone()))
                }
                _ => None,
            })
            .collect();
        let reader = csv_reader(open_text(path, packing, progress)?);
        // Id columns the sample found no spreadsheet-mangled value in: watched.
        let watched = match survey.sampled_to {
            Some(_) => (0..survey.header.len())
                .filter(|i| {
                    matches!(survey.roles[*i], Role::Text(_))
                        && is_id(&survey.header[*i])
                        && !survey.warned[*i]
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            display: display.to_string(),
            kind: survey.kind,
            build: Arc::new(Build {
                schema: Arc::new(Schema::new(fields)),
                columns,
                null: null_text(survey.kind),
                header: survey.header.clone(),
                watched,
                recheck: Recheck {
                    path: path.to_path_buf(),
                    display: display.to_string(),
                    packing,
                    lenient,
                    rules: rules.to_vec(),
                    sample: survey
                        .sampled_to
                        .map(|_| (survey.roles.clone(), survey.warnings.clone())),
                },
            }),
            reader,
            record: csv::StringRecord::new(),
            width: survey.header.len(),
            chunk_bytes: 0,
            lenient,
            surveyed_to: survey.sampled_to.unwrap_or(u64::MAX),
            warnings: survey.warnings,
            rejected: Rejected {
                header: survey.header,
                rows: survey.rejected,
            },
            renamed,
        })
    }
}

/// The output fields and how each is made.
fn plan(roles: &[Role]) -> (Vec<Field>, Vec<Column>) {
    let mut fields: Vec<Field> = Vec::new();
    let mut columns = Vec::new();
    let mut maps: Vec<(&'static str, Vec<(String, usize)>)> = Vec::new();
    let push = |fields: &mut Vec<Field>, name: &str, data_type: DataType| {
        let mut name = name.to_string();
        while fields.iter().any(|f| f.name() == &name) {
            name.push_str("_2");
        }
        fields.push(Field::new(name, data_type, true));
    };
    for (i, role) in roles.iter().enumerate() {
        match role {
            Role::Text(name) => {
                push(&mut fields, name, DataType::Utf8);
                columns.push(Column::Text(i));
            }
            Role::Number { name, .. } => {
                push(&mut fields, name, DataType::Decimal128(38, SCALE));
                columns.push(Column::Decimal(i));
            }
            Role::Date(name) => {
                let t = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
                push(&mut fields, name, t);
                columns.push(Column::Timestamp(i));
            }
            Role::Json(name) => {
                push(&mut fields, name, map_type());
                columns.push(Column::JsonMap(i));
            }
            Role::RecordType(name) => {
                push(&mut fields, name, DataType::Utf8);
                columns.push(Column::Text(i));
                push(&mut fields, "is_total_row", DataType::Boolean);
                columns.push(Column::TotalRow(i));
            }
            Role::Entry { map, key } => match maps.iter_mut().find(|(m, _)| m == map) {
                Some((_, entries)) => entries.push((key.clone(), i)),
                None => maps.push((map, vec![(key.clone(), i)])),
            },
        }
    }
    for (name, entries) in maps {
        push(&mut fields, name, map_type());
        columns.push(Column::Map(entries));
    }
    (fields, columns)
}

const TOTAL_ROWS: [&str; 4] = ["StatementTotal", "InvoiceTotal", "AccountTotal", "Rounding"];

/// How records become a batch's columns; shared by the threads that decode.
struct Build {
    schema: SchemaRef,
    columns: Vec<Column>,
    /// The text that means NULL, if the export has one.
    null: Option<&'static str>,
    header: Vec<String>,
    /// Id columns to watch for spreadsheet-mangled values the sample did not show.
    watched: Vec<usize>,
    recheck: Recheck,
}

/// What a decoding thread needs to explain a value the survey did not foresee.
struct Recheck {
    path: PathBuf,
    display: String,
    packing: Packing,
    lenient: bool,
    rules: Vec<Rules>,
    /// The sample's roles and warnings; `None` if the whole file was surveyed.
    sample: Option<(Vec<Role>, Vec<String>)>,
}

impl Recheck {
    /// The error for a value the survey did not foresee: the whole file's survey names
    /// the bad line, or finds the sample too narrow.
    fn unforeseen(&self) -> Error {
        let changed = Error::BadFile {
            path: self.display.clone(),
            message: "changed while it was read".into(),
        };
        let Some((roles, warnings)) = &self.sample else {
            return changed;
        };
        let whole = survey(
            &self.path,
            &self.display,
            self.packing,
            self.lenient,
            &self.rules,
            None,
        );
        match whole {
            Err(e) => e,
            Ok(whole) if whole.roles != *roles || whole.warnings != *warnings => {
                Error::SchemaWidened {
                    path: self.display.clone(),
                }
            }
            Ok(_) => changed,
        }
    }
}

impl DecodeChunk for Build {
    fn decode(&self, chunk: Chunk) -> Result<RecordBatch> {
        let Chunk::Records(records) = chunk else {
            unreachable!("a CSV reader's chunks are records")
        };
        self.build(&records)
    }
}

impl Build {
    /// Whether a field holds a value (not empty, not the export's NULL text).
    fn present<'r>(&self, value: &'r str) -> Option<&'r str> {
        Some(value).filter(|v| !v.is_empty() && Some(*v) != self.null)
    }

    /// A typed column's values, `parse`d; a present value that does not parse is one
    /// the survey did not foresee.
    fn parsed<T>(
        &self,
        records: &Records,
        i: usize,
        parse: impl Fn(&str) -> Option<T>,
        mut append: impl FnMut(Option<T>),
    ) -> Result<()> {
        for value in records.column(i) {
            match self.present(value) {
                None => append(None),
                Some(v) => append(Some(parse(v).ok_or_else(|| self.recheck.unforeseen())?)),
            }
        }
        Ok(())
    }

    fn build(&self, records: &Records) -> Result<RecordBatch> {
        for &i in &self.watched {
            if records
                .column(i)
                .any(|v| looks_spreadsheet_mangled(&self.header[i], v))
            {
                return Err(self.recheck.unforeseen());
            }
        }
        let arrays = self
            .columns
            .iter()
            .map(|c| -> Result<ArrayRef> {
                Ok(match c {
                    Column::Text(i) => {
                        let mut b = StringBuilder::new();
                        records
                            .column(*i)
                            .for_each(|v| b.append_option(self.present(v)));
                        Arc::new(b.finish())
                    }
                    Column::Decimal(i) => {
                        let mut b = Decimal128Builder::new().with_precision_and_scale(38, SCALE)?;
                        self.parsed(records, *i, parse_decimal, |v| b.append_option(v))?;
                        Arc::new(b.finish())
                    }
                    Column::Timestamp(i) => {
                        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                        self.parsed(records, *i, parse_timestamp, |v| b.append_option(v))?;
                        Arc::new(b.finish())
                    }
                    Column::TotalRow(i) => {
                        let mut b = BooleanBuilder::new();
                        records
                            .column(*i)
                            .for_each(|v| b.append_value(TOTAL_ROWS.contains(&v)));
                        Arc::new(b.finish())
                    }
                    Column::JsonMap(i) => {
                        let mut entries = Vec::with_capacity(records.rows());
                        let parse = |v: &str| json_entries(v).ok();
                        self.parsed(records, *i, parse, |v| entries.push(v.unwrap_or_default()))?;
                        let mut b =
                            MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                        for row in entries {
                            for (key, value) in row {
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
                        for row in 0..records.rows() {
                            for (key, i) in entries {
                                let value = records.field(row, *i);
                                if !value.is_empty() {
                                    b.keys().append_value(key);
                                    b.values().append_value(value);
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

/// A chunk's records, their fields' text one after another: one allocation a chunk,
/// not two a record.
#[derive(Debug)]
pub struct Records {
    text: String,
    /// Where each field ends in `text`, `width` of them a record.
    ends: Vec<usize>,
    width: usize,
}

impl Records {
    fn with_capacity(width: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(width * BATCH_SIZE),
            width,
        }
    }

    /// Appends a record of `width` fields.
    fn push(&mut self, record: &csv::StringRecord) {
        let mut end = self.text.len();
        self.text.push_str(record.as_slice());
        for field in record {
            end += field.len();
            self.ends.push(end);
        }
    }

    fn rows(&self) -> usize {
        self.ends.len() / self.width
    }

    /// The `i`th field of the record at `row`.
    fn field(&self, row: usize, i: usize) -> &str {
        let k = row * self.width + i;
        let start = k.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[k]]
    }

    /// The `i`th field of each record.
    fn column(&self, i: usize) -> impl Iterator<Item = &str> {
        (0..self.rows()).map(move |row| self.field(row, i))
    }
}

impl BatchSource for CsvExport<'_> {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.build.schema.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn rejected(&self) -> Option<Rejected> {
        (!self.rejected.rows.is_empty()).then(|| self.rejected.clone())
    }

    fn source_names(&self) -> Vec<(String, String)> {
        self.renamed.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let chunk = self.next_chunk()?;
        chunk.map(|c| self.build.decode(c)).transpose()
    }

    fn chunk_decoder(&self) -> Option<Arc<dyn DecodeChunk>> {
        Some(self.build.clone())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut records = Records::with_capacity(self.width, self.chunk_bytes);
        while records.rows() < BATCH_SIZE {
            let record = &mut self.record;
            let read = self.reader.read_record(record);
            if !read.map_err(|e| csv_error(&self.display, e))? {
                break;
            }
            let line = line_of(record.position());
            if record.len() == self.width {
                records.push(record);
            } else if !self.lenient {
                return Err(ragged(&self.display, line, record.len(), self.width));
            } else if line > self.surveyed_to {
                let fields = record.iter().map(str::to_string).collect();
                self.rejected.rows.push((line, fields));
            }
        }
        self.chunk_bytes = self.chunk_bytes.max(records.text.len());
        Ok((records.rows() > 0).then_some(Chunk::Records(records)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_exact_and_dates_read_in_every_export_form() {
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
        let zeros = "0".repeat(40);
        assert_eq!(
            parse_decimal(&format!(" {zeros}1.5\t")),
            Some(15 * 10i128.pow(23))
        );
        assert_eq!(parse_decimal(&format!("0.{zeros}1")), None);
        assert_eq!(
            parse_timestamp("2022-07-01 00:00:00.000"),
            Some(1_656_633_600_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-01T00:00:00.000Z"),
            Some(1_698_796_800_000_000)
        );
        let sept_1 = Some(1_693_526_400_000_000);
        assert_eq!(parse_timestamp("09/01/2023"), sept_1);
        assert_eq!(parse_timestamp("9/1/2023"), sept_1);
        assert_eq!(parse_timestamp("9/1/23"), sept_1);
        assert_eq!(parse_timestamp("13/01/2023"), None);
        assert!(looks_spreadsheet_mangled("PayerAccountId", "3.57E+11"));
        assert!(!looks_spreadsheet_mangled("PayerAccountId", "123456789012"));
    }

    #[test]
    fn json_objects_with_or_without_braces() {
        let entries = |t| json_entries(t).unwrap();
        assert_eq!(
            entries(r#"{"env": "prod", "n": 1.10, "x": null}"#),
            vec![("env".into(), "prod".into()), ("n".into(), "1.10".into())]
        );
        assert_eq!(
            entries(r#""env": "prod","team": "x""#),
            vec![("env".into(), "prod".into()), ("team".into(), "x".into())]
        );
        assert!(json_entries("env=prod").is_err());
    }
}
