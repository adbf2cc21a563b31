//! The first stage of a `GROUP BY` on text read as a dictionary, by dictionary key.
//!
//! Grouping by `CAST(dictionary AS Utf8)`, DataFusion casts every row's value to text,
//! then hashes and compares it. A dictionary has few values; [`DictionaryGroupBy`]
//! replaces such a partial aggregation with [`DictionaryGroupByExec`], which looks up
//! the group of each dictionary value once (per dictionary, as the Parquet reader
//! shares one across a row group's batches) and gives every row its key's group; the
//! aggregates' own group accumulators do the rest, and the final stage merges as
//! before. Its groups are held within the memory pool: past it, they are handed on
//! early, as DataFusion's partial aggregation does.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, StringArray};
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{HashMap, Result, internal_datafusion_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::CastExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
    apply_expression_roots,
};
use futures::StreamExt;

use crate::dictionary_reads::text_dictionary;
use crate::plan_rewrite::{rewrap, wrap_each};

/// Replaces partial aggregations grouped by one `Dictionary(Int32, Utf8)` cast to text.
#[derive(Debug)]
pub struct DictionaryGroupBy;

impl PhysicalOptimizerRule for DictionaryGroupBy {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        wrap_each(plan, DictionaryGroupByExec::try_new)
    }

    fn name(&self) -> &str {
        "dictionary_group_by"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A partial aggregation grouped by one dictionary cast to text, by its keys.
#[derive(Debug)]
pub struct DictionaryGroupByExec {
    /// The aggregation replaced: its input, aggregates, output schema.
    aggregate: AggregateExec,
    /// The dictionary cast to text to group by.
    key: Arc<dyn PhysicalExpr>,
    /// The arguments of each aggregate.
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DictionaryGroupByExec {
    /// `aggregate` done by dictionary key, if it is a partial one grouped by one
    /// `Dictionary(Int32, Utf8)` cast to `Utf8`, with plain aggregates that have group
    /// accumulators.
    pub fn try_new(aggregate: &AggregateExec) -> Result<Option<Self>> {
        let group_by = aggregate.group_expr();
        let [(key, _)] = group_by.expr() else {
            return Ok(None);
        };
        let Some(cast) = key.downcast_ref::<CastExpr>() else {
            return Ok(None);
        };
        let key = cast.expr();
        let plain = aggregate.aggr_expr().iter().all(|a| {
            a.groups_accumulator_supported() && a.order_bys().is_empty() && !a.is_distinct()
        });
        if *aggregate.mode() != AggregateMode::Partial
            || cast.cast_type() != &DataType::Utf8
            || group_by.has_grouping_set()
            || key.data_type(&aggregate.input_schema())? != text_dictionary()
            || !plain
            || aggregate.filter_expr().iter().any(Option::is_some)
            || aggregate.input_order_mode() != &InputOrderMode::Linear
            || aggregate.limit_options().is_some()
            || !aggregate.dynamic_expressions_produced().is_empty()
        {
            return Ok(None);
        }
        Ok(Some(Self {
            key: Arc::clone(key),
            arguments: aggregate
                .aggr_expr()
                .iter()
                .map(|a| a.expressions())
                .collect(),
            properties: Arc::clone(aggregate.properties()),
            aggregate: aggregate.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

impl DisplayAs for DictionaryGroupByExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let aggregates: Vec<&str> = self
            .aggregate
            .aggr_expr()
            .iter()
            .map(|a| a.name())
            .collect();
        write!(
            f,
            "DictionaryGroupByExec: gby=[CAST({} AS Utf8)], aggr=[{}]",
            self.key,
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for DictionaryGroupByExec {
    fn name(&self) -> &str {
        "DictionaryGroupByExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(
            std::iter::once(&self.key).chain(self.arguments.iter().flatten()),
            f,
        )
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(&self.aggregate, children, Self::try_new)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .aggregate
            .input()
            .execute(partition, Arc::clone(&context))?;
        let aggregates = self.aggregate.aggr_expr().to_vec();
        let accumulators = aggregates
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<_>>()?;
        let grouping = Grouping {
            input,
            key: Arc::clone(&self.key),
            arguments: self.arguments.clone(),
            aggregates,
            accumulators,
            groups: Groups::default(),
            schema: self.schema(),
            // It gives memory back by handing its groups on early.
            reservation: MemoryConsumer::new(format!("DictionaryGroupByExec[{partition}]"))
                .with_can_spill(true)
                .register(context.memory_pool()),
            baseline: BaselineMetrics::new(&self.metrics, partition),
            done: false,
        };
        let schema = self.schema();
        let stream = futures::stream::unfold(grouping, |mut g| async move {
            match g.next().await {
                Ok(Some(batch)) => Some((Ok(batch), g)),
                Ok(None) => None,
                Err(e) => {
                    g.done = true;
                    Some((Err(e), g))
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's aggregation in progress.
struct Grouping {
    input: SendableRecordBatchStream,
    key: Arc<dyn PhysicalExpr>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    groups: Groups,
    schema: SchemaRef,
    reservation: MemoryReservation,
    baseline: BaselineMetrics,
    done: bool,
}

impl Grouping {
    /// The next batch of partial results: all of them once the input ends, or the
    /// groups so far when they outgrow the memory pool.
    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let time = self.baseline.elapsed_compute().clone();
        while let Some(batch) = self.input.next().await.transpose()? {
            let _timer = time.timer();
            self.update(&batch)?;
            let size =
                self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>();
            if self.reservation.try_resize(size).is_err() && !self.groups.names.is_empty() {
                return self.emit();
            }
        }
        self.done = true;
        let _timer = time.timer();
        self.emit()
    }

    fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let key = self.key.evaluate(batch)?.into_array(rows)?;
        let key = key
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| internal_datafusion_err!("a dictionary key, not {}", key.data_type()))?;
        self.groups.assign(key)?;
        let count = self.groups.names.len();
        let only = self.groups.only_group();
        let aggregates = self.aggregates.iter().zip(&self.arguments);
        for ((aggregate, arguments), accumulator) in aggregates.zip(&mut self.accumulators) {
            let values = arguments
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<_>>>()?;
            match only {
                // Every row in one group (a month's file grouped by month): adding each
                // row into one slot waits on the previous addition, while the plain
                // accumulator's kernels work on several lanes at once. Its state joins
                // the group as a partial result would.
                Some(group) => {
                    let mut whole = aggregate.create_accumulator()?;
                    whole.update_batch(&values)?;
                    let state = whole
                        .state()?
                        .iter()
                        .map(|s| s.to_array())
                        .collect::<Result<Vec<_>>>()?;
                    accumulator.merge_batch(&state, &[group], count)?;
                }
                None => accumulator.update_batch(&values, &self.groups.ids, None, count)?,
            }
        }
        Ok(())
    }

    /// The groups so far and their aggregates' states, as the partial aggregation's
    /// output; starts afresh.
    fn emit(&mut self) -> Result<Option<RecordBatch>> {
        let groups = std::mem::take(&mut self.groups);
        if groups.names.is_empty() {
            return Ok(None);
        }
        let text: StringArray = groups.names.iter().map(|n| n.as_deref()).collect();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(text)];
        for (aggregate, accumulator) in self.aggregates.iter().zip(&mut self.accumulators) {
            columns.extend(accumulator.state(EmitTo::All)?);
            *accumulator = aggregate.create_groups_accumulator()?;
        }
        self.reservation.free();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(Some(batch.record_output(&self.baseline)))
    }
}

/// The dictionary of a column's latest batch and a number for each of its values, kept
/// while batches share that dictionary.
#[derive(Default)]
pub(crate) struct LatestDictionary<T> {
    values: Option<ArrayRef>,
    /// One per value of the dictionary held.
    pub(crate) of_value: Vec<T>,
}

impl<T: Copy> LatestDictionary<T> {
    /// Holds `values`, every value's number `unseen`, unless it is the dictionary held.
    pub(crate) fn hold(&mut self, values: &ArrayRef, unseen: T) {
        // The Parquet reader gives each batch of a column chunk a new array over its
        // dictionary page's buffers: the same dictionary is the same buffers. The one
        // held keeps its buffers, so their addresses are not reused.
        if !self
            .values
            .as_ref()
            .is_some_and(|d| d.to_data().ptr_eq(&values.to_data()))
        {
            self.values = Some(Arc::clone(values));
            self.of_value.clear();
            self.of_value.resize(values.len(), unseen);
        }
    }
}

/// A value's group before it is looked up.
const UNSEEN: usize = usize::MAX;

/// The groups seen, and the group of each row of the latest batch.
#[derive(Default)]
struct Groups {
    /// Each group's value (`None`: the NULL group).
    names: Vec<Option<Box<str>>>,
    index: HashMap<Box<str>, usize>,
    /// Bytes of text in `names`.
    text: usize,
    null: Option<usize>,
    /// The dictionary of the latest batch and the group of each of its values.
    latest: LatestDictionary<usize>,
    /// The group of each row of the latest batch.
    ids: Vec<usize>,
}

impl Groups {
    fn assign(&mut self, key: &DictionaryArray<Int32Type>) -> Result<()> {
        let dictionary = key.values();
        self.latest.hold(dictionary, UNSEEN);
        let text = dictionary
            .as_string_opt::<i32>()
            .ok_or_else(|| internal_datafusion_err!("a dictionary of text"))?;
        let keys = key.keys();
        self.ids.clear();
        if keys.null_count() == 0 {
            // Look up the values first seen here, then gather each row's group.
            for &k in keys.values() {
                if self.latest.of_value[k as usize] == UNSEEN {
                    self.value_group(text, k as usize);
                }
            }
            let of_value = &self.latest.of_value;
            self.ids
                .extend(keys.values().iter().map(|&k| of_value[k as usize]));
        } else {
            for (row, &k) in keys.values().iter().enumerate() {
                let id = match keys.is_null(row) {
                    true => self.null_group(),
                    false => self.value_group(text, k as usize),
                };
                self.ids.push(id);
            }
        }
        Ok(())
    }

    /// The group of the dictionary's value `k`, looked up the first time.
    #[inline]
    fn value_group(&mut self, text: &StringArray, k: usize) -> usize {
        match self.latest.of_value[k] {
            UNSEEN => {
                let id = match text.is_null(k) {
                    true => self.null_group(),
                    false => self.group_of(text.value(k)),
                };
                self.latest.of_value[k] = id;
                id
            }
            id => id,
        }
    }

    fn null_group(&mut self) -> usize {
        *self.null.get_or_insert_with(|| {
            self.names.push(None);
            self.names.len() - 1
        })
    }

    fn group_of(&mut self, value: &str) -> usize {
        if let Some(&id) = self.index.get(value) {
            return id;
        }
        let id = self.names.len();
        self.names.push(Some(value.into()));
        self.index.insert(value.into(), id);
        self.text += value.len();
        id
    }

    /// The group of every row of the latest batch, if they share one.
    fn only_group(&self) -> Option<usize> {
        let (&first, rest) = self.ids.split_first()?;
        rest.iter().all(|&id| id == first).then_some(first)
    }

    /// Bytes held, roughly (each value is held twice: in `names` and in `index`).
    fn size(&self) -> usize {
        2 * self.text
            + self.names.len() * 64
            + (self.latest.of_value.capacity() + self.ids.capacity()) * size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use arrow::array::{Int64Array, StringDictionaryBuilder};
    use arrow::datatypes::Field;
    use datafusion::common::tree_node::TreeNode;
    use datafusion::datasource::MemTable;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::logical_expr::LogicalPlan;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::{Dialect, Session};

    const SERVICES: [Option<&str>; 4] = [
        Some("Compute Engine"),
        Some("Cloud Storage"),
        Some("BigQuery"),
        None,
    ];

    /// A bill of three monthly files of 3000 rows: (service, SKU, cost), with rows of no
    /// service record and of a record with no description; costs in quarters, so that
    /// every sum is exact. The months list the same 500 SKUs in different orders: their
    /// dictionaries are as long as each other, with other values at each key (and one
    /// of the two partitions reads two of them).
    fn bill(dir: &Path) -> Vec<(Option<&'static str>, String, f64)> {
        let mut rows = Vec::new();
        for (month, step) in [("202401", 1), ("202402", 7), ("202403", 3)] {
            let mut text = String::new();
            for i in 0..3000 {
                let service = (i % 7 != 0).then_some(SERVICES[i % 4]);
                let sku = format!("SKU {}", i * step % 500);
                let cost = (i % 13) as f64 / 4.0;
                let row = serde_json::json!({
                    "billing_account_id": "A",
                    "service": service.map(|d| serde_json::json!({"id": "s", "description": d})),
                    "sku": {"id": "k", "description": sku},
                    "usage_start_time": "2024-01-10 00:00:00 UTC",
                    "cost": cost,
                    "invoice": {"month": month},
                });
                text += &format!("{row}\n");
                rows.push((service.flatten(), sku, cost));
            }
            std::fs::write(dir.join(format!("{month}.jsonl")), text).unwrap();
        }
        rows
    }

    /// Cost and row count by key, as `crate::testing::rows` prints them (NULL first).
    fn totals<K: Ord + fmt::Display>(rows: impl Iterator<Item = (Option<K>, f64)>) -> Vec<String> {
        let mut by: BTreeMap<Option<K>, (f64, usize)> = BTreeMap::new();
        for (key, cost) in rows {
            let t = by.entry(key).or_default();
            t.0 += cost;
            t.1 += 1;
        }
        by.into_iter()
            .map(|(k, (cost, n))| {
                let k = k.map(|k| k.to_string()).unwrap_or_default();
                format!("{k} {cost:?} {n}")
            })
            .collect()
    }

    async fn physical_plan(s: &Session, sql: &str) -> String {
        let plan = s
            .sql(sql, Dialect::BigQuery)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn groups_stored_text_by_dictionary_key_with_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let bill = bill(dir.path());
        // Batches of 256 rows: a month's dictionary serves several batches.
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(256);
        let mut s = Session::with_context(SessionContext::new_with_config(config));
        s.add_table("t", dir.path().to_str().unwrap())
            .await
            .unwrap();

        let by_service = |keep: &dyn Fn(Option<&str>) -> bool| {
            totals(
                bill.iter()
                    .filter(|r| keep(r.0))
                    .map(|(service, _, cost)| (*service, *cost)),
            )
        };
        let all = by_service(&|_| true);
        // By month every batch's rows share one group (one file per month).
        let by_month = ["202401", "202402", "202403"]
            .iter()
            .zip(bill.chunks(3000))
            .map(|(month, rows)| {
                let costs = || rows.iter().map(|r| r.2);
                let sum: f64 = costs().sum();
                let min = costs().fold(f64::INFINITY, f64::min);
                let max = costs().fold(f64::NEG_INFINITY, f64::max);
                let described = rows.iter().filter(|r| r.0.is_some()).count();
                let n = rows.len();
                format!(
                    "{month} {sum:?} {n} {min:?} {max:?} {:?} {described}",
                    sum / n as f64
                )
            })
            .collect();
        let by_sku = totals(bill.iter().map(|(_, sku, cost)| (Some(sku), *cost)));
        let cases: [(&str, Vec<String>, bool); 10] = [
            (
                "SELECT sku.description, SUM(cost), COUNT(*) FROM t GROUP BY 1 ORDER BY 1",
                by_sku,
                true,
            ),
            (
                "SELECT invoice.month, SUM(cost), COUNT(*), MIN(cost), MAX(cost), AVG(cost), \
                 COUNT(service.description) FROM t GROUP BY 1 ORDER BY 1",
                by_month,
                true,
            ),
            (
                "SELECT service.description, SUM(cost), COUNT(*) FROM t GROUP BY 1 ORDER BY 1",
                all.clone(),
                true,
            ),
            // Compared with a constant: still read as a dictionary.
            (
                "SELECT service.description AS d, SUM(cost), COUNT(*) FROM t \
                 WHERE service.description <> 'BigQuery' GROUP BY d ORDER BY d",
                by_service(&|s| s.is_some_and(|s| s != "BigQuery")),
                true,
            ),
            (
                "SELECT service.description, SUM(cost) AS c, COUNT(*) FROM t \
                 GROUP BY 1 HAVING COUNT(*) > 1927 ORDER BY 1",
                all.iter()
                    .filter(|r| r.rsplit(' ').next().unwrap().parse::<usize>().unwrap() > 1927)
                    .cloned()
                    .collect(),
                true,
            ),
            // Matched against a pattern, as it is or through LOWER: still read as a
            // dictionary.
            (
                "SELECT service.description, SUM(cost), COUNT(*) FROM t \
                 WHERE service.description LIKE 'C%' GROUP BY 1 ORDER BY 1",
                by_service(&|s| s.is_some_and(|s| s.starts_with('C'))),
                true,
            ),
            (
                "SELECT service.description, SUM(cost), COUNT(*) FROM t \
                 WHERE LOWER(service.description) NOT LIKE '%o%' GROUP BY 1 ORDER BY 1",
                by_service(&|s| s.is_some_and(|s| !s.to_lowercase().contains('o'))),
                true,
            ),
            // An argument of another function: read as text, grouped as before.
            (
                "SELECT service.description, SUM(cost), COUNT(*) FROM t \
                 WHERE STARTS_WITH(service.description, 'C') GROUP BY 1 ORDER BY 1",
                by_service(&|s| s.is_some_and(|s| s.starts_with('C'))),
                false,
            ),
            // Compared with other text: read as text (a dictionary would be made of it).
            (
                "SELECT service.description, SUM(cost), COUNT(*) FROM t \
                 WHERE service.description < sku.description GROUP BY 1 ORDER BY 1",
                by_service(&|s| s.is_some()),
                false,
            ),
            // Read as a dictionary, but DISTINCT is grouped by DataFusion.
            (
                "SELECT COUNT(DISTINCT sku.description), COUNT(DISTINCT service.description) FROM t",
                vec!["500 3".to_string()],
                false,
            ),
        ];
        for (sql, expected, by_key) in cases {
            assert_eq!(
                crate::testing::rows(&s, sql, Dialect::BigQuery).await,
                expected,
                "{sql}"
            );
            let plan = physical_plan(&s, sql).await;
            assert_eq!(
                plan.contains("DictionaryGroupByExec"),
                by_key,
                "{sql}\n{plan}"
            );
        }
        // Matched, not grouped: the SKU's text is read as a dictionary all the same.
        let sql = "SELECT invoice.month, SUM(cost), COUNT(*) FROM t \
                   WHERE LOWER(sku.description) LIKE 'sku 1%' GROUP BY 1 ORDER BY 1";
        let expected: Vec<String> = ["202401", "202402", "202403"]
            .iter()
            .zip(bill.chunks(3000))
            .map(|(month, rows)| {
                let matched = rows.iter().filter(|r| r.1.starts_with("SKU 1"));
                let (sum, n) = matched.fold((0.0, 0), |(sum, n), r| (sum + r.2, n + 1));
                format!("{month} {sum:?} {n}")
            })
            .collect();
        assert_eq!(
            crate::testing::rows(&s, sql, Dialect::BigQuery).await,
            expected
        );
        let df = s.sql(sql, Dialect::BigQuery).await.unwrap();
        let mut read = Vec::new();
        df.logical_plan()
            .apply(|p| {
                if let LogicalPlan::TableScan(scan) = p {
                    read.push(scan.source.schema().field_with_name("sku").ok().cloned());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        let sku = DataType::Struct(vec![Field::new("description", text_dictionary(), true)].into());
        assert_eq!(read, [Some(Field::new("sku", sku, true))]);

        // The output is text, as over the stored table.
        let sql = "SELECT sku.description, COUNT(*) FROM t GROUP BY 1";
        let df = s.sql(sql, Dialect::BigQuery).await.unwrap();
        assert_eq!(df.schema().field(0).data_type(), &DataType::Utf8);
        let skus = crate::testing::rows(
            &s,
            &format!("SELECT COUNT(*), SUM(n) FROM ({sql}) AS g(k, n)"),
            Dialect::DataFusion,
        )
        .await;
        assert_eq!(skus, ["500 9000"]);
    }

    #[tokio::test]
    async fn hands_its_groups_on_early_when_memory_runs_short() {
        // Two partitions of 8 batches of 256 rows, keys cycling through 1000 values.
        let mut partitions = Vec::new();
        for p in 0..2 {
            let mut batches = Vec::new();
            for b in 0..8 {
                let mut keys = StringDictionaryBuilder::<Int32Type>::new();
                let mut values = Vec::new();
                for r in 0..256 {
                    let i = (p * 8 + b) * 256 + r;
                    keys.append_value(format!("key {}", i % 1000));
                    values.push(i as i64);
                }
                let batch = RecordBatch::try_from_iter([
                    ("k", Arc::new(keys.finish()) as ArrayRef),
                    ("v", Arc::new(Int64Array::from(values)) as ArrayRef),
                ])
                .unwrap();
                batches.push(batch);
            }
            partitions.push(batches);
        }
        let schema = partitions[0][0].schema();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let ctx = Session::with_context(ctx).context().clone();
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, partitions).unwrap()),
        )
        .unwrap();
        let plan = ctx
            .sql("SELECT arrow_cast(k, 'Utf8') AS k, COUNT(*), SUM(v) FROM t GROUP BY 1")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut partial = None;
        plan.apply(|node| {
            if node.name() == "DictionaryGroupByExec" {
                partial = Some(Arc::clone(node));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let partial =
            partial.unwrap_or_else(|| panic!("{}", displayable(plan.as_ref()).indent(false)));

        // Run the first stage alone, within 16 KiB.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(16 * 1024)))
            .build_arc()
            .unwrap();
        let task = Arc::new(TaskContext::default().with_runtime(runtime));
        let batches = collect(partial, task).await.unwrap();
        let mut merged: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut rows = 0;
        for b in &batches {
            rows += b.num_rows();
            let (k, n, v) = (b.column(0).as_string::<i32>(), b.column(1), b.column(2));
            let n = n.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let v = v.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            for r in 0..b.num_rows() {
                let t = merged.entry(k.value(r).to_string()).or_default();
                t.0 += n.value(r);
                t.1 += v.value(r);
            }
        }
        // Without early hand-over: at most 1000 groups in each of the two partitions.
        assert!(rows > 2000, "{rows} partial rows");
        assert_eq!(merged.len(), 1000);
        let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for i in 0..2 * 8 * 256 {
            let t = expected.entry(format!("key {}", i % 1000)).or_default();
            t.0 += 1;
            t.1 += i as i64;
        }
        assert_eq!(merged, expected);
    }
}
