//! Conversion of export files into the store: partitioned, sorted, compressed Parquet,
//! committed atomically through the catalog, and incremental by source identity.
//!
//! A run reads each changed source once, streaming. A source is a pipeline: its reader
//! reads chunks that are decoded on as many threads as there are cores (where the
//! format has a [`formats::DecodeChunk`]), one thread counts their exact totals and
//! splits the rows by partition, holding each partition's rows up to a row group
//! (within a memory bound), and a writer thread hands each row group's columns, with
//! the order that sorts its rows by usage time, to as many encoders as there are
//! cores, which gather and encode a column at a time, and appends it to the
//! partition's staged file. The staged files are synced while the next source
//! converts. Only when every source has converted are the files moved into place and
//! the new catalog renamed over the old one; superseded files are removed after.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StructArray, UInt32Array, make_comparator,
};
use arrow::compute::{SortOptions, concat, take};
use arrow::datatypes::{DataType, SchemaRef, TimestampMicrosecondType};
use chrono::Datelike;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Type as PhysicalType};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, FileEntry, REJECTS_DIR, STAGING_DIR, SourceEntry, sync_dir};
use crate::error::{Error, Result};
use crate::formats::{self, BatchSource, ExportKind, Rejected};
use crate::gather::Picked;
use crate::memory_pool::{resident_bytes, return_free_memory};
use crate::money::{Totals, TotalsBuilder};
use crate::progress::Progress;
use crate::read_ahead::read_ahead;
use crate::source::{self, Resolved, SourceObject, StoreOptions};

/// Rows per row group of stored files (at least; a group ends on a batch boundary).
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Memory that rows waiting for their row group may hold, over all partitions; past
/// it the largest partition's rows are written out as a (smaller) row group.
const PENDING_MEMORY: usize = 256 * 1024 * 1024;
/// Resident memory above which the allocator's free memory is given back between
/// sources: half the 1 GiB a conversion is to stay under.
const TRIM_ABOVE: usize = 512 * 1024 * 1024;
/// Partition value for a NULL key, as Hive writes it.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// The folders a table's files are partitioned into: its rows' account, then month.
pub(crate) const ACCOUNT_FOLDER: &str = "billing_account_id";
pub(crate) const MONTH_FOLDER: &str = "invoice_month";

/// Options of a conversion run.
pub struct ConvertOptions<'a> {
    /// The store directory.
    pub out: PathBuf,
    /// Where to report progress, if anywhere.
    pub progress: Option<&'a dyn Progress>,
    /// Set rows of the wrong shape aside in `_rejects/` (counted) instead of refusing.
    pub lenient: bool,
    /// Object store settings of a configured source.
    pub store: StoreOptions,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct ConvertReport {
    pub converted: Vec<Converted>,
    /// Sources skipped because the store already holds their current content.
    pub unchanged: Vec<String>,
    /// What the readers noticed and kept as it was.
    pub warnings: Vec<String>,
    /// Sources of an earlier CUR delivery whose rows left the store.
    pub superseded: Vec<String>,
}

/// One converted source.
#[derive(Debug)]
pub struct Converted {
    pub source: String,
    pub table: String,
    pub totals: Totals,
    pub files: usize,
    /// Rows set aside by a lenient conversion, and the file holding them.
    pub rejected: u64,
    pub rejects: Option<String>,
    /// Whether it replaced an earlier version of the same source.
    pub replaced: bool,
}

/// Converts `inputs` into the store at `opts.out`.
pub async fn convert(inputs: &[String], opts: &ConvertOptions<'_>) -> Result<ConvertReport> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let _lock = lock(out)?;
    let mut catalog = Catalog::load(out)?;
    sweep(out, &catalog)?;
    let resolved = source::resolve(inputs, &opts.store).await?;
    let staging = out.join(STAGING_DIR).join(run_id());
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;

    let result = stage_all(&resolved, &catalog, &staging, opts).await;
    let (staged, mut report) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(out.join(STAGING_DIR));
            return Err(e);
        }
    };

    // Commit: move files into place, then swap the catalog.
    let mut superseded: Vec<String> = Vec::new();
    for delivery in resolved.deliveries.iter().filter(|d| d.supersedes) {
        let (old, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut catalog.sources)
            .into_iter()
            .partition(|s| {
                s.url.starts_with(&delivery.period) && !delivery.current.contains(&s.url)
            });
        catalog.sources = kept;
        for entry in old {
            report.superseded.push(source::display_url(&entry.url));
            superseded.extend(entry.files.into_iter().map(|f| f.path).chain(entry.rejects));
        }
    }
    for (entry, files) in staged {
        for (from, rel) in files {
            let to = out.join(&rel);
            let parent = to.parent().expect("a file in a folder");
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        superseded.extend(
            catalog
                .upsert(entry)
                .into_iter()
                .flat_map(|old| old.files.into_iter().map(|f| f.path).chain(old.rejects)),
        );
    }
    catalog.save(out)?;
    let live = catalog.file_paths();
    for f in superseded.iter().filter(|f| !live.contains(f.as_str())) {
        let _ = std::fs::remove_file(out.join(f));
    }
    let _ = std::fs::remove_dir_all(out.join(STAGING_DIR));
    Ok(report)
}

