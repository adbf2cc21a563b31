//! Skipping the row groups whose dictionaries hold no text a filter accepts.
//!
//! Statistics prune a row group for `service.description = 'x'`, but not for
//! `LOWER(sku.description) LIKE 'commitment%'`: no minimum and maximum say what a
//! function of the text gives. A stored text field has a few distinct values, all in
//! its column chunk's dictionary page when every data page is dictionary encoded; a
//! filter that depends on that field alone can be evaluated on them. Where no value
//! (nor NULL, when the chunk has NULLs) passes, no row of the row group can, and it is
//! not read (as Parquet readers such as parquet-mr do: "dictionary filtering").
//!
//! [`DictionaryPruning`] finds a Parquet scan's filter conjuncts over one text field and
//! gives the scan a file reader ([`PrunedReaders`]) whose metadata lists only the row
//! groups some dictionary value passes; DataFusion's own pruning (statistics, page
//! index) goes on over those. The count of row groups skipped is the scan's metric
//! `row_groups_pruned_dictionary`.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BinaryArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use bytes::{Buf, Bytes};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{ScalarFunctionExpr, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::basic::{Encoding, PageType, Type as PhysicalType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData, ParquetMetaDataBuilder};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;

use crate::plan_rewrite::replace_file_scans;

/// Gives Parquet scans whose filter has conjuncts over one text field a reader that
/// skips the row groups whose dictionaries rule them out.
#[derive(Debug)]
pub struct DictionaryPruning;

