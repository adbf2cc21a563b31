//! Registering stored Parquet files as DataFusion tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

use crate::catalog::Catalog;
use crate::dictionary_reads::HintedParquet;
use crate::error::Result;

/// Registers `files` as one table called `name` (any text, dots included), with the
/// union of their columns: a column some files lack is NULL there, and a column whose
/// type differs between files (a number kept as text in one delivery) is text.
pub async fn register_files(ctx: &SessionContext, name: &str, files: &[PathBuf]) -> Result<()> {
    let urls = files
        .iter()
        .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let format = ParquetFormat::default();
    let state = ctx.state();
    let mut fields: Vec<Field> = Vec::new();
    for url in &urls {
        let store = state.runtime_env().object_store(url)?;
        let meta = store.head(url.prefix()).await?;
        for field in format.infer_schema(&state, &store, &[meta]).await?.fields() {
            match fields.iter_mut().find(|f| f.name() == field.name()) {
                None => fields.push(field.as_ref().clone().with_nullable(true)),
                Some(f) if f.data_type() != field.data_type() => {
                    *f = Field::new(field.name(), DataType::Utf8, true);
                }
                Some(_) => {}
            }
        }
    }
    // Text in lists of records is read as views, as DataFusion reads the top level's.
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|f| {
            let t = listed_text_as_views(f.data_type());
            f.with_data_type(t)
        })
        .collect();
    let options =
        ListingOptions::new(Arc::new(HintedParquet(format))).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::new(Schema::new(fields)));
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

/// `data_type` with the text in its lists (of records: labels, credits, tags) read as
/// views: a view of a dictionary-encoded value points into the dictionary page
/// instead of copying the value out of it. Text elsewhere in records stays `Utf8`: a
/// sort by `sku.id` as views under a 2 GiB limit took ten times as long at 10M rows
/// (DataFusion spilling views), and a `GROUP BY` reads such text as a dictionary.
pub fn listed_text_as_views(data_type: &DataType) -> DataType {
    text_as_views(data_type, false)
}

/// `data_type` with its text read as views where it is inside a list (`listed`).
fn text_as_views(data_type: &DataType, listed: bool) -> DataType {
    let field = |f: &Field, listed| {
        let t = text_as_views(f.data_type(), listed);
        Arc::new(f.clone().with_data_type(t))
    };
    match data_type {
        DataType::Utf8 if listed => DataType::Utf8View,
        DataType::List(item) => DataType::List(field(item, true)),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| field(f, listed)).collect())
        }
        other => other.clone(),
    }
}