/// (staged path, final relative path) of each file of a source.
type StagedFiles = Vec<(PathBuf, String)>;
type Staged = Vec<(SourceEntry, StagedFiles)>;

async fn stage_all(
    resolved: &Resolved,
    catalog: &Catalog,
    staging: &Path,
    opts: &ConvertOptions<'_>,
) -> Result<(Staged, ConvertReport)> {
    let mut report = ConvertReport::default();
    let mut staged = Vec::new();
    let mut syncs = Vec::new();
    for obj in &resolved.objects {
        if catalog.source(&obj.url).is_some_and(|e| e.is_current(obj)) {
            report.unchanged.push(obj.display());
            continue;
        }
        let fetched = source::fetch(obj, &opts.store).await?;
        if let Some(p) = opts.progress {
            p.begin(&obj.display(), obj.size);
        }
        let result = stage_one(obj, &fetched.path, staging, opts);
        // What a source's decoding and encoding freed stays with the threads' arenas
        // otherwise: the 10M-row GCP extract's peak rose from 700 to 880-970 MiB.
        // Not below that: the next source pays for the pages again (0.1 s of CPU a
        // source of 1M CUR 2.0 rows at 300 MiB).
        if resident_bytes().is_some_and(|b| b > TRIM_ABOVE) {
            return_free_memory();
        }
        if let Some(p) = opts.progress {
            p.end();
        }
        let (entry, files, warnings, syncing) = result?;
        syncs.push(syncing);
        report.warnings.extend(warnings);
        if let Some(delivery) = resolved
            .deliveries
            .iter()
            .filter(|d| d.current.contains(&obj.url))
            .max_by_key(|d| d.supersedes)
        {
            let mut months = BTreeMap::new();
            for f in &entry.files {
                *months
                    .entry(f.partition["invoice_month"].clone())
                    .or_insert(0) += f.rows;
            }
            let columns: Vec<String> = entry.schema.iter().map(|(name, _)| name.clone()).collect();
            report
                .warnings
                .extend(delivery.disagreements(&obj.display(), &columns, &months));
        }
        report.converted.push(Converted {
            source: obj.display(),
            table: entry.table.clone(),
            totals: entry.totals.clone(),
            files: entry.files.len(),
            rejected: entry.rejected,
            rejects: entry.rejects.clone(),
            replaced: catalog.source(&obj.url).is_some(),
        });
        staged.push((entry, files));
    }
    syncs.into_iter().try_for_each(Syncing::wait)?;
    Ok((staged, report))
}

/// A partition: billing account and invoice month.
type PartKey = (String, String);

