//! BigQuery functions, casts and operators mapped to what DataFusion plans with the
//! same meaning.
//!
//! | BigQuery | planned as |
//! |---|---|
//! | `IFNULL(a, b)`, `IF(c, a, b)` | `coalesce(a, b)`, `CASE WHEN c THEN a ELSE b END` |
//! | `COUNTIF(c)` | `count(CASE WHEN c THEN 1 END)` |
//! | `a / b`, `SAFE_DIVIDE(a, b)` | `bq_divide(a, b)`, `bq_safe_divide(a, b)` (FLOAT64 for integers) |
//! | `CAST(x AS INT64)` | `bq_cast_int64(x)` (rounds half away from zero) |
//! | `NUMERIC`, `BIGNUMERIC`, `FLOAT64`, `STRING`, `BYTES`, `BOOL` | `DECIMAL(38, 9)`, `DECIMAL(76, 38)`, `DOUBLE`, `VARCHAR`, `BYTEA`, `BOOLEAN` |
//! | `SAFE_CAST` | `TRY_CAST` |
//! | `DATE(ts [, tz])`, `DATE(y, m, d)` | the date of `ts` in `tz` (UTC by default), `make_date` |
//! | `TIMESTAMP_TRUNC(ts, part [, tz])`, `DATE_TRUNC(d, part)` | `date_trunc` in `tz`; weeks start on Sunday (`WEEK(<day>)` on that day) |
//! | `DATE_DIFF(a, b, part)` | part boundaries between the dates: days apart, weeks' starts apart / 7, `date_part` year/quarter/month differences |
//! | `TIMESTAMP_DIFF(a, b, part)` | whole parts (MICROSECOND to DAY) between the microsecond counts, truncated toward zero |
//! | `FORMAT_TIMESTAMP(f, ts [, tz])`, `FORMAT_DATE(f, d)`, `PARSE_DATE(f, s)` | `bq_format_timestamp` (BigQuery's elements, `%E*S` and `%Ez` too; `to_char` for week numbers), `to_date` |
//! | `TIMESTAMP_ADD/SUB`, `DATE_ADD/SUB` with `INTERVAL n unit` | `+`, `-` an interval |
//! | `ARRAY_LENGTH`, `SPLIT`, `REGEXP_CONTAINS`, `REGEXP_EXTRACT`, `MOD` | `cardinality`, `string_to_array`, `regexp_like`, `regexp_match(...)[1]`, `%` |
//! | `"text"`, `r'raw'` string literals | `'text'`, `'raw'` |
//! | `STRUCT(a, t.b, 1)` | `STRUCT(a AS a, t.b AS b, 1 AS _field_3)` (BigQuery's field names) |
//! | `ARRAY_AGG(x ORDER BY y LIMIT n)` | `array_slice(ARRAY_AGG(x ORDER BY y), 1, n)` |
//! | `ROW_NUMBER()`, `RANK()`, `DENSE_RANK()`, `NTILE(n)` `OVER (...)` | the same, cast to `BIGINT` (INT64, where DataFusion numbers as UInt64) |
//! | `EXTRACT(DAYOFWEEK FROM x)` | `date_part('dow', x) + 1` (Sunday is 1) |
//! | `a[OFFSET(i)].f`, `a[SAFE_OFFSET(i)]`, `a[i]`; `a[ORDINAL(i)]`, `a[SAFE_ORDINAL(i)]` | `a[i + 1]['f']`, `a[i + 1]`, `a[i + 1]`; `a[i]` (DataFusion counts from 1; an index out of range is NULL, where BigQuery's `OFFSET` and `ORDINAL` fail) |

use sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, DateTimeField, ExactNumberInfo, Expr, Function,
    FunctionArgumentClause, FunctionArguments, Statement, Subscript, Value,
};

use super::ast::{
    function_args, function_name, literal_text, quoted, rewrite_expressions, string_literal,
    template, unsupported,
};
use crate::error::Result;

/// Rewrites every BigQuery function call, cast and division in `statement`.
pub fn rewrite(statement: &mut Statement) -> Result<()> {
    rewrite_expressions(statement, convert)
}

