//! `billq tables` and `billq schema`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use billq_engine::catalog::Catalog;
use billq_engine::{Error, Result};

use crate::args::TableArgs;

/// Writes lines to stdout; a closed pipe (`| head`) ends the output quietly.
fn print_lines(lines: impl IntoIterator<Item = String>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}").map_err(|e| Error::io(Path::new("stdout"), e))?;
    }
    Ok(())
}

pub async fn tables(args: &TableArgs) -> Result<ExitCode> {
    let session = super::session(args).await?;
    print_lines(session.tables().cloned())?;
    Ok(ExitCode::SUCCESS)
}

/// Each column and its type, and the names the sources gave it where they differ
/// other than by case (`costInBillingCurrency` from `PreTaxCost`).
pub async fn schema(table: &str, args: &TableArgs) -> Result<ExitCode> {
    let session = super::session(args).await?;
    if !session.has_table(table) {
        return Err(Error::Sql(format!(
            "no table named {table}; see `billq tables`"
        )));
    }
    let provider = session
        .context()
        .table_provider(datafusion::common::TableReference::bare(table))
        .await?;
    let mut originals = std::collections::BTreeMap::new();
    for dir in &args.data {
        originals.extend(Catalog::open_existing(dir)?.source_names(table));
    }
    print_lines(provider.schema().fields().iter().map(|field| {
        let renamed: Vec<&str> = originals
            .get(field.name())
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|n| !n.eq_ignore_ascii_case(field.name()))
            .collect();
        if renamed.is_empty() {
            format!("{}: {}", field.name(), field.data_type())
        } else {
            format!(
                "{}: {} (in the source: {})",
                field.name(),
                field.data_type(),
                renamed.join(", ")
            )
        }
    }))?;
    Ok(ExitCode::SUCCESS)
}