/// Converts one source into staged files (read again with the whole file's schema if a
/// sampled one proved too narrow); returns its catalog entry and (staged path, final
/// relative path) of each file.
fn stage_one(
    obj: &SourceObject,
    path: &Path,
    staging: &Path,
    opts: &ConvertOptions<'_>,
) -> Result<(SourceEntry, StagedFiles, Vec<String>, Syncing)> {
    let display = obj.display();
    let id = source_id(obj);
    let split = formats::read_export(path, &display, opts.progress, opts.lenient, |reader| {
        split(reader, staging, &id)
    })?;
    let kind = split.kind;
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for ((account, month), staged, rows) in split.parts {
        let rel = format!(
            "{}/{}/{ACCOUNT_FOLDER}={}/{MONTH_FOLDER}={}/{id}.parquet",
            kind.provider(),
            kind.table(),
            escape_partition(&account),
            escape_partition(&month),
        );
        entries.push(FileEntry {
            path: rel.clone(),
            rows,
            partition: BTreeMap::from([
                (ACCOUNT_FOLDER.to_string(), account),
                (MONTH_FOLDER.to_string(), month),
            ]),
        });
        files.push((staged, rel));
    }
    let (rejected_rows, rejects) = match split.rejected {
        Some(r) => {
            let rel = format!("{REJECTS_DIR}/{id}.csv");
            let staged = staging.join(format!("{id}-rejects.csv"));
            write_rejects(&staged, &r)?;
            files.push((staged, rel.clone()));
            (r.rows.len() as u64, Some(rel))
        }
        None => (0, None),
    };
    let entry = SourceEntry {
        url: obj.url.clone(),
        size: obj.size,
        modified: obj.modified.clone(),
        etag: obj.etag.clone(),
        table: kind.table().to_string(),
        totals: split.totals,
        files: entries,
        rejected: rejected_rows,
        rejects,
        schema: split
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        source_names: split.source_names.into_iter().collect(),
        converted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok((entry, files, split.warnings, split.syncing))
}

/// What reading a source left: its rows in staged partition files, and what the
/// reader counted and noticed.
struct Split {
    kind: ExportKind,
    schema: SchemaRef,
    totals: Totals,
    /// (partition, staged file, rows) of each partition.
    parts: Vec<(PartKey, PathBuf, u64)>,
    syncing: Syncing,
    warnings: Vec<String>,
    rejected: Option<Rejected>,
    source_names: Vec<(String, String)>,
}

/// Reads a source in a pipeline of threads: the reader's (unpacking and decoding, or
/// handing chunks to decoding threads), this one (totalling the rows and splitting
/// them by partition), and one that encodes and writes the partitions' row groups.
fn split(reader: Box<dyn BatchSource + '_>, staging: &Path, id: &str) -> Result<Split> {
    let kind = reader.kind();
    let schema = reader.schema();
    let mut totals = TotalsBuilder::new(kind.money_columns());
    let props = writer_properties(kind, &schema)?;
    std::thread::scope(|scope| {
        let (decoded, producer) = read_ahead(scope, reader);
        // A rendezvous: one row group at the writer, one being gathered.
        let (jobs, received) = std::sync::mpsc::sync_channel(0);
        let writer_schema = schema.clone();
        let writer = scope.spawn(move || write_groups(received, writer_schema, props));
        let mut parts = Partitioner {
            kind,
            staging,
            id,
            time: schema.index_of(kind.time_column()).ok(),
            jobs,
            parts: BTreeMap::new(),
            pending_bytes: 0,
        };
        let consumed = decoded.into_iter().try_for_each(|batch| {
            let batch = batch?;
            totals.add(&batch)?;
            parts.add(batch)
        });
        let finished = consumed.and_then(|()| parts.finish());
        let reader = join(producer);
        // A writer's failure is what made the partitioner's hand-over fail: it goes first.
        let (rows, syncing) = join(writer)?;
        let (keys, paths) = finished?;
        Ok(Split {
            kind,
            schema,
            totals: totals.finish(),
            parts: keys
                .into_iter()
                .zip(paths)
                .zip(rows)
                .map(|((key, path), rows)| (key, path, rows))
                .collect(),
            syncing,
            warnings: reader.warnings(),
            rejected: reader.rejected(),
            source_names: reader.source_names(),
        })
    })
}

/// A scoped thread's result, its panic passed on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// How stored files are written: LZ4, page statistics, row groups cut by the
/// partitioner, and the time column recorded as the sort order of each row group.
/// LZ4 rather than zstd: a store about a fifth larger, whose pages decode in half the
/// time or less (every query's scan) and encode in less (benches/RESULTS.md).
fn writer_properties(kind: ExportKind, schema: &SchemaRef) -> Result<WriterProperties> {
    let leaves = ArrowSchemaConverter::new().convert(schema)?;
    let time_leaf =
        (0..leaves.num_columns()).find(|&i| leaves.column(i).path().string() == kind.time_column());
    let mut builder = WriterProperties::builder();
    for leaf in leaves.columns() {
        let path = leaf.path().clone();
        // Amounts rarely repeat and line item ids never do: their dictionaries would
        // overflow into plain pages anyway (after hashing every value), and a
        // dictionary page is slower to decode than plain values.
        if leaf.physical_type() == PhysicalType::DOUBLE
            || kind.line_item_ids().contains(&path.string().as_str())
        {
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
        }
        // The values of arrays and maps: no reader prunes rows by their minimum and
        // maximum (DataFusion's pruning reads top-level columns' statistics only), and
        // comparing every value for them was a tenth of the encoding.
        if leaf.max_rep_level() > 0 {
            builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    Ok(builder
        .set_compression(Compression::LZ4_RAW)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(time_leaf.map(|i| {
            vec![SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: true,
            }]
        }))
        .build())
}

/// Work for the writing thread.
enum Job {
    /// Start the next partition's file.
    Open(PathBuf),
    /// Write rows to a partition's file as one row group.
    Group(usize, Rows),
}

/// A row group's rows, in time order: each column's arrays (one from each batch the
/// rows come from), all their rows in order or those picked. The encoders gather a
/// column at a time, and a column's arrays are dropped once it is encoded.
struct Rows {
    columns: Vec<Vec<ArrayRef>>,
    picked: Option<Picked>,
}

impl Rows {
    fn new(batches: &[RecordBatch], picked: Option<Picked>) -> Self {
        let columns = (0..batches.first().map_or(0, RecordBatch::num_columns))
            .map(|i| batches.iter().map(|b| b.column(i).clone()).collect())
            .collect();
        Self { columns, picked }
    }

    fn len(&self) -> usize {
        match (&self.picked, self.columns.first()) {
            (Some(picked), _) => picked.len(),
            (None, Some(arrays)) => arrays.iter().map(|a| a.len()).sum(),
            (None, None) => 0,
        }
    }
}

/// A partition's file being written: the Parquet writer, what makes its column
/// writers, and its rows so far.
struct OpenFile {
    path: PathBuf,
    writer: SerializedFileWriter<File>,
    columns: ArrowRowGroupWriterFactory,
    /// How many Parquet columns (leaves) each column is written as.
    leaves: Vec<usize>,
    rows: u64,
}

impl OpenFile {
    fn create(path: PathBuf, schema: &SchemaRef, props: &WriterProperties) -> Result<Self> {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let (writer, columns) = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?
            .into_serialized_writer()?;
        let parquet = writer.schema_descr();
        let mut leaves = vec![0; schema.fields().len()];
        for leaf in 0..parquet.num_columns() {
            leaves[parquet.get_column_root_idx(leaf)] += 1;
        }
        Ok(Self {
            path,
            writer,
            columns,
            leaves,
            rows: 0,
        })
    }

    /// Appends `rows` as one row group, its columns gathered and encoded on `encoders`
    /// threads, each taking the largest column not yet taken.
    fn append(&mut self, schema: &SchemaRef, rows: Rows, encoders: usize) -> Result<()> {
        let len = rows.len();
        let mut writers = self
            .columns
            .create_column_writers(self.writer.flushed_row_groups().len())?
            .into_iter()
            .enumerate();
        // Each column with its leaves' writers (numbered in the file's leaf order).
        let mut work: Vec<_> = schema
            .fields()
            .iter()
            .zip(rows.columns)
            .zip(&self.leaves)
            .map(|((field, arrays), &leaves)| {
                let writers = writers.by_ref().take(leaves).collect::<Vec<_>>();
                let size: usize = arrays.iter().map(|a| a.get_array_memory_size()).sum();
                (size, field, arrays, writers)
            })
            .collect();
        work.sort_by_key(|(size, ..)| std::cmp::Reverse(*size));
        let picked = rows.picked.as_ref();
        let work = Mutex::new(work.into_iter());
        let encoded = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let encode = || -> Result<()> {
                loop {
                    let Some((_, field, mut arrays, mut writers)) =
                        work.lock().expect("no panic").next()
                    else {
                        return Ok(());
                    };
                    if let Some(picked) = picked {
                        let column: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                        arrays = vec![picked.column(&column)?];
                    }
                    for array in &arrays {
                        for (leaf, (_, writer)) in
                            compute_leaves(field, array)?.iter().zip(&mut writers)
                        {
                            writer.write(leaf)?;
                        }
                    }
                    for (leaf, writer) in writers {
                        let chunk = writer.close()?;
                        encoded.lock().expect("no panic").push((leaf, chunk));
                    }
                }
            };
            let helpers: Vec<_> = (1..encoders).map(|_| scope.spawn(encode)).collect();
            helpers.into_iter().map(join).fold(encode(), Result::and)
        })?;
        let mut chunks = encoded.into_inner().expect("no panic");
        chunks.sort_unstable_by_key(|(i, _)| *i);
        let mut group = self.writer.next_row_group()?;
        for (_, chunk) in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.rows += len as u64;
        Ok(())
    }

    /// Writes the footer; returns the row count, and the file to sync.
    fn finish(self) -> Result<(u64, (PathBuf, File))> {
        Ok((self.rows, (self.path, self.writer.into_inner()?)))
    }
}

