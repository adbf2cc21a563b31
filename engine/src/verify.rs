//! Reconciliation: re-reads every source of a store and the stored files, and compares
//! row counts and exact money totals with what the catalog recorded at conversion.

use std::path::Path;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::catalog::{Catalog, SourceEntry};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::formats::{self, ExportKind};
use crate::money::{Totals, TotalsBuilder};
use crate::source::{self, StoreOptions};

/// The check of one source.
#[derive(Debug)]
pub struct SourceCheck {
    pub source: String,
    pub table: String,
    /// Totals recorded in the catalog at conversion.
    pub recorded: Totals,
    /// Totals of the source as it reads now.
    pub source_now: std::result::Result<Totals, String>,
    /// Totals of the stored files.
    pub stored: Totals,
}

impl SourceCheck {
    /// Whether source, catalog and store agree to the last digit.
    pub fn ok(&self) -> bool {
        matches!(&self.source_now, Ok(t) if *t == self.recorded) && self.stored == self.recorded
    }
}

/// Verifies every source of the store at `dir`, reading remote sources with the
/// settings of the configured source they come from.
pub async fn verify(dir: &Path, config: &Config) -> Result<Vec<SourceCheck>> {
    let catalog = Catalog::open_existing(dir)?;
    let mut checks = Vec::new();
    for entry in &catalog.sources {
        let kind = ExportKind::from_table(&entry.table).ok_or_else(|| Error::Catalog {
            path: dir.to_path_buf(),
            message: format!("unknown table {} in catalog", entry.table),
        })?;
        let options = config.options_for(&entry.url)?;
        let source_now = reread(entry, kind, &options)
            .await
            .map_err(|e| e.to_string());
        let stored = stored_totals(dir, entry, kind)?;
        checks.push(SourceCheck {
            source: source::display_url(&entry.url),
            table: entry.table.clone(),
            recorded: entry.totals.clone(),
            source_now,
            stored,
        });
    }
    Ok(checks)
}

async fn reread(entry: &SourceEntry, kind: ExportKind, options: &StoreOptions) -> Result<Totals> {
    let objects = source::resolve(std::slice::from_ref(&entry.url), options)
        .await?
        .objects;
    let obj = objects.into_iter().next().ok_or_else(|| Error::NotFound {
        path: source::display_url(&entry.url),
    })?;
    let fetched = source::fetch(&obj, options).await?;
    let (totals, rejected) = formats::read_export(
        &fetched.path,
        &obj.display(),
        None,
        entry.rejected > 0,
        |mut reader| {
            let mut totals = TotalsBuilder::new(kind.money_columns());
            while let Some(batch) = reader.next_batch()? {
                totals.add(&batch)?;
            }
            Ok((totals, reader.rejected().map_or(0, |r| r.rows.len() as u64)))
        },
    )?;
    if rejected != entry.rejected {
        return Err(Error::Verify(format!(
            "{} rows of the source are rejected now, {} were at conversion",
            rejected, entry.rejected
        )));
    }
    Ok(totals.finish())
}

fn stored_totals(dir: &Path, entry: &SourceEntry, kind: ExportKind) -> Result<Totals> {
    let mut totals = TotalsBuilder::new(kind.money_columns());
    let roots: Vec<&str> = kind
        .money_columns()
        .iter()
        .map(|c| c.split('.').next().unwrap_or(c))
        .collect();
    for file in &entry.files {
        let path = dir.join(&file.path);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f)?;
        let indices: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| roots.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        for batch in builder.with_projection(mask).build()? {
            totals.add(&batch?)?;
        }
    }
    Ok(totals.finish())
}
