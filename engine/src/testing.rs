//! Helpers of the engine's unit tests.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::SessionContext;

use crate::{Dialect, Session};

/// A session with the seed queries' fixture `file` (`testdata/seed-queries/data/`)
/// as the table `name`.
pub async fn seed_session(name: &str, file: &str) -> Session {
    let mut s = Session::new();
    let path = format!(
        "{}/../testdata/seed-queries/data/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    s.add_table(name, &path).await.unwrap();
    s
}

/// The rows `sql` gives, each as its cells' text joined by spaces.
pub async fn rows(s: &Session, sql: &str, dialect: Dialect) -> Vec<String> {
    let batches = s.sql(sql, dialect).await.unwrap().collect().await.unwrap();
    let options = arrow::util::display::FormatOptions::default();
    let mut rows = Vec::new();
    for b in &batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c, &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<_> = formatters.iter().map(|f| f.value(r).to_string()).collect();
            rows.push(cells.join(" "));
        }
    }
    rows
}

/// Runs `sql` and sums the metric `name` over the plan's operators called `operator`
/// (`spill_count` included, which DataFusion's sums by name leave out).
pub async fn metric(s: &Session, sql: &str, dialect: Dialect, operator: &str, name: &str) -> usize {
    let df = s.sql(sql, dialect).await.unwrap();
    let task = df.task_ctx();
    let plan = df.create_physical_plan().await.unwrap();
    collect(plan.clone(), Arc::new(task)).await.unwrap();
    let mut sum = 0;
    let mut stack = vec![plan];
    while let Some(node) = stack.pop() {
        if node.name() == operator {
            sum += node.metrics().map_or(0, |m| match name {
                "spill_count" => m.spill_count().unwrap_or(0),
                _ => m.sum_by_name(name).map_or(0, |v| v.as_usize()),
            });
        }
        stack.extend(node.children().into_iter().cloned());
    }
    sum
}

/// `n` rows in batches of 1000 over two partitions: text keys that share their
/// first 8 bytes (so the prefix ties and the whole key decides), doubles with
/// NULLs, -0.0, NaN and repeats, times with repeats, and a unique id.
pub fn table(n: i64) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("f", DataType::Float64, true),
        Field::new("t", DataType::Int64, false),
        Field::new("id", DataType::Int64, false),
    ]));
    let batch = |start: i64| {
        let ids = start..(start + 1000).min(n);
        let k = StringArray::from_iter(ids.clone().map(|i| {
            (i % 11 != 0).then(|| format!("project-{}{}", i * 7 % 13, "x".repeat((i % 5) as usize)))
        }));
        let f = Float64Array::from_iter(ids.clone().map(|i| match i % 17 {
            0 => None,
            1 => Some(-0.0),
            2 => Some(f64::NAN),
            _ => Some((i * 31 % 97) as f64 / 8.0 - 4.0),
        }));
        let t = Int64Array::from_iter_values(ids.clone().map(|i| i % 23));
        let id = Int64Array::from_iter_values(ids);
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(k), Arc::new(f), Arc::new(t), Arc::new(id)],
        )
        .unwrap()
    };
    let starts: Vec<i64> = (0..n).step_by(1000).collect();
    let partitions = [0, 1].map(|p| {
        starts
            .iter()
            .skip(p)
            .step_by(2)
            .map(|&s| batch(s))
            .collect()
    });
    Arc::new(MemTable::try_new(schema, partitions.to_vec()).unwrap())
}

/// A session, with a memory limit or none, with `table` as `t`.
pub fn session(limit: Option<usize>, table: &Arc<MemTable>) -> Session {
    let s = match limit {
        Some(bytes) => Session::with_memory_limit(bytes).unwrap(),
        None => Session::new(),
    };
    s.context()
        .register_table("t", Arc::clone(table) as _)
        .unwrap();
    s
}

/// DataFusion's own answer, from a context without billq's rules.
pub async fn datafusion_rows(table: &Arc<MemTable>, sql: &str) -> Vec<String> {
    let plain = Session::with_context(SessionContext::new());
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::clone(table) as _).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mem = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
    plain
        .context()
        .register_table("answer", Arc::new(mem))
        .unwrap();
    rows(&plain, "SELECT * FROM answer", Dialect::DataFusion).await
}

/// The physical plan of `sql`, indented.
pub async fn plan(s: &Session, sql: &str) -> String {
    let df = s.sql(sql, Dialect::DataFusion).await.unwrap();
    let plan = df.create_physical_plan().await.unwrap();
    displayable(plan.as_ref()).indent(false).to_string()
}
