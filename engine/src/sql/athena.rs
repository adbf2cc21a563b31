//! Athena (Trino/Presto) SQL, as the AWS CUR query library and Athena users write it,
//! mapped where DataFusion's SQL differs:
//!
//! | Athena | planned as |
//! |---|---|
//! | `date_format(ts, '%Y-%m-%d %H:%i:%s')` (MySQL specifiers) | `bq_format_timestamp('%Y-%m-%d %H:%M:%S', ts)` (strftime's) |
//! | `element_at(map_or_array, k)` | `map_or_array[k]` |
//! | `resource_tags['user_name']`, `element_at(m, 'k')` (a text key) | `tag(m, 'k')`, which also finds a legacy CUR's `user:Name` |
//! | `year(x)`, `month(x)`, `day(x)`, `hour(x)`, `quarter(x)` | `date_part('year', x)`, ... |
//! | `date_add('day', n, ts)` (n a literal) | `ts + INTERVAL 'n day'` |
//! | `from_iso8601_timestamp(s)`, `array_join(a, sep)`, `contains(a, x)` | `to_timestamp(s)`, `array_to_string(a, sep)`, `array_has(a, x)` |
//!
//! Everything else (`date_trunc('month', ...)`, `split_part`, `CASE`, `COALESCE`,
//! `approx_distinct`, window functions, ...) is the same in both.

use sqlparser::ast::{AccessExpr, Expr, Statement, Subscript, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::bigquery::ast::{
    function_args, function_name, literal_text, rewrite_expressions, string_literal, template,
    unsupported,
};
use crate::error::{Error, Result};

/// Parses one Athena statement and maps it for DataFusion.
pub fn rewrite(text: &str) -> Result<Statement> {
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, text).map_err(|e| Error::Sql(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Error::Sql(format!(
            "expected one statement, found {}",
            statements.len()
        )));
    }
    let mut statement = statements.remove(0);
    rewrite_expressions(&mut statement, convert)?;
    Ok(statement)
}

/// The value of an integer literal, negative ones included.
fn integer_literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => integer_literal(expr).map(|n| -n),
        _ => None,
    }
}

/// MySQL-style `date_format` specifiers as chrono's.
fn chrono_format(mysql: &str) -> String {
    let mut out = String::new();
    let mut chars = mysql.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str("%M"),
            Some('s') => out.push_str("%S"),
            Some('h') => out.push_str("%I"),
            Some('p') => out.push_str("%p"),
            Some('W') => out.push_str("%A"),
            Some('M') => out.push_str("%B"),
            Some('c') => out.push_str("%-m"),
            Some('e') => out.push_str("%-d"),
            Some('f') => out.push_str("%6f"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `tag(map, 'key')`: a map entry by key, where a legacy CUR's `user:Name` and
/// CUR 2.0's `user_name` are the same tag.
fn map_entry(map: &Expr, key: &Expr) -> Expr {
    template("tag(A, B)", &[("A", map), ("B", key)])
}

fn convert(e: &Expr) -> Result<Option<Expr>> {
    if let Expr::CompoundFieldAccess { root, access_chain } = e
        && let [AccessExpr::Subscript(Subscript::Index { index })] = access_chain.as_slice()
        && literal_text(index).is_some()
    {
        return Ok(Some(map_entry(root, index)));
    }
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    if f.over.is_some() {
        return Ok(None);
    }
    let (Some(name), Some(args)) = (function_name(f), function_args(f)) else {
        return Ok(None);
    };
    let t = |text: &str| {
        let names = ["A", "B", "C"];
        let subs: Vec<(&str, &Expr)> = names.iter().copied().zip(args.iter()).collect();
        Some(template(text, &subs))
    };
    Ok(match (name.as_str(), args.len()) {
        ("DATE_FORMAT", 2) => {
            let format = literal_text(&args[1]).ok_or_else(|| {
                unsupported("a date_format pattern that is not a literal", &args[1])
            })?;
            Some(template(
                &format!(
                    "bq_format_timestamp({}, A)",
                    string_literal(&chrono_format(format))
                ),
                &[("A", &args[0])],
            ))
        }
        ("ELEMENT_AT", 2) if literal_text(&args[1]).is_some() => {
            Some(map_entry(&args[0], &args[1]))
        }
        ("ELEMENT_AT", 2) => Some(Expr::CompoundFieldAccess {
            root: Box::new(args[0].clone()),
            access_chain: vec![AccessExpr::Subscript(Subscript::Index {
                index: args[1].clone(),
            })],
        }),
        (
            "YEAR" | "MONTH" | "DAY" | "HOUR" | "MINUTE" | "QUARTER" | "DAY_OF_WEEK"
            | "DAY_OF_YEAR",
            1,
        ) => {
            let part = match name.as_str() {
                "DAY_OF_WEEK" => "isodow",
                "DAY_OF_YEAR" => "doy",
                other => &other.to_ascii_lowercase(),
            };
            Some(template(
                &format!("CAST(date_part({}, A) AS BIGINT)", string_literal(part)),
                &[("A", &args[0])],
            ))
        }
        ("DATE_ADD", 3) => {
            let unit = literal_text(&args[0])
                .ok_or_else(|| unsupported("a date_add unit that is not a literal", &args[0]))?;
            let n = integer_literal(&args[1]).ok_or_else(|| {
                unsupported("a date_add amount that is not an integer literal", &args[1])
            })?;
            let interval = string_literal(&format!("{n} {unit}"));
            Some(template(
                &format!("(C + INTERVAL {interval})"),
                &[("C", &args[2])],
            ))
        }
        ("FROM_ISO8601_TIMESTAMP", 1) => t("to_timestamp(A)"),
        ("ARRAY_JOIN", 2) => t("array_to_string(A, B)"),
        ("CONTAINS", 2) => t("array_has(A, B)"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_functions_map_to_datafusion() {
        let cases = [
            (
                "SELECT date_format(line_item_usage_start_date, '%Y-%m') FROM aws_cur",
                "SELECT bq_format_timestamp('%Y-%m', line_item_usage_start_date) FROM aws_cur",
            ),
            (
                "SELECT date_format(t, '%H:%i:%s') FROM x",
                "SELECT bq_format_timestamp('%H:%M:%S', t) FROM x",
            ),
            (
                "SELECT element_at(resource_tags, 'user:Name'), product['region'] FROM x",
                "SELECT tag(resource_tags, 'user:Name'), tag(product, 'region') FROM x",
            ),
            (
                "SELECT element_at(a, 1), a[2] FROM x",
                "SELECT a[1], a[2] FROM x",
            ),
            (
                "SELECT year(d), month(d) FROM x",
                "SELECT CAST(date_part('year', d) AS BIGINT), CAST(date_part('month', d) AS BIGINT) FROM x",
            ),
            (
                "SELECT date_add('day', -30, d) FROM x",
                "SELECT (d + INTERVAL '-30 day') FROM x",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rewrite(input).unwrap().to_string(), expected, "{input}");
        }
    }
}