/// Staged files being synced on a thread of their own while the next source converts
/// (10 ms a source that the run otherwise waited); waited for before the commit.
struct Syncing(std::thread::JoinHandle<Result<()>>);

impl Syncing {
    fn start(files: Vec<(PathBuf, File)>) -> Self {
        Self(std::thread::spawn(move || {
            files
                .into_iter()
                .try_for_each(|(path, file)| file.sync_all().map_err(|e| Error::io(&path, e)))
        }))
    }

    fn wait(self) -> Result<()> {
        self.0
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// The writing thread: encodes each row group it receives into its partition's file,
/// and closes the files when the jobs end; returns each file's row count, and the
/// files' syncing.
fn write_groups(
    jobs: std::sync::mpsc::Receiver<Job>,
    schema: SchemaRef,
    props: WriterProperties,
) -> Result<(Vec<u64>, Syncing)> {
    let encoders = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut files: Vec<OpenFile> = Vec::new();
    for job in jobs {
        match job {
            Job::Open(path) => files.push(OpenFile::create(path, &schema, &props)?),
            Job::Group(part, rows) => files[part].append(&schema, rows, encoders)?,
        }
    }
    let (rows, written) = files
        .into_iter()
        .map(OpenFile::finish)
        .collect::<Result<(Vec<_>, Vec<_>)>>()?;
    Ok((rows, Syncing::start(written)))
}

/// Splits rows by partition, holding each partition's rows until a row group's worth
/// (or the memory bound) and handing them to the writer sorted by time: every row
/// group is sorted, so its time statistics are tight.
struct Partitioner<'a> {
    kind: ExportKind,
    staging: &'a Path,
    id: &'a str,
    /// The time column's index, if the rows have one.
    time: Option<usize>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    parts: BTreeMap<PartKey, Partition>,
    /// Memory of the decoded batches that pending rows keep alive.
    pending_bytes: usize,
}

/// A partition's file (by its index at the writer) and the rows of its next row group.
struct Partition {
    index: usize,
    path: PathBuf,
    pending: Vec<Piece>,
    pending_rows: usize,
}

/// Rows of a decoded batch that belong to one partition: all of them, or those listed.
struct Piece {
    /// The batch and its memory size; the last piece dropped frees it.
    batch: Arc<(RecordBatch, usize)>,
    rows: Option<UInt32Array>,
}

impl Piece {
    fn len(&self) -> usize {
        self.rows
            .as_ref()
            .map_or(self.batch.0.num_rows(), Array::len)
    }

