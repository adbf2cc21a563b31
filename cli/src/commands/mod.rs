//! One module per subcommand; each returns the process exit code.

mod catalog;
mod convert;
mod demo;
mod query;
mod report;
mod shell;
mod whatif;

use std::process::ExitCode;

use billq_engine::config::Config;
use billq_engine::{Result, Session};

use crate::args::{Cli, Command, GenProvider, TableArgs};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Convert {
            sources,
            source,
            config,
            out,
            lenient,
        } => {
            let (sources, store) = match source {
                Some(name) => {
                    let loaded = Config::load(&config)?;
                    let source = loaded.source(&name, &config)?;
                    (vec![source.url.clone()], source.store_options()?)
                }
                None => (sources, Default::default()),
            };
            convert::convert(&sources, &out, lenient, store, cli.quiet).await
        }
        Command::Verify { data, config } => {
            let config = if config.exists() {
                Config::load(&config)?
            } else {
                Config::default()
            };
            convert::verify(&data, &config, cli.quiet).await
        }
        Command::Query(args) => query::run(args).await,
        Command::Tables(tables) => catalog::tables(&tables).await,
        Command::Schema { name, tables } => catalog::schema(&name, &tables).await,
        Command::Shell { tables, dialect } => shell::run(&tables, dialect.into()).await,
        Command::Demo { out } => demo::run(out, cli.quiet).await,
        Command::Report { report } => report::run(report).await,
        Command::Gen {
            provider,
            rows,
            months,
            seed,
            out,
            format,
        } => {
            let options = billq_gen::Options {
                rows,
                months,
                seed,
                format: format.into(),
            };
            let written = match provider {
                GenProvider::Gcp => billq_gen::gcp(&options, &out),
                GenProvider::Aws => billq_gen::aws(&options, &out),
                GenProvider::Azure => billq_gen::azure(&options, &out),
            }
            .map_err(|e| billq_engine::Error::Unanswerable(e.to_string()))?;
            for path in written {
                eprintln!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Whatif {
            region,
            rate_card,
            tables,
            format,
        } => whatif::run(region.as_deref(), rate_card.as_deref(), &tables, format).await,
    }
}

/// A session with the stores and tables named on the command line.
pub async fn session(args: &TableArgs) -> Result<Session> {
    let mut session = match args.memory_limit {
        Some(bytes) => Session::with_memory_limit(bytes)?,
        None => Session::new(),
    };
    for dir in &args.data {
        session.add_store(dir).await?;
    }
    for (name, src) in &args.table {
        session.add_table(name, src).await?;
    }
    Ok(session)
}