fn convert(e: &Expr) -> Result<Option<Expr>> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Divide,
            right,
        } => Ok(Some(template(
            "bq_divide(A, B)",
            &[("A", left), ("B", right)],
        ))),
        Expr::Cast {
            kind,
            expr,
            data_type,
            ..
        } => Ok(cast(kind, expr, data_type)),
        Expr::Value(v) => Ok(match &v.value {
            Value::SingleQuotedRawStringLiteral(s)
            | Value::DoubleQuotedRawStringLiteral(s)
            | Value::DoubleQuotedString(s) => {
                Some(Expr::Value(Value::SingleQuotedString(s.clone()).into()))
            }
            _ => None,
        }),
        Expr::TypedString(ts) if matches!(ts.data_type, DataType::Timestamp(..)) => {
            Ok(Some(in_zone(e, None)?))
        }
        Expr::Extract {
            field: DateTimeField::DayOfWeek,
            expr,
            ..
        } => Ok(Some(template("(date_part('dow', X) + 1)", &[("X", expr)]))),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let mut chain = access_chain.clone();
            let mut changed = false;
            for access in &mut chain {
                match access {
                    AccessExpr::Subscript(Subscript::Index { index }) => {
                        if let Some(from_one) = array_index(index) {
                            *index = from_one;
                            changed = true;
                        }
                    }
                    // `a[OFFSET(0)].amount`: DataFusion takes fields of an element by name.
                    AccessExpr::Dot(Expr::Identifier(field)) if changed => {
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::Value(
                                Value::SingleQuotedString(field.value.clone()).into(),
                            ),
                        });
                    }
                    _ => {}
                }
            }
            Ok(changed.then(|| Expr::CompoundFieldAccess {
                root: root.clone(),
                access_chain: chain,
            }))
        }
        // BigQuery numbers rows as INT64; DataFusion's UInt64 made `MOD(n, 100000)`
        // (an INT64 beside it) DECIMAL(20, 0) arithmetic.
        Expr::Function(f)
            if f.over.is_some()
                && matches!(
                    function_name(f).as_deref(),
                    Some("ROW_NUMBER" | "RANK" | "DENSE_RANK" | "NTILE")
                ) =>
        {
            Ok(Some(template("CAST(F AS BIGINT)", &[("F", e)])))
        }
        Expr::Function(f) if f.over.is_none() => {
            if let Some(sliced) = array_agg_limit(f) {
                return Ok(Some(sliced));
            }
            match (function_name(f), function_args(f)) {
                (Some(name), Some(args)) => function(&name, &args),
                _ => Ok(None),
            }
        }
        Expr::Struct { values, fields }
            if fields.is_empty() && values.iter().any(|v| !matches!(v, Expr::Named { .. })) =>
        {
            Ok(Some(Expr::Struct {
                values: values.iter().enumerate().map(struct_field).collect(),
                fields: vec![],
            }))
        }
        _ => Ok(None),
    }
}

/// `ARRAY_AGG(x [ORDER BY ...] LIMIT n)`: the first `n` elements of the whole aggregate
/// (DataFusion has no LIMIT among an aggregate's arguments).
fn array_agg_limit(f: &Function) -> Option<Expr> {
    if function_name(f).as_deref() != Some("ARRAY_AGG") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let limit = list.clauses.iter().find_map(|c| match c {
        FunctionArgumentClause::Limit(n) => Some(n.clone()),
        _ => None,
    })?;
    let mut whole = f.clone();
    if let FunctionArguments::List(list) = &mut whole.args {
        list.clauses
            .retain(|c| !matches!(c, FunctionArgumentClause::Limit(_)));
    }
    Some(template(
        "array_slice(A, 1, N)",
        &[("A", &Expr::Function(whole)), ("N", &limit)],
    ))
}

/// A member of `STRUCT(...)` named as BigQuery names it: its alias, the last part of
/// a column or field path (`STRUCT(sku.id)` has a field `id`), else `_field_<n>`.
fn struct_field((i, value): (usize, &Expr)) -> Expr {
    let name = match value {
        Expr::Named { .. } => return value.clone(),
        Expr::Identifier(id) => id.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map_or_else(String::new, |p| p.value.clone())
        }
        _ => format!("_field_{}", i + 1),
    };
    Expr::Named {
        expr: Box::new(value.clone()),
        name: quoted(&name),
    }
}