    fn row(&self, i: usize) -> usize {
        self.rows.as_ref().map_or(i, |r| r.value(i) as usize)
    }
}

impl Partitioner<'_> {
    fn add(&mut self, batch: RecordBatch) -> Result<()> {
        let groups = partition_rows(self.kind, &batch)?;
        let whole = groups.len() == 1;
        let bytes = batch.get_array_memory_size();
        let batch = Arc::new((batch, bytes));
        self.pending_bytes += bytes;
        for (key, rows) in groups {
            let n = self.parts.len();
            let p = match self.parts.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let path = self.staging.join(format!("{}-{n}.parquet", self.id));
                    send(&self.jobs, Job::Open(path.clone()))?;
                    e.insert(Partition {
                        index: n,
                        path,
                        pending: Vec::new(),
                        pending_rows: 0,
                    })
                }
            };
            let piece = Piece {
                batch: batch.clone(),
                rows: (!whole).then(|| UInt32Array::from(rows)),
            };
            p.pending_rows += piece.len();
            p.pending.push(piece);
            if p.pending_rows >= ROW_GROUP_ROWS {
                self.pending_bytes -= p.flush(self.time, &self.jobs)?;
            }
        }
        drop(batch);
        while self.pending_bytes > PENDING_MEMORY {
            let Some(largest) = self
                .parts
                .values_mut()
                .filter(|p| p.pending_rows > 0)
                .max_by_key(|p| p.pending_rows)
            else {
                break;
            };
            self.pending_bytes -= largest.flush(self.time, &self.jobs)?;
        }
        Ok(())
    }

    /// Hands over what is pending; returns the partitions and their files, in the
    /// writer's order.
    fn finish(mut self) -> Result<(Vec<PartKey>, Vec<PathBuf>)> {
        for p in self.parts.values_mut() {
            p.flush(self.time, &self.jobs)?;
        }
        let mut parts: Vec<_> = self.parts.into_iter().collect();
        parts.sort_by_key(|(_, p)| p.index);
        Ok(parts.into_iter().map(|(k, p)| (k, p.path)).unzip())
    }
}

fn send(jobs: &std::sync::mpsc::SyncSender<Job>, job: Job) -> Result<()> {
    // The writer only hangs up when it failed; its own error is the one reported.
    jobs.send(job)
        .map_err(|_| Error::io("", std::io::Error::other("the writing thread stopped")))
}

impl Partition {
    /// Hands the pending rows, sorted by time, to the writer as a row group; returns
    /// the memory of the batches that no other partition still holds.
    fn flush(
        &mut self,
        time: Option<usize>,
        jobs: &std::sync::mpsc::SyncSender<Job>,
    ) -> Result<usize> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let pieces = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let group = sorted_rows(&pieces, time)?;
        let freed = pieces
            .into_iter()
            .filter_map(|p| Arc::into_inner(p.batch).map(|(_, bytes)| bytes))
            .sum();
        send(jobs, Job::Group(self.index, group))?;
        Ok(freed)
    }
}

