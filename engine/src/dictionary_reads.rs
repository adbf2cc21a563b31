//! Reading the text a query groups by or matches as Parquet stores it: a dictionary.
//!
//! A stored text field such as `invoice.month` or `service.description` holds a few
//! distinct values, dictionary encoded in the files. DataFusion reads it as one string
//! per row, copying each, and a `GROUP BY` on it hashes and compares every one of them.
//! [`dictionary_leaves`] finds the record fields a plan groups by (or matches, below);
//! the table is made anew declaring them `Dictionary(Int32, Utf8)`, and
//! [`HintedParquet`] has the Parquet reader keep the files' dictionaries instead of
//! expanding them. The plan
//! groups by the dictionary cast to text ([`grouped_as_text`]), which
//! `crate::dictionary_group_by` does by dictionary key, and `crate::dictionary_ids`
//! by numbers for the text where it is one of several keys.
//!
//! A field a filter matches against a pattern (`LIKE 'x%'`, as it is or through `LOWER`
//! or `UPPER`, which map a dictionary's values and keep its keys) is read as a
//! dictionary too: Arrow's `like` matches each of its values once, not each row's.
//!
//! A field qualifies only when every other use of it is a comparison with a constant,
//! such a match or a NULL test, where a dictionary goes as well as text; any other use
//! (an argument of another function, a comparison with other text, output, the record
//! whole) keeps the table as it is.
//!
//! Text in lists of records (`labels`, `credits`, `tags`) is declared as views
//! ([`crate::store::listed_text_as_views`]), which [`HintedParquet`] also has each file's reader
//! produce: a view points into the dictionary page instead of copying the value out.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, Statistics, TableReference};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Operator, cast};
use datafusion::physical_plan::ExecutionPlan;
use object_store::{ObjectMeta, ObjectStore};

/// A path of record fields below a column: `invoice.month` is `["month"]` of `invoice`.
pub type Leaf = Vec<String>;

/// The record fields of stored tables `plan` groups by (alone or beside other keys) or
/// filters by a pattern, by the reference it scans the table with, as (column, path)
/// pairs.
pub fn dictionary_leaves(plan: &LogicalPlan) -> HashMap<TableReference, BTreeSet<(String, Leaf)>> {
    let mut uses = Uses::default();
    let _ = plan.apply_with_subqueries(|node| {
        uses.node(node);
        Ok(TreeNodeRecursion::Continue)
    });
    let mut leaves: HashMap<_, BTreeSet<_>> = HashMap::new();
    for (table, column, path) in std::mem::take(&mut uses.keys) {
        if !uses.barred(&column, &path) {
            leaves.entry(table).or_default().insert((column, path));
        }
    }
    leaves
}

/// `plan`, planned over tables declaring dictionaries, grouping by their text: a
/// dictionary key is cast to `Utf8` in the `GROUP BY` itself, so that only the first
/// stage of the aggregation (`crate::dictionary_group_by`) sees dictionaries, and
/// the plan's output has the types it has over the stored tables.
pub fn grouped_as_text(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        if let LogicalPlan::Aggregate(a) = &node {
            let mut changed = false;
            let keys = a
                .group_expr
                .iter()
                .map(|key| {
                    let dictionary = field_path(key).is_some()
                        && matches!(
                            key.to_field(a.input.schema())?.1.data_type(),
                            DataType::Dictionary(..)
                        );
                    changed |= dictionary;
                    Ok(match dictionary {
                        true => {
                            let name = key.schema_name().to_string();
                            cast(key.clone(), DataType::Utf8).alias(name)
                        }
                        false => key.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if changed {
                let aggregate = Aggregate::try_new(a.input.clone(), keys, a.aggr_expr.clone())?;
                return Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)));
            }
        }
        node.recompute_schema().map(Transformed::yes)
    })
    .map(|t| t.data)
}

