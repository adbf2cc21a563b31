//! Helpers of the engine's unit tests.

use std::sync::Arc;

use datafusion::physical_plan::collect;

use crate::{Dialect, Session};

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
