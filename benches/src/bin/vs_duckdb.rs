//! billq side by side with DuckDB on the same machine, the same files and the same
//! thread count (2), in one run:
//!
//! 1. conversion of generated exports (`billq gen`) to Parquet: GCP NDJSON.gz and AWS
//!    CUR CSV.gz, `billq convert` (which also partitions, sorts and totals exactly)
//!    against DuckDB's `COPY (SELECT * FROM read_json/read_csv(...)) TO ... (FORMAT
//!    parquet)`; wall time, rows/s and each process's peak RSS;
//! 2. monthly-report queries, then the seed queries of Google's billing-export docs
//!    (`testdata/seed-queries/queries/`, as they stand but for the table path and the
//!    docs' months), over billq's Parquet store, billq's BigQuery dialect against the
//!    same question in DuckDB's SQL over the same files (each answer fetched as Arrow),
//!    with the scan floor of each: the time to decode just the columns it needs
//!    (parquet-rs, 2 threads, text inside records as dictionaries);
//! 3. a high-cardinality GROUP BY and a sort under a memory limit, both processes'
//!    peak RSS beside it.
//!
//! `vs_duckdb [ROWS] [RUNS] [MEMORY_LIMIT]` prints Markdown tables of medians (ms) and
//! ratios (billq / DuckDB: below 1, billq is faster). DuckDB runs in `python3` (`pip
//! install duckdb pyarrow`); the `billq` binary must sit beside this one (`cargo build
//! --release -p billq -p billq-benches`). Times are taken around the work itself
//! (process start excluded for DuckDB, included for `billq convert`), and the two
//! engines' runs alternate, so that a drift in the machine's speed falls on both.
//! `vs_duckdb --store DIR [RUNS] [MEMORY_LIMIT]` runs 2. and 3. over an existing
//! store's GCP table (converted beforehand from `billq gen` output, as for 100M rows).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Schema};
use billq_engine::{Dialect, Session};
use futures::StreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

/// A report query: name, billq's BigQuery SQL, DuckDB's SQL (`{t}` is the table in
/// both) and the Parquet columns it reads (for the scan floor).
struct Query {
    name: &'static str,
    billq: &'static str,
    duckdb: &'static str,
    columns: &'static [&'static str],
}

const QUERIES: [Query; 8] = [
    Query {
        name: "total by invoice month",
        billq: "SELECT invoice.month, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 1",
        duckdb: "SELECT invoice.month, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 1",
        columns: &["invoice.month", "cost"],
    },
    Query {
        name: "top 10 services",
        billq: "SELECT service.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        duckdb: "SELECT service.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        columns: &["service.description", "cost"],
    },
    Query {
        name: "top 10 SKUs",
        billq: "SELECT sku.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        duckdb: "SELECT sku.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        columns: &["sku.description", "cost"],
    },
    Query {
        name: "net cost by project",
        billq: "SELECT project.id, SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS net FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        duckdb: "SELECT project.id, SUM(cost) + SUM(COALESCE(list_sum(list_transform(credits, lambda c: c.amount)), 0)) AS net FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        columns: &["project.id", "cost", "credits.list.item.amount"],
    },
    Query {
        name: "credits by type",
        billq: "SELECT c.type, SUM(c.amount) AS amount FROM {t}, UNNEST(credits) c GROUP BY 1 ORDER BY 1",
        duckdb: "SELECT c.type, SUM(c.amount) AS amount FROM (SELECT unnest(credits) AS c FROM {t}) GROUP BY 1 ORDER BY 1",
        columns: &["credits.list.item.type", "credits.list.item.amount"],
    },
    Query {
        name: "cost by env label",
        billq: "SELECT l.value, SUM(cost) AS cost FROM {t}, UNNEST(labels) l WHERE l.key = 'env' GROUP BY 1 ORDER BY 1",
        duckdb: "SELECT l.value, SUM(cost) AS cost FROM (SELECT cost, unnest(labels) AS l FROM {t}) WHERE l.key = 'env' GROUP BY 1 ORDER BY 1",
        columns: &["labels", "cost"],
    },
    Query {
        name: "untagged share (no team label)",
        billq: "SELECT SUM(IF(NOT EXISTS (SELECT 1 FROM UNNEST(labels) l WHERE l.key = 'team'), cost, 0)) / SUM(cost) AS share FROM {t}",
        duckdb: "SELECT SUM(CASE WHEN len(list_filter(labels, lambda l: l.key = 'team')) = 0 THEN cost ELSE 0 END) / SUM(cost) AS share FROM {t}",
        columns: &["labels.list.item.key", "cost"],
    },
    Query {
        name: "late charges (usage before the invoice month)",
        billq: "SELECT invoice.month, COUNT(*) AS n, SUM(cost) AS cost FROM {t} WHERE FORMAT_TIMESTAMP('%Y%m', usage_start_time) < invoice.month GROUP BY 1 ORDER BY 1",
        duckdb: "SELECT invoice.month, COUNT(*) AS n, SUM(cost) AS cost FROM {t} WHERE strftime(usage_start_time AT TIME ZONE 'UTC', '%Y%m') < invoice.month GROUP BY 1 ORDER BY 1",
        columns: &["invoice.month", "usage_start_time", "cost"],
    },
];

