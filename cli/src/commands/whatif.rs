//! `billq whatif`: Azure usage re-rated in another region.

use std::io::Write;
use std::process::ExitCode;

use billq_engine::{Dialect, Error, Result, rating};

use crate::args::{Format, TableArgs};

pub async fn run(region: &str, tables: &TableArgs, format: Format) -> Result<ExitCode> {
    let session = super::session(tables).await?;
    if !session.has_table("azure_whatif") {
        return Err(Error::Unanswerable(
            "what-if needs Azure usage (azure_usage) and a rate card (azure_ratecard) in the given stores".into(),
        ));
    }
    let regions = session
        .sql(
            r#"SELECT DISTINCT "meterRegion" FROM azure_ratecard ORDER BY 1"#,
            Dialect::DataFusion,
        )
        .await?
        .collect()
        .await?;
    let mut known: Vec<String> = Vec::new();
    for batch in &regions {
        let text = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let text = arrow::array::AsArray::as_string::<i32>(&text);
        known.extend(text.iter().flatten().map(str::to_string));
    }
    if !known.iter().any(|r| r == region) {
        return Err(Error::Unanswerable(format!(
            "the rate card has no meters in region {region:?} (regions: {})",
            known.join(", ")
        )));
    }
    let mut buf = Vec::new();
    super::query::execute(
        &session,
        &rating::whatif_by_meter(region),
        Dialect::DataFusion,
        format,
        &mut buf,
    )
    .await?;
    std::io::stdout()
        .lock()
        .write_all(&buf)
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(ExitCode::SUCCESS)
}