/// `schema` with the text fields at `leaves` declared dictionaries; `None` when none is
/// a text field there.
pub fn with_dictionaries<'a>(
    schema: &Schema,
    leaves: impl IntoIterator<Item = (&'a str, &'a [String])> + Clone,
) -> Option<Schema> {
    let mut changed = false;
    let fields: Vec<Arc<Field>> = schema
        .fields()
        .iter()
        .map(|field| {
            let paths: Vec<&[String]> = leaves
                .clone()
                .into_iter()
                .filter(|(column, _)| *column == field.name())
                .map(|(_, path)| path)
                .collect();
            match dictionary_at(field.data_type(), &paths) {
                Some(data_type) => {
                    changed = true;
                    Arc::new(field.as_ref().clone().with_data_type(data_type))
                }
                None => field.clone(),
            }
        })
        .collect();
    changed.then(|| Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The type text is read as where a plan groups by it.
pub fn text_dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `data_type` with the text at each of `paths` (record field names) a dictionary.
fn dictionary_at(data_type: &DataType, paths: &[&[String]]) -> Option<DataType> {
    if paths.iter().any(|p| p.is_empty()) {
        return (data_type == &DataType::Utf8).then(text_dictionary);
    }
    let DataType::Struct(fields) = data_type else {
        return None;
    };
    let mut changed = false;
    let fields: Fields = fields
        .iter()
        .map(|f| {
            let below: Vec<&[String]> = paths
                .iter()
                .filter(|p| p[0] == *f.name())
                .map(|p| &p[1..])
                .collect();
            match (!below.is_empty())
                .then(|| dictionary_at(f.data_type(), &below))
                .flatten()
            {
                Some(t) => {
                    changed = true;
                    Arc::new(f.as_ref().clone().with_data_type(t))
                }
                None => f.clone(),
            }
        })
        .collect();
    changed.then_some(DataType::Struct(fields))
}

/// A file's own type `own` with its text read as the table declares it (`declared`:
/// a view or a dictionary); `None` where nothing changes.
fn as_declared(own: &DataType, declared: &DataType) -> Option<DataType> {
    match (own, declared) {
        (DataType::Utf8, DataType::Utf8View | DataType::Dictionary(..)) => Some(declared.clone()),
        (DataType::Struct(fields), DataType::Struct(table)) => {
            let mut changed = false;
            let fields: Fields = fields
                .iter()
                .map(|f| {
                    let t = table
                        .find(f.name())
                        .and_then(|(_, d)| as_declared(f.data_type(), d.data_type()));
                    changed |= t.is_some();
                    t.map_or_else(
                        || f.clone(),
                        |t| Arc::new(f.as_ref().clone().with_data_type(t)),
                    )
                })
                .collect();
            changed.then_some(DataType::Struct(fields))
        }
        (DataType::List(item), DataType::List(table)) => {
            as_declared(item.data_type(), table.data_type())
                .map(|t| DataType::List(Arc::new(item.as_ref().clone().with_data_type(t))))
        }
        _ => None,
    }
}

/// A file's schema `own` with its text read as `table` declares it, if that changes it.
fn declared_types(own: &Schema, table: &Schema) -> Option<Schema> {
    let mut changed = false;
    let fields: Vec<Arc<Field>> = own
        .fields()
        .iter()
        .map(|f| {
            let t = table
                .field_with_name(f.name())
                .ok()
                .and_then(|d| as_declared(f.data_type(), d.data_type()));
            changed |= t.is_some();
            t.map_or_else(
                || f.clone(),
                |t| Arc::new(f.as_ref().clone().with_data_type(t)),
            )
        })
        .collect();
    changed.then(|| Schema::new_with_metadata(fields, own.metadata().clone()))
}

/// `expr` as record fields taken from a column: `invoice.month` → (`invoice`, `["month"]`).
fn field_path(expr: &Expr) -> Option<(&Column, Leaf)> {
    match expr {
        Expr::ScalarFunction(f) if f.name() == "get_field" && f.args.len() >= 2 => {
            let (column, mut path) = match &f.args[0] {
                Expr::Column(c) => (c, Vec::new()),
                inner => field_path(inner)?,
            };
            for arg in &f.args[1..] {
                let Expr::Literal(v, _) = arg else {
                    return None;
                };
                path.push(v.try_as_str().flatten()?.to_string());
            }
            Some((column, path))
        }
        _ => None,
    }
}

/// The text `LIKE` matches in `expr` against a constant pattern, through `LOWER` or
/// `UPPER`, which map a dictionary's values.
fn matched(expr: &Expr) -> Option<&Expr> {
    let Expr::Like(like) = expr else {
        return None;
    };
    if !matches!(like.pattern.as_ref(), Expr::Literal(..)) {
        return None;
    }
    Some(match like.expr.as_ref() {
        Expr::ScalarFunction(f) if matches!(f.name(), "lower" | "upper") && f.args.len() == 1 => {
            &f.args[0]
        }
        e => e,
    })
}

/// What a plan does with record fields, found node by node.
#[derive(Default)]
struct Uses {
    /// (scanned table, column, path) grouped by or matched.
    keys: Vec<(TableReference, String, Leaf)>,
    /// (column, path) used where a dictionary may not go; an empty path: the column.
    barred: HashSet<(String, Leaf)>,
}

impl Uses {
    /// Whether `path` of `column`, or a record it is in, has a use a dictionary may not have.
    fn barred(&self, column: &str, path: &[String]) -> bool {
        (0..=path.len()).any(|n| {
            self.barred
                .contains(&(column.to_string(), path[..n].to_vec()))
        })
    }

    fn node(&mut self, plan: &LogicalPlan) {
        if let LogicalPlan::Aggregate(a) = plan {
            for key in &a.group_expr {
                match field_path(key) {
                    Some((column, path)) => {
                        if let Some(table) = scanned(&a.input, &column.name) {
                            self.keys.push((table, column.name.clone(), path));
                        }
                    }
                    None => self.expr(key, false),
                }
            }
            for e in &a.aggr_expr {
                self.expr(e, false);
            }
            return;
        }
        if let LogicalPlan::Filter(f) = plan {
            let _ = f.predicate.apply(|e| {
                if let Some((column, path)) = matched(e).and_then(field_path)
                    && let Some(table) = scanned(&f.input, &column.name)
                {
                    self.keys.push((table, column.name.clone(), path));
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        let _ = plan.apply_expressions(|e| {
            self.expr(e, false);
            Ok(TreeNodeRecursion::Continue)
        });
    }

    /// Records the record fields `expr` uses; `free` when a dictionary may stand there.
    fn expr(&mut self, expr: &Expr, free: bool) {
        if let Some((column, path)) = field_path(expr) {
            if !free {
                self.barred.insert((column.name.clone(), path));
            }
            return;
        }
        if let Some(text) = matched(expr) {
            return self.expr(text, true);
        }
        match expr {
            Expr::Column(c) | Expr::OuterReferenceColumn(_, c) => {
                self.barred.insert((c.name.clone(), Vec::new()));
            }
            Expr::Alias(a) => self.expr(&a.expr, free),
            Expr::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Eq
                        | Operator::NotEq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::IsDistinctFrom
                        | Operator::IsNotDistinctFrom
                ) =>
            {
                // Against a constant; other text would be cast to a dictionary row by row.
                let constant = |e: &Expr| matches!(e, Expr::Literal(..));
                self.expr(&b.left, constant(&b.right));
                self.expr(&b.right, constant(&b.left));
            }
            Expr::IsNull(e) | Expr::IsNotNull(e) => self.expr(e, true),
            _ => {
                let _ = expr.apply_children(|child| {
                    self.expr(child, false);
                    Ok(TreeNodeRecursion::Continue)
                });
            }
        }
    }
}

/// The table whose scan gives `plan` its column `column`, through filters and aliases.
fn scanned(plan: &LogicalPlan, column: &str) -> Option<TableReference> {
    match plan {
        LogicalPlan::TableScan(s) => s
            .projected_schema
            .fields()
            .iter()
            .any(|f| f.name() == column)
            .then(|| s.table_name.clone()),
        LogicalPlan::Filter(f) => scanned(&f.input, column),
        LogicalPlan::SubqueryAlias(a) => scanned(&a.input, column),
        _ => None,
    }
}

/// Parquet, reading the text in records as its table declares it (views, or
/// dictionaries where a plan groups by it): each file is read with its own schema,
/// those fields given the declared types.
#[derive(Debug)]
pub struct HintedParquet(pub ParquetFormat);

#[async_trait]
impl FileFormat for HintedParquet {
    fn get_ext(&self) -> String {
        self.0.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.0.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.0.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.0.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.0.infer_stats(state, store, table_schema, object).await
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        mut conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = Arc::clone(conf.file_schema());
        let store = state.runtime_env().object_store(&conf.object_store_url)?;
        let mut groups = Vec::new();
        for group in std::mem::take(&mut conf.file_groups) {
            let statistics = group.file_statistics(None).cloned();
            let mut files = Vec::new();
            for mut file in group.into_inner() {
                let own = self
                    .0
                    .infer_schema(state, &store, std::slice::from_ref(&file.object_meta))
                    .await?;
                if let Some(hinted) = declared_types(&own, &table) {
                    file = file.with_arrow_schema(Arc::new(hinted));
                }
                files.push(file);
            }
            let mut group = FileGroup::new(files);
            if let Some(s) = statistics {
                group = group.with_statistics(Arc::new(s));
            }
            groups.push(group);
        }
        conf.file_groups = groups;
        self.0.create_physical_plan(state, conf).await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.0.file_source(table_schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::listed_text_as_views;

    fn text(name: &str, data_type: DataType) -> Arc<Field> {
        Arc::new(Field::new(name, data_type, true))
    }

    /// `labels` (a list of key/value records) and `sku` (a record), with their text as
    /// `label_text` and `sku_text`.
    fn bill(label_text: DataType, sku_text: DataType) -> Schema {
        let label = DataType::Struct(
            vec![text("key", label_text.clone()), text("value", label_text)].into(),
        );
        Schema::new(vec![
            text("cost_type", DataType::Utf8),
            text("labels", DataType::List(text("item", label))),
            text(
                "sku",
                DataType::Struct(vec![text("description", sku_text)].into()),
            ),
        ])
    }

    #[test]
    fn text_in_lists_is_declared_as_views_and_each_file_read_so() {
        let stored = bill(DataType::Utf8, DataType::Utf8);
        let declared: Vec<Field> = stored
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(listed_text_as_views(f.data_type()))
            })
            .collect();
        // The top level is DataFusion's to read; text in records outside lists stays text.
        assert_eq!(
            Schema::new(declared.clone()),
            bill(DataType::Utf8View, DataType::Utf8)
        );

        let grouped = with_dictionaries(
            &Schema::new(declared),
            [("sku", ["description".to_string()].as_slice())],
        )
        .unwrap();
        assert_eq!(grouped, bill(DataType::Utf8View, text_dictionary()));
        // Each file is read with the declared types where its own are text.
        assert_eq!(declared_types(&stored, &grouped), Some(grouped.clone()));
        assert_eq!(declared_types(&stored, &stored), None);
    }
}
