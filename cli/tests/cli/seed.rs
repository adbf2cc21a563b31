//! The example queries of Google's billing-export docs, typed verbatim, through the
//! CLI, against BigQuery's answers (`testdata/seed-queries`, see its README).
//!
//! Columns named `total_exact` must match to the micro exactly; other numbers within
//! 1e-9 relative; strings exactly. Rows of an unordered case may come in any order.

use crate::common::*;

struct Case {
    query: String,
    data: String,
    table: String,
    ordered: bool,
}

fn cases() -> Vec<Case> {
    let tsv = std::fs::read_to_string(testdata("seed-queries/cases.tsv")).unwrap();
    tsv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                query: f[0].into(),
                data: f[1].into(),
                table: f[2].into(),
                ordered: f[3] == "yes",
            }
        })
        .collect()
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        rows.push(fields);
    }
    rows
}

/// Whether an actual value matches the expected one under the README's rules.
fn matches(column: &str, actual: &str, expected: &str) -> bool {
    match (actual.parse::<f64>(), expected.parse::<f64>()) {
        (Ok(a), Ok(e)) if column == "total_exact" => {
            micros(actual) == micros(expected) && (a - e).abs() < 1e-6
        }
        (Ok(a), Ok(e)) => a == e || (a - e).abs() <= 1e-9 * e.abs().max(a.abs()),
        _ => actual == expected,
    }
}

/// A decimal text at micro precision, exactly (rounded half away from zero).
fn micros(text: &str) -> i128 {
    let (neg, digits) = text.strip_prefix('-').map_or((false, text), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac: String = frac.chars().chain(std::iter::repeat('0')).take(7).collect();
    let round_up = frac.pop().unwrap() >= '5';
    let v = int.parse::<i128>().unwrap() * 1_000_000
        + frac.parse::<i128>().unwrap()
        + i128::from(round_up);
    if neg { -v } else { v }
}

#[test]
fn all_seed_queries_give_bigquerys_answers() {
    let root = testdata("seed-queries");
    let mut failures = Vec::new();
    let cases = cases();
    assert_eq!(cases.len(), 13);
    for case in &cases {
        let out = billq()
            .args(["query", "--format", "csv", "--table"])
            .arg(format!(
                "{}={}",
                case.table,
                root.join(&case.data).display()
            ))
            .arg("-f")
            .arg(root.join(format!("queries/{}.sql", case.query)))
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                case.query,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let mut actual = parse_csv(&String::from_utf8(out.stdout).unwrap());
        let mut expected = parse_csv(
            &std::fs::read_to_string(root.join(format!("expected/{}.csv", case.query))).unwrap(),
        );
        if actual[0] != expected[0] {
            failures.push(format!(
                "{}: header {:?}, expected {:?}",
                case.query, actual[0], expected[0]
            ));
            continue;
        }
        if !case.ordered {
            actual[1..].sort();
            expected[1..].sort();
        }
        let header = expected[0].clone();
        let same = actual.len() == expected.len()
            && actual.iter().zip(&expected).skip(1).all(|(a, e)| {
                a.len() == e.len()
                    && header
                        .iter()
                        .zip(a.iter().zip(e))
                        .all(|(c, (a, e))| matches(c, a, e))
            });
        if !same {
            failures.push(format!(
                "{}: got {actual:?}, expected {expected:?}",
                case.query
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_comparison_rules_can_fail() {
    assert!(matches("total_exact", "111.412131", "111.4121310"));
    assert!(!matches("total_exact", "111.412132", "111.412131"));
    assert!(matches("total", "111.41213099999999", "111.412131"));
    assert!(!matches("total", "111.4122", "111.412131"));
    assert!(!matches("labels", "[]", "[ ]"));
}