/// An array subscript counted from 1, as DataFusion counts; `None` for a field name
/// (`x['amount']`, the other passes' element access).
fn array_index(index: &Expr) -> Option<Expr> {
    if literal_text(index).is_some() {
        return None;
    }
    if let Expr::Function(f) = index
        && let (Some(name), Some(args)) = (function_name(f), function_args(f))
        && let [i] = args.as_slice()
    {
        match name.as_str() {
            "OFFSET" | "SAFE_OFFSET" => return Some(template("(I + 1)", &[("I", i)])),
            "ORDINAL" | "SAFE_ORDINAL" => return Some(i.clone()),
            _ => {}
        }
    }
    Some(template("(I + 1)", &[("I", index)]))
}

fn cast(kind: &CastKind, expr: &Expr, data_type: &DataType) -> Option<Expr> {
    let safe = matches!(kind, CastKind::SafeCast | CastKind::TryCast);
    let target = match data_type {
        DataType::Int64 | DataType::Integer(_) | DataType::Int(_) | DataType::BigInt(_)
            if !safe =>
        {
            return Some(template("bq_cast_int64(X)", &[("X", expr)]));
        }
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Numeric(ExactNumberInfo::None) | DataType::Decimal(ExactNumberInfo::None) => {
            "DECIMAL(38, 9)"
        }
        DataType::BigNumeric(ExactNumberInfo::None)
        | DataType::BigDecimal(ExactNumberInfo::None) => "DECIMAL(76, 38)",
        DataType::String(_) => "VARCHAR",
        DataType::Bytes(_) => "BYTEA",
        DataType::Bool => "BOOLEAN",
        _ if matches!(kind, CastKind::SafeCast) => {
            return Some(try_cast(expr, &data_type.to_string()));
        }
        _ => return None,
    };
    Some(if safe {
        try_cast(expr, target)
    } else {
        template(&format!("CAST(X AS {target})"), &[("X", expr)])
    })
}

fn try_cast(expr: &Expr, target: &str) -> Expr {
    template(&format!("TRY_CAST(X AS {target})"), &[("X", expr)])
}

/// The name of a date part written as an identifier (`DAY`), a string, or a week
/// starting on a given day (`WEEK(MONDAY)`, named `week(monday)`).
fn part(e: &Expr) -> Result<String> {
    let text = match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::Function(f)
            if function_name(f).as_deref() == Some("WEEK")
                && let Some([Expr::Identifier(day)]) = function_args(f).as_deref() =>
        {
            format!("week({})", day.value)
        }
        other => literal_text(other)
            .map(str::to_string)
            .ok_or_else(|| unsupported(format!("date part {other}"), other))?,
    };
    Ok(text.to_ascii_lowercase())
}

/// For a week part (`week`, `isoweek`, `week(<day>)`), the days from the Monday
/// DataFusion starts weeks on back to the day that starts this one.
fn week_shift(part: &str) -> Option<u32> {
    let day = match part {
        "week" => "sunday",
        "isoweek" => "monday",
        p => p.strip_prefix("week(")?.strip_suffix(')')?,
    };
    const DAYS: [&str; 7] = [
        "monday",
        "sunday",
        "saturday",
        "friday",
        "thursday",
        "wednesday",
        "tuesday",
    ];
    DAYS.iter().position(|d| *d == day).map(|i| i as u32)
}

/// `X` as a microsecond timestamp in time zone `tz`.
fn in_zone(x: &Expr, tz: Option<&Expr>) -> Result<Expr> {
    let cast = |x: &Expr, zone: &str| {
        let arrow_type = string_literal(&format!("Timestamp(µs, \"{}\")", zone.replace('"', "")));
        template(&format!("arrow_cast(X, {arrow_type})"), &[("X", x)])
    };
    // A timestamp without a zone holds UTC: make it UTC first, then move it.
    let utc = cast(x, "UTC");
    Ok(match tz {
        None => utc,
        Some(tz) => {
            let zone = literal_text(tz).ok_or_else(|| {
                unsupported(
                    format!("a time zone that is not a string literal ({tz})"),
                    tz,
                )
            })?;
            cast(&utc, zone)
        }
    })
}

