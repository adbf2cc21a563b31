//! A sort of as many rows at once as memory holds, in the row format.
//!
//! DataFusion 55's `SortExec` sorts every batch of a multi-column sort on its own and
//! merges the sorted batches: a partition of 5M rows is a merge of 610 runs, whose
//! loser tree compares each row about ten times, one cursor step at a time. And it
//! counts each buffered batch twice against the memory pool, for its sorted copy, so it
//! spills twice as early. [`RowSortExec`] encodes each batch's keys in the row format
//! once (the byte strings `memcmp` orders as the sort orders), sorts one array of
//! (key prefix, row) entries over everything buffered, and gathers the rows in that
//! order: one run per memory's worth, not per batch. Past the limit it writes runs to
//! spill files and merges them with DataFusion's spill-aware merge, as `SortExec` does.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput, SpillMetrics,
};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::streaming_merge::{SortedSpillFile, StreamingMergeBuilder};
use datafusion::physical_plan::spill::get_record_batch_memory_size;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, SpillManager, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};

use crate::gather::{Picked, gather_rows};
use crate::plan_rewrite::{rewrap, wrap_each};

/// Replaces every full sort (no `LIMIT`) whose keys the row format encodes.
#[derive(Debug)]
pub struct RowSort;

impl PhysicalOptimizerRule for RowSort {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        wrap_each(plan, |sort: &SortExec| Ok(RowSortExec::try_new(sort)))
    }

    fn name(&self) -> &str {
        "row_sort"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A [`SortExec`] without `LIMIT`, done in the row format one run per memory's worth.
#[derive(Debug)]
pub struct RowSortExec {
    /// The sort replaced: its input, keys, partitioning and output properties.
    sort: SortExec,
    metrics: ExecutionPlanMetricsSet,
}

impl RowSortExec {
    /// `sort` done here, if it sorts every row (no fetch), its input is not already in
    /// its order (`SortExec` then passes the input through), and the row format
    /// encodes its keys.
    pub fn try_new(sort: &SortExec) -> Option<Self> {
        let schema = sort.input().schema();
        let fields = sort_fields(sort.expr(), &schema).ok()?;
        let ordered = sort
            .input()
            .equivalence_properties()
            .ordering_satisfy(sort.expr().clone())
            .ok()?;
        (sort.fetch().is_none() && !ordered && RowConverter::supports_fields(&fields)).then(|| {
            Self {
                sort: sort.clone(),
                metrics: ExecutionPlanMetricsSet::new(),
            }
        })
    }
}

/// The row format's fields of `expr`'s keys.
fn sort_fields(expr: &LexOrdering, schema: &SchemaRef) -> Result<Vec<SortField>> {
    expr.iter()
        .map(|e| {
            Ok(SortField::new_with_options(
                e.expr.data_type(schema)?,
                e.options,
            ))
        })
        .collect()
}

impl DisplayAs for RowSortExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RowSortExec: expr=[{}], preserve_partitioning=[{}]",
            self.sort.expr(),
            self.sort.preserve_partitioning()
        )
    }
}

