//! A `GROUP BY` of several keys, stored text among them, by numbers.
//!
//! Grouping by `usage_start_time, sku.id, project.id`, DataFusion hashes, compares,
//! holds and repartitions every row's text, in both stages of the aggregation; when
//! the groups outgrow memory it sorts them by all three keys and spills that text too.
//! The text is read as the files' dictionaries (`crate::dictionary_reads`) and cast to
//! text in the `GROUP BY`. [`DictionaryIds`] gives each distinct value of such a key a
//! number instead, the same in every partition ([`Interner`]); where the keys' numbers
//! and the other keys' bits (integers, times, dates) fit in 128 bits they are packed
//! into one key, so that both stages group by one primitive column. A projection
//! above the last stage unpacks each key and turns numbers back into text
//! ([`KeyPart`]). [`DictionaryIdsExec`] computes the keys, looking up each
//! dictionary's values once, as the single-key `crate::dictionary_group_by` does.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, Decimal128Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array, make_array,
};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Int32Type, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_datafusion_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::expressions::{CastExpr, Column, LambdaVariable};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    InputOrderMode, Partitioning, PlanProperties, ReplaceChildrenOptions, apply_expression_roots,
};
use futures::StreamExt;

use crate::dictionary_group_by::LatestDictionary;
use crate::dictionary_reads::text_dictionary;
use crate::plan_rewrite::replace_up;

/// Groups aggregations of two keys or more, stored text among them, by numbers.
#[derive(Debug)]
pub struct DictionaryIds;

