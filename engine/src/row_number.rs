//! `ROW_NUMBER()` over rows already in their window's order, as a counter.
//!
//! DataFusion 55's `BoundedWindowAggExec` numbers rows one at a time: a
//! `ScalarValue` per row from the evaluator, then an array built from them, on one
//! thread for a window without `PARTITION BY` (a fifth of the 10M-row sort
//! benchmark's time). [`RowNumberExec`] appends each batch's numbers as one array: a
//! running count, reset where the `PARTITION BY` keys change (the input arrives sorted
//! on them, as the window requires).

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::partition;
use arrow::datatypes::Schema;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_expr::{OrderingRequirements, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, InputOrderMode,
    PlanProperties,
};
use futures::StreamExt;

use crate::plan_rewrite::{rewrap, wrap_each};

/// Replaces every window that only numbers rows, over sorted input.
#[derive(Debug)]
pub struct RowNumber;

impl PhysicalOptimizerRule for RowNumber {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        wrap_each(plan, |window: &BoundedWindowAggExec| {
            Ok(RowNumberExec::try_new(window))
        })
    }

    fn name(&self) -> &str {
        "row_number"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A [`BoundedWindowAggExec`] of one `ROW_NUMBER()` whose input is sorted on its
/// `PARTITION BY` keys, done as a counter.
#[derive(Debug)]
pub struct RowNumberExec {
    /// The window replaced: its input, keys, distribution and output properties.
    window: BoundedWindowAggExec,
    metrics: ExecutionPlanMetricsSet,
}

impl RowNumberExec {
    /// `window` done here, if it computes one `ROW_NUMBER()` and its input comes sorted
    /// on all its `PARTITION BY` keys.
    pub fn try_new(window: &BoundedWindowAggExec) -> Option<Self> {
        let [expr] = window.window_expr() else {
            return None;
        };
        let is_row_number = expr
            .as_any()
            .downcast_ref::<StandardWindowExpr>()?
            .get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()?
            .fun()
            .name()
            == "row_number";
        (is_row_number && window.input_order_mode == InputOrderMode::Sorted).then(|| Self {
            window: window.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn partition_by(&self) -> &[Arc<dyn PhysicalExpr>] {
        self.window.window_expr()[0].partition_by()
    }
}

impl DisplayAs for RowNumberExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.partition_by().iter().map(|e| e.to_string()).collect();
        write!(
            f,
            "RowNumberExec: name={}, partition_by=[{}]",
            self.window.window_expr()[0].name(),
            keys.join(", ")
        )
    }
}

impl ExecutionPlan for RowNumberExec {
    fn name(&self) -> &str {
        "RowNumberExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.window.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.window.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(&self.window, children, |window| Ok(Self::try_new(window)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.window.input().execute(partition, context)?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema();
        let mut counter = Counter::new(self.partition_by(), &self.window.input().schema())?;
        let out = Arc::clone(&schema);
        let stream = input.map(move |batch| {
            let _timer = baseline.elapsed_compute().timer();
            let batch = batch?;
            let mut columns = batch.columns().to_vec();
            columns.push(counter.numbers(&batch)?);
            let batch = RecordBatch::try_new(Arc::clone(&out), columns)?;
            baseline.record_output(batch.num_rows());
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's row numbers, batch by batch.
struct Counter {
    /// The `PARTITION BY` keys, and their row format to compare a batch's first row
    /// with the last batch's last; `None` without `PARTITION BY`.
    keys: Option<(Vec<Arc<dyn PhysicalExpr>>, RowConverter)>,
    last_key: Option<OwnedRow>,
    /// The number of the last row numbered.
    last: u64,
}

impl Counter {
    fn new(keys: &[Arc<dyn PhysicalExpr>], input: &Schema) -> Result<Self> {
        let keys = if keys.is_empty() {
            None
        } else {
            let fields = keys
                .iter()
                .map(|k| Ok(SortField::new(k.data_type(input)?)))
                .collect::<Result<_>>()?;
            Some((keys.to_vec(), RowConverter::new(fields)?))
        };
        Ok(Self {
            keys,
            last_key: None,
            last: 0,
        })
    }

    /// The numbers of `batch`'s rows, counting on from the last batch.
    fn numbers(&mut self, batch: &RecordBatch) -> Result<ArrayRef> {
        let rows = batch.num_rows();
        let Some((exprs, converter)) = self.keys.as_ref().filter(|_| rows > 0) else {
            let first = self.last + 1;
            self.last += rows as u64;
            return Ok(Arc::new(UInt64Array::from_iter_values(first..=self.last)));
        };
        let keys = exprs
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let row = |i| {
            let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(i, 1)).collect();
            converter.convert_columns(&key)
        };
        if self.last_key.as_ref().map(OwnedRow::row) != Some(row(0)?.row(0)) {
            self.last = 0;
        }
        let mut numbers = Vec::with_capacity(rows);
        for (i, range) in partition(&keys)?.ranges().into_iter().enumerate() {
            let start = if i == 0 { self.last } else { 0 };
            numbers.extend(start + 1..=start + range.len() as u64);
        }
        self.last = numbers.last().copied().unwrap_or_default();
        self.last_key = Some(row(rows - 1)?.row(0).owned());
        Ok(Arc::new(UInt64Array::from(numbers)))
    }
}

#[cfg(test)]
mod tests {
    use crate::Dialect;
    use crate::testing::{datafusion_rows, plan, rows, session, table};

    /// Numberings whose windows cross batches: by every row, within text keys with
    /// NULLs, within two keys, and the first row of each key.
    const NUMBERINGS: [&str; 4] = [
        "SELECT id, ROW_NUMBER() OVER (ORDER BY f DESC, t, k, id) AS n FROM t ORDER BY id",
        "SELECT id, k, ROW_NUMBER() OVER (PARTITION BY k ORDER BY f, id) AS n FROM t ORDER BY id",
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY t, k ORDER BY id DESC) AS n FROM t ORDER BY id",
        "SELECT * FROM (SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY f DESC NULLS LAST, id) AS n FROM t) WHERE n = 1 ORDER BY k",
    ];

    #[tokio::test]
    async fn numbers_rows_with_datafusions_answers() {
        let table = table(20_500);
        let s = session(None, &table);
        for sql in NUMBERINGS {
            let answer = rows(&s, sql, Dialect::DataFusion).await;
            assert_eq!(answer, datafusion_rows(&table, sql).await, "{sql}");
            let plan = plan(&s, sql).await;
            assert!(plan.contains("RowNumberExec: name=row_number"), "{plan}");
            assert!(!plan.contains("BoundedWindowAggExec"), "{plan}");
        }
        let firsts = rows(&s, NUMBERINGS[3], Dialect::DataFusion).await;
        assert_eq!(firsts.len(), 66, "65 keys and NULL");
        let all = rows(&s, NUMBERINGS[0], Dialect::DataFusion).await;
        assert_eq!(all.len(), 20_500);
    }

    #[tokio::test]
    async fn other_window_functions_stay_datafusions() {
        let table = table(3000);
        let s = session(None, &table);
        for sql in [
            "SELECT id, RANK() OVER (ORDER BY t) AS r FROM t ORDER BY id",
            "SELECT id, ROW_NUMBER() OVER (ORDER BY t, id) AS n, SUM(t) OVER (ORDER BY t, id) AS s FROM t ORDER BY id",
        ] {
            let plan = plan(&s, sql).await;
            assert!(
                plan.contains("BoundedWindowAggExec") && !plan.contains("RowNumberExec"),
                "{plan}"
            );
            assert_eq!(
                rows(&s, sql, Dialect::DataFusion).await,
                datafusion_rows(&table, sql).await,
                "{sql}"
            );
        }
    }
}
