//! `billq report`: reports written to a folder for cron and CI.

use std::process::ExitCode;

use billq_engine::Result;
use billq_engine::report::{self, Month, Spec};

use crate::args::ReportCommand;

pub async fn run(command: ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Monthly {
        month,
        tables,
        spec,
        out,
    } = command;
    let month = Month::parse(&month)?;
    let spec = match &spec {
        Some(dir) => Spec::load(dir)?,
        None => Spec::monthly()?,
    };
    let session = super::session(&tables).await?;
    let results = report::run(&session, &spec, &month).await?;
    let generated = report::generated_line();
    for path in report::write(&spec, &month, &results, &out, &generated)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
