//! BigQuery extracts in a self-describing columnar format (Parquet, Avro): the file's
//! own schema tells the export kind, and its batches are conformed to the documented
//! schema by field name, on whichever thread takes a batch.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;

use super::conform::{ConformError, conform_batch};
use super::{BATCH_SIZE, BatchSource, Chunk, DecodeChunk, ExportKind, gcp, open_text, schema_for};
use crate::error::{Error, Result};
use crate::progress::Progress;

type Batches<'p> =
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send + 'p>;

/// Batches of an extract, conformed to the documented schema.
pub struct Extract<'p> {
    what: &'static str,
    kind: ExportKind,
    conform: Arc<Conform>,
    batches: Batches<'p>,
    /// Rows read so far.
    rows: u64,
}

/// Conforms stored batches to the documented schema; shared by the threads that decode.
struct Conform {
    /// The file, as errors name it.
    display: String,
    schema: SchemaRef,
}

impl DecodeChunk for Conform {
    fn decode(&self, chunk: Chunk) -> Result<RecordBatch> {
        let Chunk::Stored { batch, first_row } = chunk else {
            unreachable!("an extract's chunks are stored batches")
        };
        conform_batch(&batch, &self.schema).map_err(|e| match e {
            ConformError::NotAnAmount {
                path,
                row,
                value,
                target,
            } => Error::BadFile {
                path: self.display.clone(),
                message: format!(
                    "row {}, {}: {}",
                    first_row + row as u64,
                    path.join("."),
                    if value.is_finite() {
                        format!("{value} is out of the range of {target}")
                    } else {
                        format!("{value} is not an amount of money")
                    }
                ),
            },
            ConformError::Arrow(e) => e.into(),
        })
    }
}

impl<'p> Extract<'p> {
    /// Opens a Parquet extract, its columns decoded on as many threads as there are
    /// cores ([`SplitColumns`]).
    pub fn parquet(path: &Path, display: &str) -> Result<Self> {
        let open = || File::open(path).map_err(|e| Error::io(path, e));
        let bad = |e| unreadable(display, "Parquet", e);
        let metadata =
            ArrowReaderMetadata::load(&open()?, ArrowReaderOptions::default()).map_err(bad)?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shares = column_shares(metadata.metadata(), threads);
        let readers = shares
            .iter()
            .map(|share| {
                let mask = ProjectionMask::roots(metadata.parquet_schema(), share.iter().copied());
                ParquetRecordBatchReaderBuilder::new_with_metadata(open()?, metadata.clone())
                    .with_projection(mask)
                    .with_batch_size(BATCH_SIZE)
                    .build()
                    .map_err(bad)
            })
            .collect::<Result<Vec<_>>>()?;
        let file_schema = metadata.schema().clone();
        let batches = SplitColumns::start(file_schema.clone(), &shares, readers);
        Self::new(display, "Parquet", &file_schema, Box::new(batches))
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
            what,
            kind,
            conform: Arc::new(Conform {
                display: display.to_string(),
                schema,
            }),
            batches,
            rows: 0,
        })
    }
}

/// The root columns of a Parquet file in at most `n` shares of about equal
/// uncompressed size (the largest column first, each to the smallest share so far),
/// each share's columns in file order.
fn column_shares(metadata: &ParquetMetaData, n: usize) -> Vec<Vec<usize>> {
    let schema = metadata.file_metadata().schema_descr();
    let mut sizes = vec![0i64; schema.root_schema().get_fields().len()];
    for group in metadata.row_groups() {
        for (leaf, chunk) in group.columns().iter().enumerate() {
            sizes[schema.get_column_root_idx(leaf)] += chunk.uncompressed_size();
        }
    }
    let mut roots: Vec<usize> = (0..sizes.len()).collect();
    roots.sort_by_key(|&r| std::cmp::Reverse(sizes[r]));
    let mut shares = vec![(0, Vec::new()); n.max(1)];
    for root in roots {
        let (size, share) = shares
            .iter_mut()
            .min_by_key(|(size, _)| *size)
            .expect("a share");
        *size += sizes[root];
        share.push(root);
    }
    let mut shares: Vec<Vec<usize>> = shares
        .into_iter()
        .map(|(_, share)| share)
        .filter(|share| !share.is_empty())
        .collect();
    shares.iter_mut().for_each(|share| share.sort_unstable());
    if shares.is_empty() {
        shares.push(Vec::new());
    }
    shares
}

/// A Parquet file's batches, its columns decoded on several threads: each reader
/// decodes a share of the columns, the calling thread the first, and their batches
/// are put back together in the file's column order. With one thread decoding every
/// column, a conversion's writer waited for its first row group with a core idle.
struct SplitColumns {
    schema: SchemaRef,
    /// The share each of the file's columns is in.
    share_of: Vec<usize>,
    first: ParquetRecordBatchReader,
    /// The other shares' batches, each read ahead by a thread of its own.
    others: Vec<Receiver<std::result::Result<RecordBatch, ArrowError>>>,
    threads: Vec<JoinHandle<()>>,
}