impl PhysicalOptimizerRule for DictionaryPruning {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_file_scans(plan, with_pruned_readers)
    }

    fn name(&self) -> &str {
        "dictionary_pruning"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `config` reading through [`PrunedReaders`], or `None` if its filter has no
/// conjunct over one text field.
fn with_pruned_readers(config: &FileScanConfig) -> Option<FileScanConfig> {
    let source = config.file_source().downcast_ref::<ParquetSource>()?;
    let inner = source.parquet_file_reader_factory()?;
    let predicate = config.file_source().filter()?;
    let schema = config.file_source().table_schema().table_schema();
    let tests: Vec<FieldTest> = split_conjunction(&predicate)
        .into_iter()
        .filter_map(|c| FieldTest::new(c, schema))
        .collect();
    if tests.is_empty() {
        return None;
    }
    let readers = PrunedReaders {
        inner: Arc::clone(inner),
        tests: tests.into(),
    };
    let source = source
        .clone()
        .with_parquet_file_reader_factory(Arc::new(readers));
    Some(
        FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build(),
    )
}

/// A filter conjunct that depends on one stored text field only: the field's path
/// (column, then record fields) and the conjunct over a batch of that field's values.
#[derive(Debug)]
struct FieldTest {
    path: Vec<String>,
    /// The field's type as the scan declares it (text, view, dictionary).
    data_type: DataType,
    /// The conjunct with the field replaced by column 0 of a one-column batch.
    test: Arc<dyn PhysicalExpr>,
}

impl FieldTest {
    fn new(conjunct: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Self> {
        let mut field: Option<(Vec<String>, DataType)> = None;
        let mut other = false;
        let test = Arc::clone(conjunct)
            .transform_down(|e| {
                if e.is_volatile_node() || e.snapshot()?.is_some() {
                    other = true;
                    return Ok(Transformed::new(e, false, TreeNodeRecursion::Stop));
                }
                if let Some(path) = field_path(&e) {
                    let data_type = e.data_type(schema)?;
                    if !is_text(&data_type) {
                        other = true;
                        return Ok(Transformed::new(e, false, TreeNodeRecursion::Stop));
                    }
                    match &field {
                        Some((known, _)) if *known != path => other = true,
                        Some(_) => {}
                        None => field = Some((path, data_type)),
                    }
                    let value: Arc<dyn PhysicalExpr> = Arc::new(Column::new("value", 0));
                    return Ok(Transformed::new(value, true, TreeNodeRecursion::Jump));
                }
                if e.downcast_ref::<Column>().is_some() {
                    other = true;
                }
                Ok(Transformed::no(e))
            })
            .ok()?
            .data;
        let (path, data_type) = field?;
        (!other).then_some(Self {
            path,
            data_type,
            test,
        })
    }

    /// Whether no row whose field holds one of `values` (dictionary values, and a
    /// NULL when `nulls`) can pass; `None` when the test cannot say.
    fn rules_out(&self, values: BinaryArray, nulls: bool) -> Option<bool> {
        let values: ArrayRef = if nulls {
            let mut all: Vec<Option<&[u8]>> = values.iter().collect();
            all.push(None);
            Arc::new(BinaryArray::from(all))
        } else {
            Arc::new(values)
        };
        let values = as_declared(&values, &self.data_type)?;
        let schema = Schema::new(vec![Field::new("value", self.data_type.clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![values]).ok()?;
        let passed = self
            .test
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .ok()?;
        Some(passed.as_boolean_opt()?.true_count() == 0)
    }
}

/// The path of a stored field `e` reads: a column, or `get_field` of one, with constant
/// field names.
fn field_path(e: &Arc<dyn PhysicalExpr>) -> Option<Vec<String>> {
    if let Some(c) = e.downcast_ref::<Column>() {
        return Some(vec![c.name().to_string()]);
    }
    let f = e.downcast_ref::<ScalarFunctionExpr>()?;
    let (record, names) = f.args().split_first()?;
    if f.name() != "get_field" || names.is_empty() {
        return None;
    }
    let mut path = field_path(record)?;
    for name in names {
        match name.downcast_ref::<Literal>()?.value() {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => path.push(s.clone()),
            _ => return None,
        }
    }
    Some(path)
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// Dictionary bytes as the scan declares the field: text, a view or a dictionary.
fn as_declared(values: &ArrayRef, data_type: &DataType) -> Option<ArrayRef> {
    let text = match data_type {
        DataType::Dictionary(_, v) => v,
        t => t,
    };
    let text = cast(values, text).ok()?;
    cast(&text, data_type).ok()
}

/// Readers of the files of one scan that drop from each file's metadata the row
/// groups its [`FieldTest`]s rule out.
#[derive(Debug)]
struct PrunedReaders {
    inner: Arc<dyn ParquetFileReaderFactory>,
    tests: Arc<[FieldTest]>,
}

impl ParquetFileReaderFactory for PrunedReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let pruned =
            MetricBuilder::new(metrics).counter("row_groups_pruned_dictionary", partition_index);
        Ok(Box::new(PrunedReader {
            inner: self
                .inner
                .create_reader(partition_index, file, metadata_size_hint, metrics)?,
            tests: Arc::clone(&self.tests),
            pruned,
        }))
    }
}

struct PrunedReader {
    inner: Box<dyn AsyncFileReader + Send>,
    tests: Arc<[FieldTest]>,
    pruned: Count,
}

impl AsyncFileReader for PrunedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = self.inner.get_metadata(options).await?;
            let mut kept = Vec::new();
            for (i, group) in metadata.row_groups().iter().enumerate() {
                if !self.ruled_out(group.columns()).await {
                    kept.push(i);
                }
            }
            let dropped = metadata.num_row_groups() - kept.len();
            if dropped == 0 {
                return Ok(metadata);
            }
            self.pruned.add(dropped);
            Ok(Arc::new(keep_row_groups(&metadata, &kept)))
        }
        .boxed()
    }
}

impl PrunedReader {
    /// Whether a test rules out the row group of `columns`.
    async fn ruled_out(&mut self, columns: &[ColumnChunkMetaData]) -> bool {
        for test in self.tests.iter() {
            let Some(chunk) = columns
                .iter()
                .find(|c| c.column_path().parts() == test.path)
            else {
                continue;
            };
            let Some(range) = dictionary_page(chunk) else {
                continue;
            };
            let Ok(bytes) = self.inner.get_bytes(range.clone()).await else {
                continue;
            };
            let Some(values) = dictionary_values(chunk, range.start, bytes) else {
                continue;
            };
            let nulls = chunk
                .statistics()
                .and_then(|s| s.null_count_opt())
                .is_none_or(|n| n > 0);
            if test.rules_out(values, nulls) == Some(true) {
                return true;
            }
        }
        false
    }
}

