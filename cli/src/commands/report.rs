//! `billq report`: reports written to a folder for cron and CI.

use std::process::ExitCode;

use billq_engine::Result;
use billq_engine::config::Config;
use billq_engine::report::{self, Month, Spec};

use crate::args::ReportCommand;

pub async fn run(command: ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Monthly {
        month,
        tables,
        spec,
        config,
        out,
    } = command;
    let month = Month::parse(&month)?;
    let spec = match &spec {
        Some(dir) => Spec::load(dir)?,
        None => Spec::monthly()?,
    };
    let config = if config.exists() {
        Config::load(&config)?
    } else {
        Config::default()
    };
    let mut tables = tables;
    if tables.data.is_empty() && tables.table.is_empty() {
        // For cron: the store the config names.
        tables.data.extend(config.store.clone());
    }
    let session = super::session(&tables).await?;
    let mut results = report::run(&session, &spec, &month, &config.projects).await?;
    let checks = report::check_budgets(&config.budgets, &results)?;
    if !checks.is_empty() {
        results.push(report::budget_table(&checks));
    }
    let generated = report::generated_line();
    for path in report::write(&spec, &month, &results, &out, &generated)? {
        eprintln!("wrote {}", path.display());
    }
    let over: Vec<_> = checks.iter().filter(|c| c.status != "ok").collect();
    for c in &over {
        eprintln!(
            "billq: budget {} is {} for {}: {} spent, {} projected, budget {}",
            c.name, c.status, month.text, c.actual, c.projected, c.budget
        );
    }
    Ok(if over.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_BUDGET)
    })
}