impl PhysicalOptimizerRule for DictionaryIds {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = replace_up(plan, by_numbers)?;
        // A projection above the unpacked keys, made earlier, takes only what it uses.
        replace_up(plan, merged_into_keys)
    }

    fn name(&self) -> &str {
        "dictionary_ids"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node`, the last stage of an aggregation that groups by text read as dictionaries
/// among other keys, done by numbers; the same output.
fn by_numbers(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let (aggregate, keys) = match last.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => {
            let Some(numbered) = numbered(last)? else {
                return Ok(None);
            };
            numbered
        }
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            // The exchange between the stages: a repartition or a coalesce.
            let exchange = last.input();
            let is_exchange = exchange
                .downcast_ref::<RepartitionExec>()
                .is_some_and(|r| !r.preserve_order())
                || exchange.downcast_ref::<CoalescePartitionsExec>().is_some();
            let [partial] = exchange.children()[..] else {
                return Ok(None);
            };
            let Some(partial) = partial.downcast_ref::<AggregateExec>() else {
                return Ok(None);
            };
            if !is_exchange || *partial.mode() != AggregateMode::Partial {
                return Ok(None);
            }
            let Some((partial, keys)) = numbered(partial)? else {
                return Ok(None);
            };
            let group_by = partial
                .downcast_ref::<AggregateExec>()
                .ok_or_else(|| internal_datafusion_err!("a partial aggregation"))?
                .group_expr()
                .as_final();
            let exchange = exchange_over(exchange, partial, &group_by)?;
            let last = AggregateExec::try_new(
                *last.mode(),
                group_by,
                last.aggr_expr().to_vec(),
                last.filter_expr().to_vec(),
                exchange,
                last.input_schema(),
            )?;
            (Arc::new(last) as Arc<dyn ExecutionPlan>, keys)
        }
        _ => return Ok(None),
    };
    // The original keys, then the aggregates after the numbered keys.
    let expected = node.schema();
    let numbered_keys = aggregate.schema().fields().len() - last.aggr_expr().len();
    let key_count = keys.len();
    let aggregates = (0..last.aggr_expr().len()).map(|j| {
        let name = expected.field(key_count + j).name();
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, numbered_keys + j));
        (column, name.clone())
    });
    let columns = keys
        .into_iter()
        .zip(expected.fields().iter())
        .map(|(key, field)| (key, field.name().clone()))
        .chain(aggregates);
    let projection = ProjectionExec::try_new(columns, aggregate)?;
    // Anything else than the same output keeps the plan as it was.
    Ok((projection.schema() == expected).then(|| Arc::new(projection) as _))
}

/// `exchange` over `partial` instead of its input, a repartition hashing `group_by`'s
/// keys where it hashed the keys before.
fn exchange_over(
    exchange: &Arc<dyn ExecutionPlan>,
    partial: Arc<dyn ExecutionPlan>,
    group_by: &PhysicalGroupBy,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(repartition) = exchange.downcast_ref::<RepartitionExec>()
        && let Partitioning::Hash(_, n) = repartition.partitioning()
    {
        let keys = group_by.input_exprs();
        return Ok(Arc::new(RepartitionExec::try_new(
            partial,
            Partitioning::Hash(keys, *n),
        )?));
    }
    Arc::clone(exchange).replace_children(
        vec![partial],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// `node`, a projection over an aggregation's unpacked keys, as one projection of the
/// aggregation: a key not projected is not unpacked.
fn merged_into_keys(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(outer) = node.downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    let Some(keys) = outer.input().downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    if !keys
        .expr()
        .iter()
        .any(|e| e.expr.downcast_ref::<KeyPart>().is_some())
    {
        return Ok(None);
    }
    let merged = keys.projection_expr().try_merge(outer.projection_expr())?;
    let projection = ProjectionExec::try_new(merged.as_ref().to_vec(), Arc::clone(keys.input()))?;
    Ok((projection.schema() == node.schema()).then(|| Arc::new(projection) as _))
}

/// An aggregation's key as [`DictionaryIdsExec`] computes it.
enum Kind {
    /// Text read as a dictionary: a number.
    Text,
    /// A value of this many bytes (an integer, a time, a date), as its bits.
    Bits(u32),
}

/// `aggregate` (raw input to groups) grouping by numbers over an input that computes
/// them, with the expression of each original key over its output; `None` unless it
/// groups by two keys or more, one of them text read as a dictionary.
#[allow(clippy::type_complexity)]
fn numbered(
    aggregate: &AggregateExec,
) -> Result<Option<(Arc<dyn ExecutionPlan>, Vec<Arc<dyn PhysicalExpr>>)>> {
    let group_by = aggregate.group_expr();
    let input = aggregate.input();
    let schema = input.schema();
    if group_by.expr().len() < 2
        || has_lambda(aggregate)
        || group_by.has_grouping_set()
        || aggregate.input_order_mode() != &InputOrderMode::Linear
        || aggregate.limit_options().is_some()
        || !aggregate.dynamic_expressions_produced().is_empty()
    {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for (expr, _) in group_by.expr() {
        let data_type = expr.data_type(&schema)?;
        let nullable = expr.nullable(&schema)?;
        let dictionary = expr
            .downcast_ref::<CastExpr>()
            .filter(|c| c.cast_type() == &DataType::Utf8)
            .map(|c| c.expr())
            .filter(|e| e.data_type(&schema).ok() == Some(text_dictionary()));
        let kind = match (dictionary, &data_type) {
            (Some(_), _) => Some(Kind::Text),
            (None, DataType::Int64 | DataType::UInt64 | DataType::Date64) => Some(Kind::Bits(8)),
            (None, DataType::Timestamp(..)) => Some(Kind::Bits(8)),
            (None, DataType::Int32 | DataType::UInt32 | DataType::Date32) => Some(Kind::Bits(4)),
            _ => None,
        };
        let expr = dictionary.unwrap_or(expr);
        keys.push((Arc::clone(expr), kind, data_type, nullable));
    }
    if !keys
        .iter()
        .any(|(_, kind, ..)| matches!(kind, Some(Kind::Text)))
    {
        return Ok(None);
    }
    let width = |kind: &Kind, nullable: bool| match kind {
        Kind::Text => TEXT_BITS,
        Kind::Bits(bytes) => 8 * bytes + u32::from(nullable),
    };
    let widths: Option<u32> = keys
        .iter()
        .map(|(_, kind, _, nullable)| kind.as_ref().map(|k| width(k, *nullable)))
        .sum();
    // One pack of every key if they fit in 128 bits; else each text its own number.
    let packed_all = widths.is_some_and(|w| w <= 128);
    let input_width = schema.fields().len();
    let mut packs: Vec<Pack> = Vec::new();
    let mut group_keys: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
    let mut parts: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let mut all = Pack::default();
    for (i, (expr, kind, data_type, nullable)) in keys.into_iter().enumerate() {
        let Some(kind) = kind.filter(|k| packed_all || matches!(k, Kind::Text)) else {
            // Computed by the aggregation as it was.
            parts.push(Arc::new(Column::new(&group_column(i), i)));
            group_keys.push((expr, group_column(i)));
            continue;
        };
        let mut own = Pack::default();
        let pack = if packed_all { &mut all } else { &mut own };
        let part = Part {
            shift: pack.width,
            bits: match kind {
                Kind::Text => TEXT_BITS,
                Kind::Bits(bytes) => 8 * bytes,
            },
            nullable,
            data_type,
            interner: matches!(kind, Kind::Text).then(|| Arc::new(Interner::default())),
        };
        pack.width += width(&kind, nullable);
        pack.parts.push((expr, part.clone()));
        let index = if packed_all { 0 } else { i };
        parts.push(Arc::new(KeyPart {
            pack: Arc::new(Column::new(&group_column(index), index)),
            part,
        }));
        if !packed_all {
            let column = Column::new(&pack_column(packs.len()), input_width + packs.len());
            group_keys.push((Arc::new(column), group_column(i)));
            packs.push(own);
        }
    }
    if packed_all {
        let column = Column::new(&pack_column(0), input_width);
        group_keys.push((Arc::new(column), group_column(0)));
        packs.push(all);
    }
    let input = Arc::new(DictionaryIdsExec::try_new(Arc::clone(input), packs)?);
    let input_schema = input.schema();
    let stage = AggregateExec::try_new(
        *aggregate.mode(),
        PhysicalGroupBy::new_single(group_keys),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        input,
        input_schema,
    )?;
    Ok(Some((Arc::new(stage), parts)))
}

/// Whether `aggregate`'s keys, arguments or filters hold a lambda: its variables are placed
/// after its input's columns (`array_transform(credits, c -> c.amount)`), so an input
/// with columns of numbers added would misplace them.
fn has_lambda(aggregate: &AggregateExec) -> bool {
    let arguments = aggregate.aggr_expr().iter().flat_map(|a| {
        let order = a.order_bys().iter().map(|o| Arc::clone(&o.expr));
        a.expressions().into_iter().chain(order)
    });
    let filters = aggregate.filter_expr().iter().flatten().cloned();
    let keys = aggregate
        .group_expr()
        .expr()
        .iter()
        .map(|(e, _)| Arc::clone(e));
    arguments.chain(filters).chain(keys).any(|e| {
        e.exists(|node| Ok(node.downcast_ref::<LambdaVariable>().is_some()))
            .unwrap_or(true)
    })
}

/// The name of the `i`th key of a numbered aggregation.
fn group_column(i: usize) -> String {
    format!("__billq_key_{i}")
}

/// The name of the `i`th column [`DictionaryIdsExec`] appends.
fn pack_column(i: usize) -> String {
    format!("__billq_packed_key_{i}")
}

/// Keys packed into one number: each its bits, after the bits of the ones before.
#[derive(Debug, Clone, Default)]
struct Pack {
    parts: Vec<(Arc<dyn PhysicalExpr>, Part)>,
    width: u32,
}

impl Pack {
    /// The type that holds the pack's bits.
    fn data_type(&self) -> DataType {
        match self.width {
            0..=32 => DataType::UInt32,
            33..=64 => DataType::UInt64,
            _ => DataType::Decimal128(38, 0),
        }
    }
}

/// Where a key sits in a pack, and what it was.
#[derive(Debug, Clone)]
struct Part {
    shift: u32,
    /// Its value's bits; a NULL is a bit above them where the key can be NULL (text:
    /// the number [`NULL_ID`]).
    bits: u32,
    nullable: bool,
    data_type: DataType,
    /// For text, its numbers.
    interner: Option<Arc<Interner>>,
}

/// The number of each distinct text of one key, shared by every partition of a plan.
#[derive(Debug, Default)]
pub struct Interner {
    state: Mutex<Interned>,
}

#[derive(Debug, Default)]
struct Interned {
    index: HashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
}

/// A dictionary value's number before it is looked up, and while it is.
const UNSEEN: u32 = u32::MAX;
const PENDING: u32 = u32::MAX - 1;

/// The bits of a text's number in a pack, and the number of NULL: 31 bits leave room
/// for a time (64 bits and a NULL bit) beside two texts.
const TEXT_BITS: u32 = 31;
const NULL_ID: u32 = (1 << TEXT_BITS) - 1;

/// Bytes an interned text holds besides its own, roughly.
const TEXT_OVERHEAD: usize = 64;

impl Interner {
    fn state(&self) -> MutexGuard<'_, Interned> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of each of `texts`, numbering those not seen before; and the bytes
    /// that holds anew.
    fn ids<'a>(&self, texts: impl Iterator<Item = &'a str>) -> Result<(Vec<u32>, usize)> {
        let mut state = self.state();
        let mut added = 0;
        let ids = texts
            .map(|text| {
                if let Some(&id) = state.index.get(text) {
                    return Ok(id);
                }
                let id = u32::try_from(state.texts.len())
                    .ok()
                    .filter(|&id| id < NULL_ID)
                    .ok_or_else(|| internal_datafusion_err!("more than 2^31 distinct values"))?;
                state.texts.push(text.into());
                state.index.insert(text.into(), id);
                // The text twice, a map entry and a list entry.
                added += 2 * text.len() + TEXT_OVERHEAD;
                Ok(id)
            })
            .collect::<Result<_>>()?;
        Ok((ids, added))
    }

    /// The text of each number (NULL for [`NULL_ID`]).
    fn texts(&self, ids: impl Iterator<Item = u32>) -> Result<StringArray> {
        let state = self.state();
        ids.map(|id| match id {
            NULL_ID => Ok(None),
            id => state
                .texts
                .get(id as usize)
                .map(|t| Some(t.as_ref()))
                .ok_or_else(|| internal_datafusion_err!("no text numbered {id}")),
        })
        .collect()
    }
}

/// Its input with a column appended for each pack of keys it is given.
#[derive(Debug)]
pub struct DictionaryIdsExec {
    input: Arc<dyn ExecutionPlan>,
    packs: Vec<Pack>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DictionaryIdsExec {
    fn try_new(input: Arc<dyn ExecutionPlan>, packs: Vec<Pack>) -> Result<Self> {
        let input_schema = input.schema();
        let mut fields: Vec<FieldRef> = input_schema.fields().iter().cloned().collect();
        for (i, pack) in packs.iter().enumerate() {
            fields.push(Arc::new(Field::new(
                pack_column(i),
                pack.data_type(),
                false,
            )));
        }
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            input_schema.metadata().clone(),
        ));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Ok(Self {
            input,
            packs,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for DictionaryIdsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let packs: Vec<String> = self
            .packs
            .iter()
            .map(|p| {
                let parts: Vec<String> = p
                    .parts
                    .iter()
                    .map(|(e, part)| match part.interner {
                        Some(_) => format!("id({e})"),
                        None => e.to_string(),
                    })
                    .collect();
                format!("{} as {}", parts.join(" | "), p.data_type())
            })
            .collect();
        write!(f, "DictionaryIdsExec: keys=[{}]", packs.join(", "))
    }
}

impl ExecutionPlan for DictionaryIdsExec {
    fn name(&self) -> &str {
        "DictionaryIdsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(
            self.packs
                .iter()
                .flat_map(|p| p.parts.iter().map(|(e, _)| e)),
            f,
        )
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| internal_datafusion_err!("DictionaryIdsExec has one input"))?;
        Ok(Arc::new(Self::try_new(input, self.packs.clone())?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let mut packing = Packing {
            packs: self.packs.clone(),
            dictionaries: self
                .packs
                .iter()
                .map(|p| p.parts.iter().map(|_| Dictionary::default()).collect())
                .collect(),
            schema: self.schema(),
            // The text numbered from this partition, held until the plan ends.
            reservation: MemoryConsumer::new(format!("DictionaryIdsExec[{partition}]"))
                .register(context.memory_pool()),
            baseline: BaselineMetrics::new(&self.metrics, partition),
        };
        let stream = input.map(move |batch| packing.batch(batch?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's packing of keys.
struct Packing {
    packs: Vec<Pack>,
    /// Each text part's dictionary of the latest batch.
    dictionaries: Vec<Vec<Dictionary>>,
    schema: SchemaRef,
    reservation: MemoryReservation,
    baseline: BaselineMetrics,
}

impl Packing {
    fn batch(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let _timer = self.baseline.elapsed_compute().timer();
        let rows = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        for (pack, dictionaries) in self.packs.iter().zip(&mut self.dictionaries) {
            let mut packed = vec![0u128; rows];
            for ((expr, part), dictionary) in pack.parts.iter().zip(dictionaries.iter_mut()) {
                let value = expr.evaluate(&batch)?.into_array(rows)?;
                match &part.interner {
                    Some(interner) => {
                        let (ids, added) = dictionary.ids(&value, interner)?;
                        self.reservation.try_grow(added)?;
                        for (p, id) in packed.iter_mut().zip(ids) {
                            *p |= u128::from(id) << part.shift;
                        }
                    }
                    None => pack_bits(&mut packed, &value, part)?,
                }
            }
            columns.push(packed_array(pack.data_type(), packed));
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// Adds the bits of `value`, a key of 4 or 8 bytes a value, into `packed` at `part`.
fn pack_bits(packed: &mut [u128], value: &ArrayRef, part: &Part) -> Result<()> {
    let data = value.to_data();
    let buffer = data
        .buffers()
        .first()
        .ok_or_else(|| internal_datafusion_err!("a key with values"))?;
    let null_bit = 1u128 << (part.shift + part.bits);
    let bits: Box<dyn Iterator<Item = u64>> = match part.bits {
        64 => Box::new(buffer.typed_data::<u64>()[data.offset()..].iter().copied()),
        _ => Box::new(
            buffer.typed_data::<u32>()[data.offset()..]
                .iter()
                .map(|&b| u64::from(b)),
        ),
    };
    for (row, (p, b)) in packed.iter_mut().zip(bits).enumerate() {
        *p |= match data.is_null(row) {
            true => null_bit,
            false => u128::from(b) << part.shift,
        };
    }
    Ok(())
}

/// `packed` as an array of `data_type` (every bit kept).
fn packed_array(data_type: DataType, packed: Vec<u128>) -> ArrayRef {
    match data_type {
        DataType::UInt32 => Arc::new(UInt32Array::from_iter_values(
            packed.into_iter().map(|p| p as u32),
        )),
        DataType::UInt64 => Arc::new(UInt64Array::from_iter_values(
            packed.into_iter().map(|p| p as u64),
        )),
        _ => Arc::new(
            Decimal128Array::from_iter_values(packed.into_iter().map(|p| p as i128))
                .with_data_type(data_type),
        ),
    }
}

/// A text key's dictionary of the latest batch and the number of each of its values.
#[derive(Default)]
struct Dictionary(LatestDictionary<u32>);

impl Dictionary {
    /// The number of each row's text of `value` ([`NULL_ID`] for NULL), and the bytes
    /// `interner` holds anew.
    fn ids(&mut self, value: &ArrayRef, interner: &Interner) -> Result<(Vec<u32>, usize)> {
        let key = value
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| internal_datafusion_err!("a dictionary, not {}", value.data_type()))?;
        let values = key.values();
        self.0.hold(values, UNSEEN);
        let text = values
            .as_string_opt::<i32>()
            .ok_or_else(|| internal_datafusion_err!("a dictionary of text"))?;
        let keys = key.keys();
        let nulls = keys.nulls();
        let valid = |row: usize| nulls.is_none_or(|n| n.is_valid(row));
        // The values first seen here, numbered in one visit of the interner.
        let mut unseen: Vec<usize> = Vec::new();
        for (row, &k) in keys.values().iter().enumerate() {
            let k = k as usize;
            if valid(row) && self.0.of_value[k] == UNSEEN {
                self.0.of_value[k] = match text.is_null(k) {
                    true => NULL_ID,
                    false => {
                        unseen.push(k);
                        PENDING
                    }
                };
            }
        }
        let (numbers, added) = interner.ids(unseen.iter().map(|&k| text.value(k)))?;
        for (&k, id) in unseen.iter().zip(numbers) {
            self.0.of_value[k] = id;
        }
        let of_value = &self.0.of_value;
        let ids = match nulls {
            None => keys
                .values()
                .iter()
                .map(|&k| of_value[k as usize])
                .collect(),
            Some(n) => keys
                .values()
                .iter()
                .zip(n.iter())
                .map(|(&k, valid)| if valid { of_value[k as usize] } else { NULL_ID })
                .collect(),
        };
        Ok((ids, added))
    }
}

/// One key unpacked from its pack: its bits as its type, or its number as its text.
#[derive(Debug)]
pub struct KeyPart {
    pack: Arc<dyn PhysicalExpr>,
    part: Part,
}

impl PartialEq for KeyPart {
    fn eq(&self, other: &Self) -> bool {
        let interner = |k: &Self| k.part.interner.as_ref().map(Arc::as_ptr);
        self.pack.eq(&other.pack)
            && self.part.shift == other.part.shift
            && self.part.data_type == other.part.data_type
            && interner(self) == interner(other)
    }
}

impl Eq for KeyPart {}

impl Hash for KeyPart {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pack.hash(state);
        self.part.shift.hash(state);
        self.part.interner.as_ref().map(Arc::as_ptr).hash(state);
    }
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let what = match self.part.interner {
            Some(_) => "text",
            None => "bits",
        };
        write!(f, "{what}_of({}, {})", self.pack, self.part.shift)
    }
}

impl PhysicalExpr for KeyPart {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(self.part.data_type.clone())
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(self.part.nullable)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let pack = self.pack.evaluate(batch)?.into_array(batch.num_rows())?;
        let packed: Vec<u128> = match pack.data_type() {
            DataType::UInt32 => pack
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .values()
                .iter()
                .map(|&p| u128::from(p))
                .collect(),
            DataType::UInt64 => pack
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .iter()
                .map(|&p| u128::from(p))
                .collect(),
            _ => pack
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .values()
                .iter()
                .map(|&p| p as u128)
                .collect(),
        };
        let Part {
            shift,
            bits,
            ref interner,
            ..
        } = self.part;
        let value = |p: u128| (p >> shift) as u64 & (u64::MAX >> (64 - bits));
        if let Some(interner) = interner {
            let texts = interner.texts(packed.iter().map(|&p| value(p) as u32))?;
            return Ok(ColumnarValue::Array(Arc::new(texts)));
        }
        let nulls = self
            .part
            .nullable
            .then(|| NullBuffer::from_iter(packed.iter().map(|&p| (p >> (shift + bits)) & 1 == 0)));
        let values = match bits {
            64 => Buffer::from_iter(packed.iter().map(|&p| value(p))),
            _ => Buffer::from_iter(packed.iter().map(|&p| value(p) as u32)),
        };
        let data = ArrayData::builder(self.part.data_type.clone())
            .len(packed.len())
            .add_buffer(values)
            .nulls(nulls)
            .build()?;
        Ok(ColumnarValue::Array(make_array(data)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.pack]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let pack = children
            .pop()
            .ok_or_else(|| internal_datafusion_err!("a key part has one argument"))?;
        Ok(Arc::new(Self {
            pack,
            part: self.part.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use datafusion::physical_plan::displayable;

    use super::*;
    use crate::testing::rows;
    use crate::{Dialect, Session};

    /// Three monthly files of 2000 rows: services (some rows with no service record,
    /// some with no description), 300 SKUs listed in another order each month,
    /// projects, hours, cost types; costs in quarters, so that every sum is exact.
    fn bill(dir: &Path) {
        let services = [Some("Compute Engine"), Some("Cloud Storage"), None];
        for (month, step) in [("202401", 1), ("202402", 7), ("202403", 11)] {
            let mut text = String::new();
            for i in 0..2000usize {
                let service = (i % 5 != 0).then_some(services[i % 3]);
                let cost_type = ["regular", "tax"][i % 2];
                let row = serde_json::json!({
                    "billing_account_id": "A",
                    "service": service.map(|d| serde_json::json!({"id": "s", "description": d})),
                    "sku": {"id": format!("SKU-{}", i * step % 300), "description": "d"},
                    "project": {"id": format!("p{}", i % 17)},
                    "usage_start_time": format!("{}-{}-01 {:02}:00:00 UTC", &month[..4], &month[4..], i % 24),
                    "cost_type": cost_type,
                    "cost": (i % 13) as f64 / 4.0,
                    "credits": (0..i % 3).map(|c| serde_json::json!({"name": "c", "amount": -0.25 * c as f64})).collect::<Vec<_>>(),
                    "invoice": {"month": month},
                });
                text += &format!("{row}\n");
            }
            std::fs::write(dir.join(format!("{month}.jsonl")), text).unwrap();
        }
    }

    /// A session, under `limit` if given, with [`bill`]'s files as table `t`.
    async fn billed(limit: Option<usize>) -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        bill(dir.path());
        let mut s = match limit {
            None => Session::new(),
            Some(bytes) => Session::with_memory_limit(bytes).unwrap(),
        };
        s.add_table("t", dir.path().to_str().unwrap())
            .await
            .unwrap();
        (dir, s)
    }

    async fn plan(s: &Session, sql: &str) -> String {
        let df = s.sql(sql, Dialect::BigQuery).await.unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    /// (query, how its keys are computed); each runs again with its text keys through
    /// `CONCAT(x, '')`, which DataFusion groups as text, for the answer to agree with.
    const QUERIES: [(&str, &str); 5] = [
        (
            "SELECT invoice.month, service.description AS s, SUM(cost) AS c, COUNT(*) AS n \
             FROM t GROUP BY 1, 2 ORDER BY 1, 2",
            "id(__datafusion_extracted_1@0) | id(__datafusion_extracted_2@1) as UInt64",
        ),
        (
            "SELECT usage_start_time AS h, sku.id AS k, project.id AS p, SUM(cost) AS c \
             FROM t GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "as Decimal128(38, 0)",
        ),
        (
            "SELECT service.description AS s, sku.id AS k, project.id AS p, invoice.month AS m, \
             SUM(cost) AS c FROM t WHERE sku.id != 'SKU-7' GROUP BY 1, 2, 3, 4 \
             HAVING SUM(cost) > 1 ORDER BY 1, 2, 3, 4",
            "as Decimal128(38, 0)",
        ),
        (
            "SELECT DATE(usage_start_time) AS d, service.description AS s, MAX(cost) AS c \
             FROM t GROUP BY 1, 2 ORDER BY 1, 2",
            "as UInt64",
        ),
        (
            "SELECT cost_type AS ty, sku.id AS k, SUM(cost) AS c FROM t GROUP BY 1, 2 ORDER BY 1, 2",
            "keys=[id(__datafusion_extracted_1@0) as UInt32]",
        ),
    ];

    /// `sql` with its record text keys grouped as DataFusion groups text.
    fn as_text(sql: &str) -> String {
        let mut sql = sql.to_string();
        for key in [
            "invoice.month",
            "service.description",
            "sku.id",
            "project.id",
        ] {
            sql = sql.replace(&format!("{key} AS"), &format!("CONCAT({key}, '') AS"));
            sql = sql.replace(
                &format!("SELECT {key},"),
                &format!("SELECT CONCAT({key}, ''),"),
            );
        }
        sql
    }

    #[tokio::test]
    async fn groups_by_numbers_for_stored_text_with_datafusions_answers() {
        for limit in [None, Some(2 << 20)] {
            let (_dir, s) = billed(limit).await;
            for (sql, keys) in QUERIES {
                let plan = plan(&s, sql).await;
                assert!(
                    plan.contains("DictionaryIdsExec: keys=[") && plan.contains(keys),
                    "{sql}\n{plan}"
                );
                let plain = as_text(sql);
                assert!(!plan_has_ids(&s, &plain).await, "{plain}");
                let answer = rows(&s, sql, Dialect::BigQuery).await;
                assert!(answer.len() > 8, "{sql}: {answer:?}");
                assert_eq!(answer, rows(&s, &plain, Dialect::BigQuery).await, "{sql}");
            }
        }
    }

    async fn plan_has_ids(s: &Session, sql: &str) -> bool {
        plan(s, sql).await.contains("DictionaryIdsExec")
    }

    /// A lambda's variables follow its input's columns: an aggregate over one keeps
    /// the keys as DataFusion groups them, with the same answers.
    #[tokio::test]
    async fn an_aggregate_over_a_lambda_keeps_the_text_keys() {
        let (_dir, s) = billed(None).await;
        let sql = "SELECT invoice.month AS m, service.description AS s, \
                   SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS net \
                   FROM t GROUP BY 1, 2 ORDER BY 1, 2";
        assert!(!plan_has_ids(&s, sql).await);
        let answer = rows(&s, sql, Dialect::BigQuery).await;
        assert_eq!(answer.len(), 9);
        assert_eq!(answer, rows(&s, &as_text(sql), Dialect::BigQuery).await);
    }

    #[tokio::test]
    async fn a_key_of_one_text_keeps_the_dictionary_grouping() {
        let (_dir, s) = billed(None).await;
        let plan = plan(&s, "SELECT sku.id, SUM(cost) FROM t GROUP BY 1").await;
        assert!(
            plan.contains("DictionaryGroupByExec") && !plan.contains("DictionaryIdsExec"),
            "{plan}"
        );
    }

    #[test]
    fn keys_unpack_to_their_bits_and_texts() {
        let interner = Arc::new(Interner::default());
        let (ids, added) = interner.ids(["b", "a", "b"].into_iter()).unwrap();
        assert_eq!((ids, added), (vec![0, 1, 0], 2 * 2 + 2 * TEXT_OVERHEAD));
        let time = Part {
            shift: 0,
            bits: 64,
            nullable: true,
            data_type: DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into()),
            ),
            interner: None,
        };
        let day = Part {
            shift: 65,
            bits: 32,
            nullable: false,
            data_type: DataType::Date32,
            interner: None,
        };
        let text = Part {
            shift: 97,
            bits: TEXT_BITS,
            nullable: true,
            data_type: DataType::Utf8,
            interner: Some(Arc::clone(&interner)),
        };
        let times: ArrayRef = Arc::new(
            arrow::array::TimestampMicrosecondArray::from(vec![Some(-1), None, Some(i64::MAX)])
                .with_timezone("UTC"),
        );
        let days: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![-3, 0, 19000]));
        let mut packed = vec![0u128; 3];
        pack_bits(&mut packed, &times, &time).unwrap();
        pack_bits(&mut packed, &days, &day).unwrap();
        for (p, id) in packed.iter_mut().zip([1, NULL_ID, 0]) {
            *p |= u128::from(id) << text.shift;
        }
        let schema = Schema::new(vec![Field::new("k", DataType::Decimal128(38, 0), false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![packed_array(DataType::Decimal128(38, 0), packed)],
        )
        .unwrap();
        let unpacked = |part: &Part| {
            let key = KeyPart {
                pack: Arc::new(Column::new("k", 0)),
                part: part.clone(),
            };
            key.evaluate(&batch).unwrap().into_array(3).unwrap()
        };
        assert_eq!(&unpacked(&time), &times);
        assert_eq!(&unpacked(&day), &days);
        let texts: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("b")]));
        assert_eq!(&unpacked(&text), &texts);
    }
}
