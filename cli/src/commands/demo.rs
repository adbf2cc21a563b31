//! `billq demo`: the bundled sample exports, converted, verified and queried.

use std::path::PathBuf;
use std::process::ExitCode;

use billq_engine::{Dialect, Error, Result};

use crate::args::{Format, TableArgs};

/// The bundled sample exports: (file name, content).
const SAMPLES: [(&str, &[u8]); 2] = [
    (
        "gcp_billing_export_2024q1.jsonl.gz",
        include_bytes!("../../../testdata/gcp/gcp_billing_export_2024q1.jsonl.gz"),
    ),
    (
        "gcp_billing_export_invoice_example.jsonl",
        include_bytes!("../../../testdata/seed-queries/data/invoice_example.jsonl"),
    ),
];

/// The monthly invoice query the demo runs, in BigQuery SQL.
pub const INVOICE_QUERY: &str = "\
SELECT
  invoice.month AS invoice_month,
  currency,
  COUNT(*) AS line_items,
  SUM(net_cost(cost, [])) AS cost,
  SUM(credits_total(credits)) AS credits,
  SUM(net_cost(cost, credits)) AS total
FROM `my-project.billing.gcp_billing_export`
GROUP BY 1, 2
ORDER BY 1, 2";

pub async fn run(out: Option<PathBuf>, quiet: bool) -> Result<ExitCode> {
    let temp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let inputs = temp.path().join("exports");
    std::fs::create_dir_all(&inputs).map_err(|e| Error::io(&inputs, e))?;
    for (name, bytes) in SAMPLES {
        let path = inputs.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    let store = out.unwrap_or_else(|| temp.path().join("store"));
    super::convert::convert(
        &[inputs.display().to_string()],
        &store,
        false,
        Default::default(),
        quiet,
    )
    .await?;
    let verified = super::convert::verify(&store, &Default::default(), true).await?;
    if verified != ExitCode::SUCCESS {
        return Ok(verified);
    }
    let session = super::session(&TableArgs {
        data: vec![store.clone()],
        table: vec![],
        memory_limit: None,
    })
    .await?;
    println!("\n{INVOICE_QUERY}\n");
    let mut buf = Vec::new();
    super::query::execute(
        &session,
        INVOICE_QUERY,
        Dialect::BigQuery,
        Format::Table,
        &mut buf,
    )
    .await?;
    print!("{}", String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}