impl SplitColumns {
    /// Starts reading: `readers[i]` reads the columns `shares[i]`.
    fn start(
        schema: SchemaRef,
        shares: &[Vec<usize>],
        readers: Vec<ParquetRecordBatchReader>,
    ) -> Self {
        let mut share_of = vec![0; schema.fields().len()];
        for (i, share) in shares.iter().enumerate() {
            share.iter().for_each(|&column| share_of[column] = i);
        }
        let mut readers = readers.into_iter();
        let first = readers.next().expect("a share");
        let (others, threads) = readers
            .map(|reader| {
                let (batches, received) = sync_channel(1);
                let thread = std::thread::spawn(move || {
                    for batch in reader {
                        if batches.send(batch).is_err() {
                            return;
                        }
                    }
                });
                (received, thread)
            })
            .unzip();
        Self {
            schema,
            share_of,
            first,
            others,
            threads,
        }
    }
}

impl Iterator for SplitColumns {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut parts = vec![self.first.next()];
        parts.extend(self.others.iter().map(|others| others.recv().ok()));
        if parts.iter().all(Option::is_none) {
            return None;
        }
        let mut shares = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                Some(Ok(batch)) => shares.push(batch.columns().to_vec().into_iter()),
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    return Some(Err(ArrowError::ParquetError(
                        "a share of the columns ended before the others".to_string(),
                    )));
                }
            }
        }
        let columns = self
            .share_of
            .iter()
            .map(|&share| shares[share].next().expect("a column of each share"))
            .collect();
        Some(RecordBatch::try_new(self.schema.clone(), columns))
    }
}

impl Drop for SplitColumns {
    /// Stops the reading threads (at their next batch) and waits for them.
    fn drop(&mut self) {
        self.others.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
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
            Some(Err(e)) => Err(unreadable(&self.conform.display, self.what, e)),
            Some(Ok(batch)) => {
                let first_row = self.rows + 1;
                self.rows += batch.num_rows() as u64;
                Ok(Some(Chunk::Stored { batch, first_row }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Float64Array, ListArray, StringArray, StructArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::{DataType, Field, Int64Type};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// A file of 12000 rows in row groups of 5000 (batches of 8192 span two), its
    /// columns text, numbers, a list and a record.
    fn file(dir: &Path) -> std::path::PathBuf {
        let n = 12_000;
        let tags = Field::new("key", DataType::Utf8, true);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "sku",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("sku-{}", i % 7)),
                )),
            ),
            (
                "cost",
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| i as f64 / 8.0),
                )),
            ),
            (
                "ids",
                Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                    (0..n).map(|i| (i % 5 != 0).then(|| vec![Some(i as i64); i % 3])),
                )),
            ),
            (
                "project",
                Arc::new(StructArray::from(vec![(
                    Arc::new(tags),
                    Arc::new(StringArray::from_iter(
                        (0..n).map(|i| (i % 4 != 0).then(|| format!("p{i}"))),
                    )) as ArrayRef,
                )])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let path = dir.join("extract.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(5000))
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(props))
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    }

    #[test]
    fn columns_read_in_shares_come_back_as_one_reader_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path());
        let metadata =
            ArrowReaderMetadata::load(&File::open(&path).unwrap(), Default::default()).unwrap();
        let schema = metadata.schema().clone();
        let open = |shares: &[Vec<usize>]| {
            let readers = shares
                .iter()
                .map(|share| {
                    let mask =
                        ProjectionMask::roots(metadata.parquet_schema(), share.iter().copied());
                    ParquetRecordBatchReaderBuilder::new_with_metadata(
                        File::open(&path).unwrap(),
                        metadata.clone(),
                    )
                    .with_projection(mask)
                    .with_batch_size(BATCH_SIZE)
                    .build()
                    .unwrap()
                })
                .collect();
            SplitColumns::start(schema.clone(), shares, readers)
        };
        let read = |shares: &[Vec<usize>]| -> Vec<RecordBatch> {
            open(shares).map(Result::unwrap).collect()
        };
        let whole = read(&[vec![0, 1, 2, 3]]);
        assert_eq!(
            whole.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            [8192, 3808]
        );
        for n in 2..=5 {
            let shares = column_shares(metadata.metadata(), n);
            assert_eq!(shares.len(), n.min(4));
            let mut all: Vec<usize> = shares.concat();
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2, 3]);
            assert!(shares.iter().all(|s| s.is_sorted()));
            let split = read(&shares);
            assert_eq!(split, whole, "{shares:?}");
        }
        // Columns in shares of their own, not in file order.
        assert_eq!(
            concat_batches(&schema, &read(&[vec![2], vec![0, 3], vec![1]])).unwrap(),
            concat_batches(&schema, &whole).unwrap()
        );
        // Dropped after one batch, while the other shares' threads read ahead.
        let mut partial = open(&[vec![0], vec![1], vec![2, 3]]);
        assert_eq!(partial.next().unwrap().unwrap(), whole[0]);
        drop(partial);
    }
}
