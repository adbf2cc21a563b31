//! GCP's pre-BigQuery file export: one JSON array of line items per day and project,
//! numbers written as strings, times with their UTC offset (`-08:00`).
//!
//! These files are small (one project, one day), so the array is parsed whole and its
//! records decoded in batches.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
use serde_json::Value;

use super::ndjson::strip_position;
use super::{BATCH_SIZE, BatchSource, ExportKind, gcp, open_text, schema_for};
use crate::error::{Error, Result};

/// The records of one file export, decoded batch by batch.
pub struct FileExport {
    display: String,
    schema: SchemaRef,
    records: std::vec::IntoIter<Value>,
    next_record: usize,
}

/// Parses the array and checks that it is a GCP file export.
pub fn open(path: &Path, display: &str, packing: super::Packing) -> Result<FileExport> {
    let reader = open_text(path, packing, None)?;
    let value: Value = serde_json::from_reader(reader).map_err(|e| Error::BadRow {
        path: display.to_string(),
        line: e.line() as u64,
        message: format!(
            "malformed JSON at column {}: {}",
            e.column(),
            strip_position(&e)
        ),
    })?;
    let Value::Array(records) = value else {
        unreachable!("sniff found '['")
    };
    if records.is_empty() {
        return Err(Error::EmptyFile {
            path: display.to_string(),
        });
    }
    if let Some(i) = records.iter().position(|r| !r.is_object()) {
        return Err(bad_record(display, i, "expected an object"));
    }
    let inferred = infer_json_schema_from_iterator(records.iter().map(Ok))?;
    let kind = gcp::detect_kind(inferred.fields().iter().map(|f| f.name().as_str()));
    if kind != Some(ExportKind::GcpFileExport) {
        return Err(Error::UnknownFormat {
            path: display.to_string(),
            reason:
                "a JSON array, but its records are not GCP file-export line items (no lineItemId)"
                    .into(),
        });
    }
    Ok(FileExport {
        display: display.to_string(),
        schema: schema_for(ExportKind::GcpFileExport, inferred.fields()),
        records: records.into_iter(),
        next_record: 0,
    })
}

fn bad_record(display: &str, index: usize, message: &str) -> Error {
    Error::BadFile {
        path: display.to_string(),
        message: format!("record {}: {message}", index + 1),
    }
}

impl BatchSource for FileExport {
    fn kind(&self) -> ExportKind {
        ExportKind::GcpFileExport
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let chunk: Vec<Value> = self.records.by_ref().take(BATCH_SIZE).collect();
        if chunk.is_empty() {
            return Ok(None);
        }
        let first = self.next_record;
        self.next_record += chunk.len();
        let decode =
            |rows: &[Value]| -> std::result::Result<Option<RecordBatch>, arrow::error::ArrowError> {
                let mut decoder = ReaderBuilder::new(self.schema.clone())
                    .with_batch_size(BATCH_SIZE)
                    .with_coerce_primitive(true)
                    .build_decoder()?;
                decoder.serialize(rows)?;
                decoder.flush()
            };
        decode(&chunk).map_err(|e| {
            let at = (0..chunk.len())
                .find(|&i| decode(&chunk[i..=i]).is_err())
                .unwrap_or(0);
            bad_record(&self.display, first + at, &e.to_string())
        })
    }
}
