//! # billq-engine
//!
//! The engine behind `billq`: cloud billing exports in, exact partitioned Parquet and
//! SQL answers out.
//!
//! - [`source`] resolves what the user names (files, directories, globs, object store
//!   URLs) to [`source::SourceObject`]s, each with the identity (size, mtime, etag)
//!   that makes conversion incremental.
//! - [`deliveries`] picks the current delivery of each CUR billing period from its
//!   manifest, so re-deliveries replace instead of doubling.
//! - [`formats`] recognises a file and reads it as Arrow batches in its provider's
//!   documented schema, behind one trait, [`formats::BatchSource`].
//! - [`convert`] streams sources into the store: Parquet partitioned by provider,
//!   table, billing account and invoice month, sorted by usage time, committed
//!   atomically through the [`catalog`], which records each source's row count and
//!   exact money totals ([`money`]).
//! - [`verify`] re-reads sources and store and reconciles them with the catalog.
//! - [`session`] is a DataFusion context with the store's tables and the billing
//!   functions of `billq-udfs`; [`sql`] holds the BigQuery front end. Plans read only
//!   the record fields they use of records and lists of records (`nested_reads`),
//!   and group by stored text through its dictionary (`dictionary_reads`;
//!   `dictionary_group_by` for one key, `dictionary_ids` among several) and match
//!   it against patterns a dictionary value at a time; full sorts
//!   sort a memory's worth of rows at once in the row format (`row_sort`), and
//!   `ROW_NUMBER()` over sorted rows is a counter (`row_number`); an unnested list's
//!   elements are sliced, not copied (`list_unnest`); a scan reads only the files of
//!   the accounts and months its predicate allows (`partition_pruning`), and only
//!   the row groups whose dictionaries hold text its filter accepts
//!   (`dictionary_pruning`).

pub mod catalog;
pub mod config;
pub mod convert;
pub mod deliveries;
mod dictionary_group_by;
mod dictionary_ids;
mod dictionary_pruning;
mod dictionary_reads;
pub mod error;
pub mod focus;
pub mod formats;
mod gather;
mod list_unnest;
mod memory_pool;
pub mod money;
mod nested_reads;
mod partition_pruning;
mod plan_rewrite;
pub mod progress;
pub mod rating;
mod read_ahead;
pub mod report;
mod row_number;
mod row_sort;
pub mod session;
pub mod source;
pub mod sql;
pub mod store;
#[cfg(test)]
mod testing;
pub mod verify;

pub use error::{Error, Result};
pub use session::Session;
pub use sql::Dialect;
