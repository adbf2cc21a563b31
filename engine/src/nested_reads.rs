//! Reading only the record fields a query uses from a record or a list of records.
//!
//! DataFusion reads every leaf of a list of records such as `credits` (name, amount,
//! full_name, id, type) even when a query only sums `amount`; and every leaf of a
//! record such as `sku` (id, description) where `sku.id` is used above a sort or a
//! window, which carries the whole record through. It reads fewer leaves when a table
//! declares the column with a narrower type than its files have. [`narrowed_tables`]
//! finds, for each record or list-of-records column of a stored table, the fields the
//! whole plan reads; where that is a proper subset it makes the table anew with the
//! narrow type, and the session plans the statement again over those tables.
//!
//! A field counts as read when a record (a list's element, or the column itself) is
//! taken apart by name: `sku.id`, `c.amount` after `UNNEST(credits) c`, `x.amount` in a
//! lambda over the list (`array_transform`, `array_any_match`, `array_filter`),
//! `credits[OFFSET(0)].id`. Any other use of the column or of an element (output,
//! `TO_JSON_STRING`, comparison, an operator the analysis does not follow) reads the
//! whole column, and the table keeps it whole.
//!
//! The same table made anew also declares the text fields the plan groups by as
//! dictionaries (`crate::dictionary_reads`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::catalog::TableProvider;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, TableReference};
use datafusion::datasource::listing::{ListingTable, ListingTableConfig};
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::dictionary_reads::{self, HintedParquet, Leaf};

/// The stored tables `plan` scans, by the reference it scans them with, made anew
/// with their list-of-records columns narrowed to the fields the plan reads and the
/// text it groups by read as dictionaries; empty when nothing changes.
pub fn narrowed_tables(
    plan: &LogicalPlan,
) -> Result<HashMap<TableReference, Arc<dyn TableProvider>>> {
    let mut tables = HashMap::new();
    // A view or table defined now keeps the tables it was planned over.
    if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) {
        return Ok(tables);
    }
    let mut uses = Uses::default();
    uses.plan(plan)?;
    uses.leave(plan);
    let read: HashMap<String, BTreeSet<String>> = uses
        .fields
        .into_iter()
        .filter_map(|(column, read)| Some((column, read?)))
        .filter(|(_, read)| !read.is_empty())
        .collect();
    let dictionaries = dictionary_reads::dictionary_leaves(plan);
    if read.is_empty() && dictionaries.is_empty() {
        return Ok(tables);
    }
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && !tables.contains_key(&scan.table_name)
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(listing) = provider.downcast_ref::<ListingTable>()
            && let Some(table) = narrowed_table(listing, &read, dictionaries.get(&scan.table_name))?
        {
            tables.insert(scan.table_name.clone(), table);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(tables)
}

/// `table` with each record or list-of-records column in `read` keeping only those
/// fields and the text at `dictionaries` read as dictionaries, if anything changes.
fn narrowed_table(
    table: &ListingTable,
    read: &HashMap<String, BTreeSet<String>>,
    dictionaries: Option<&BTreeSet<(String, Leaf)>>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    if !table.options().table_partition_cols.is_empty() {
        return Ok(None);
    }
    let schema = table.schema();
    let mut narrowed = false;
    let fields: Vec<Arc<Field>> = schema
        .fields()
        .iter()
        .map(|field| {
            let narrow = read.get(field.name()).and_then(|read| {
                let keep = |fields: &Fields| -> Option<Fields> {
                    let kept: Fields = fields
                        .iter()
                        .filter(|f| read.contains(f.name()))
                        .cloned()
                        .collect();
                    (!kept.is_empty() && kept.len() < fields.len()).then_some(kept)
                };
                match (field.data_type(), record_fields(field.data_type())) {
                    (_, Some((item, fields))) => Some(DataType::List(Arc::new(Field::new(
                        item.name(),
                        DataType::Struct(keep(fields)?),
                        item.is_nullable(),
                    )))),
                    (DataType::Struct(fields), None) => Some(DataType::Struct(keep(fields)?)),
                    _ => None,
                }
            });
            match narrow {
                Some(narrow) => {
                    narrowed = true;
                    Arc::new(field.as_ref().clone().with_data_type(narrow))
                }
                None => field.clone(),
            }
        })
        .collect();
    let mut schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    let options = table.options().clone();
    let hinted = options.format.downcast_ref::<HintedParquet>().is_some();
    if let (Some(dictionaries), true) = (dictionaries, hinted) {
        let leaves = dictionaries.iter().map(|(c, p)| (c.as_str(), p.as_slice()));
        if let Some(dictionaries) = dictionary_reads::with_dictionaries(&schema, leaves) {
            schema = dictionaries;
            narrowed = true;
        }
    }
    if !narrowed {
        return Ok(None);
    }
    let config = ListingTableConfig::new_with_multi_paths(table.table_paths().clone())
        .with_listing_options(options)
        .with_schema(Arc::new(schema));
    Ok(Some(Arc::new(ListingTable::try_new(config)?)))
}

