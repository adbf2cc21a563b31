//! BigQuery extracts in a self-describing columnar format (Parquet, Avro): the file's
//! own schema tells the export kind, and its batches are conformed to the documented
//! schema by field name, on whichever thread takes a batch.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::conform::conform_batch;
use super::{BATCH_SIZE, BatchSource, Chunk, DecodeChunk, ExportKind, gcp, open_text, schema_for};
use crate::error::{Error, Result};
use crate::progress::Progress;

type Batches<'p> =
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send + 'p>;

/// Batches of an extract, conformed to the documented schema.
pub struct Extract<'p> {
    display: String,
    what: &'static str,
    kind: ExportKind,
    conform: Arc<Conform>,
    batches: Batches<'p>,
}

/// Conforms stored batches to the documented schema; shared by the threads that decode.
struct Conform {
    schema: SchemaRef,
}

impl DecodeChunk for Conform {
    fn decode(&self, chunk: Chunk) -> Result<RecordBatch> {
        let Chunk::Stored(batch) = chunk else {
            unreachable!("an extract's chunks are stored batches")
        };
        conform_batch(&batch, &self.schema)
    }
}

impl<'p> Extract<'p> {
    /// Opens a Parquet extract.
    pub fn parquet(path: &Path, display: &str) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: parquet::errors::ParquetError| unreadable(display, "Parquet", e);
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)?;
        let file_schema = builder.schema().clone();
        let reader = builder.with_batch_size(BATCH_SIZE).build().map_err(bad)?;
        Self::new(display, "Parquet", &file_schema, Box::new(reader))
    }

    /// Opens an Avro object container file, gzip-compressed or not.
    pub fn avro(
        path: &Path,
        display: &str,
        packing: super::Packing,
        progress: Option<&'p dyn Progress>,
    ) -> Result<Self> {
        let text = open_text(path, packing, progress)?;
        let reader = arrow_avro::reader::ReaderBuilder::new()
            .with_batch_size(BATCH_SIZE)
            .build(text)
            .map_err(|e| unreadable(display, "Avro", e))?;
        let file_schema = reader.schema();
        Self::new(display, "Avro", &file_schema, Box::new(reader))
    }

    fn new(
        display: &str,
        what: &'static str,
        file_schema: &Schema,
        batches: Batches<'p>,
    ) -> Result<Self> {
        let names: Vec<String> = file_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let gcp_kind = gcp::detect_kind(names.iter().map(String::as_str));
        let (kind, schema) = match (super::aws::detect(&names), gcp_kind) {
            (Some(kind), _) => (kind, super::aws::canonical_parquet_schema(file_schema)),
            (None, Some(kind)) => (kind, schema_for(kind, file_schema.fields())),
            (None, None) => {
                return Err(Error::UnknownFormat {
                    path: display.to_string(),
                    reason: format!(
                        "{what} file with none of the columns of a GCP or AWS billing export"
                    ),
                });
            }
        };
        Ok(Self {
            display: display.to_string(),
            what,
            kind,
            conform: Arc::new(Conform { schema }),
            batches,
        })
    }
}

fn unreadable(display: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::BadFile {
        path: display.to_string(),
        message: format!("unreadable {what}: {e}"),
    }
}

impl BatchSource for Extract<'_> {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.conform.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let chunk = self.next_chunk()?;
        chunk.map(|c| self.conform.decode(c)).transpose()
    }

    fn chunk_decoder(&self) -> Option<Arc<dyn DecodeChunk>> {
        Some(self.conform.clone())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        match self.batches.next() {
            None => Ok(None),
            Some(Err(e)) => Err(unreadable(&self.display, self.what, e)),
            Some(Ok(batch)) => Ok(Some(Chunk::Stored(batch))),
        }
    }
}
