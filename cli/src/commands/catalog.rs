//! `billq tables` and `billq schema`.

use std::process::ExitCode;

use billq_engine::{Error, Result};

use crate::args::TableArgs;

pub async fn tables(args: &TableArgs) -> Result<ExitCode> {
    let session = super::session(args).await?;
    for name in session.tables() {
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}

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
    for field in provider.schema().fields() {
        println!("{}: {}", field.name(), field.data_type());
    }
    Ok(ExitCode::SUCCESS)
}