/// The byte range of a text column chunk's dictionary page, if every data page of
/// the chunk is dictionary encoded (so that its values are all the chunk holds).
fn dictionary_page(chunk: &ColumnChunkMetaData) -> Option<Range<u64>> {
    let start = u64::try_from(chunk.dictionary_page_offset()?).ok()?;
    let end = u64::try_from(chunk.data_page_offset()).ok()?;
    let dictionary =
        |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    let only_dictionary = match (
        chunk.page_encoding_stats_mask(),
        chunk.page_encoding_stats(),
    ) {
        (Some(mask), _) => {
            mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY)
        }
        (None, Some(pages)) => pages
            .iter()
            .filter(|p| p.page_type != PageType::DICTIONARY_PAGE)
            .all(|p| dictionary(p.encoding)),
        (None, None) => false,
    };
    (chunk.column_type() == PhysicalType::BYTE_ARRAY && only_dictionary && start < end)
        .then_some(start..end)
}

/// The values of the dictionary page at file offset `start`, as bytes.
fn dictionary_values(chunk: &ColumnChunkMetaData, start: u64, bytes: Bytes) -> Option<BinaryArray> {
    let page = Arc::new(At { start, bytes });
    let mut pages = SerializedPageReader::new(page, chunk, 0, None).ok()?;
    let Page::DictionaryPage {
        buf,
        num_values,
        encoding: Encoding::PLAIN | Encoding::PLAIN_DICTIONARY,
        ..
    } = pages.get_next_page().ok()??
    else {
        return None;
    };
    // PLAIN byte arrays: each a 4-byte little-endian length, then the bytes.
    let mut rest = &buf[..];
    let mut values = Vec::with_capacity(num_values as usize);
    for _ in 0..num_values {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        values.push(rest.get(4..4 + len)?);
        rest = &rest[4 + len..];
    }
    Some(BinaryArray::from_vec(values))
}

/// Bytes read from a file at offset `start`, read back by file offset.
struct At {
    start: u64,
    bytes: Bytes,
}

impl Length for At {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for At {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self
            .get_bytes(start, self.len().saturating_sub(start) as usize)?
            .reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|s| s as usize)
            .filter(|s| s + length <= self.bytes.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::EOF(format!(
                    "{length} bytes at {start} lie outside the dictionary page read"
                ))
            })?;
        Ok(self.bytes.slice(from..from + length))
    }
}

