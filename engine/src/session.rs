//! A query session: a DataFusion context with billq's functions, the tables of any
//! number of stores, and export files registered under names of the user's choice.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::TrackConsumersPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;

use crate::catalog::Catalog;
use crate::convert::{ConvertOptions, convert};
use crate::dictionary_group_by::DictionaryGroupBy;
use crate::dictionary_ids::DictionaryIds;
use crate::dictionary_pruning::DictionaryPruning;
use crate::dictionary_reads;
use crate::error::{Error, Result};
use crate::list_unnest::ListUnnest;
use crate::memory_pool::FairPool;
use crate::nested_reads;
use crate::partition_pruning::PartitionPruning;
use crate::row_number::RowNumber;
use crate::row_sort::RowSort;
use crate::sql::bigquery::Columns;
use crate::sql::{self, Dialect};
use crate::store;

/// How many of the largest memory consumers an out-of-memory error names.
const LARGEST_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(3).unwrap();

/// Under a memory limit, batches hold one row per this many bytes of the least pool
/// (8192 rows from a 256 MiB pool up, DataFusion's default), and never fewer than
/// [`MIN_BATCH_ROWS`].
const LIMIT_BYTES_PER_BATCH_ROW: usize = 32 * 1024;
const MIN_BATCH_ROWS: usize = 256;

/// A hash aggregation's first stage hands its rows on ungrouped once more than this
/// share of them start groups of their own (DataFusion's default: 0.8). Grouping by
/// hour x SKU x project kept 70% of 10M rows as groups: a first stage that took as
/// long as the second for a 30% cut (10M rows under a 2 GiB limit: 1.4-1.6 s -> 1.0-1.1 s).
const SKIP_PARTIAL_AGGREGATION_RATIO: f64 = 0.5;

/// DataFusion's configuration with billq's settings.
fn config() -> SessionConfig {
    let mut config = SessionConfig::new();
    config
        .options_mut()
        .execution
        .skip_partial_aggregation_probe_ratio_threshold = SKIP_PARTIAL_AGGREGATION_RATIO;
    config
}