/// `date_trunc` with BigQuery's parts: `WEEK` starts on Sunday, `ISOWEEK` on Monday,
/// `WEEK(<day>)` on that day. `bq_date_trunc` truncates each run of equal values once.
fn trunc(x: &Expr, part: &str) -> Expr {
    match week_shift(part) {
        Some(0) => template("bq_date_trunc('week', X)", &[("X", x)]),
        // DataFusion's weeks start on Monday: shift the day that starts ours onto it.
        Some(shift) => template(
            &format!(
                "(bq_date_trunc('week', X + INTERVAL '{shift} day') - INTERVAL '{shift} day')"
            ),
            &[("X", x)],
        ),
        None => template(
            &format!("bq_date_trunc({}, X)", string_literal(part)),
            &[("X", x)],
        ),
    }
}

/// `DATE_DIFF(a, b, part)`: how many `part` boundaries lie between the dates of `b`
/// and `a` (negative if `a` is earlier), as INT64.
fn date_diff(a: &Expr, b: &Expr, part_expr: &Expr) -> Result<Expr> {
    let p = part(part_expr)?;
    let dates = [("A", a), ("B", b)];
    // How far apart `date_part(name, ...)` of the two dates is.
    let apart = |name: &str| {
        format!("(date_part('{name}', CAST(A AS DATE)) - date_part('{name}', CAST(B AS DATE)))")
    };
    let count = |text: String| template(&format!("CAST({text} AS BIGINT)"), &dates);
    Ok(match p.as_str() {
        "day" => template("(CAST(A AS DATE) - CAST(B AS DATE))", &dates),
        "year" | "isoyear" => count(apart(&p)),
        "quarter" => count(format!("{} * 4 + {}", apart("year"), apart("quarter"))),
        "month" => count(format!("{} * 12 + {}", apart("year"), apart("month"))),
        week if week_shift(week).is_some() => {
            let start = |x: &Expr| {
                template(
                    "CAST(T AS DATE)",
                    &[("T", &trunc(&template("CAST(X AS DATE)", &[("X", x)]), week))],
                )
            };
            template("((A - B) / 7)", &[("A", &start(a)), ("B", &start(b))])
        }
        _ => return Err(unsupported(format!("DATE_DIFF by {p}"), part_expr)),
    })
}

/// `TIMESTAMP_DIFF(a, b, part)`: how many whole `part`s (MICROSECOND to DAY, a day
/// being 24 hours) lie between `b` and `a`, truncated toward zero, as INT64.
fn timestamp_diff(a: &Expr, b: &Expr, part_expr: &Expr) -> Result<Expr> {
    let p = part(part_expr)?;
    let micros = match p.as_str() {
        "microsecond" => 1,
        "millisecond" => 1_000,
        "second" => 1_000_000,
        "minute" => 60_000_000,
        "hour" => 3_600_000_000,
        "day" => 86_400_000_000i64,
        _ => {
            return Err(unsupported(
                format!("TIMESTAMP_DIFF by {p} (BigQuery allows MICROSECOND to DAY)"),
                part_expr,
            ));
        }
    };
    Ok(template(
        &format!("((arrow_cast(A, 'Int64') - arrow_cast(B, 'Int64')) / {micros})"),
        &[("A", &in_zone(a, None)?), ("B", &in_zone(b, None)?)],
    ))
}

/// A timestamp as microseconds since the epoch.
fn unix_micros(x: &Expr) -> Result<Expr> {
    Ok(template(
        "arrow_cast(X, 'Int64')",
        &[("X", &in_zone(x, None)?)],
    ))
}

/// `x / by` rounded down, as BigQuery's `UNIX_MILLIS` and `UNIX_SECONDS` round.
fn floor_div(x: &Expr, by: i64) -> Expr {
    template(
        &format!("((X - ((X % {by}) + {by}) % {by}) / {by})"),
        &[("X", x)],
    )
}

/// The timestamp `n` units of `micros` microseconds after the epoch.
fn from_micros(n: &Expr, micros: i64) -> Expr {
    let utc = string_literal("Timestamp(µs, \"UTC\")");
    template(&format!("arrow_cast(N * {micros}, {utc})"), &[("N", n)])
}