/// The rows of `pieces` sorted by the column at `time`: the whole batches themselves
/// when they already are in order, else the rows picked in order.
fn sorted_rows(pieces: &[Piece], time: Option<usize>) -> Result<Rows> {
    let order = match time {
        Some(time) => time_order(pieces, time)?,
        None => None,
    };
    let batches: Vec<RecordBatch> = pieces.iter().map(|p| p.batch.0.clone()).collect();
    if order.is_none() && pieces.iter().all(|p| p.rows.is_none()) {
        return Ok(Rows::new(&batches, None));
    }
    let rows: Vec<(usize, usize)> = pieces
        .iter()
        .enumerate()
        .flat_map(|(k, p)| (0..p.len()).map(move |i| (k, p.row(i))))
        .collect();
    let rows = match order {
        Some(order) => order.into_iter().map(|i| rows[i]).collect(),
        None => rows,
    };
    Ok(Rows::new(&batches, Some(Picked::new(rows))))
}

/// The order that sorts the pieces' rows, one after another, by the column at `time`
/// (NULLs first, ties as they came), or `None` when they already are.
fn time_order(pieces: &[Piece], time: usize) -> Result<Option<Vec<usize>>> {
    let columns = pieces
        .iter()
        .map(|p| {
            let column = p.batch.0.column(time);
            match &p.rows {
                Some(rows) => take(column, rows, None),
                None => Ok(column.clone()),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let times = concat(&columns.iter().map(|c| c.as_ref()).collect::<Vec<_>>())?;
    let options = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let cmp = make_comparator(&times, &times, options)?;
    if (1..times.len()).all(|i| cmp(i - 1, i).is_le()) {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    Ok(Some(order))
}

/// Writes rows set aside as CSV: the source's header, a `line` column first.
fn write_rejects(path: &Path, rejected: &Rejected) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    w.write_record(std::iter::once("line").chain(rejected.header.iter().map(String::as_str)))
        .map_err(io)?;
    for (line, fields) in &rejected.rows {
        let line = line.to_string();
        w.write_record(std::iter::once(line.as_str()).chain(fields.iter().map(String::as_str)))
            .map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?
        .sync_all()
        .map_err(|e| Error::io(path, e))
}

/// The row indices of each partition in `batch`.
fn partition_rows(kind: ExportKind, batch: &RecordBatch) -> Result<Vec<(PartKey, Vec<u32>)>> {
    let account = match kind {
        // Pay-as-you-go exports have no billing account: the subscription bills.
        ExportKind::AzureCost if batch.column_by_name("billingAccountId").is_none() => {
            string_column(batch, &["subscriptionId"])
        }
        _ => string_column(batch, &[kind.account_column()]),
    };
    let month = match kind {
        ExportKind::GcpStandard | ExportKind::GcpResource => {
            string_column(batch, &["invoice", "month"])
        }
        ExportKind::AwsCur => month_column(batch, "bill_billing_period_start_date"),
        ExportKind::AzureCost if batch.column_by_name("billingPeriodStartDate").is_some() => {
            month_column(batch, "billingPeriodStartDate")
        }
        ExportKind::FocusExport => month_column(batch, "BillingPeriodStart"),
        ExportKind::GcpPricing
        | ExportKind::GcpFileExport
        | ExportKind::AwsDbr
        | ExportKind::AzureCost
        | ExportKind::AzureUsage
        | ExportKind::AzureRateCard => month_column(batch, kind.time_column()),
    };
    // Rows come in runs of one partition: a row like the one before it skips the hash.
    let mut groups: Vec<((KeyValue, KeyValue), Vec<u32>)> = Vec::new();
    let mut index: HashMap<(KeyValue, KeyValue), usize> = HashMap::new();
    let mut last: Option<((KeyValue, KeyValue), usize)> = None;
    for i in 0..batch.num_rows() {
        let key = (account(i), month(i));
        let group = match last {
            Some((previous, group)) if previous == key => group,
            _ => {
                let group = *index.entry(key).or_insert_with(|| {
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                });
                last = Some((key, group));
                group
            }
        };
        groups[group].1.push(i as u32);
    }
    let mut out: Vec<_> = groups
        .into_iter()
        .map(|((a, m), rows)| ((a.to_string(), m.to_string()), rows))
        .collect();
    out.sort();
    Ok(out)
}

/// A row's value of a partition key, borrowed from its batch.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum KeyValue<'a> {
    Null,
    Text(&'a str),
    /// A UTC month, `year * 100 + month`.
    Month(i32),
}

impl std::fmt::Display for KeyValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Null => f.write_str(NULL_PARTITION),
            KeyValue::Text(s) => f.write_str(s),
            KeyValue::Month(m) => write!(f, "{m:06}"),
        }
    }
}

/// A per-row accessor of a string column at a path through records.
fn string_column<'a>(
    batch: &'a RecordBatch,
    path: &[&str],
) -> Box<dyn Fn(usize) -> KeyValue<'a> + 'a> {
    let mut array = batch.column_by_name(path[0]);
    for name in &path[1..] {
        array = array.and_then(|a| {
            a.as_any()
                .downcast_ref::<StructArray>()
                .and_then(|s| s.column_by_name(name))
        });
    }
    match array {
        Some(a) if a.data_type() == &DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Box::new(move |i| {
                if s.is_null(i) {
                    KeyValue::Null
                } else {
                    KeyValue::Text(s.value(i))
                }
            })
        }
        _ => Box::new(|_| KeyValue::Null),
    }
}

