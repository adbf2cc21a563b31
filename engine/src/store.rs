//! Registering stored Parquet files as DataFusion tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;
use crate::error::Result;

/// Registers `files` as one table called `name` (any text, dots included).
pub async fn register_files(ctx: &SessionContext, name: &str, files: &[PathBuf]) -> Result<()> {
    let urls = files
        .iter()
        .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    let table = ListingTable::try_new(config)?;
    ctx.register_table(TableReference::bare(name), Arc::new(table))?;
    Ok(())
}

/// Registers every table of the store at `dir`; returns their names.
pub async fn register_store(ctx: &SessionContext, dir: &Path) -> Result<Vec<String>> {
    let catalog = Catalog::open_existing(dir)?;
    let mut names = Vec::new();
    for (table, files) in catalog.tables(dir) {
        if !files.is_empty() {
            register_files(ctx, &table, &files).await?;
            names.push(table);
        }
    }
    Ok(names)
}