/// `metadata` with only the row groups at `kept` (and their page indexes).
fn keep_row_groups(metadata: &ParquetMetaData, kept: &[usize]) -> ParquetMetaData {
    fn pick<T: Clone>(all: &[T], kept: &[usize]) -> Vec<T> {
        kept.iter().map(|&i| all[i].clone()).collect()
    }
    let column_index = metadata.column_index().map(|c| pick(c, kept));
    let offset_index = metadata.offset_index().map(|o| pick(o, kept));
    ParquetMetaDataBuilder::new_from_metadata(metadata.clone())
        .set_row_groups(pick(metadata.row_groups(), kept))
        .set_column_index(column_index)
        .set_offset_index(offset_index)
        .build()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arrow::array::{Int64Array, StringArray, StructArray};
    use arrow::datatypes::Fields;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::testing::{metric, rows};
    use crate::{Dialect, Session};

    /// 400 rows in four row groups of 100: `sku.description` is "Commitment v1: CPU"
    /// in the first group only, `kind` NULL in the third only; `cost` is the row
    /// number.
    fn write_bill(path: &Path, dictionary: bool) {
        let sku = Fields::from(vec![Field::new("description", DataType::Utf8, true)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("sku", DataType::Struct(sku.clone()), true),
            Field::new("kind", DataType::Utf8, true),
            Field::new("cost", DataType::Int64, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(100))
            .set_dictionary_enabled(dictionary)
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        for group in 0..4 {
            let rows = group * 100..(group + 1) * 100;
            let description = StringArray::from_iter_values(rows.clone().map(|i| match group {
                0 if i % 2 == 0 => "Commitment v1: CPU",
                0 => "Commitment v1: RAM",
                _ if i % 3 == 0 => "N1 Predefined Instance Core",
                _ => "Storage PD Capacity",
            }));
            let kind = StringArray::from_iter(
                rows.clone()
                    .map(|i| (group != 2 || i % 4 != 0).then(|| ["usage", "tax"][i as usize % 2])),
            );
            let sku = StructArray::new(sku.clone(), vec![Arc::new(description)], None);
            let cost = Int64Array::from_iter_values(rows);
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(sku), Arc::new(kind), Arc::new(cost)],
            )
            .unwrap();
            w.write(&batch).unwrap();
            w.flush().unwrap();
        }
        w.close().unwrap();
    }

    async fn session(path: &Path) -> Session {
        let s = Session::new();
        crate::store::register_files(s.context(), "t", &[path.to_path_buf()])
            .await
            .unwrap();
        s
    }

    /// The row groups `sql`'s scans skip by their dictionaries.
    async fn skipped_row_groups(s: &Session, sql: &str) -> usize {
        let name = "row_groups_pruned_dictionary";
        metric(s, sql, Dialect::BigQuery, "DataSourceExec", name).await
    }

    #[tokio::test]
    async fn row_groups_whose_dictionaries_no_value_passes_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bill.parquet");
        write_bill(&path, true);
        let s = session(&path).await;
        // (query, its answer, row groups skipped by their dictionaries)
        let cases = [
            // The seed queries' commitment filter: only the first group has such SKUs.
            (
                "SELECT COUNT(*), SUM(cost) FROM t WHERE LOWER(sku.description) LIKE 'commitment%'",
                "100 4950",
                3,
            ),
            (
                "SELECT COUNT(*), SUM(cost) FROM t WHERE sku.description = 'Storage PD Capacity'",
                "200 49800",
                1,
            ),
            // NULL passes `IS NULL`: kept where the chunk has NULLs, the third group.
            (
                "SELECT COUNT(*), SUM(cost) FROM t WHERE kind IS NULL",
                "25 6200",
                3,
            ),
            // No value fails: nothing to skip.
            (
                "SELECT COUNT(*), SUM(cost) FROM t WHERE kind IN ('usage', 'tax')",
                "375 73600",
                0,
            ),
            // A conjunct over two fields says nothing of one dictionary.
            (
                "SELECT COUNT(*) FROM t WHERE CONCAT(kind, sku.description) LIKE 'tax%Commitment%'",
                "50",
                0,
            ),
            // Two conjuncts, each over one field: each rules out groups.
            (
                "SELECT COUNT(*), SUM(cost) FROM t WHERE kind IS NULL AND sku.description LIKE 'N1 %'",
                "8 1968",
                3,
            ),
            (
                "SELECT COUNT(*) FROM t WHERE UPPER(sku.description) LIKE '%GPU%'",
                "0",
                4,
            ),
        ];
        for (sql, answer, skipped) in cases {
            assert_eq!(rows(&s, sql, Dialect::BigQuery).await, [answer], "{sql}");
            assert_eq!(skipped_row_groups(&s, sql).await, skipped, "{sql}");
        }
    }

    #[tokio::test]
    async fn chunks_not_all_dictionary_encoded_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bill.parquet");
        write_bill(&path, false);
        let s = session(&path).await;
        let sql =
            "SELECT COUNT(*), SUM(cost) FROM t WHERE LOWER(sku.description) LIKE 'commitment%'";
        assert_eq!(rows(&s, sql, Dialect::BigQuery).await, ["100 4950"]);
        assert_eq!(skipped_row_groups(&s, sql).await, 0);
    }
}
