//! billq side by side with DuckDB on the same machine, the same files and the same
//! thread count (2), in one run:
//!
//! 1. conversion of a generated GCP export (`billq gen`, NDJSON.gz) to Parquet: billq's
//!    `convert` (which also partitions, sorts and totals exactly) against DuckDB's
//!    `COPY (SELECT * FROM read_json(...)) TO ... (FORMAT parquet)`;
//! 2. monthly-report queries over billq's Parquet store, billq's BigQuery dialect
//!    against the same question in DuckDB's SQL over the same files.
//!
//! `vs_duckdb [ROWS] [RUNS]` prints a Markdown table of medians (ms) and ratios
//! (billq / DuckDB: below 1, billq is faster). DuckDB runs in `python3` (`pip install
//! duckdb`); its times are taken inside Python, so process start is not counted.

use std::process::Command;
use std::time::Instant;

use billq_engine::convert::{ConvertOptions, convert};
use billq_engine::{Dialect, Session};

/// (name, billq's BigQuery SQL, DuckDB's SQL); `{t}` is the table in both.
const QUERIES: [(&str, &str, &str); 5] = [
    (
        "total by invoice month",
        "SELECT invoice.month, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 1",
        "SELECT invoice.month, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 1",
    ),
    (
        "top 10 services",
        "SELECT service.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        "SELECT service.description, SUM(cost) AS cost FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    ),
    (
        "net cost by project",
        "SELECT project.id, SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS net FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        "SELECT project.id, SUM(cost) + SUM(COALESCE(list_sum(list_transform(credits, lambda c: c.amount)), 0)) AS net FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    ),
    (
        "credits by type",
        "SELECT c.type, SUM(c.amount) AS amount FROM {t}, UNNEST(credits) c GROUP BY 1 ORDER BY 1",
        "SELECT c.type, SUM(c.amount) AS amount FROM (SELECT unnest(credits) AS c FROM {t}) GROUP BY 1 ORDER BY 1",
    ),
    (
        "cost by env label",
        "SELECT l.value, SUM(cost) AS cost FROM {t}, UNNEST(labels) l WHERE l.key = 'env' GROUP BY 1 ORDER BY 1",
        "SELECT l.value, SUM(cost) AS cost FROM (SELECT cost, unnest(labels) AS l FROM {t}) WHERE l.key = 'env' GROUP BY 1 ORDER BY 1",
    ),
];

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs DuckDB over `script`'s statements in Python; returns its timings (ms), one
/// line each, as the script prints them.
fn duckdb(script: &str) -> Vec<f64> {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 with duckdb (pip install duckdb)");
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("a timing"))
        .collect()
}

fn python_text(s: &str) -> String {
    format!("'''{}'''", s.replace('\\', "\\\\"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("a temp dir");
    let export = dir.path().join("export");
    let options = billq_gen::Options {
        rows,
        months: 3,
        seed: 1,
    };
    billq_gen::gcp(&options, &export).expect("generated export");

    // 1. Conversion, a fresh store each run.
    let mut billq_convert = Vec::new();
    for run in 0..runs {
        let out = dir.path().join(format!("store-{run}"));
        let started = Instant::now();
        convert(
            &[export.display().to_string()],
            &ConvertOptions {
                out,
                progress: None,
                lenient: false,
                store: Default::default(),
            },
        )
        .await
        .expect("billq convert");
        billq_convert.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let json = format!("{}/*.jsonl.gz", export.display());
    let copy = format!(
        "import duckdb, time\n\
         for run in range({runs}):\n\
         \x20   con = duckdb.connect(); con.execute('SET threads = 2'); con.execute('SET enable_progress_bar = false')\n\
         \x20   path = '{}/duck-%d.parquet' % run\n\
         \x20   t = time.perf_counter()\n\
         \x20   con.execute(\"COPY (SELECT * FROM read_json('{json}', format = 'newline_delimited')) TO '\" + path + \"' (FORMAT parquet)\")\n\
         \x20   print((time.perf_counter() - t) * 1000)\n",
        dir.path().display()
    );
    let duck_convert = duckdb(&copy);

    // 2. Queries over billq's store (the same Parquet files for both).
    let store = dir.path().join("store-0");
    let mut session = Session::new();
    session.add_store(&store).await.expect("the store");
    let parquet = format!("{}/gcp/**/*.parquet", store.display());
    let mut rows_out = vec![(
        format!("convert {rows} rows (NDJSON.gz -> Parquet)"),
        median(billq_convert),
        median(duck_convert),
    )];
    for (name, billq_sql, duck_sql) in QUERIES {
        let sql = billq_sql.replace("{t}", "gcp_billing_export");
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            session
                .sql(&sql, Dialect::BigQuery)
                .await
                .expect(name)
                .collect()
                .await
                .expect(name);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let duck_sql = duck_sql.replace(
            "{t}",
            &format!("read_parquet('{parquet}', union_by_name = true)"),
        );
        let script = format!(
            "import duckdb, time\ncon = duckdb.connect(); con.execute('SET threads = 2'); con.execute('SET enable_progress_bar = false')\n\
             for run in range({runs}):\n\
             \x20   t = time.perf_counter(); con.execute({}).fetchall(); print((time.perf_counter() - t) * 1000)\n",
            python_text(&duck_sql)
        );
        rows_out.push((name.to_string(), median(times), median(duckdb(&script))));
    }
    println!("| step | billq ms | DuckDB ms | billq / DuckDB |");
    println!("|---|---:|---:|---:|");
    for (name, billq, duck) in rows_out {
        println!("| {name} | {billq:.1} | {duck:.1} | {:.2} |", billq / duck);
    }
    let size: u64 = std::fs::read_dir(&export)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("\nexport: {rows} rows over 3 months, {size} bytes of NDJSON.gz; {runs} runs");
}
