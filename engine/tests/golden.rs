//! The golden SQL suite: `testdata/golden/*.slt`, in sqllogictest's format, run through
//! billq's session (BigQuery dialect unless a file says `dialect datafusion`).
//!
//! ```text
//! query <types> [rowsort] [colnames]
//! SELECT ...
//! ----
//! <expected rows: values separated by one space; NULL, (empty) for '', floats shortest>
//!
//! statement ok | statement error <text the error contains>
//! ```
//!
//! Tables: `billing` (seed `invoice_example.jsonl`), `labelled` (`labels_example`),
//! `cud` (`cud_example`), `tagged` (`hierarchy_tags_example`), `demo` (the demo
//! export), `aws_cur`, `aws_cur2` (the CUR 2.0 export folder) and `aws_dbr`
//! (`testdata/aws`), `azure_cost`, `azure_usage` and `azure_ratecard` (`testdata/azure`,
//! with the rating views over the last two). A file with a line
//! `# dialect athena` (or `datafusion`) is run in that dialect. `BILLQ_GOLDEN_COMPLETE=1` rewrites the expected rows from actual results
//! (then review every change against BigQuery's documentation before committing).

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use billq_engine::{Dialect, Session};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

async fn session() -> Session {
    let mut s = Session::new();
    for (name, file) in [
        ("billing", "seed-queries/data/invoice_example.jsonl"),
        ("labelled", "seed-queries/data/labels_example.jsonl"),
        ("cud", "seed-queries/data/cud_example.jsonl"),
        ("tagged", "seed-queries/data/hierarchy_tags_example.jsonl"),
        ("demo", "gcp/gcp_billing_export_2024q1.jsonl.gz"),
        ("aws_cur", "aws/cur_legacy_2024-01_2024-02.csv"),
        ("aws_cur2", "aws/cur2/billing"),
        ("azure_cost", "azure/ea_actual_2023-09.csv"),
        ("azure_usage", "azure/api/usage_2024-05_page*.json"),
        ("azure_ratecard", "azure/api/ratecard_*.json"),
        (
            "aws_dbr",
            "aws/dbr_111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv",
        ),
    ] {
        s.add_table(name, &testdata(file).display().to_string())
            .await
            .unwrap();
    }
    s
}

/// One value as the suite writes it.
fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let text = match array.data_type() {
        DataType::Float64 => format!(
            "{}",
            array
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap()
                .value(row)
        ),
        _ => ArrayFormatter::try_new(array, &FormatOptions::default())
            .unwrap()
            .value(row)
            .to_string(),
    };
    if text.is_empty() {
        "(empty)".into()
    } else {
        text
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let cells: Vec<String> = b.columns().iter().map(|c| cell(c.as_ref(), row)).collect();
            out.push(cells.join(" "));
        }
    }
    out
}

struct Record {
    /// Line numbers of the record's header, for messages.
    line: usize,
    header: String,
    sql: String,
    expected: Vec<String>,
}

fn parse(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if l.starts_with("query") || l.starts_with("statement") {
            let (line, header) = (i + 1, l.to_string());
            i += 1;
            let mut sql = Vec::new();
            while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
                sql.push(lines[i]);
                i += 1;
            }
            let mut expected = Vec::new();
            if i < lines.len() && lines[i].trim() == "----" {
                i += 1;
                while i < lines.len() && !lines[i].trim().is_empty() {
                    expected.push(lines[i].to_string());
                    i += 1;
                }
            }
            records.push(Record {
                line,
                header,
                sql: sql.join("\n"),
                expected,
            });
        } else {
            i += 1;
        }
    }
    records
}

/// Runs one file; returns its failures and the file as it would be completed.
async fn run_file(session: &Session, path: &Path) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let dialect = if text.lines().any(|l| l.trim() == "# dialect datafusion") {
        Dialect::DataFusion
    } else if text.lines().any(|l| l.trim() == "# dialect athena") {
        Dialect::Athena
    } else {
        Dialect::BigQuery
    };
    let mut failures = Vec::new();
    let mut completed = text.clone();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    for r in parse(&text) {
        let words: Vec<&str> = r.header.split_whitespace().collect();
        let result = match session.sql(&r.sql, dialect).await {
            Ok(df) => {
                let names: Vec<String> = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                df.collect()
                    .await
                    .map(|b| (names, b))
                    .map_err(billq_engine::Error::from)
            }
            Err(e) => Err(e),
        };
        let at = format!("{name}:{}", r.line);
        match (words[0], words.get(1).copied(), result) {
            ("statement", Some("ok"), Ok(_)) => {}
            ("statement", Some("error"), Err(e)) => {
                let want = words[2..].join(" ");
                if !e.to_string().contains(&want) {
                    failures.push(format!("{at}: error {e:?} does not contain {want:?}"));
                }
            }
            ("statement", _, Ok(_)) => {
                failures.push(format!("{at}: expected an error, got success"))
            }
            (_, _, Err(e)) => failures.push(format!("{at}: {e}\n  {}", r.sql)),
            ("query", _, Ok((names, batches))) => {
                let mut actual = rows(&batches);
                if words.contains(&"rowsort") {
                    actual.sort();
                }
                if words.contains(&"colnames") {
                    actual.insert(0, names.join(" "));
                }
                if actual != r.expected {
                    failures.push(format!(
                        "{at}:\n  {}\n  got:      {actual:?}\n  expected: {:?}",
                        r.sql, r.expected
                    ));
                    let old = format!("{}\n{}\n----\n{}", r.header, r.sql, r.expected.join("\n"));
                    let new = format!("{}\n{}\n----\n{}", r.header, r.sql, actual.join("\n"));
                    let old = old.trim_end();
                    completed = completed.replacen(old, new.trim_end(), 1);
                }
            }
            _ => failures.push(format!("{at}: bad record header {:?}", r.header)),
        }
    }
    (failures, completed)
}

#[tokio::test]
async fn golden() {
    let session = session().await;
    let mut files: Vec<_> = std::fs::read_dir(testdata("golden"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    assert!(!files.is_empty());
    let complete = std::env::var_os("BILLQ_GOLDEN_COMPLETE").is_some();
    let mut failures = Vec::new();
    let mut cases = 0;
    for path in &files {
        cases += parse(&std::fs::read_to_string(path).unwrap()).len();
        let (f, completed) = run_file(&session, path).await;
        if complete {
            std::fs::write(path, completed).unwrap();
        }
        failures.extend(f);
    }
    println!("{cases} golden cases in {} files", files.len());
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