/// Where the credits' sum of a row is written in DuckDB's SQL.
macro_rules! duck_credits {
    ($amount:literal) => {
        concat!(
            "COALESCE(list_sum(list_transform(credits, lambda c: ",
            $amount,
            ")), 0)"
        )
    };
}

/// A seed query: Google's billing-export docs' example, run by billq as it stands in
/// `testdata/seed-queries/queries/` but for its table path (`{t}`) and the `literals`
/// naming the docs' months, which become the generated data's; DuckDB's SQL asks the
/// same question, its unnests in the select list: DuckDB's lateral joins of
/// `unnest` (`FROM t, unnest(tags)`, `LEFT JOIN unnest(labels) ON ...`) took 10-30
/// times as long at 10M rows.
struct Seed {
    name: &'static str,
    bigquery: &'static str,
    literals: &'static [(&'static str, &'static str)],
    duckdb: &'static str,
    columns: &'static [&'static str],
}

macro_rules! seed_sql {
    ($name:literal) => {
        include_str!(concat!(
            "../../../testdata/seed-queries/queries/",
            $name,
            ".sql"
        ))
    };
}

const SEEDS: [Seed; 13] = [
    Seed {
        name: "Q01_invoice_totals",
        bigquery: seed_sql!("Q01_invoice_totals"),
        literals: &[],
        duckdb: concat!(
            "SELECT invoice.month, SUM(cost) + SUM(",
            duck_credits!("c.amount"),
            ") AS total, (SUM(CAST(cost * 1000000 AS BIGINT)) + SUM(",
            duck_credits!("CAST(c.amount * 1000000 AS BIGINT)"),
            ")) / 1000000 AS total_exact FROM {t} GROUP BY 1 ORDER BY 1"
        ),
        columns: &["invoice.month", "cost", "credits.list.item.amount"],
    },
    Seed {
        name: "Q02_cost_type_totals",
        bigquery: seed_sql!("Q02_cost_type_totals"),
        literals: &[],
        duckdb: concat!(
            "SELECT invoice.month, cost_type, SUM(cost) + SUM(",
            duck_credits!("c.amount"),
            ") AS total, (SUM(CAST(cost * 1000000 AS BIGINT)) + SUM(",
            duck_credits!("CAST(c.amount * 1000000 AS BIGINT)"),
            ")) / 1000000 AS total_exact FROM {t} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        columns: &[
            "invoice.month",
            "cost_type",
            "cost",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q03_rows_with_labels",
        bigquery: seed_sql!("Q03_rows_with_labels"),
        literals: &[],
        duckdb: "SELECT sku.description, to_json(labels) AS labels, cost FROM {t}",
        columns: &["sku.description", "labels", "cost"],
    },
    Seed {
        name: "Q04_group_by_label_json",
        bigquery: seed_sql!("Q04_group_by_label_json"),
        literals: &[],
        duckdb: "SELECT to_json(labels) AS labels, SUM(cost) AS cost FROM {t} GROUP BY 1",
        columns: &["labels", "cost"],
    },
    Seed {
        name: "Q05_group_by_label_key",
        bigquery: seed_sql!("Q05_group_by_label_key"),
        literals: &[],
        duckdb: "SELECT l.value AS environment, SUM(cost) AS cost FROM (SELECT cost, unnest(CASE WHEN len(f) > 0 THEN f ELSE [NULL] END) AS l FROM (SELECT cost, list_filter(labels, lambda x: x.key = 'environment') AS f FROM {t})) GROUP BY 1",
        columns: &["labels", "cost"],
    },
    Seed {
        name: "Q06_group_by_key_value",
        bigquery: seed_sql!("Q06_group_by_key_value"),
        literals: &[],
        duckdb: "SELECT l.key AS key, l.value AS value, SUM(cost) AS cost FROM (SELECT cost, unnest(CASE WHEN len(labels) > 0 THEN labels ELSE [NULL] END) AS l FROM {t}) GROUP BY 1, 2",
        columns: &["labels", "cost"],
    },
    Seed {
        name: "Q07_commitment_fees",
        bigquery: seed_sql!("Q07_commitment_fees"),
        literals: &[],
        duckdb: "SELECT invoice.month AS invoice_month, SUM(cost) AS commitment_fees FROM {t} WHERE lower(sku.description) LIKE 'commitment%' GROUP BY 1",
        columns: &["invoice.month", "sku.description", "cost"],
    },
    Seed {
        name: "Q08_cud_credits",
        bigquery: seed_sql!("Q08_cud_credits"),
        literals: &[],
        duckdb: "SELECT invoice.month AS invoice_month, SUM(c.amount) AS CUD_credits FROM (SELECT invoice, unnest(credits) AS c FROM {t}) WHERE lower(c.name) LIKE 'committed use discount%' GROUP BY 1",
        columns: &[
            "invoice.month",
            "credits.list.item.name",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q09_ancestor_filter",
        bigquery: seed_sql!("Q09_ancestor_filter"),
        literals: &[],
        duckdb: concat!(
            "SELECT invoice.month AS invoice_month, to_json(project.ancestors) AS ancestors, SUM(cost) + SUM(",
            duck_credits!("c.amount"),
            ") AS net_cost FROM (SELECT invoice, project, cost, credits, unnest(project.ancestors) AS ancestor FROM {t}) WHERE ancestor.resource_name = 'folders/1234' GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        columns: &[
            "invoice.month",
            "project.ancestors",
            "cost",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q10_tag_cost_center",
        bigquery: seed_sql!("Q10_tag_cost_center"),
        literals: &[],
        duckdb: concat!(
            "SELECT invoice.month AS invoice_month, tag.value AS cost_center, ROUND(SUM(CAST(cost AS DECIMAL(38, 9))) + SUM(",
            duck_credits!("CAST(c.amount AS DECIMAL(38, 9))"),
            "), 2) AS net_cost FROM (SELECT invoice, cost, credits, unnest(tags) AS tag FROM {t}) WHERE tag.key = 'cost_center' AND tag.namespace = '821092389413' GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        columns: &[
            "invoice.month",
            "tags.list.item.key",
            "tags.list.item.value",
            "tags.list.item.namespace",
            "cost",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q11_untagged_cost",
        bigquery: seed_sql!("Q11_untagged_cost"),
        literals: &[],
        duckdb: concat!(
            "SELECT invoice.month AS invoice_month, ROUND(SUM(CAST(cost AS DECIMAL(38, 9))) + SUM(",
            duck_credits!("CAST(c.amount AS DECIMAL(38, 9))"),
            "), 2) AS net_cost FROM {t} WHERE NOT list_contains(list_transform(tags, lambda t: t.key), 'color') GROUP BY 1 ORDER BY 1"
        ),
        columns: &[
            "invoice.month",
            "tags.list.item.key",
            "cost",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q12_late_and_corrected",
        bigquery: seed_sql!("Q12_late_and_corrected"),
        literals: &[("'202311'", "'202402'"), ("'2023-11-01'", "'2024-02-01'")],
        duckdb: concat!(
            "SELECT SUM(cost) + SUM(",
            duck_credits!("c.amount"),
            ") AS total FROM {t} WHERE invoice.month = '202402' AND CAST(timezone('US/Pacific', usage_start_time) AS DATE) < DATE '2024-02-01'"
        ),
        columns: &[
            "invoice.month",
            "usage_start_time",
            "cost",
            "credits.list.item.amount",
        ],
    },
    Seed {
        name: "Q13_project_costs_credits",
        bigquery: seed_sql!("Q13_project_costs_credits"),
        literals: &[("\"202006\"", "\"202402\"")],
        duckdb: concat!(
            "SELECT project.name, to_json(project.labels) AS project_labels, SUM(cost) AS total_cost, SUM(",
            duck_credits!("c.amount"),
            ") AS total_credits FROM {t} WHERE invoice.month = '202402' GROUP BY 1, 2 ORDER BY 1"
        ),
        columns: &[
            "invoice.month",
            "project.name",
            "project.labels",
            "cost",
            "credits.list.item.amount",
        ],
    },
];

impl Seed {
    /// billq's SQL: the query as it stands, its table path `{t}` and the docs' months
    /// the generated data's.
    fn billq(&self) -> String {
        let mut parts = self.bigquery.splitn(3, '`');
        let (before, _path, after) = (
            parts.next().unwrap_or_default(),
            parts.next().expect("a backticked table path"),
            parts.next().expect("a closing backtick"),
        );
        let mut sql = format!("{before}{{t}}{after}");
        for (docs, ours) in self.literals {
            assert!(sql.contains(docs), "{} has no {docs}", self.name);
            sql = sql.replace(docs, ours);
        }
        sql
    }
}

/// The memory-bound queries: a high-cardinality GROUP BY, and a sort of every row.
const BOUNDED: [(&str, &str, &str); 2] = [
    (
        "GROUP BY hour x SKU x project",
        "SELECT COUNT(*) AS n, MAX(cost) AS top FROM (SELECT usage_start_time, sku.id AS sku, project.id AS project, SUM(cost) AS cost FROM {t} GROUP BY 1, 2, 3)",
        "SELECT COUNT(*) AS n, MAX(cost) AS top FROM (SELECT usage_start_time, sku.id AS sku, project.id AS project, SUM(cost) AS cost FROM {t} GROUP BY 1, 2, 3)",
    ),
    (
        "sort every row by cost",
        "SELECT id, cost FROM (SELECT sku.id, cost, ROW_NUMBER() OVER (ORDER BY cost DESC, usage_start_time, sku.id) AS n FROM {t}) WHERE MOD(n, 100000) = 0",
        "SELECT id, cost FROM (SELECT sku.id, cost, ROW_NUMBER() OVER (ORDER BY cost DESC, usage_start_time, sku.id) AS n FROM {t}) WHERE n % 100000 = 0",
    ),
];

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs a Python script; returns its output lines, each parsed as numbers.
fn python(script: &str) -> Vec<Vec<f64>> {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 with duckdb (pip install duckdb)");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|x| x.parse().expect("a number"))
                .collect()
        })
        .collect()
}

fn python_text(s: &str) -> String {
    format!("'''{}'''", s.replace('\\', "\\\\"))
}

/// DuckDB running `setup` then `sql` in a fresh process: (ms, peak RSS in MiB).
fn duckdb_once(setup: &str, sql: &str) -> (f64, f64) {
    let out = python(&format!(
        "import duckdb, resource, time\n\
         con = duckdb.connect(); con.execute('SET threads = 2'); con.execute('SET enable_progress_bar = false')\n\
         {setup}\n\
         t = time.perf_counter(); con.execute({}).fetchall(); ms = (time.perf_counter() - t) * 1000\n\
         print(ms, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n",
        python_text(sql)
    ));
    (out[0][0], out[0][1])
}

/// A `billq` command run to completion: (ms, peak RSS in MiB), from Python's rusage.
fn billq_once(args: &[String]) -> (f64, f64) {
    let exe = std::env::current_exe().expect("this binary");
    let billq = exe.with_file_name("billq");
    assert!(
        billq.exists(),
        "{} is missing: cargo build --release -p billq -p billq-benches",
        billq.display()
    );
    let argv: Vec<String> = std::iter::once(billq.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| python_text(&a))
        .collect();
    let out = python(&format!(
        "import resource, subprocess, time\n\
         t = time.perf_counter()\n\
         subprocess.run([{}], check=True, stdout=subprocess.DEVNULL)\n\
         ms = (time.perf_counter() - t) * 1000\n\
         print(ms, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n",
        argv.join(", ")
    ));
    (out[0][0], out[0][1])
}

/// Medians of `runs` runs each of `billq` and `duck`, taken in turns so that the
/// machine's drift (10-20% within minutes on a shared machine) falls on both: the
/// (ms, peak RSS in MiB) of either.
fn interleaved(
    runs: usize,
    mut billq: impl FnMut(usize) -> (f64, f64),
    mut duck: impl FnMut(usize) -> (f64, f64),
) -> [(f64, f64); 2] {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(billq(run));
        theirs.push(duck(run));
    }
    [ours, theirs].map(|measured| {
        let (ms, rss): (Vec<f64>, Vec<f64>) = measured.into_iter().unzip();
        (median(ms), median(rss))
    })
}

/// A DuckDB connection in one `python3` process that runs the queries it is sent, one
/// a line, reads each answer as Arrow batches (8192 rows, as billq's) and answers
/// with its time in ms.
struct DuckDb {
    process: Child,
    answers: BufReader<ChildStdout>,
}

impl DuckDb {
    fn start() -> Self {
        let mut process = Command::new("python3")
            .args([
                "-c",
                "import duckdb, sys, time\n\
                 con = duckdb.connect(); con.execute('SET threads = 2'); con.execute('SET enable_progress_bar = false')\n\
                 for sql in sys.stdin:\n\
                 \x20   t = time.perf_counter()\n\
                 \x20   for batch in con.sql(sql).to_arrow_reader(8192): pass\n\
                 \x20   print((time.perf_counter() - t) * 1000, flush=True)\n",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with duckdb (pip install duckdb)");
        let answers = BufReader::new(process.stdout.take().expect("piped"));
        Self { process, answers }
    }

    /// Runs `sql` (one line): its time in ms.
    fn time(&mut self, sql: &str) -> f64 {
        assert!(!sql.contains('\n'), "one line of SQL: {sql}");
        let stdin = self.process.stdin.as_mut().expect("piped");
        writeln!(stdin, "{sql}").expect("DuckDB's python3 reading");
        let mut line = String::new();
        self.answers.read_line(&mut line).expect("DuckDB's answer");
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("DuckDB failed on {sql} (its error above)"))
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }
}

/// Decodes just `columns` of every file, on 2 threads: the floor under a query. Text
/// inside records (`invoice.month`) is kept as the files' dictionaries, the cheapest
/// decode there is and the one billq makes of the text it groups by.
fn scan_floor(files: &[PathBuf], columns: &[&str]) -> f64 {
    let started = Instant::now();
    let half = files.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        for chunk in files.chunks(half) {
            s.spawn(move || {
                for f in chunk {
                    let file = std::fs::File::open(f).expect("a stored file");
                    let plain =
                        ArrowReaderMetadata::load(&file, Default::default()).expect("parquet");
                    let hint = Schema::new(
                        plain
                            .schema()
                            .fields()
                            .iter()
                            .map(|f| {
                                f.as_ref()
                                    .clone()
                                    .with_data_type(dictionaries(f.data_type()))
                            })
                            .collect::<Vec<_>>(),
                    );
                    let options = ArrowReaderOptions::new().with_schema(Arc::new(hint));
                    let meta = ArrowReaderMetadata::try_new(plain.metadata().clone(), options)
                        .expect("text read as dictionaries");
                    // DataFusion's batch size, as billq reads.
                    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
                        .with_batch_size(8192);
                    let mask =
                        ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
                    for batch in builder.with_projection(mask).build().expect("a reader") {
                        batch.expect("a batch");
                    }
                }
            });
        }
    });
    started.elapsed().as_secs_f64() * 1000.0
}

/// `data_type` with the text in its records as dictionaries, and in its lists of
/// records as views (as billq reads them, the cheapest decodes there are).
fn dictionaries(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    let t = match f.data_type() {
                        DataType::Utf8 => DataType::Dictionary(
                            Box::new(DataType::Int32),
                            Box::new(DataType::Utf8),
                        ),
                        other => dictionaries(other),
                    };
                    Arc::new(f.as_ref().clone().with_data_type(t))
                })
                .collect(),
        ),
        DataType::List(_) => billq_engine::store::listed_text_as_views(data_type),
        other => other.clone(),
    }
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            parquet_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            size_of(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let existing = (args.peek().map(String::as_str) == Some("--store"))
        .then(|| PathBuf::from(args.nth(1).expect("--store DIR")));
    let rows: u64 = match &existing {
        Some(_) => 0,
        None => args
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1_000_000),
    };
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let limit = args.next().unwrap_or_else(|| "256MiB".to_string());
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = match existing {
        Some(store) => store,
        None => convert(rows, runs, dir.path()),
    };
    compare_queries(&store, runs, &limit).await;
}

