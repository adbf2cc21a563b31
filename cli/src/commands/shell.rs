//! `billq shell`: a REPL with history and multi-line statements.

use std::process::ExitCode;

use billq_engine::{Dialect, Result};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::args::{Format, TableArgs};

const HELP: &str = "Statements end with ';'. Commands: \\d (tables), \\d NAME (schema), \
\\dialect bigquery|datafusion|athena, \\q (quit).";

pub async fn run(tables: &TableArgs, mut dialect: Dialect) -> Result<ExitCode> {
    let session = super::session(tables).await?;
    let mut editor = DefaultEditor::new().map_err(|e| billq_engine::Error::Sql(e.to_string()))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".billq_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("billq shell ({} tables). {HELP}", session.tables().count());
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "billq> "
        } else {
            "   ..> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(_) => break,
        };
        let trimmed = line.trim();
        if statement.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut words = trimmed.split_whitespace();
            match (words.next(), words.next()) {
                (Some("\\q"), _) => break,
                (Some("\\d"), None) => session.tables().for_each(|t| println!("{t}")),
                (Some("\\d"), Some(name)) => describe(&session, name).await,
                (Some("\\dialect"), Some("bigquery")) => dialect = Dialect::BigQuery,
                (Some("\\dialect"), Some("datafusion")) => dialect = Dialect::DataFusion,
                (Some("\\dialect"), Some("athena")) => dialect = Dialect::Athena,
                _ => println!("{HELP}"),
            }
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let _ = editor.add_history_entry(statement.trim());
        let sql = statement.trim().trim_end_matches(';').to_string();
        statement.clear();
        let mut out = Vec::new();
        match super::query::execute(&session, &sql, dialect, Format::Table, &mut out).await {
            Ok(()) => print!("{}", String::from_utf8_lossy(&out)),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(session: &billq_engine::Session, name: &str) {
    match session
        .context()
        .table_provider(datafusion::common::TableReference::bare(name))
        .await
    {
        Ok(t) => t
            .schema()
            .fields()
            .iter()
            .for_each(|f| println!("{}: {}", f.name(), f.data_type())),
        Err(e) => eprintln!("error: {e}"),
    }
}
