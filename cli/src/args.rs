//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Query cloud billing exports with BigQuery SQL, locally and exactly.
#[derive(Debug, Parser)]
#[command(name = "billq", version, about)]
pub struct Cli {
    /// No progress bars or summaries on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert billing exports into a partitioned Parquet store (incremental, atomic).
    Convert {
        /// Export files, directories, globs or URLs (file://, http(s)://, s3://).
        #[arg(required_unless_present = "source")]
        sources: Vec<String>,
        /// A source named in the config file (its URL, account and credentials).
        #[arg(long)]
        source: Option<String>,
        /// The config file.
        #[arg(long, default_value = "billq.toml")]
        config: PathBuf,
        /// The store directory.
        #[arg(long)]
        out: PathBuf,
        /// Set rows of the wrong shape aside in STORE/_rejects (counted) instead of refusing the file.
        #[arg(long)]
        lenient: bool,
    },
    /// Re-read every source of a store and reconcile row counts and exact money totals.
    Verify {
        /// The store directory.
        #[arg(long)]
        data: PathBuf,
        /// The config file, for the credentials of configured sources (if it exists).
        #[arg(long, default_value = "billq.toml")]
        config: PathBuf,
    },
    /// Run a SQL query over stores and export files.
    Query(QueryArgs),
    /// List the tables of the given stores and files.
    Tables(TableArgs),
    /// Show the schema of a table.
    Schema {
        /// The table name.
        #[arg(value_name = "TABLE")]
        name: String,
        #[command(flatten)]
        tables: TableArgs,
    },
    /// An interactive SQL shell (history, multi-line statements ending in `;`).
    Shell {
        #[command(flatten)]
        tables: TableArgs,
        /// SQL dialect.
        #[arg(long, value_enum, default_value_t = DialectArg::Bigquery)]
        dialect: DialectArg,
    },
    /// Re-rate Azure usage in another region or with another rate card, per meter.
    Whatif {
        /// The region to re-rate in, as the rate card names it (`EU West`).
        #[arg(long, required_unless_present = "rate_card")]
        region: Option<String>,
        /// The rate card to re-rate with (its reply's file name without `.json`).
        #[arg(long)]
        rate_card: Option<String>,
        #[command(flatten)]
        tables: TableArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write realistic synthetic exports, deterministic per seed (for tests and
    /// benchmarks of very large exports).
    Gen {
        /// The provider whose export to write: GCP's standard usage cost export, a
        /// legacy AWS CUR with manifests, or an Azure EA cost export.
        #[arg(long, value_enum)]
        provider: GenProvider,
        /// Rows in all.
        #[arg(long)]
        rows: u64,
        /// Months of usage, from January 2024.
        #[arg(long, default_value_t = 1)]
        months: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
        /// `export`: each provider's own export (GCP NDJSON.gz, legacy CUR CSV.gz, Azure
        /// CSV); `parquet`: a BigQuery Parquet extract (GCP) or a CUR 2.0 Parquet
        /// export (AWS), of the same rows.
        #[arg(long, value_enum, default_value_t = GenFormat::Export)]
        format: GenFormat,
    },
    /// Reports for cron and CI: CSV, JSON, Markdown and HTML files.
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Convert the bundled sample exports and print their invoice totals.
    Demo {
        /// Keep the demo store here instead of a temporary directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Providers `billq gen` writes exports of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenProvider {
    Gcp,
    Aws,
    Azure,
}

/// The files `billq gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
    Export,
    Parquet,
}

impl From<GenFormat> for billq_gen::Format {
    fn from(format: GenFormat) -> Self {
        match format {
            GenFormat::Export => billq_gen::Format::Export,
            GenFormat::Parquet => billq_gen::Format::Parquet,
        }
    }
}

/// The reports billq writes.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The monthly report: invoice totals, cost by service and project, charges,
    /// untagged share, month-over-month change and trend.
    Monthly {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        month: String,
        #[command(flatten)]
        tables: TableArgs,
        /// A report folder (`report.toml` and SQL files) instead of the built-in one.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The config file with the budgets to check (if it exists).
        #[arg(long, default_value = "billq.toml")]
        config: PathBuf,
        /// Where to write the report's files.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where tables come from.
#[derive(Debug, Args, Clone, Default)]
pub struct TableArgs {
    /// A store made by `billq convert` (repeatable).
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Register exports as a table: NAME=SRC, NAME may be a BigQuery path (repeatable).
    #[arg(long = "table", value_parser = parse_table)]
    pub table: Vec<(String, String)>,
    /// Memory the process may hold: a query's sorts, joins and aggregations spill to
    /// temporary files past what the process does not hold already, at most half of
    /// it (`2GiB`, `512MiB`, `1GB`, bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<usize>,
}

/// A size in bytes, with an optional binary (`KiB`, `MiB`, `GiB`) or decimal (`KB`,
/// `MB`, `GB`) unit.
fn parse_size(s: &str) -> Result<usize, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = match number.parse::<f64>() {
        Ok(n) if n > 0.0 => n,
        _ => return Err(format!("expected a size such as 2GiB, got '{s}'")),
    };
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown unit '{other}' (use KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    Ok((number * scale) as usize)
}

fn parse_table(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, src)) if !name.is_empty() && !src.is_empty() => {
            Ok((name.to_string(), src.to_string()))
        }
        _ => Err(format!("expected NAME=SRC, got '{s}'")),
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub tables: TableArgs,
    /// SQL dialect of the query.
    #[arg(long, value_enum, default_value_t = DialectArg::Bigquery)]
    pub dialect: DialectArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to this file (atomically) instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Read the query from this file ("-" for stdin).
    #[arg(short, long, conflicts_with = "sql")]
    pub file: Option<PathBuf>,
    /// Print the SQL that DataFusion runs instead of running it.
    #[arg(long)]
    pub explain_rewrite: bool,
    /// The query.
    #[arg(required_unless_present = "file")]
    pub sql: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// BigQuery Standard SQL.
    Bigquery,
    /// DataFusion SQL.
    Datafusion,
    /// Athena (Trino/Presto) SQL, as AWS's CUR queries are written.
    Athena,
}

impl From<DialectArg> for billq_engine::Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Bigquery => billq_engine::Dialect::BigQuery,
            DialectArg::Datafusion => billq_engine::Dialect::DataFusion,
            DialectArg::Athena => billq_engine::Dialect::Athena,
        }
    }
}

/// Output formats of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
    Markdown,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(super::parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(super::parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(super::parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(
            super::parse_size("2TiB"),
            Err("unknown unit 'tib' (use KiB, MiB, GiB, KB, MB or GB)".to_string())
        );
        assert_eq!(
            super::parse_size("lots"),
            Err("expected a size such as 2GiB, got 'lots'".to_string())
        );
    }
}