/// Generates the four exports of `rows` rows and compares their conversion; returns
/// the store converted from the GCP NDJSON export.
fn convert(rows: u64, runs: usize, dir: &Path) -> PathBuf {
    let options = billq_gen::Options {
        rows,
        months: 3,
        seed: 1,
        format: billq_gen::Format::Export,
    };
    let gcp = dir.join("gcp");
    let aws = dir.join("aws");
    billq_gen::gcp(&options, &gcp).expect("generated GCP export");
    billq_gen::aws(&options, &aws).expect("generated AWS export");
    let as_parquet = billq_gen::Options {
        format: billq_gen::Format::Parquet,
        ..options
    };
    let (gcp_parquet, aws_parquet) = (dir.join("gcp-pq"), dir.join("aws-pq"));
    billq_gen::gcp(&as_parquet, &gcp_parquet).expect("generated GCP extract");
    billq_gen::aws(&as_parquet, &aws_parquet).expect("generated CUR 2.0 export");

    // 1. Conversion, a fresh store (and a fresh process) each run.
    println!(
        "| conversion of {rows} rows | billq ms | DuckDB ms | billq / DuckDB | billq rows/s | DuckDB rows/s | billq peak RSS MiB | DuckDB peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let inputs = [
        (
            "GCP NDJSON.gz",
            &gcp,
            format!(
                "read_json('{}/*.jsonl.gz', format = 'newline_delimited')",
                gcp.display()
            ),
        ),
        (
            "AWS CUR CSV.gz",
            &aws,
            format!("read_csv('{}/cur/*/*/*.csv.gz')", aws.display()),
        ),
        (
            "GCP Parquet extract",
            &gcp_parquet,
            format!("read_parquet('{}/*.parquet')", gcp_parquet.display()),
        ),
        (
            "AWS CUR 2.0 Parquet",
            &aws_parquet,
            format!(
                "read_parquet('{}/cur2/data/*/*.parquet')",
                aws_parquet.display()
            ),
        ),
    ];
    for (name, export, reader) in &inputs {
        let store = |run: usize| dir.join(format!("store-{name}-{run}").replace(' ', "_"));
        let [(billq_ms, billq_rss), (duck_ms, duck_rss)] = interleaved(
            runs,
            |run| {
                billq_once(&[
                    "-q".into(),
                    "convert".into(),
                    export.display().to_string(),
                    "--out".into(),
                    store(run).display().to_string(),
                ])
            },
            |run| {
                let target = dir.join(format!("duck-{run}.parquet"));
                let copy = format!(
                    "COPY (SELECT * FROM {reader}) TO '{}' (FORMAT parquet)",
                    target.display()
                );
                let measured = duckdb_once("", &copy);
                let _ = std::fs::remove_file(target);
                measured
            },
        );
        println!(
            "| {name} ({:.1} MB) | {billq_ms:.0} | {duck_ms:.0} | {:.2} | {:.0} | {:.0} | {billq_rss:.0} | {duck_rss:.0} |",
            size_of(export) as f64 / 1e6,
            billq_ms / duck_ms,
            rows as f64 / billq_ms * 1000.0,
            rows as f64 / duck_ms * 1000.0,
        );
        for run in 1..runs {
            let _ = std::fs::remove_dir_all(store(run));
        }
    }

    dir.join("store-GCP_NDJSON.gz-0")
}

