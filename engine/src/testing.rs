//! Helpers of the engine's unit tests.

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
