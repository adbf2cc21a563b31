//! Unnesting one list column by slicing its elements instead of copying them.
//!
//! DataFusion 55's `UnnestExec` builds each unnested list with `take` over its
//! elements, copying every one: for `UNNEST(labels)` each label's key and value text.
//! A list's elements already lie in row order, so where no row of a batch turns into
//! a NULL element (a NULL or empty list kept as one row), the unnested column is a
//! slice of them, and only the other columns are repeated. [`ListUnnestExec`] does
//! that for a plan that unnests one list (`FROM t, UNNEST(labels) l`, `unnest(x)`);
//! other batches are taken as DataFusion takes them.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait, RecordBatch, UInt32Array,
};
use arrow::compute::take;
use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, UnnestOptions, exec_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, PlanProperties,
};
use futures::StreamExt;

use crate::plan_rewrite::{rewrap, wrap_each};

/// Replaces every unnest of a single list column, one level deep.
#[derive(Debug)]
pub struct ListUnnest;

impl PhysicalOptimizerRule for ListUnnest {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        wrap_each(plan, |unnest: &UnnestExec| {
            Ok(ListUnnestExec::try_new(unnest))
        })
    }

    fn name(&self) -> &str {
        "list_unnest"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// An [`UnnestExec`] of one list column, one level deep, into the same place.
#[derive(Debug)]
pub struct ListUnnestExec {
    /// The unnest replaced: its input, column, options and output properties.
    unnest: UnnestExec,
    /// The list column's index, in the input and the output.
    column: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl ListUnnestExec {
    /// `unnest` done here, if it unnests one `List` or `LargeList` column one level
    /// deep into one column, and no record.
    pub fn try_new(unnest: &UnnestExec) -> Option<Self> {
        let [list] = unnest.list_column_indices() else {
            return None;
        };
        let input = unnest.input().schema();
        let is_list = matches!(
            input.field(list.index_in_input_schema).data_type(),
            DataType::List(_) | DataType::LargeList(_)
        );
        let simple = list.depth == 1
            && unnest.struct_column_indices().is_empty()
            && unnest.schema().fields().len() == input.fields().len();
        (is_list && simple).then(|| Self {
            unnest: unnest.clone(),
            column: list.index_in_input_schema,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for ListUnnestExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let input = self.unnest.input().schema();
        write!(
            f,
            "ListUnnestExec: column={}, null_handling={:?}",
            input.field(self.column).name(),
            self.unnest.options().null_handling
        )
    }
}

impl ExecutionPlan for ListUnnestExec {
    fn name(&self) -> &str {
        "ListUnnestExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.unnest.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.unnest.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.unnest.maintains_input_order()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.unnest.input()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrap(&self.unnest, children, |unnest| Ok(Self::try_new(unnest)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.unnest.input().execute(partition, context)?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema();
        let out = Arc::clone(&schema);
        let (column, options) = (self.column, self.unnest.options().clone());
        let stream = input.filter_map(move |batch| {
            let _timer = baseline.elapsed_compute().timer();
            let batch = batch.and_then(|b| {
                let columns = unnest(b.columns(), column, &options)?;
                Ok(RecordBatch::try_new(Arc::clone(&out), columns)?)
            });
            let batch = batch.map(|b| (b.num_rows() > 0).then_some(b)).transpose();
            if let Some(Ok(b)) = &batch {
                baseline.record_output(b.num_rows());
            }
            futures::future::ready(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// `columns` with the list at `column` unnested and the others repeated to match.
fn unnest(columns: &[ArrayRef], column: usize, options: &UnnestOptions) -> Result<Vec<ArrayRef>> {
    let list = &columns[column];
    let (values, (rows, elements)) = if let Some(list) = list.as_list_opt::<i32>() {
        (list.values(), positions(list, options))
    } else if let Some(list) = list.as_list_opt::<i64>() {
        (list.values(), positions(list, options))
    } else {
        return exec_err!("ListUnnestExec: column {column} is not a list");
    };
    let unnested = match elements {
        Elements::Slice(start, len) => values.slice(start, len),
        Elements::Take(indices) => take(values, &indices, None)?,
    };
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| match i == column {
            true => Ok(Arc::clone(&unnested)),
            false => Ok(take(c, &rows, None)?),
        })
        .collect()
}

/// Where the unnested list's elements come from.
enum Elements {
    /// A run of its values: (offset, length).
    Slice(usize, usize),
    /// Its values at these indices, NULL where a row is kept as a NULL element.
    Take(UInt32Array),
}

/// For each output row, the input row it repeats, and where its element comes from.
fn positions<O: OffsetSizeTrait>(
    list: &GenericListArray<O>,
    options: &UnnestOptions,
) -> (UInt32Array, Elements) {
    let offsets = list.value_offsets();
    let range = |row: usize| offsets[row].as_usize()..offsets[row + 1].as_usize();
    let expand_empty = options.expand_empty_as_null();
    let sliced =
        list.null_count() == 0 && !(expand_empty && (0..list.len()).any(|r| range(r).is_empty()));
    if sliced {
        let first = offsets[0].as_usize();
        let last = offsets[list.len()].as_usize();
        let mut rows = Vec::with_capacity(last - first);
        for row in 0..list.len() {
            rows.extend(std::iter::repeat_n(row as u32, range(row).len()));
        }
        return (
            UInt32Array::from(rows),
            Elements::Slice(first, last - first),
        );
    }
    let mut rows = Vec::new();
    let mut elements = Vec::new();
    for row in 0..list.len() {
        let null_element = if list.is_null(row) {
            options.preserve_nulls()
        } else {
            expand_empty && range(row).is_empty()
        };
        if null_element {
            rows.push(row as u32);
            elements.push(None);
        } else if list.is_valid(row) {
            rows.extend(std::iter::repeat_n(row as u32, range(row).len()));
            elements.extend(range(row).map(|e| Some(e as u32)));
        }
    }
    (
        UInt32Array::from(rows),
        Elements::Take(UInt32Array::from(elements)),
    )
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, ListArray, StringArray, StructArray};
    use arrow::buffer::{NullBuffer, OffsetBuffer};
    use arrow::datatypes::{Field, Fields, Schema, SchemaRef};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::common::NullHandling;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_plan::collect;
    use datafusion::physical_plan::unnest::ListUnnest as UnnestColumn;

    use super::*;
    use crate::Dialect;
    use crate::testing::{datafusion_rows, plan, rows, session};

    fn label() -> DataType {
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, true),
        ]))
    }

    /// Batches of labels: the first without NULL lists (empty ones among them), the
    /// second with NULL lists, one of them over elements (as Arrow allows), the
    /// third only empty lists.
    fn input() -> (SchemaRef, Vec<RecordBatch>) {
        let item = Arc::new(Field::new("item", label(), true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("labels", DataType::List(Arc::clone(&item)), true),
        ]));
        let batch = |ids: Vec<i64>, lengths: &[usize], nulls: Option<Vec<bool>>| {
            let n: usize = lengths.iter().sum();
            let text = |p: &str| {
                StringArray::from_iter_values(
                    (0..n).map(|i| format!("{p}{}", ids[0] * 10 + i as i64)),
                )
            };
            let DataType::Struct(fields) = label() else {
                unreachable!()
            };
            let values =
                StructArray::new(fields, vec![Arc::new(text("k")), Arc::new(text("v"))], None);
            let list = ListArray::new(
                Arc::clone(&item),
                OffsetBuffer::from_lengths(lengths.iter().copied()),
                Arc::new(values),
                nulls.map(NullBuffer::from),
            );
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from(ids)), Arc::new(list)],
            )
            .unwrap()
        };
        let batches = vec![
            batch(vec![1, 2, 3, 4], &[2, 0, 1, 3], None),
            batch(
                vec![5, 6, 7, 8, 9],
                &[1, 0, 0, 2, 1],
                Some(vec![true, false, true, true, false]),
            ),
            batch(vec![10, 11], &[0, 0], None),
        ];
        (schema, batches)
    }

    async fn output(plan: Arc<dyn ExecutionPlan>) -> String {
        let batches = collect(plan, Arc::new(TaskContext::default()))
            .await
            .unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn unnests_as_datafusion_does_with_every_null_handling() {
        let (schema, batches) = input();
        let out = Arc::new(Schema::new(vec![
            schema.field(0).clone(),
            Field::new("labels", label(), true),
        ]));
        let scan = MemorySourceConfig::try_new_exec(&[batches], schema, None).unwrap();
        let mut counts = Vec::new();
        for null_handling in [
            NullHandling::Drop,
            NullHandling::Preserve,
            NullHandling::PreserveAndExpandEmpty,
        ] {
            let theirs = UnnestExec::new(
                scan.clone(),
                vec![UnnestColumn {
                    index_in_input_schema: 1,
                    depth: 1,
                }],
                vec![],
                Arc::clone(&out),
                UnnestOptions {
                    null_handling,
                    recursions: vec![],
                },
            )
            .unwrap();
            let ours = Arc::new(ListUnnestExec::try_new(&theirs).unwrap());
            let answer = output(ours.clone()).await;
            assert_eq!(answer, output(Arc::new(theirs)).await, "{null_handling:?}");
            counts.push(ours.metrics().unwrap().output_rows().unwrap());
        }
        // 6 + 3 elements; then the 2 NULL lists; then the 4 empty lists.
        assert_eq!(counts, [9, 11, 15]);
    }

    #[tokio::test]
    async fn sql_unnests_go_through_it() {
        let (schema, batches) = input();
        let table =
            Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![batches]).unwrap());
        let s = session(None, &table);
        for sql in [
            "SELECT id, unnest(labels) AS l FROM t ORDER BY id",
            "SELECT id, l['value'] FROM (SELECT id, unnest(labels) AS l FROM t) WHERE l['key'] > 'k2' ORDER BY id",
        ] {
            assert_eq!(
                rows(&s, sql, Dialect::DataFusion).await,
                datafusion_rows(&table, sql).await,
                "{sql}"
            );
            let plan = plan(&s, sql).await;
            assert!(
                plan.contains("ListUnnestExec: column=__unnest_placeholder(t.labels)"),
                "{plan}"
            );
        }
    }
}