fn function(name: &str, args: &[Expr]) -> Result<Option<Expr>> {
    let arg = |i: usize| &args[i];
    let t = |text: &str, names: &[&str]| {
        let subs: Vec<(&str, &Expr)> = names.iter().copied().zip(args.iter()).collect();
        Some(template(text, &subs))
    };
    Ok(match (name, args.len()) {
        ("IFNULL", 2) => t("coalesce(A, B)", &["A", "B"]),
        ("IF", 3) => t("CASE WHEN C THEN A ELSE B END", &["C", "A", "B"]),
        ("COUNTIF", 1) => t("count(CASE WHEN C THEN 1 END)", &["C"]),
        ("SAFE_DIVIDE", 2) => t("bq_safe_divide(A, B)", &["A", "B"]),
        ("ARRAY_LENGTH", 1) => t("cardinality(A)", &["A"]),
        ("SPLIT", 1) => t("string_to_array(A, ',')", &["A"]),
        ("SPLIT", 2) => t("string_to_array(A, B)", &["A", "B"]),
        ("REGEXP_CONTAINS", 2) => t("regexp_like(A, B)", &["A", "B"]),
        ("REGEXP_EXTRACT", 2) => t("array_element(regexp_match(A, B), 1)", &["A", "B"]),
        ("DATE", 1) => Some(template(
            "CAST(X AS DATE)",
            &[("X", &in_zone(arg(0), None)?)],
        )),
        ("DATE", 2) => Some(template(
            "CAST(X AS DATE)",
            &[("X", &in_zone(arg(0), Some(arg(1)))?)],
        )),
        ("DATE", 3) => t("make_date(Y, M, D)", &["Y", "M", "D"]),
        ("TIMESTAMP", 1) => Some(in_zone(arg(0), None)?),
        ("TIMESTAMP_TRUNC" | "DATETIME_TRUNC", 2 | 3) => {
            let zoned = in_zone(arg(0), args.get(2))?;
            Some(in_zone(&trunc(&zoned, &part(arg(1))?), None)?)
        }
        ("TIMESTAMP_ADD" | "DATE_ADD" | "DATETIME_ADD", 2) => t("(A + B)", &["A", "B"]),
        ("TIMESTAMP_SUB" | "DATE_SUB" | "DATETIME_SUB", 2) => t("(A - B)", &["A", "B"]),
        ("MOD", 2) => t("(A % B)", &["A", "B"]),
        ("DATE_DIFF", 3) => Some(date_diff(arg(0), arg(1), arg(2))?),
        ("TIMESTAMP_DIFF", 3) => Some(timestamp_diff(arg(0), arg(1), arg(2))?),
        ("DATE_TRUNC", 2) => Some(template(
            "CAST(X AS DATE)",
            &[("X", &trunc(arg(0), &part(arg(1))?))],
        )),
        ("FORMAT_TIMESTAMP", 2 | 3) => {
            let zoned = in_zone(arg(1), args.get(2))?;
            Some(template(
                "bq_format_timestamp(F, T)",
                &[("F", arg(0)), ("T", &zoned)],
            ))
        }
        ("FORMAT_DATE", 2) => t("bq_format_timestamp(F, D)", &["F", "D"]),
        ("PARSE_DATE", 2) => t("to_date(S, F)", &["F", "S"]),
        ("UNIX_MICROS", 1) => Some(unix_micros(arg(0))?),
        ("UNIX_MILLIS", 1) => Some(floor_div(&unix_micros(arg(0))?, 1_000)),
        ("UNIX_SECONDS", 1) => Some(floor_div(&unix_micros(arg(0))?, 1_000_000)),
        ("TIMESTAMP_MICROS", 1) => Some(from_micros(arg(0), 1)),
        ("TIMESTAMP_MILLIS", 1) => Some(from_micros(arg(0), 1_000)),
        ("TIMESTAMP_SECONDS", 1) => Some(from_micros(arg(0), 1_000_000)),
        ("UNIX_DATE", 1) => t("(CAST(D AS DATE) - DATE '1970-01-01')", &["D"]),
        ("DATE_FROM_UNIX_DATE", 1) => t("arrow_cast(arrow_cast(N, 'Int32'), 'Date32')", &["N"]),
        _ => None,
    })
}
