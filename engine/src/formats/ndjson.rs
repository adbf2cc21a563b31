//! Newline-delimited JSON as `bq extract` writes it: one record a line, nested records
//! as objects, repeated fields as arrays, absent keys for NULL or empty.
//!
//! The file's own fields (so unknown ones are kept) are inferred from its first
//! [`SAMPLE`] lines, then the whole file is decoded in one pass, a chunk at a time by
//! [`json_arrays`] or, where it gives up, by arrow-json in strict mode. A line the
//! sample did not foresee (a new field, a new type, malformed JSON) stops the read:
//! the whole file is then inferred, which either names the bad line or returns
//! [`Error::SchemaWidened`] so the caller reads again with the wider schema
//! ([`super::Inference::Whole`]). Memory is bounded by the batch size: a batch's
//! raw lines are kept until it is decoded, so that a value that does not fit its field
//! can be traced back to its line. Decoding runs on whichever thread takes a chunk.
//! Top-level timestamps are decoded as text and then read by [`super::times`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::reader::{Decoder, ReaderBuilder, infer_json_schema_from_iterator};
use serde_json::Value;

use super::{
    BATCH_SIZE, BatchSource, Chunk, DecodeChunk, ExportKind, Inference, Packing, SAMPLE, gcp,
    json_arrays, open_text, read_error, schema_for, times,
};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// A reader of one newline-delimited JSON export file: lines are cut into chunks in
/// order, and a [`Decode`] turns each chunk into a batch, on any thread.
pub struct JsonLines<'p> {
    reader: Box<dyn std::io::BufRead + Send + 'p>,
    line: u64,
    /// The longest chunk's text so far: the next one's is allocated that long.
    chunk_bytes: usize,
    decode: Arc<Decode>,
}

/// What decoding a chunk of lines needs; shared by the threads that decode.
struct Decode {
    path: PathBuf,
    packing: Packing,
    display: String,
    /// Whether the schema came from a sample that did not cover the whole file.
    sampled: bool,
    kind: ExportKind,
    schema: SchemaRef,
    /// What arrow-json decodes: `schema` with the top-level timestamps (at `times`) as text.
    as_text: SchemaRef,
    times: Vec<usize>,
    /// Where [`json_arrays`] decodes `as_text`, the sizes of its last chunk's arrays
    /// (chunks it gives up on go to arrow-json).
    direct: Option<json_arrays::Sizes>,
    /// Decoders that finished a chunk, kept for the next ones with their buffers grown.
    idle: Mutex<Vec<Decoder>>,
}

