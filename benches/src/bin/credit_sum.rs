//! Credit sums: the BigQuery pattern `SUM(IFNULL((SELECT SUM(c.amount) FROM
//! UNNEST(credits) c), 0))` as billq plans it (array functions, no unnest, no join)
//! against the plain plan an engine makes of it (unnest the credits, aggregate them
//! per row, join back), and against billq's `credits_total` function.
//!
//! `cargo run --release -p billq-benches --bin credit_sum -- [ROWS] [RUNS]`
//! prints a Markdown table of medians and ratios (plain plan / billq).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use billq_engine::{Dialect, Session};
use datafusion::datasource::MemTable;

/// A deterministic xorshift generator: the same table for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `rows` GCP-like rows in batches of 64Ki: an id, a cost with six decimals and 0-3
/// credits of a few types.
fn table(rows: usize) -> (Arc<Schema>, Vec<RecordBatch>) {
    let credit = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("type", DataType::Utf8, true),
    ]);
    let item = Arc::new(Field::new("item", DataType::Struct(credit.clone()), true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("row_id", DataType::Int64, false),
        Field::new("cost", DataType::Float64, true),
        Field::new("credits", DataType::List(item.clone()), true),
    ]));
    let kinds = [
        "SUSTAINED_USAGE_DISCOUNT",
        "COMMITTED_USAGE_DISCOUNT",
        "FREE_TIER",
        "PROMOTION",
    ];
    let mut rng = Rng(0x5eed_b111);
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = (rows - start).min(1 << 16);
        let (mut ids, mut costs, mut offsets) =
            (Vec::with_capacity(n), Vec::with_capacity(n), vec![0i32]);
        let (mut names, mut amounts) = (Vec::new(), Vec::new());
        for i in 0..n {
            let cost = (rng.unit() * 20.0 * 1e6).round() / 1e6;
            ids.push((start + i) as i64);
            costs.push(cost);
            let credits = (rng.next() % 4) as usize;
            for _ in 0..credits {
                names.push(kinds[(rng.next() % 4) as usize]);
                amounts.push(-(cost * rng.unit() * 0.3 * 1e6).round() / 1e6);
            }
            offsets.push(offsets.last().unwrap() + credits as i32);
        }
        let names: ArrayRef = Arc::new(StringArray::from(names));
        let values = StructArray::new(
            credit.clone(),
            vec![names.clone(), Arc::new(Float64Array::from(amounts)), names],
            None,
        );
        let list = ListArray::new(
            item.clone(),
            OffsetBuffer::new(offsets.into()),
            Arc::new(values),
            None,
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Float64Array::from(costs)),
            Arc::new(list),
        ];
        batches.push(RecordBatch::try_new(schema.clone(), columns).expect("valid batch"));
        start += n;
    }
    (schema, batches)
}

const BIGQUERY: &str = "SELECT SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS total FROM t";
const CREDITS_TOTAL: &str = "SELECT SUM(cost) + SUM(credits_total(credits)) AS total FROM t";
const UNNEST_JOIN: &str = "SELECT SUM(a.cost) + SUM(COALESCE(b.credits, 0)) AS total FROM t AS a \
    LEFT JOIN (SELECT row_id, SUM(c['amount']) AS credits FROM (SELECT row_id, unnest(credits) AS c FROM t) GROUP BY row_id) AS b \
    ON a.row_id = b.row_id";

async fn median_ms(session: &Session, sql: &str, dialect: Dialect, runs: usize) -> (f64, String) {
    let mut times = Vec::new();
    let mut answer = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let batches = session
            .sql(sql, dialect)
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        times.push(started.elapsed().as_secs_f64() * 1e3);
        answer = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("prints")
            .to_string();
    }
    times.sort_by(f64::total_cmp);
    (
        times[times.len() / 2],
        answer
            .lines()
            .nth(3)
            .unwrap_or_default()
            .trim_matches('|')
            .trim()
            .to_string(),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(10_000_000);
    let runs = args.get(1).copied().unwrap_or(5);
    let (schema, batches) = table(rows);
    let session = Session::new();
    let partitions = batches.into_iter().map(|b| vec![b]).collect();
    let mem = MemTable::try_new(schema, partitions).expect("table");
    session
        .context()
        .register_table("t", Arc::new(mem))
        .expect("registers");
    let plans = [
        (
            "billq: BigQuery query, rewritten to array functions",
            BIGQUERY,
            Dialect::BigQuery,
        ),
        (
            "billq: credits_total(credits)",
            CREDITS_TOTAL,
            Dialect::DataFusion,
        ),
        (
            "plain plan: unnest, aggregate per row, join back",
            UNNEST_JOIN,
            Dialect::DataFusion,
        ),
    ];
    let mut results = Vec::new();
    for (name, sql, dialect) in plans {
        results.push((name, median_ms(&session, sql, dialect, runs).await));
    }
    let base = results[0].1.0;
    println!(
        "rows: {rows}, runs: {runs}, threads: {}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| plan | median ms | ratio to rewritten | answer |");
    println!("|---|---:|---:|---|");
    for (name, (ms, answer)) in &results {
        println!("| {name} | {ms:.1} | {:.2} | {answer} |", ms / base);
    }
}