/// Whether the Parquet scans of `plan` should apply its filters as they decode (filter
/// pushdown: the columns a filter does not read decoded only for the rows it keeps).
/// At 10M rows it took Q07's `LOWER(sku.description) LIKE 'commitment%'` from 0.18 to
/// 0.10 s and Q12's from 0.29 to 0.19 s, but a filter on a list decodes the list
/// twice: Q11's `"color" NOT IN (SELECT key FROM UNNEST(tags))` went from 1.05 to 1.41 s.
/// So: where the plan filters, and no filter reads a list.
fn filters_while_reading(plan: &LogicalPlan) -> bool {
    fn holds_list(data_type: &DataType) -> bool {
        match data_type {
            DataType::Struct(fields) => fields.iter().any(|f| holds_list(f.data_type())),
            DataType::Dictionary(_, value) => holds_list(value),
            t => t.is_nested(),
        }
    }
    let (mut filters, mut on_lists) = (false, false);
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Filter(f) = node {
            filters = true;
            let schema = f.input.schema();
            on_lists |= f.predicate.column_refs().into_iter().any(|c| {
                schema
                    .qualified_field_from_column(c)
                    .is_ok_and(|(_, field)| holds_list(field.data_type()))
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    filters && !on_lists
}

/// A DataFusion context set up for billing data.
pub struct Session {
    ctx: SessionContext,
    /// Registered tables and their column names, for the BigQuery front end.
    tables: Columns,
    /// Stores made on the fly for `--table` sources, removed with the session.
    temp_stores: Vec<tempfile::TempDir>,
    /// The pool under a memory limit, fitted to the process before each query.
    pool: Option<FairPool>,
}

impl Session {
    /// A session with billq's functions and no tables, whose queries hold what memory
    /// they need (the first stage of an aggregation a few MiB, as under a limit).
    pub fn new() -> Self {
        let runtime = RuntimeEnv {
            memory_pool: Arc::new(FairPool::new(usize::MAX)),
            ..RuntimeEnv::default()
        };
        Self::with_context(SessionContext::new_with_config_rt(
            config(),
            Arc::new(runtime),
        ))
    }

    /// A session whose process holds at most `bytes` of memory: its queries' sorts,
    /// joins and aggregations spill to temporary files past what the process holds
    /// outside them when a query is planned (at most half of `bytes`).
    ///
    /// DataFusion's defaults suit limits of gigabytes. Under small ones a query failed
    /// depending on the threads' timing: the spilling operators share what the
    /// sorts' merge reserves (`sort_spill_reservation_bytes`, 10 MiB per partition)
    /// leave, and a share could fall below one batch; a merge of spill files takes
    /// as much of the pool as its runs' batches need. So batches shrink with the least
    /// pool the limit leaves (half of it) below 256 MiB, and the sorts' reserves take
    /// at most a quarter of that pool. An out-of-memory error names the largest
    /// consumers.
    pub fn with_memory_limit(bytes: usize) -> Result<Self> {
        let config = config();
        // Sized for the least pool the limit leaves.
        let least = bytes / 2;
        let rows = (least / LIMIT_BYTES_PER_BATCH_ROW).clamp(MIN_BATCH_ROWS, config.batch_size());
        let mut config = config.with_batch_size(rows);
        let sorts = config.target_partitions();
        let execution = &mut config.options_mut().execution;
        execution.sort_spill_reservation_bytes = execution
            .sort_spill_reservation_bytes
            .min(least / 4 / sorts);
        let pool = FairPool::new(bytes);
        let tracked = TrackConsumersPool::new(pool.clone(), LARGEST_CONSUMERS);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(tracked))
            .build_arc()?;
        let mut session = Self::with_context(SessionContext::new_with_config_rt(config, runtime));
        session.pool = Some(pool);
        Ok(session)
    }

    pub(crate) fn with_context(ctx: SessionContext) -> Self {
        let state = SessionStateBuilder::new_from_existing(ctx.state())
            .with_physical_optimizer_rule(Arc::new(DictionaryGroupBy))
            .with_physical_optimizer_rule(Arc::new(DictionaryIds))
            .with_physical_optimizer_rule(Arc::new(RowSort))
            .with_physical_optimizer_rule(Arc::new(RowNumber))
            .with_physical_optimizer_rule(Arc::new(ListUnnest))
            .with_physical_optimizer_rule(Arc::new(PartitionPruning))
            .with_physical_optimizer_rule(Arc::new(DictionaryPruning))
            .build();
        let ctx = SessionContext::new_with_state(state);
        billq_udfs::register_all(&ctx);
        Self {
            ctx,
            tables: Columns::new(),
            temp_stores: Vec::new(),
            pool: None,
        }
    }

    /// The DataFusion context.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Names of the registered tables.
    pub fn tables(&self) -> impl Iterator<Item = &String> {
        self.tables.keys()
    }

    /// Whether a table of this name is registered.
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Records a registered table's columns.
    async fn remember(&mut self, name: &str) -> Result<()> {
        let provider = self
            .ctx
            .table_provider(datafusion::common::TableReference::bare(name))
            .await?;
        let columns = provider
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        self.tables.insert(name.to_string(), columns);
        Ok(())
    }

    /// Registers every table of the store at `dir`.
    pub async fn add_store(&mut self, dir: &Path) -> Result<()> {
        for name in store::register_store(&self.ctx, dir).await? {
            self.remember(&name).await?;
        }
        self.add_views().await
    }

    /// Registers the views over the tables registered so far (Azure rating).
    async fn add_views(&mut self) -> Result<()> {
        for name in crate::rating::register(&self.ctx).await? {
            self.remember(&name).await?;
        }
        if crate::focus::register(&self.ctx, &self.tables).await? {
            self.remember("focus").await?;
        }
        Ok(())
    }

    /// Registers the exports at `src` (file, directory, glob or URL) as table `name`,
    /// converting them into a temporary store first.
    pub async fn add_table(&mut self, name: &str, src: &str) -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let opts = ConvertOptions {
            out: dir.path().to_path_buf(),
            progress: None,
            lenient: false,
            store: Default::default(),
        };
        convert(&[src.to_string()], &opts).await?;
        let tables = Catalog::load(dir.path())?.tables(dir.path());
        if tables.len() > 1 {
            let kinds: Vec<_> = tables.keys().cloned().collect();
            return Err(Error::BadUrl {
                url: src.to_string(),
                message: format!(
                    "holds more than one kind of export ({}); name each with its own --table",
                    kinds.join(", ")
                ),
            });
        }
        let files: Vec<_> = tables.into_values().flatten().collect();
        store::register_files(&self.ctx, name, &files).await?;
        self.remember(name).await?;
        self.temp_stores.push(dir);
        self.add_views().await
    }

    /// Plans `text` in `dialect`; runs nothing yet. Under a memory limit, the pool
    /// gives the query what the process does not hold now.
    pub async fn sql(&self, text: &str, dialect: Dialect) -> Result<DataFrame> {
        let mut state = self.ctx.state();
        let statement = match dialect {
            Dialect::DataFusion => {
                let parser = state.config().options().sql_parser.dialect;
                state.sql_to_statement(text, &parser)?
            }
            Dialect::BigQuery => {
                let parser = &mut state.config_mut().options_mut().sql_parser;
                // BigQuery sorts NULLs first in ascending order, last in descending.
                parser.default_null_ordering = "nulls_min".into();
                // Column names as written: `costInBillingCurrency` needs no quotes.
                parser.enable_ident_normalization = false;
                Statement::Statement(Box::new(sql::bigquery::rewrite(text, &self.tables)?))
            }
            Dialect::Athena => Statement::Statement(Box::new(sql::athena::rewrite(text)?)),
        };
        let plan = state.statement_to_plan(statement.clone()).await?;
        let narrowed = nested_reads::narrowed_tables(&plan)?;
        let plan = if narrowed.is_empty() {
            plan
        } else {
            // Again, over tables that read only the record fields the plan uses.
            let again = self
                .with_tables(state, narrowed)
                .await?
                .statement_to_plan(statement)
                .await?;
            let again = dictionary_reads::grouped_as_text(again)?;
            // Dictionaries where the output has text: a use the analysis missed.
            let types = |p: &LogicalPlan| -> Vec<DataType> {
                p.schema()
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect()
            };
            if types(&again) == types(&plan) {
                again
            } else {
                plan
            }
        };
        let frame = if filters_while_reading(&plan)
            && !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_))
        {
            let mut state = self.ctx.state();
            let parquet = &mut state.config_mut().options_mut().execution.parquet;
            parquet.pushdown_filters = true;
            parquet.reorder_filters = true;
            DataFrame::new(state, plan)
        } else {
            self.ctx.execute_logical_plan(plan).await?
        };
        if let Some(pool) = &self.pool {
            pool.fit_to_process();
        }
        Ok(frame)
    }

    /// `state` with `replaced` in place of the tables of those references; every other
    /// catalog, schema and table as they are.
    async fn with_tables(
        &self,
        state: SessionState,
        replaced: HashMap<TableReference, Arc<dyn TableProvider>>,
    ) -> Result<SessionState> {
        let defaults = &state.config().options().catalog;
        // catalog → schema → table → its replacement.
        let mut by_place: HashMap<String, HashMap<String, HashMap<String, _>>> = HashMap::new();
        for (reference, table) in replaced {
            let place = reference.resolve(&defaults.default_catalog, &defaults.default_schema);
            by_place
                .entry(place.catalog.to_string())
                .or_default()
                .entry(place.schema.to_string())
                .or_default()
                .insert(place.table.to_string(), table);
        }
        let catalogs = MemoryCatalogProviderList::new();
        for catalog_name in self.ctx.catalog_names() {
            let Some(original) = self.ctx.catalog(&catalog_name) else {
                continue;
            };
            let Some(mut schemas) = by_place.remove(&catalog_name) else {
                catalogs.register_catalog(catalog_name, original);
                continue;
            };
            let catalog = MemoryCatalogProvider::new();
            for schema_name in original.schema_names() {
                let Some(schema) = original.schema(&schema_name) else {
                    continue;
                };
                let schema = match schemas.remove(&schema_name) {
                    None => schema,
                    Some(tables) => schema_with(schema.as_ref(), tables).await?,
                };
                catalog.register_schema(&schema_name, schema)?;
            }
            catalogs.register_catalog(catalog_name, Arc::new(catalog));
        }
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(Arc::new(catalogs))
            .build())
    }

    /// The SQL DataFusion runs for `text` in `dialect`.
    pub fn rewritten(&self, text: &str, dialect: Dialect) -> Result<String> {
        match dialect {
            Dialect::DataFusion => Ok(text.to_string()),
            Dialect::BigQuery => Ok(sql::bigquery::rewrite(text, &self.tables)?.to_string()),
            Dialect::Athena => Ok(sql::athena::rewrite(text)?.to_string()),
        }
    }
}