impl<'p> JsonLines<'p> {
    /// Infers the file's schema and kind, then opens it for decoding.
    pub fn open(
        path: &Path,
        display: &str,
        packing: Packing,
        progress: Option<&'p dyn Progress>,
        inference: Inference,
    ) -> Result<Self> {
        let limit = match inference {
            Inference::Sample => Some(SAMPLE as u64),
            Inference::Whole => None,
        };
        let (inferred, whole) = infer(path, display, packing, limit)?;
        let kind = gcp::detect_kind(inferred.fields().iter().map(|f| f.name().as_str()))
            .ok_or_else(|| Error::UnknownFormat {
                path: display.to_string(),
                reason: "JSON records have none of the fields of a GCP billing export \
                         (usage_start_time, cost, list_price, lineItemId)"
                    .into(),
            })?;
        let schema = schema_for(kind, inferred.fields());
        let times: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| *schema.field(i).data_type() == gcp::timestamp_type())
            .collect();
        let as_text = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| match times.contains(&i) {
                    true => Arc::new(Field::new(f.name(), DataType::Utf8, f.is_nullable())),
                    false => f.clone(),
                })
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            reader: open_text(path, packing, progress)?,
            line: 0,
            chunk_bytes: 0,
            decode: Arc::new(Decode {
                path: path.to_path_buf(),
                packing,
                display: display.to_string(),
                sampled: !whole,
                kind,
                schema,
                direct: json_arrays::supports(&as_text).then(Default::default),
                as_text,
                times,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Decode {
    /// The error to report for `error`, met at a line of a sampled read: the whole
    /// file's inference names a malformed line, or finds the sample too narrow.
    fn unforeseen(&self, error: Error) -> Error {
        if !self.sampled {
            return error;
        }
        match infer(&self.path, &self.display, self.packing, None) {
            Err(e) => e,
            Ok((inferred, _)) if schema_for(self.kind, inferred.fields()) != self.schema => {
                Error::SchemaWidened {
                    path: self.display.clone(),
                }
            }
            Ok(_) => error,
        }
    }

    /// Decodes the chunk's lines one by one to find the first that fails.
    fn locate(
        &self,
        text: &[u8],
        lines: &[(u64, usize)],
        batch_error: arrow::error::ArrowError,
    ) -> Error {
        let mut start = 0;
        for &(line, end) in lines {
            let result = decoder_for(&self.as_text).and_then(|mut one| {
                one.decode(&text[start..end])?;
                Ok(one.flush()?)
            });
            match result {
                Ok(_) => start = end,
                Err(Error::Arrow(e)) => return bad_value(&self.display, line, e),
                Err(e) => return e,
            }
        }
        let last = lines.last().map_or(0, |&(line, _)| line);
        bad_value(&self.display, last, batch_error)
    }

    /// `batch` with its timestamps read from their text, or the line of the first
    /// that is not a time. Numbers (written as text by the decoder) are microseconds
    /// since the epoch, as arrow-json reads them.
    fn read_times(&self, batch: RecordBatch, lines: &[(u64, usize)]) -> Result<RecordBatch> {
        let mut columns = batch.columns().to_vec();
        for &i in &self.times {
            let text = columns[i].as_string::<i32>();
            let mut micros = Vec::with_capacity(text.len());
            for (row, value) in text.iter().enumerate() {
                let Some(value) = value else {
                    micros.push(0);
                    continue;
                };
                let parsed = times::parse_utc(value).or_else(|e| value.parse().map_err(|_| e));
                match parsed {
                    Ok(v) => micros.push(v),
                    Err(e) => {
                        let field = self.schema.field(i);
                        let message = format!(
                            "field '{}': failed to parse \"{value}\" as {}: {e}",
                            field.name(),
                            field.data_type()
                        );
                        let line = lines[row].0;
                        return Err(self.unforeseen(Error::BadRow {
                            path: self.display.clone(),
                            line,
                            message,
                        }));
                    }
                }
            }
            let column = TimestampMicrosecondArray::new(micros.into(), text.nulls().cloned());
            columns[i] = Arc::new(column.with_timezone("UTC")) as ArrayRef;
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl DecodeChunk for Decode {
    fn decode(&self, chunk: Chunk) -> Result<RecordBatch> {
        let Chunk::Lines { text, lines } = chunk else {
            unreachable!("a JSON reader's chunks are lines")
        };
        if let Some(batch) = self
            .direct
            .as_ref()
            .and_then(|sizes| json_arrays::decode(&self.as_text, &text, &lines, sizes))
        {
            return self.read_times(batch, &lines);
        }
        let idle = self.idle.lock().expect("no panic").pop();
        let mut decoder = match idle {
            Some(decoder) => decoder,
            None => decoder_for(&self.as_text)?,
        };
        let mut rest = text.as_slice();
        while !rest.is_empty() {
            match decoder.decode(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) => return Err(self.unforeseen(self.locate(&text, &lines, e))),
            }
        }
        // A decoder that failed is dropped: its buffers may hold part of the chunk.
        let batch = match decoder.flush() {
            Ok(batch) => batch,
            Err(e) => return Err(self.unforeseen(self.locate(&text, &lines, e))),
        };
        self.idle.lock().expect("no panic").push(decoder);
        match batch {
            Some(batch) => self.read_times(batch, &lines),
            None => Ok(RecordBatch::new_empty(self.schema.clone())),
        }
    }
}

impl BatchSource for JsonLines<'_> {
    fn kind(&self) -> ExportKind {
        self.decode.kind
    }

    fn schema(&self) -> SchemaRef {
        self.decode.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let chunk = self.next_chunk()?;
        chunk.map(|c| self.decode.decode(c)).transpose()
    }

    fn chunk_decoder(&self) -> Option<Arc<dyn DecodeChunk>> {
        Some(self.decode.clone())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut text = Vec::with_capacity(self.chunk_bytes);
        let mut lines = Vec::with_capacity(BATCH_SIZE);
        while lines.len() < BATCH_SIZE {
            let start = text.len();
            let n = self
                .reader
                .read_until(b'\n', &mut text)
                .map_err(|e| read_error(&self.decode.display, self.line + 1, e))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            match text[start..].iter().find(|b| !b.is_ascii_whitespace()) {
                None => text.truncate(start),
                Some(b'{') => lines.push((self.line, text.len())),
                // Not an object: the whole file's inference says so, with the line.
                Some(_) => {
                    let error = not_an_object(&self.decode.display, self.line);
                    return Err(self.decode.unforeseen(error));
                }
            }
        }
        self.chunk_bytes = self.chunk_bytes.max(text.len());
        Ok((!lines.is_empty()).then_some(Chunk::Lines { text, lines }))
    }
}

fn decoder_for(schema: &SchemaRef) -> Result<Decoder> {
    Ok(ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_SIZE)
        .with_coerce_primitive(true)
        .with_strict_mode(true)
        .build_decoder()?)
}

/// Rewords arrow-json's messages ("whilst decoding field 'cost': ...") for a line.
fn bad_value(display: &str, line: u64, e: arrow::error::ArrowError) -> Error {
    let text = e.to_string();
    let message = text
        .strip_prefix("Json error: ")
        .or_else(|| text.strip_prefix("Parser error: "))
        .unwrap_or(&text)
        .replace("whilst decoding field", "field");
    Error::BadRow {
        path: display.to_string(),
        line,
        message,
    }
}

fn not_an_object(display: &str, line: u64) -> Error {
    Error::BadRow {
        path: display.to_string(),
        line,
        message: "malformed JSON: expected an object ({...}) on each line".into(),
    }
}

/// Infers the schema from the first `limit` lines (all with `None`), each of which must
/// be a JSON object; returns it and whether the whole file was read.
fn infer(
    path: &Path,
    display: &str,
    packing: Packing,
    limit: Option<u64>,
) -> Result<(arrow::datatypes::Schema, bool)> {
    let mut reader = open_text(path, packing, None)?;
    let mut whole = true;
    let mut failure: Option<Error> = None;
    let mut line = 0u64;
    let mut rows = 0u64;
    let mut buf = Vec::new();
    let values = std::iter::from_fn(|| {
        loop {
            if limit.is_some_and(|n| rows >= n) {
                whole = false;
                return None;
            }
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => line += 1,
                Err(e) => {
                    failure = Some(read_error(display, line + 1, e));
                    return None;
                }
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(buf.trim_ascii_end()) {
                Ok(v @ Value::Object(_)) => {
                    rows += 1;
                    return Some(Ok(v));
                }
                Ok(_) => {
                    failure = Some(not_an_object(display, line));
                    return None;
                }
                Err(e) => {
                    failure = Some(Error::BadRow {
                        path: display.to_string(),
                        line,
                        message: format!(
                            "malformed JSON at column {}: {}",
                            e.column(),
                            strip_position(&e)
                        ),
                    });
                    return None;
                }
            }
        }
    });
    let schema = infer_json_schema_from_iterator(values);
    if let Some(e) = failure {
        return Err(e);
    }
    let schema = schema?;
    if rows == 0 {
        return Err(Error::EmptyFile {
            path: display.to_string(),
        });
    }
    Ok((schema, whole))
}

/// serde_json's message without its own " at line L column C" suffix.
pub(super) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk of the bundled JSON exports and seed fixtures, as the direct decoder
    /// and as arrow-json read it: the same batch, and never left to arrow-json. (The
    /// pricing export, with timestamps inside records, is all arrow-json's.)
    #[test]
    fn bundled_exports_are_read_directly_as_arrow_json_reads_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let files = [
            "gcp/gcp_billing_export_2024q1.jsonl.gz",
            "gcp/gcp_billing_export_resource_sample.jsonl",
            "seed-queries/data/cud_example.jsonl",
            "seed-queries/data/hierarchy_tags_example.jsonl",
            "seed-queries/data/invoice_example.jsonl",
            "seed-queries/data/labels_example.jsonl",
        ];
        for file in files {
            let path = root.join(file);
            let head = std::fs::read(&path).unwrap();
            let packing = super::super::packing::detect(&path, file, &head[..4]).unwrap();
            let mut source = JsonLines::open(&path, file, packing, None, Inference::Whole).unwrap();
            let decode = source.decode.clone();
            let sizes = decode.direct.as_ref();
            let sizes = sizes.unwrap_or_else(|| panic!("{file}: {:?}", decode.as_text));
            let mut rows = 0;
            while let Some(Chunk::Lines { text, lines }) = source.next_chunk().unwrap() {
                let direct = json_arrays::decode(&decode.as_text, &text, &lines, sizes);
                let mut decoder = decoder_for(&decode.as_text).unwrap();
                decoder.decode(&text).unwrap();
                let arrow_json = decoder.flush().unwrap().unwrap();
                assert_eq!(direct.as_ref(), Some(&arrow_json), "{file}");
                rows += lines.len();
            }
            assert!(rows > 0, "{file}");
        }
        let pricing = root.join("gcp/gcp_pricing_export_sample.jsonl");
        let source = JsonLines::open(&pricing, "", Packing::Plain, None, Inference::Whole);
        assert!(source.unwrap().decode.direct.is_none());
    }
}
