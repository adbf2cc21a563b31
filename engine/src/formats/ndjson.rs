//! Newline-delimited JSON as `bq extract` writes it: one record a line, nested records
//! as objects, repeated fields as arrays, absent keys for NULL or empty.
//!
//! A first pass infers the file's own fields (so unknown ones are kept) and checks that
//! every line is a JSON object; the second decodes batches with arrow-json. Memory is
//! bounded by the batch size: a batch's raw lines are kept only so that a value that
//! does not fit its field can be traced back to its line.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::{Decoder, ReaderBuilder, infer_json_schema_from_iterator};
use serde_json::Value;

use super::{BATCH_SIZE, BatchSource, ExportKind, gcp, open_text, read_error, schema_for};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// A reader of one newline-delimited JSON export file.
pub struct JsonLines<'p> {
    display: String,
    kind: ExportKind,
    schema: SchemaRef,
    reader: Box<dyn std::io::BufRead + Send + 'p>,
    decoder: Decoder,
    line: u64,
    /// The current batch's lines, with their line numbers.
    pending: Vec<(u64, Vec<u8>)>,
}

impl<'p> JsonLines<'p> {
    /// Infers the file's schema and kind, then opens it for decoding.
    pub fn open(
        path: &Path,
        display: &str,
        packing: super::Packing,
        progress: Option<&'p dyn Progress>,
    ) -> Result<Self> {
        let inferred = infer(path, display, packing)?;
        let kind = gcp::detect_kind(inferred.fields().iter().map(|f| f.name().as_str()))
            .ok_or_else(|| Error::UnknownFormat {
                path: display.to_string(),
                reason: "JSON records have none of the fields of a GCP billing export \
                         (usage_start_time, cost, list_price, lineItemId)"
                    .into(),
            })?;
        let schema = schema_for(kind, inferred.fields());
        let decoder = decoder_for(&schema)?;
        Ok(Self {
            display: display.to_string(),
            kind,
            schema,
            reader: open_text(path, packing, progress)?,
            decoder,
            line: 0,
            pending: Vec::with_capacity(BATCH_SIZE),
        })
    }

    /// Decodes the pending lines one by one to find the first that fails.
    fn locate(&self, batch_error: arrow::error::ArrowError) -> Error {
        for (line, text) in &self.pending {
            let mut one = match decoder_for(&self.schema) {
                Ok(d) => d,
                Err(e) => return e,
            };
            let result = one.decode(text).and_then(|_| one.flush());
            if let Err(e) = result {
                return bad_value(&self.display, *line, e);
            }
        }
        bad_value(&self.display, self.line, batch_error)
    }
}

impl BatchSource for JsonLines<'_> {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.pending.clear();
        let mut buf = Vec::new();
        while self.pending.len() < BATCH_SIZE {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| read_error(&self.display, self.line + 1, e))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.decoder
                .decode(&buf)
                .map_err(|e| bad_value(&self.display, self.line, e))?;
            self.pending.push((self.line, buf.clone()));
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        match self.decoder.flush() {
            Ok(batch) => Ok(batch),
            Err(e) => Err(self.locate(e)),
        }
    }
}

fn decoder_for(schema: &SchemaRef) -> Result<Decoder> {
    Ok(ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_SIZE)
        .with_coerce_primitive(true)
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

/// First pass: every line must be a JSON object; their fields make the schema.
fn infer(path: &Path, display: &str, packing: super::Packing) -> Result<arrow::datatypes::Schema> {
    let mut reader = open_text(path, packing, None)?;
    let mut failure: Option<Error> = None;
    let mut line = 0u64;
    let mut rows = 0u64;
    let mut buf = Vec::new();
    let values = std::iter::from_fn(|| {
        loop {
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
                    failure = Some(Error::BadRow {
                        path: display.to_string(),
                        line,
                        message: "malformed JSON: expected an object ({...}) on each line".into(),
                    });
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
    Ok(schema)
}

/// serde_json's message without its own " at line L column C" suffix.
pub(super) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