/// A copy of `schema` with `replaced` in place of its namesakes.
async fn schema_with(
    schema: &dyn SchemaProvider,
    mut replaced: HashMap<String, Arc<dyn TableProvider>>,
) -> Result<Arc<dyn SchemaProvider>> {
    let copy = MemorySchemaProvider::new();
    for name in schema.table_names() {
        let table = match replaced.remove(&name) {
            Some(t) => Some(t),
            None => schema.table(&name).await?,
        };
        if let Some(table) = table {
            copy.register_table(name, table)?;
        }
    }
    Ok(Arc::new(copy))
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;
    use crate::testing::{metric, rows};

    #[tokio::test]
    async fn scans_apply_filters_on_flat_columns_as_they_decode() {
        let s = crate::testing::seed_session("cud", "cud_example.jsonl").await;
        for (sql, filter_apart, expected) in [
            (
                "SELECT SUM(cost) FROM cud WHERE lower(sku['description']) LIKE 'commitment%'",
                false,
                "220.0",
            ),
            (
                "SELECT SUM(cost) FROM cud WHERE cost > 25 AND invoice['month'] = '202401'",
                false,
                "250.0",
            ),
            // A filter on a list would decode it twice.
            (
                "SELECT SUM(cost) FROM cud WHERE array_length(credits) > 0",
                true,
                "180.0",
            ),
        ] {
            assert_eq!(
                rows(&s, sql, Dialect::DataFusion).await,
                [expected],
                "{sql}"
            );
            let plan = crate::testing::plan(&s, sql).await;
            assert_eq!(plan.contains("FilterExec"), filter_apart, "{sql}\n{plan}");
        }
    }

    #[tokio::test]
    async fn a_first_stage_that_barely_groups_hands_its_rows_on() {
        // 300k rows in 30 batches, 65% of them (in every stretch) starting a group.
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batches = (0..30i64)
            .map(|b| {
                let keys = Int64Array::from_iter_values(
                    (b * 10_000..(b + 1) * 10_000).map(|i| i * 13 / 20),
                );
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(keys)]).unwrap()
            })
            .collect();
        let table = Arc::new(MemTable::try_new(Arc::clone(&schema), vec![batches]).unwrap());
        for session in [Session::new(), Session::with_memory_limit(1 << 30).unwrap()] {
            let ctx = session.context();
            ctx.register_table("t", Arc::clone(&table) as _).unwrap();
            let sql = "SELECT COUNT(*), SUM(n) FROM (SELECT k, COUNT(*) AS n FROM t GROUP BY k)";
            let answer = rows(&session, sql, Dialect::DataFusion).await;
            assert_eq!(answer, ["195000 300000"]);
            let skipped = metric(
                &session,
                sql,
                Dialect::DataFusion,
                "AggregateExec",
                "skipped_aggregation_rows",
            )
            .await;
            assert!(skipped > 0, "no rows skipped");
        }
    }
}
