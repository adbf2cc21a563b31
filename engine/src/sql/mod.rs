//! The SQL front ends: BigQuery Standard SQL, rewritten into what DataFusion plans;
//! Athena SQL, its functions mapped; and DataFusion's own SQL, passed through.

pub mod athena;
pub mod bigquery;

/// The SQL dialect a query is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// BigQuery Standard SQL (the default): parsed with sqlparser's BigQuery dialect
    /// and rewritten before DataFusion plans it.
    #[default]
    BigQuery,
    /// DataFusion's SQL, run as written.
    DataFusion,
    /// Athena (Trino/Presto) SQL, as CUR queries are written: a few functions mapped.
    Athena,
}
