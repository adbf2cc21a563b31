//! Conversion of export files into the store: partitioned, sorted, compressed Parquet,
//! committed atomically through the catalog, and incremental by source identity.
//!
//! A run reads each changed source once, streaming: rows are split by partition into
//! staged files while their exact totals are counted; each staged partition is then
//! sorted by usage time (DataFusion, spilling to disk past a memory limit) into its
//! final file. Only when every source has converted are the files moved into place
//! and the new catalog renamed over the old one; superseded files are removed after.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StructArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{Expr, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, FileEntry, REJECTS_DIR, STAGING_DIR, SourceEntry, sync_dir};
use crate::error::{Error, Result};
use crate::formats::{self, ExportKind, Rejected};
use crate::money::{Totals, TotalsBuilder};
use crate::progress::Progress;
use crate::source::{self, Resolved, SourceObject, StoreOptions};

/// Rows per row group of stored files.
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Rows a staged (unsorted) file buffers per partition before writing them out.
const STAGED_ROW_GROUP_ROWS: usize = 64 * 1024;
/// Memory the sort of one partition may use before it spills to disk.
const SORT_MEMORY: usize = 512 * 1024 * 1024;
/// Partition value for a NULL key, as Hive writes it.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

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

type Staged = Vec<(SourceEntry, Vec<(PathBuf, String)>)>;

async fn stage_all(
    resolved: &Resolved,
    catalog: &Catalog,
    staging: &Path,
    opts: &ConvertOptions<'_>,
) -> Result<(Staged, ConvertReport)> {
    let mut report = ConvertReport::default();
    let mut staged = Vec::new();
    for obj in &resolved.objects {
        if catalog.source(&obj.url).is_some_and(|e| e.is_current(obj)) {
            report.unchanged.push(obj.display());
            continue;
        }
        let fetched = source::fetch(obj, &opts.store).await?;
        if let Some(p) = opts.progress {
            p.begin(&obj.display(), obj.size);
        }
        let result = stage_one(obj, &fetched.path, staging, opts).await;
        if let Some(p) = opts.progress {
            p.end();
        }
        let (entry, files, warnings) = result?;
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
    Ok((staged, report))
}

/// A partition: billing account and invoice month.
type PartKey = (String, String);

/// Converts one source into sorted staged files; returns its catalog entry and
/// (staged path, final relative path) of each file.
async fn stage_one(
    obj: &SourceObject,
    path: &Path,
    staging: &Path,
    opts: &ConvertOptions<'_>,
) -> Result<(SourceEntry, Vec<(PathBuf, String)>, Vec<String>)> {
    let display = obj.display();
    let id = source_id(obj);
    let (kind, schema, totals, raw, warnings, rejected, source_names) = {
        let mut reader = formats::open(path, &display, opts.progress, opts.lenient)?;
        let kind = reader.kind();
        let schema = reader.schema();
        let mut totals = TotalsBuilder::new(kind.money_columns());
        let mut writers: BTreeMap<PartKey, (PathBuf, ArrowWriter<File>)> = BTreeMap::new();
        while let Some(batch) = reader.next_batch()? {
            totals.add(&batch)?;
            for (key, rows) in partition_rows(kind, &batch)? {
                let part = take_record_batch(&batch, &UInt32Array::from(rows))?;
                if !writers.contains_key(&key) {
                    let raw = staging.join(format!("{id}-raw-{}.parquet", writers.len()));
                    let file = File::create(&raw).map_err(|e| Error::io(&raw, e))?;
                    let props = WriterProperties::builder()
                        .set_compression(Compression::UNCOMPRESSED)
                        .set_max_row_group_row_count(Some(STAGED_ROW_GROUP_ROWS))
                        .build();
                    let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
                    writers.insert(key.clone(), (raw, writer));
                }
                writers.get_mut(&key).expect("inserted").1.write(&part)?;
            }
        }
        let mut raw = Vec::new();
        for (key, (path, writer)) in writers {
            writer.close()?;
            raw.push((key, path));
        }
        (
            kind,
            schema,
            totals.finish(),
            raw,
            reader.warnings(),
            reader.rejected(),
            reader.source_names(),
        )
    };

    let ctx = sort_context()?;
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for ((account, month), raw_path) in raw {
        let rel = format!(
            "{}/{}/billing_account_id={}/invoice_month={}/{id}.parquet",
            kind.provider(),
            kind.table(),
            escape_partition(&account),
            escape_partition(&month),
        );
        let sorted = staging.join(format!("{id}-{}.parquet", entries.len()));
        let rows = sort_into(&ctx, &raw_path, &sorted, kind.time_column()).await?;
        let _ = std::fs::remove_file(&raw_path);
        entries.push(FileEntry {
            path: rel.clone(),
            rows,
            partition: BTreeMap::from([
                ("billing_account_id".to_string(), account),
                ("invoice_month".to_string(), month),
            ]),
        });
        files.push((sorted, rel));
    }
    let (rejected_rows, rejects) = match rejected {
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
        totals,
        files: entries,
        rejected: rejected_rows,
        rejects,
        schema: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        source_names: source_names.into_iter().collect(),
        converted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok((entry, files, warnings))
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
    let n = batch.num_rows();
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
    let mut groups: HashMap<PartKey, Vec<u32>> = HashMap::new();
    for i in 0..n {
        let key = (account(i), month(i));
        groups.entry(key).or_default().push(i as u32);
    }
    let mut out: Vec<_> = groups.into_iter().collect();
    out.sort();
    Ok(out)
}

/// A per-row accessor of a string column at a path through records.
fn string_column<'a>(batch: &'a RecordBatch, path: &[&str]) -> Box<dyn Fn(usize) -> String + 'a> {
    let mut array = batch.column_by_name(path[0]).cloned();
    for name in &path[1..] {
        array = array.and_then(|a| {
            a.as_any()
                .downcast_ref::<StructArray>()
                .and_then(|s| s.column_by_name(name).cloned())
        });
    }
    match array {
        Some(a) if a.data_type() == &DataType::Utf8 => Box::new(move |i| {
            let s = a.as_string::<i32>();
            if s.is_null(i) {
                NULL_PARTITION.to_string()
            } else {
                s.value(i).to_string()
            }
        }),
        _ => Box::new(|_| NULL_PARTITION.to_string()),
    }
}

