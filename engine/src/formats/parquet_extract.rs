//! A BigQuery Parquet extract of a billing export table, read in the documented schema.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::conform::conform_batch;
use super::{BATCH_SIZE, BatchSource, ExportKind, gcp, schema_for};
use crate::error::{Error, Result};

/// Batches of a Parquet extract, conformed to the documented schema.
pub struct ParquetExtract {
    display: String,
    kind: ExportKind,
    schema: SchemaRef,
    reader: ParquetRecordBatchReader,
}

impl ParquetExtract {
    /// Opens the file and finds its kind from its columns.
    pub fn open(path: &Path, display: &str) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: parquet::errors::ParquetError| Error::BadFile {
            path: display.to_string(),
            message: format!("unreadable Parquet: {e}"),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)?;
        let file_schema: Arc<Schema> = builder.schema().clone();
        let kind = gcp::detect_kind(file_schema.fields().iter().map(|f| f.name().as_str()))
            .ok_or_else(|| Error::UnknownFormat {
                path: display.to_string(),
                reason: "Parquet file with none of the columns of a GCP billing export".into(),
            })?;
        let reader = builder.with_batch_size(BATCH_SIZE).build().map_err(bad)?;
        Ok(Self {
            display: display.to_string(),
            kind,
            schema: schema_for(kind, file_schema.fields()),
            reader,
        })
    }
}

impl BatchSource for ParquetExtract {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.reader.next() {
            None => Ok(None),
            Some(Err(e)) => Err(Error::BadFile {
                path: self.display.clone(),
                message: format!("unreadable Parquet: {e}"),
            }),
            Some(Ok(batch)) => Ok(Some(conform_batch(&batch, &self.schema)?)),
        }
    }
}
