//! `billq convert` and `billq verify`.

use std::path::Path;
use std::process::ExitCode;

use billq_engine::Result;
use billq_engine::config::Config;
use billq_engine::convert::{ConvertOptions, convert as run_convert};
use billq_engine::source::StoreOptions;
use billq_engine::verify::verify as run_verify;

use crate::progress_bar::Bar;

pub async fn convert(
    sources: &[String],
    out: &Path,
    lenient: bool,
    store: StoreOptions,
    quiet: bool,
) -> Result<ExitCode> {
    let bar = Bar::new(quiet);
    let opts = ConvertOptions {
        out: out.to_path_buf(),
        progress: Some(&bar),
        lenient,
        store,
    };
    let report = run_convert(sources, &opts).await?;
    if !quiet {
        for c in &report.converted {
            let money: Vec<String> = c
                .totals
                .money
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let set_aside = match &c.rejects {
                Some(path) => format!(
                    ", {} row(s) set aside in {}",
                    c.rejected,
                    out.join(path).display()
                ),
                None => String::new(),
            };
            eprintln!(
                "{} {} -> {} ({} rows, {} file(s){set_aside}; {})",
                if c.replaced { "replaced" } else { "converted" },
                c.source,
                c.table,
                c.totals.rows,
                c.files,
                money.join(", ")
            );
        }
        for s in &report.unchanged {
            eprintln!("unchanged {s}");
        }
        for s in &report.superseded {
            eprintln!("superseded {s}");
        }
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(data: &Path, config: &Config, quiet: bool) -> Result<ExitCode> {
    let checks = run_verify(data, config).await?;
    let mut failed = 0;
    for c in &checks {
        let status = if c.ok() { "OK" } else { "MISMATCH" };
        if !c.ok() {
            failed += 1;
        }
        if quiet && c.ok() {
            continue;
        }
        println!("{status} {} ({})", c.source, c.table);
        let now = match &c.source_now {
            Ok(t) => t.rows.to_string(),
            Err(e) => format!("unreadable: {e}"),
        };
        println!(
            "  rows: source {now}, catalog {}, store {}",
            c.recorded.rows, c.stored.rows
        );
        for (column, recorded) in &c.recorded.money {
            let src = c
                .source_now
                .as_ref()
                .ok()
                .and_then(|t| t.money.get(column))
                .map_or("-", |s| s.as_str());
            let stored = c.stored.money.get(column).map_or("-", |s| s.as_str());
            println!("  {column}: source {src}, catalog {recorded}, store {stored}");
        }
    }
    println!(
        "{} source(s) verified, {} mismatch(es)",
        checks.len(),
        failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_MISMATCH)
    })
}