/// The element fields of a list of records, if `data_type` is one.
fn record_fields(data_type: &DataType) -> Option<(&Arc<Field>, &Fields)> {
    match data_type {
        DataType::List(item) => match item.data_type() {
            DataType::Struct(fields) => Some((item, fields)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a name stands for a whole list or for one of its elements.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Level {
    List,
    Element,
}

/// What a plan does with its list-of-records columns, found bottom up.
#[derive(Default, Debug)]
struct Uses {
    /// Column names carrying a scanned list or its elements: name → (scanned column, level).
    names: HashMap<String, (String, Level)>,
    /// Scanned column → the element fields read, or `None` once it is used whole.
    fields: HashMap<String, Option<BTreeSet<String>>>,
}

/// Lambda parameters bound to the elements of a scanned column.
type Params = HashMap<String, String>;

/// `params` inside a lambda whose own parameters are `names` (they shadow outer ones).
fn shadowed(params: &Params, names: &[String]) -> Params {
    let mut inner = params.clone();
    for name in names {
        inner.remove(name);
    }
    inner
}

impl Uses {
    fn plan(&mut self, plan: &LogicalPlan) -> Result<()> {
        for input in plan.inputs() {
            self.plan(input)?;
        }
        self.node(plan);
        // After the node: a correlated subquery refers to its input's columns.
        plan.apply_subqueries(|sub| {
            self.plan(sub)?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(())
    }

    fn node(&mut self, plan: &LogicalPlan) {
        match plan {
            LogicalPlan::TableScan(scan) => {
                for field in scan.projected_schema.fields() {
                    // A record is read as one element of a list is.
                    let level = match field.data_type() {
                        DataType::Struct(_) => Level::Element,
                        t if record_fields(t).is_some() => Level::List,
                        _ => continue,
                    };
                    self.track(field.name(), field.name(), level);
                    self.fields
                        .entry(field.name().clone())
                        .or_insert_with(|| Some(BTreeSet::new()));
                }
                for filter in &scan.filters {
                    self.expr(filter, &Params::new());
                }
            }
            LogicalPlan::Projection(p) => {
                for (expr, field) in p.expr.iter().zip(p.schema.fields()) {
                    let mut inner = expr;
                    while let Expr::Alias(a) = inner {
                        inner = a.expr.as_ref();
                    }
                    match inner {
                        Expr::Column(c) if self.names.contains_key(&c.name) => {
                            let (column, level) = self.names[&c.name].clone();
                            self.track(field.name(), &column, level);
                        }
                        e => self.expr(e, &Params::new()),
                    }
                }
            }
            LogicalPlan::Unnest(u) => {
                let input = u.input.schema();
                for (index, list) in &u.list_type_columns {
                    match self.names.get(input.field(*index).name()).cloned() {
                        Some((column, Level::List)) if list.depth == 1 => {
                            self.track(&list.output_column.name, &column, Level::Element)
                        }
                        Some((column, _)) => self.whole(&column),
                        None => {}
                    }
                }
                for index in &u.struct_type_columns {
                    self.leave_name(input.field(*index).name());
                }
            }
            LogicalPlan::Subquery(s) => self.leave(&s.subquery),
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Values(_) => {
                let _ = plan.apply_expressions(|e| {
                    self.expr(e, &Params::new());
                    Ok(TreeNodeRecursion::Continue)
                });
            }
            // Unions, DISTINCT rows, statements, EXPLAIN, extensions: whatever reaches
            // them whole is used whole.
            other => {
                for input in other.inputs() {
                    self.leave(input);
                }
            }
        }
    }

    /// `plan`'s output leaves the analysis: every tracked column in it is used whole.
    fn leave(&mut self, plan: &LogicalPlan) {
        for field in plan.schema().fields() {
            self.leave_name(field.name());
        }
    }

    fn leave_name(&mut self, name: &str) {
        if let Some((column, _)) = self.names.get(name).cloned() {
            self.whole(&column);
        }
    }

    /// Records that `name` carries `column` at `level`; a name carrying two different
    /// things makes both whole.
    fn track(&mut self, name: &str, column: &str, level: Level) {
        let value = (column.to_string(), level);
        if let Some(old) = self.names.insert(name.to_string(), value.clone())
            && old != value
        {
            self.whole(&old.0);
            self.whole(column);
        }
    }

    fn whole(&mut self, column: &str) {
        self.fields.insert(column.to_string(), None);
    }

    fn read(&mut self, column: &str, field: &str) {
        if let Some(Some(read)) = self.fields.get_mut(column) {
            read.insert(field.to_string());
        }
    }

    fn expr(&mut self, expr: &Expr, params: &Params) {
        match expr {
            Expr::ScalarFunction(f) if f.name() == "get_field" => {
                if let Some(column) = self.element(&f.args[0], params) {
                    let field = match f.args.get(1) {
                        Some(Expr::Literal(v, _)) => v.try_as_str().flatten(),
                        _ => None,
                    };
                    match field {
                        Some(field) => self.read(&column, field),
                        None => self.whole(&column),
                    }
                    return;
                }
            }
            // The lambda's body is read for its element fields (a guard with effect:
            // nothing is recorded when the list is not a tracked one).
            Expr::HigherOrderFunction(f)
                if matches!(f.func.name(), "array_transform" | "array_any_match")
                    && self.lambda_over_list(&f.args, params).is_some() =>
            {
                return;
            }
            Expr::Column(c) => return self.leave_name(&c.name),
            Expr::OuterReferenceColumn(_, c) => return self.leave_name(&c.name),
            Expr::LambdaVariable(v) => {
                if let Some(column) = params.get(&v.name).cloned() {
                    self.whole(&column);
                }
                return;
            }
            // An unknown function's lambda: no parameter stands for an element.
            Expr::Lambda(l) => return self.expr(&l.body, &shadowed(params, &l.params)),
            _ => {}
        }
        let _ = expr.apply_children(|child| {
            self.expr(child, params);
            Ok(TreeNodeRecursion::Continue)
        });
    }

    /// `f(list, x -> body)` over a tracked list: reads what `body` reads of `x`;
    /// returns the list's column.
    fn lambda_over_list(&mut self, args: &[Expr], params: &Params) -> Option<String> {
        let [list, Expr::Lambda(lambda)] = args else {
            return None;
        };
        let column = self.list(list, params)?;
        let mut inner = shadowed(params, &lambda.params);
        if let Some(element) = lambda.params.first() {
            inner.insert(element.clone(), column.clone());
        }
        self.expr(&lambda.body, &inner);
        Some(column)
    }

    /// The column whose list (or a filtered part of it) `expr` is.
    fn list(&mut self, expr: &Expr, params: &Params) -> Option<String> {
        match expr {
            Expr::Column(c) => match self.names.get(&c.name) {
                Some((column, Level::List)) => Some(column.clone()),
                _ => None,
            },
            Expr::HigherOrderFunction(f) if f.func.name() == "array_filter" => {
                self.lambda_over_list(&f.args, params)
            }
            _ => None,
        }
    }

    /// The column one of whose elements `expr` is.
    fn element(&mut self, expr: &Expr, params: &Params) -> Option<String> {
        match expr {
            Expr::Column(c) => match self.names.get(&c.name) {
                Some((column, Level::Element)) => Some(column.clone()),
                _ => None,
            },
            Expr::LambdaVariable(v) => params.get(&v.name).cloned(),
            Expr::ScalarFunction(f) if f.name() == "array_element" && f.args.len() == 2 => {
                let column = self.list(&f.args[0], params)?;
                self.expr(&f.args[1], params);
                Some(column)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialect, Session};

    /// `cud`: six rows; credits -90 and -10 on one, -18.5 on another.
    async fn session() -> Session {
        crate::testing::seed_session("cud", "cud_example.jsonl").await
    }

    /// The record fields of a record, or of a list of records.
    fn fields_of(data_type: &DataType) -> Option<&Fields> {
        match data_type {
            DataType::Struct(fields) => Some(fields),
            t => record_fields(t).map(|(_, fields)| fields),
        }
    }

    /// The columns the plan of `sql` reads narrowed, with the fields it keeps of each.
    async fn narrowed(s: &Session, sql: &str, dialect: Dialect) -> String {
        let df = s.sql(sql, dialect).await.unwrap();
        let full = s.context().table_provider("cud").await.unwrap().schema();
        let mut found = Vec::new();
        df.logical_plan()
            .apply_with_subqueries(|p| {
                if let LogicalPlan::TableScan(scan) = p {
                    for field in scan.source.schema().fields() {
                        let (Some(kept), Ok(all)) = (
                            fields_of(field.data_type()),
                            full.field_with_name(field.name()),
                        ) else {
                            continue;
                        };
                        if Some(kept.len()) != fields_of(all.data_type()).map(|f| f.len()) {
                            let names: Vec<_> = kept.iter().map(|f| f.name().as_str()).collect();
                            found.push(format!("{}({})", field.name(), names.join(", ")));
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        found.join(" ")
    }

    #[tokio::test]
    async fn reads_only_the_fields_a_query_takes_apart() {
        let s = session().await;
        for (sql, expected) in [
            (
                "SELECT c.type, SUM(c.amount) FROM cud, UNNEST(credits) c GROUP BY 1",
                "credits(amount, type)",
            ),
            (
                "SELECT SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) FROM cud",
                "credits(amount)",
            ),
            (
                "SELECT COUNT(*) FROM cud WHERE EXISTS (SELECT 1 FROM UNNEST(credits) c WHERE c.type = 'X')",
                "credits(type)",
            ),
            (
                "SELECT (SELECT SUM(c.amount) FROM UNNEST(credits) c WHERE c.name LIKE 'Committed%') FROM cud",
                "credits(name, amount)",
            ),
            (
                "SELECT l.value, c.amount FROM cud, UNNEST(system_labels) l, UNNEST(credits) c",
                "system_labels(value) credits(amount)",
            ),
            ("SELECT credits[SAFE_OFFSET(0)].id FROM cud", "credits(id)"),
            // Records are read field by field too.
            ("SELECT sku.id, SUM(cost) FROM cud GROUP BY 1", "sku(id)"),
            (
                "SELECT project.name, project.id FROM cud WHERE location.zone LIKE 'us%'",
                "project(id, name) location(zone)",
            ),
            (
                "SELECT id FROM (SELECT sku.id, ROW_NUMBER() OVER (ORDER BY cost DESC, sku.id) AS n FROM cud)",
                "sku(id)",
            ),
            (
                "SELECT a.display_name FROM cud, UNNEST(project.ancestors) a",
                "project(ancestors)",
            ),
            ("SELECT sku FROM cud", ""),
            ("SELECT TO_JSON_STRING(sku), sku.id FROM cud", ""),
            ("SELECT COUNT(*) FROM cud WHERE sku IS NOT NULL", ""),
            // Used whole: every field is read.
            ("SELECT TO_JSON_STRING(credits) FROM cud", ""),
            ("SELECT c FROM cud, UNNEST(credits) c", ""),
            ("SELECT * FROM cud", ""),
            ("SELECT ARRAY_LENGTH(credits) FROM cud", ""),
            (
                "SELECT DISTINCT c.amount, credits FROM cud, UNNEST(credits) c",
                "",
            ),
            (
                "SELECT c.amount FROM cud, UNNEST(credits) c UNION ALL SELECT c.amount FROM cud, UNNEST(credits) c",
                "credits(amount) credits(amount)",
            ),
            (
                "SELECT x.amount FROM (SELECT credits AS cr FROM cud) t, UNNEST(cr) x",
                "credits(amount)",
            ),
            ("SELECT cr FROM (SELECT credits AS cr FROM cud)", ""),
            (
                "SELECT TO_JSON_STRING((SELECT c FROM UNNEST(credits) c WHERE c.amount < -50)) FROM cud",
                "",
            ),
        ] {
            assert_eq!(
                narrowed(&s, sql, Dialect::BigQuery).await,
                expected,
                "{sql}"
            );
        }
        for (sql, expected) in [
            ("SELECT credits[1]['id'] FROM cud", "credits(id)"),
            ("SELECT credits[1] FROM cud", ""),
        ] {
            assert_eq!(
                narrowed(&s, sql, Dialect::DataFusion).await,
                expected,
                "{sql}"
            );
        }
        // Planned again, the query still finds tables of other schemas.
        for ddl in [
            "CREATE SCHEMA other",
            "CREATE VIEW other.v AS SELECT 1 AS one",
        ] {
            s.sql(ddl, Dialect::DataFusion).await.unwrap();
        }
        let sql = "SELECT credits[1]['id'], v.one FROM cud CROSS JOIN other.v";
        assert_eq!(narrowed(&s, sql, Dialect::DataFusion).await, "credits(id)");
    }

    #[tokio::test]
    async fn narrowed_reads_give_the_same_answers() {
        let s = session().await;
        let cases = [
            (
                "SELECT c.type, SUM(c.amount) AS a FROM cud, UNNEST(credits) c GROUP BY 1 ORDER BY 1",
                "COMMITTED_USAGE_DISCOUNT -108.5\nSUSTAINED_USAGE_DISCOUNT -10.0",
            ),
            (
                "SELECT SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) FROM cud",
                "286.5",
            ),
            (
                "SELECT sku.description, cost FROM cud WHERE location.zone = 'us-central1-a' \
                 ORDER BY cost DESC, sku.description LIMIT 4",
                "N1 Predefined Instance Core running in Americas 150.0\n\
                 Commitment v1: Cpu in Americas for 1 Year 100.0\n\
                 Commitment v1: Cpu in Americas for 1 Year 100.0\n\
                 N1 Predefined Instance Ram running in Americas 30.0",
            ),
            (
                "SELECT service.description, sku.id, SUM(cost) FROM cud GROUP BY 1, 2",
                "Compute Engine 2E27-4F75-95CD 405.0",
            ),
            (
                "SELECT c.id, TO_JSON_STRING(credits) FROM cud, UNNEST(credits) c WHERE c.amount = -18.5",
                r#"Committed Use Discount: RAM [{"name":"Committed Use Discount: RAM","amount":-18.5,"full_name":"","id":"Committed Use Discount: RAM","type":"COMMITTED_USAGE_DISCOUNT"}]"#,
            ),
        ];
        for (sql, expected) in cases {
            let rows = crate::testing::rows(&s, sql, Dialect::BigQuery).await;
            assert_eq!(rows.join("\n"), expected, "{sql}");
        }
    }

    /// Bytes the Parquet scan of `sql` read.
    async fn bytes_scanned(s: &Session, sql: &str) -> usize {
        crate::testing::metric(s, sql, Dialect::BigQuery, "DataSourceExec", "bytes_scanned").await
    }

    #[tokio::test]
    async fn the_scan_reads_fewer_bytes() {
        let s = session().await;
        let narrow = bytes_scanned(&s, "SELECT SUM(c.amount) FROM cud, UNNEST(credits) c").await;
        let whole = bytes_scanned(
            &s,
            "SELECT COUNT(TO_JSON_STRING(c)) FROM cud, UNNEST(credits) c",
        )
        .await;
        assert!(narrow > 0 && narrow < whole, "{narrow} vs {whole}");
    }
}