impl ExecutionPlan for RowSortExec {
    fn name(&self) -> &str {
        "RowSortExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.sort.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.sort.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.sort.benefits_from_input_partitioning()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.sort.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.sort.expr().iter().map(|e| &e.expr), f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(&self.sort, children, |sort| Ok(Self::try_new(sort)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.sort.input().execute(partition, Arc::clone(&context))?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let mut sorter = Sorter::new(self, partition, &context, baseline.clone())?;
        let schema = self.schema();
        let batch_size = context.session_config().batch_size();
        let stream = futures::stream::once(async move {
            while let Some(batch) = input.next().await {
                sorter.insert(batch?)?;
            }
            drop(input);
            Ok::<_, DataFusionError>(sorter.sorted()?.stream(&schema, batch_size, &baseline))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The memory each buffered row's entry in the sort takes.
const ENTRY_BYTES: usize = size_of::<Entry>();

/// A row to sort: the first sixteen bytes of its key, and where the row is.
#[derive(Clone, Copy)]
struct Entry {
    prefix: [u64; 2],
    batch: u32,
    row: u32,
}

/// The first sixteen bytes of a row-format key, zeros past its end, as numbers ordered
/// as the keys are (a key that is a prefix of another orders first, or ties). Sixteen
/// bytes hold a double and most of a time after it (`ORDER BY cost DESC,
/// usage_start_time`): a bill's costs repeat (1.3M distinct in 10M rows), so eight
/// bytes left most comparisons to the whole keys.
fn prefix(key: &[u8]) -> [u64; 2] {
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key[..n]);
    let (hi, lo) = bytes.split_at(8);
    [hi, lo].map(|half| u64::from_be_bytes(half.try_into().unwrap_or_default()))
}

/// The batches buffered since the last run, with their keys in the row format.
#[derive(Default)]
struct Buffered {
    batches: Vec<RecordBatch>,
    keys: Vec<Rows>,
}

impl Buffered {
    /// Where each buffered row goes, in sorted order; ties in input order.
    fn order(&self) -> Vec<Entry> {
        let rows = self.keys.iter().map(Rows::num_rows).sum();
        let mut entries = Vec::with_capacity(rows);
        for (batch, keys) in self.keys.iter().enumerate() {
            entries.extend(keys.iter().enumerate().map(|(row, key)| Entry {
                prefix: prefix(key.data()),
                batch: batch as u32,
                row: row as u32,
            }));
        }
        entries.sort_unstable_by(|a, b| compare(a, b, &self.keys));
        entries
    }
}

/// The order of two rows of `keys`: by their keys, then where they are (input order).
fn compare(a: &Entry, b: &Entry, keys: &[Rows]) -> std::cmp::Ordering {
    let key = |e: &Entry| keys[e.batch as usize].row(e.row as usize);
    a.prefix
        .cmp(&b.prefix)
        .then_with(|| key(a).cmp(&key(b)))
        .then_with(|| (a.batch, a.row).cmp(&(b.batch, b.row)))
}

/// The buffered rows in `order`, `batch_size` rows a batch. Each buffered batch is
/// let go, and its memory given back, after the last output batch that takes a row of
/// it: early where the input came nearly in order, at the end where it came shuffled.
struct Gather {
    schema: SchemaRef,
    batches: Vec<Option<RecordBatch>>,
    /// An empty batch, in place of the batches let go.
    empty: RecordBatch,
    order: Vec<Entry>,
    batch_size: usize,
    /// The batches whose last row goes out in each output batch.
    last_used: Vec<Vec<usize>>,
    next: usize,
    /// What the batches and the order hold.
    reservation: MemoryReservation,
}

impl Gather {
    fn new(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        order: Vec<Entry>,
        batch_size: usize,
        reservation: MemoryReservation,
    ) -> Self {
        let mut last = vec![0; batches.len()];
        for (i, e) in order.iter().enumerate() {
            last[e.batch as usize] = i / batch_size;
        }
        let mut last_used = vec![Vec::new(); order.len().div_ceil(batch_size)];
        for (batch, chunk) in last.into_iter().enumerate() {
            last_used[chunk].push(batch);
        }
        let empty = RecordBatch::new_empty(Arc::clone(&schema));
        Self {
            schema,
            batches: batches.into_iter().map(Some).collect(),
            empty,
            order,
            batch_size,
            last_used,
            next: 0,
            reservation,
        }
    }

    fn batch(&mut self, chunk: usize) -> Result<RecordBatch> {
        let start = chunk * self.batch_size;
        let rows = &self.order[start..(start + self.batch_size).min(self.order.len())];
        let indices: Vec<(usize, usize)> = rows
            .iter()
            .map(|e| (e.batch as usize, e.row as usize))
            .collect();
        let batches: Vec<&RecordBatch> = self
            .batches
            .iter()
            .map(|b| b.as_ref().unwrap_or(&self.empty))
            .collect();
        let gathered = gather_rows(Arc::clone(&self.schema), &batches, &Picked::new(indices))?;
        for &b in &self.last_used[chunk] {
            if let Some(done) = self.batches[b].take() {
                self.reservation
                    .shrink(get_record_batch_memory_size(&done).min(self.reservation.size()));
            }
        }
        Ok(gathered)
    }
}

impl Iterator for Gather {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = self.next;
        (chunk < self.last_used.len()).then(|| {
            self.next += 1;
            self.batch(chunk)
        })
    }
}

/// One partition's sort in progress.
struct Sorter {
    schema: SchemaRef,
    expr: LexOrdering,
    converter: RowConverter,
    batch_size: usize,
    buffered: Buffered,
    /// The buffered batches, their keys and entries.
    reservation: MemoryReservation,
    /// Kept free for writing a run (a batch at a time) and for merging the runs.
    headroom: MemoryReservation,
    headroom_bytes: usize,
    spill_manager: SpillManager,
    runs: Vec<SortedSpillFile>,
    baseline: BaselineMetrics,
}

impl Sorter {
    fn new(
        exec: &RowSortExec,
        partition: usize,
        context: &TaskContext,
        baseline: BaselineMetrics,
    ) -> Result<Self> {
        let schema = exec.schema();
        let expr = exec.sort.expr().clone();
        let converter = RowConverter::new(sort_fields(&expr, &schema)?)?;
        let pool = context.memory_pool();
        let runtime = context.runtime_env();
        let config = context.session_config();
        let spill_manager = SpillManager::new(
            Arc::clone(&runtime),
            SpillMetrics::new(&exec.metrics, partition),
            Arc::clone(&schema),
        )
        .with_compression_type(config.spill_compression());
        let headroom_bytes = if runtime.disk_manager.tmp_files_enabled() {
            config.options().execution.sort_spill_reservation_bytes
        } else {
            0
        };
        Ok(Self {
            schema,
            expr,
            converter,
            batch_size: config.batch_size(),
            buffered: Buffered::default(),
            reservation: MemoryConsumer::new(format!("RowSortExec[{partition}]"))
                .with_can_spill(true)
                .register(pool),
            headroom: MemoryConsumer::new(format!("RowSortExecMerge[{partition}]")).register(pool),
            headroom_bytes,
            spill_manager,
            runs: Vec::new(),
            baseline,
        })
    }

    /// Buffers `batch` with its keys, first writing what is buffered as a run if the
    /// pool has no room for it.
    fn insert(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let time = self.baseline.elapsed_compute().clone();
        let _timer = time.timer();
        if self.headroom.size() < self.headroom_bytes {
            self.headroom
                .try_resize(self.headroom_bytes)
                .map_err(out_of_memory)?;
        }
        let keys = self
            .expr
            .iter()
            .map(|e| e.expr.evaluate(&batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let keys = self.converter.convert_columns(&keys)?;
        let size =
            get_record_batch_memory_size(&batch) + keys.size() + ENTRY_BYTES * batch.num_rows();
        if self.reservation.try_grow(size).is_err() {
            if self.buffered.batches.is_empty() {
                return Err(out_of_memory(self.reservation.try_grow(size).unwrap_err()));
            }
            self.spill()?;
            self.reservation.try_grow(size).map_err(out_of_memory)?;
        }
        self.buffered.batches.push(batch);
        self.buffered.keys.push(keys);
        Ok(())
    }

    /// Sorts what is buffered and writes it to a spill file as one run.
    fn spill(&mut self) -> Result<()> {
        let buffered = std::mem::take(&mut self.buffered);
        let order = buffered.order();
        let mut file = self.spill_manager.create_in_progress_file("Sorting")?;
        let mut largest = 0;
        let batches = Gather::new(
            Arc::clone(&self.schema),
            buffered.batches,
            order,
            self.batch_size,
            self.reservation.take(),
        );
        for batch in batches {
            largest = largest.max(file.append_batch(&batch?)?);
        }
        if let Some(file) = file.finish()? {
            self.runs.push(SortedSpillFile {
                file,
                max_record_batch_memory: largest,
            });
        }
        Ok(())
    }

    /// Every row inserted, sorted: in memory if nothing was spilled, otherwise the
    /// runs merged.
    fn sorted(mut self) -> Result<Sorted> {
        let time = self.baseline.elapsed_compute().clone();
        let _timer = time.timer();
        if self.runs.is_empty() {
            self.headroom.free();
            let buffered = std::mem::take(&mut self.buffered);
            let order = buffered.order();
            return Ok(Sorted::Memory {
                buffered,
                order,
                reservation: self.reservation.take(),
            });
        }
        if !self.buffered.batches.is_empty() {
            self.spill()?;
        }
        StreamingMergeBuilder::new()
            .with_sorted_spill_files(std::mem::take(&mut self.runs))
            .with_spill_manager(self.spill_manager.clone())
            .with_schema(Arc::clone(&self.schema))
            .with_expressions(&self.expr)
            .with_metrics(self.baseline.clone())
            .with_batch_size(self.batch_size)
            .with_fetch(None)
            .with_reservation(self.headroom.take())
            .build()
            .map(Sorted::Merged)
    }
}

/// A partition's rows, sorted.
enum Sorted {
    /// In memory: the batches, their keys, the order of their rows, and what they hold.
    Memory {
        buffered: Buffered,
        order: Vec<Entry>,
        reservation: MemoryReservation,
    },
    /// Runs written to disk, merged.
    Merged(SendableRecordBatchStream),
}

impl Sorted {
    /// The rows in order, `batch_size` a batch.
    fn stream(
        self,
        schema: &SchemaRef,
        batch_size: usize,
        baseline: &BaselineMetrics,
    ) -> SendableRecordBatchStream {
        let (buffered, order, reservation) = match self {
            Sorted::Merged(stream) => return stream,
            Sorted::Memory {
                buffered,
                order,
                reservation,
            } => (buffered, order, reservation),
        };
        // The keys are done with once the order is known.
        reservation.shrink(buffered.keys.iter().map(Rows::size).sum());
        let baseline = baseline.clone();
        let batches = Gather::new(
            Arc::clone(schema),
            buffered.batches,
            order,
            batch_size,
            reservation,
        )
        .map(move |batch| {
            let _timer = baseline.elapsed_compute().timer();
            batch.map(|b| b.record_output(&baseline))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(schema),
            futures::stream::iter(batches),
        ))
    }
}

/// A refusal of the pool, with what to change.
fn out_of_memory(e: DataFusionError) -> DataFusionError {
    match e {
        DataFusionError::ResourcesExhausted(_) => {
            e.context("Not enough memory to sort, even writing sorted runs to disk")
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::Dialect;
    use crate::testing::{datafusion_rows, metric, plan, rows, session, table};

    const SORTS: [&str; 4] = [
        "SELECT * FROM t ORDER BY k DESC NULLS LAST, f, t DESC, id",
        "SELECT * FROM t ORDER BY f DESC NULLS FIRST, k, id",
        "SELECT k, id FROM t ORDER BY t, k NULLS FIRST, id DESC",
        "SELECT id, ROW_NUMBER() OVER (ORDER BY f DESC, t, k, id) AS n FROM t ORDER BY id",
    ];

    #[tokio::test]
    async fn sorts_in_the_row_format_with_datafusions_answers() {
        let table = table(20_500);
        let s = session(None, &table);
        for sql in SORTS {
            let answer = rows(&s, sql, Dialect::DataFusion).await;
            assert_eq!(answer.len(), 20_500, "{sql}");
            assert_eq!(answer, datafusion_rows(&table, sql).await, "{sql}");
            let plan = plan(&s, sql).await;
            assert!(plan.contains("RowSortExec: expr=["), "{plan}");
            assert!(
                !plan.contains("SortExec: expr=[") || plan.contains("RowSortExec"),
                "{plan}"
            );
        }
    }

    #[tokio::test]
    async fn rows_of_equal_keys_keep_their_input_order() {
        let table = table(3000);
        let s = session(None, &table);
        let sql = "SELECT t, id FROM t ORDER BY t";
        let answer = rows(
            &s,
            "SELECT t, id FROM (SELECT * FROM t WHERE id < 1000) ORDER BY t",
            Dialect::DataFusion,
        )
        .await;
        let mut expected: Vec<(i64, i64)> = (0..1000).map(|i| (i % 23, i)).collect();
        expected.sort_by_key(|&(t, _)| t);
        let expected: Vec<String> = expected.iter().map(|(t, i)| format!("{t} {i}")).collect();
        assert_eq!(answer, expected);
        assert_eq!(rows(&s, sql, Dialect::DataFusion).await.len(), 3000);
    }

    #[tokio::test]
    async fn a_sort_past_the_limit_merges_its_runs_from_disk() {
        let table = table(60_000);
        let unlimited = session(None, &table);
        // The test's process holds more than 6 MiB: half the limit is its pool.
        let limited = session(Some(12 << 20), &table);
        for sql in SORTS {
            let answer = rows(&limited, sql, Dialect::DataFusion).await;
            assert_eq!(
                answer,
                rows(&unlimited, sql, Dialect::DataFusion).await,
                "{sql}"
            );
            let spills = metric(
                &limited,
                sql,
                Dialect::DataFusion,
                "RowSortExec",
                "spill_count",
            )
            .await;
            assert!(spills > 1, "{sql}: {spills} spill files");
        }
        let none = metric(
            &unlimited,
            SORTS[0],
            Dialect::DataFusion,
            "RowSortExec",
            "spill_count",
        )
        .await;
        assert_eq!(none, 0);
    }

    #[tokio::test]
    async fn a_sort_with_a_limit_stays_datafusions_top_k() {
        let table = table(5000);
        let s = session(None, &table);
        let sql = "SELECT * FROM t ORDER BY f DESC, id LIMIT 5";
        let plan = plan(&s, sql).await;
        assert!(
            !plan.contains("RowSortExec") && plan.contains("SortExec: TopK(fetch=5)"),
            "{plan}"
        );
        assert_eq!(
            rows(&s, sql, Dialect::DataFusion).await,
            datafusion_rows(&table, sql).await
        );
    }
}