/// The two engines over one store's GCP table, and its files for the scan floor.
struct Engines {
    session: Session,
    duckdb: DuckDb,
    files: Vec<PathBuf>,
    runs: usize,
}

impl Engines {
    /// Prints a query's row: the medians of `runs` runs of billq, DuckDB and the scan
    /// floor of `columns`, taken in turns so that a drift in the machine's speed falls
    /// on all three. Each run's times go to stderr.
    async fn compare(&mut self, name: &str, sql: &str, duck_sql: &str, columns: &[&str]) {
        let (mut times, mut duck, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let started = Instant::now();
            let mut answer = self
                .session
                .sql(sql, Dialect::BigQuery)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .execute_stream()
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            while let Some(batch) = answer.next().await {
                batch.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            duck.push(self.duckdb.time(duck_sql));
            floor.push(scan_floor(&self.files, columns));
        }
        eprintln!("{name}: billq {times:.0?} DuckDB {duck:.0?} floor {floor:.0?} ms");
        let (billq, duck, floor) = (median(times), median(duck), median(floor));
        println!(
            "| {name} | {billq:.1} | {duck:.1} | {:.2} | {floor:.1} | {:.2} |",
            billq / duck,
            billq / floor
        );
    }
}

/// Compares the report queries (2.) and the memory-bound ones (3.) over the GCP table
/// of `store` (the same Parquet files for both engines).
async fn compare_queries(store: &Path, runs: usize, limit: &str) {
    let mut files = Vec::new();
    parquet_files(store, &mut files);
    // Read once before any timing, so that neither engine pays the disk for the other.
    for f in &files {
        std::io::copy(
            &mut std::fs::File::open(f).expect("a stored file"),
            &mut std::io::sink(),
        )
        .expect("a readable file");
    }
    let mut session = Session::new();
    session.add_store(store).await.expect("the store");
    let rows = session
        .sql("SELECT COUNT(*) FROM gcp_billing_export", Dialect::BigQuery)
        .await
        .expect("a count")
        .collect()
        .await
        .expect("a count")[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    let parquet = format!(
        "read_parquet('{}/gcp/**/*.parquet', union_by_name = true)",
        store.display()
    );
    println!(
        "\n| query ({rows} rows, {} files) | billq ms | DuckDB ms | billq / DuckDB | scan floor ms | billq / floor |",
        files.len()
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut engines = Engines {
        session,
        duckdb: DuckDb::start(),
        files,
        runs,
    };
    for q in &QUERIES {
        let sql = q.billq.replace("{t}", "gcp_billing_export");
        let duck_sql = q.duckdb.replace("{t}", &parquet);
        engines.compare(q.name, &sql, &duck_sql, q.columns).await;
    }
    println!(
        "\n| seed query (Google's docs, as it stands) | billq ms | DuckDB ms | billq / DuckDB | scan floor ms | billq / floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for q in &SEEDS {
        let sql = q.billq().replace("{t}", "gcp_billing_export");
        let duck_sql = q.duckdb.replace("{t}", &parquet);
        engines.compare(q.name, &sql, &duck_sql, q.columns).await;
    }

    // 3. Memory-bound queries, each in a fresh process of either engine.
    println!(
        "\n| under a {limit} memory limit | billq ms | DuckDB ms | billq / DuckDB | billq peak RSS MiB | DuckDB peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, billq_sql, duck_sql) in BOUNDED {
        let [(billq_ms, billq_rss), (duck_ms, duck_rss)] = interleaved(
            runs,
            |_| {
                billq_once(&[
                    "query".into(),
                    "--format".into(),
                    "csv".into(),
                    "--memory-limit".into(),
                    limit.to_string(),
                    "--data".into(),
                    store.display().to_string(),
                    billq_sql.replace("{t}", "gcp_billing_export"),
                ])
            },
            |_| {
                duckdb_once(
                    &format!("con.execute(\"SET memory_limit = '{limit}'\")"),
                    &duck_sql.replace("{t}", &parquet),
                )
            },
        );
        println!(
            "| {name} | {billq_ms:.0} | {duck_ms:.0} | {:.2} | {billq_rss:.0} | {duck_rss:.0} |",
            billq_ms / duck_ms
        );
    }
    println!("\n{rows} rows; medians of {runs} runs; 2 threads each");
}
