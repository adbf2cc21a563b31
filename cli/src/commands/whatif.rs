//! `billq whatif`: Azure usage re-rated in another region or with another rate card.

use std::io::Write;
use std::process::ExitCode;

use billq_engine::{Dialect, Error, Result, Session, rating};

use crate::args::{Format, TableArgs};

/// The distinct values of a text column of the rate card.
async fn known(session: &Session, column: &str) -> Result<Vec<String>> {
    let batches = session
        .sql(
            &format!(r#"SELECT DISTINCT "{column}" FROM azure_ratecard ORDER BY 1"#),
            Dialect::DataFusion,
        )
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for batch in &batches {
        let text = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let text = arrow::array::AsArray::as_string::<i32>(&text);
        out.extend(text.iter().flatten().map(str::to_string));
    }
    Ok(out)
}

pub async fn run(
    region: Option<&str>,
    rate_card: Option<&str>,
    tables: &TableArgs,
    format: Format,
) -> Result<ExitCode> {
    let session = super::session(tables).await?;
    if !session.has_table("azure_whatif") {
        return Err(Error::Unanswerable(
            "what-if needs Azure usage (azure_usage) and a rate card (azure_ratecard) in the given stores".into(),
        ));
    }
    for (wanted, column, what) in [
        (region, "meterRegion", "no meters in region"),
        (rate_card, "rateCard", "no rate card named"),
    ] {
        let Some(wanted) = wanted else { continue };
        let known = known(&session, column).await?;
        if !known.iter().any(|k| k == wanted) {
            return Err(Error::Unanswerable(format!(
                "the rate cards have {what} {wanted:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    let mut buf = Vec::new();
    super::query::execute(
        &session,
        &rating::whatif_by_meter(region, rate_card),
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