/// A per-row accessor of the UTC month of a timestamp column.
fn month_column<'a>(batch: &'a RecordBatch, name: &str) -> Box<dyn Fn(usize) -> KeyValue<'a> + 'a> {
    match batch.column_by_name(name) {
        Some(a)
            if matches!(
                a.data_type(),
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _)
            ) =>
        {
            let ts = a.as_primitive::<TimestampMicrosecondType>();
            Box::new(move |i| {
                if ts.is_null(i) {
                    return KeyValue::Null;
                }
                chrono::DateTime::from_timestamp_micros(ts.value(i)).map_or(KeyValue::Null, |d| {
                    KeyValue::Month(d.year() * 100 + d.month() as i32)
                })
            })
        }
        _ => Box::new(|_| KeyValue::Null),
    }
}

/// Escapes a partition value for a folder name (`%XX` for anything unusual).
pub(crate) fn escape_partition(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A short stable id of a source's URL and content identity, naming its files.
fn source_id(obj: &SourceObject) -> String {
    let mut h = Sha256::new();
    for part in [
        &obj.url,
        &obj.size.to_string(),
        &obj.modified,
        obj.etag.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Takes the store's writer lock for this process's lifetime (released on exit, even
/// a killed one), so two conversions never interleave their commits.
fn lock(out: &Path) -> Result<File> {
    let path = out.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Catalog {
            path: out.to_path_buf(),
            message: "another billq convert is writing this store; try again when it is done"
                .into(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn run_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// Removes what an interrupted run left: its staging folder, and stored files that the
/// catalog does not list (written, but never committed).
fn sweep(out: &Path, catalog: &Catalog) -> Result<()> {
    let staging = out.join(STAGING_DIR);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    let live = catalog.file_paths();
    let dirs = ExportKind::ALL
        .iter()
        .map(|k| out.join(k.provider()).join(k.table()))
        .chain([out.join(REJECTS_DIR)]);
    for dir in dirs {
        let mut found = Vec::new();
        collect_files(&dir, &mut found);
        for path in found {
            let rel = path
                .strip_prefix(out)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if !live.contains(rel.as_str()) {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    sync_dir(out)
}

/// The store's data and rejects files below `dir`.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "parquet" || e == "csv")
        {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, ListArray, StringArray, TimestampMicrosecondArray};
    use arrow::buffer::OffsetBuffer;
    use arrow::compute::interleave_record_batch;
    use arrow::datatypes::{Field, Fields, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::schema::types::ColumnPath;

    use super::*;

    /// `n` rows from the `start`th: text, a UTC time, 0-2 key/value labels and an amount.
    fn rows(start: i64, n: i64) -> RecordBatch {
        let label = Fields::from(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, true),
        ]);
        let item = Arc::new(Field::new("item", DataType::Struct(label.clone()), true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("usage_start_time", formats::gcp::timestamp_type(), true),
            Field::new("labels", DataType::List(item.clone()), true),
            Field::new("cost", DataType::Float64, true),
        ]));
        let ids = start..start + n;
        let counts: Vec<usize> = ids.clone().map(|i| (i % 3) as usize).collect();
        let keys: Vec<String> = counts
            .iter()
            .flat_map(|&c| (0..c).map(|k| format!("k{k}")))
            .collect();
        let values: Vec<String> = (0..keys.len())
            .map(|v| format!("v{}", start + v as i64))
            .collect();
        let labels = StructArray::new(
            label,
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(StringArray::from(values)),
            ],
            None,
        );
        let columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                ids.clone().map(|i| format!("sku-{}", i % 7)),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(ids.clone().map(|i| i * 3_600_000_000))
                    .with_timezone("UTC"),
            ),
            Arc::new(ListArray::new(
                item,
                OffsetBuffer::from_lengths(counts),
                Arc::new(labels),
                None,
            )),
            Arc::new(Float64Array::from_iter_values(ids.map(|i| i as f64 / 1e6))),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn line_item_ids_and_amounts_are_written_without_dictionaries() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("identity_line_item_id", DataType::Utf8, true),
            Field::new("line_item_product_code", DataType::Utf8, true),
            Field::new("line_item_unblended_cost", DataType::Float64, true),
        ]));
        let props = writer_properties(ExportKind::AwsCur, &schema).unwrap();
        let dictionary = |name: &str| props.dictionary_enabled(&ColumnPath::from(name));
        assert!(!dictionary("identity_line_item_id"));
        assert!(dictionary("line_item_product_code"));
        assert!(!dictionary("line_item_unblended_cost"));
    }

    #[test]
    fn row_groups_gathered_and_encoded_on_several_threads_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.parquet");
        let picked_from = [rows(4000, 2500), rows(6500, 500)];
        // The second batch's rows, then the first's: two runs, copied as runs.
        let in_runs: Vec<(usize, usize)> = (0..500)
            .map(|i| (1, i))
            .chain((0..2500).map(|i| (0, i)))
            .collect();
        // Rows of both in turn, fetched one at a time.
        let scattered: Vec<(usize, usize)> = (0..1000).map(|i| (i % 2, i * 2 % 500)).collect();
        let refs: Vec<&RecordBatch> = picked_from.iter().collect();
        let written = [
            rows(0, 3000),
            rows(3000, 1000),
            interleave_record_batch(&refs, &in_runs).unwrap(),
            interleave_record_batch(&refs, &scattered).unwrap(),
        ];
        let groups = [
            Rows::new(&[rows(0, 3000), rows(3000, 1000)], None),
            Rows::new(&picked_from, Some(Picked::new(in_runs))),
            Rows::new(&picked_from, Some(Picked::new(scattered))),
        ];
        let schema = written[0].schema();
        let props = writer_properties(ExportKind::GcpStandard, &schema).unwrap();
        let mut file = OpenFile::create(path.clone(), &schema, &props).unwrap();
        for (group, encoders) in groups.into_iter().zip([3, 2, 2]) {
            file.append(&schema, group, encoders).unwrap();
        }
        let (rows, (synced, _)) = file.finish().unwrap();
        assert_eq!((rows, synced), (8000, path.clone()));

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata().clone();
        let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, [4000, 3000, 1000]);
        assert!(
            meta.row_groups()
                .iter()
                .all(|g| g.sorting_columns().is_some())
        );
        // Statistics of the top-level columns only, not of the labels' keys and values.
        let with_statistics: Vec<String> = meta.row_groups()[0]
            .columns()
            .iter()
            .filter(|c| c.statistics().is_some())
            .map(|c| c.column_path().string())
            .collect();
        assert_eq!(with_statistics, ["sku", "usage_start_time", "cost"]);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(
            arrow::compute::concat_batches(&schema, &read).unwrap(),
            arrow::compute::concat_batches(&schema, &written).unwrap()
        );
    }

    #[test]
    fn rows_are_ordered_by_time_nulls_first_ties_as_they_came() {
        let batch = rows(0, 6);
        let times =
            TimestampMicrosecondArray::from(vec![Some(5), None, Some(3), Some(5), None, Some(1)])
                .with_timezone("UTC");
        let pieces = |times: arrow::array::ArrayRef, rows: Option<Vec<u32>>| {
            let mut columns = batch.columns().to_vec();
            columns[1] = times;
            let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
            let batch = Arc::new((batch, 0));
            vec![
                Piece {
                    batch: Arc::clone(&batch),
                    rows: None,
                },
                Piece {
                    batch,
                    rows: rows.map(UInt32Array::from),
                },
            ]
        };
        // Times 5, -, 3, 5, -, 1 and then rows 4 and 0 again: -, 5.
        let unordered = pieces(Arc::new(times.clone()), Some(vec![4, 0]));
        assert_eq!(
            time_order(&unordered, 1).unwrap(),
            Some(vec![1, 4, 6, 5, 2, 0, 3, 7])
        );
        // Rows already in order: none to make.
        let ordered = pieces(Arc::new(times), Some(vec![1, 4, 5, 2, 0]));
        assert_eq!(time_order(&ordered[1..], 1).unwrap(), None);
    }

    #[test]
    fn partition_values_are_safe_folder_names() {
        assert_eq!(
            escape_partition("012345-ABCDEF-678901"),
            "012345-ABCDEF-678901"
        );
        assert_eq!(escape_partition("a/b c"), "a%2Fb%20c");
    }
}