/// A per-row accessor of the UTC month (`YYYYMM`) of a timestamp column.
fn month_column<'a>(batch: &'a RecordBatch, name: &str) -> Box<dyn Fn(usize) -> String + 'a> {
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
                    return NULL_PARTITION.to_string();
                }
                chrono::DateTime::from_timestamp_micros(ts.value(i))
                    .map(|d| d.format("%Y%m").to_string())
                    .unwrap_or_else(|| NULL_PARTITION.to_string())
            })
        }
        _ => Box::new(|_| NULL_PARTITION.to_string()),
    }
}

/// Escapes a partition value for a folder name (`%XX` for anything unusual).
fn escape_partition(value: &str) -> String {
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

/// The context that sorts staged partitions: memory-limited, spilling to disk, and
/// reading strings as plain Utf8 so stored files keep the documented types.
fn sort_context() -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(SORT_MEMORY, 1.0)
        .build_arc()?;
    let config = SessionConfig::new().with_target_partitions(1).set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Sorts a staged file by `time_column` into `out` with the store's writer settings.
async fn sort_into(ctx: &SessionContext, raw: &Path, out: &Path, time_column: &str) -> Result<u64> {
    let df = ctx
        .read_parquet(
            raw.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let time_index = schema.index_of(time_column).ok();
    let df = match time_index {
        Some(_) => df.sort(vec![
            Expr::Column(datafusion::common::Column::from_name(time_column)).sort(true, true),
        ])?,
        None => df,
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(time_index.map(|i| {
            vec![SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: true,
            }]
        }))
        .build();
    let file = File::create(out).map_err(|e| Error::io(out, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    let mut stream = df.execute_stream().await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    writer
        .into_inner()?
        .sync_all()
        .map_err(|e| Error::io(out, e))?;
    Ok(rows)
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
    use super::*;

    #[test]
    fn partition_values_are_safe_folder_names() {
        assert_eq!(
            escape_partition("012345-ABCDEF-678901"),
            "012345-ABCDEF-678901"
        );
        assert_eq!(escape_partition("a/b c"), "a%2Fb%20c");
    }
}
