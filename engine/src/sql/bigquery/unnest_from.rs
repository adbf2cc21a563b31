//! `UNNEST` in FROM: `FROM t, UNNEST(t.arr) AS x`, `CROSS JOIN UNNEST(...)`,
//! `[INNER] JOIN UNNEST(...) ON c` and `LEFT JOIN UNNEST(...) AS x [ON c]` become a
//! derived table that unnests in its select list, which DataFusion plans:
//!
//! ```sql
//! FROM (SELECT t.* EXCLUDE (x), unnest(<array>) AS x FROM t) AS t
//! ```
//!
//! - An inner join drops rows whose array is empty or NULL, as BigQuery's does.
//! - A LEFT join keeps them once with `x` NULL: the array is replaced by `[NULL]`
//!   when it has no element (`bq_outer_elements`). Its `ON` condition filters the array first
//!   (`array_filter(arr, x -> c)`), so rows matching nothing are kept the same way.
//!   Where a `WHERE` conjunct can only be true of an element (`LOWER(c.name) LIKE
//!   'a%'`: NULL for a NULL `c`), the rows it keeps are those of an inner join, and
//!   it is planned as one.
//! - An inner join's `WHERE` conjuncts that read only its element (`l.key = 'env'`)
//!   also filter the array before it is unnested, so the rows they would drop are
//!   never made (they stay in `WHERE`, which they no longer change).
//! - The alias wins over a column of the same name (`LEFT JOIN UNNEST(labels) AS
//!   labels`): that column is excluded from the derived table.
//! - `x.f` then reads field `f` of the struct column `x`.
//! - `WITH OFFSET [AS o]` unnests `range(0, cardinality(<array>))` beside the array, as
//!   `o` (`offset` by default). The array is then never filtered before the unnest (it
//!   would renumber its elements): an inner join's `ON` joins `WHERE`; a LEFT join
//!   with `ON` is refused.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, JoinConstraint, JoinOperator, Query, SelectItem, SetExpr,
    Statement, TableAlias, TableFactor, VisitMut, VisitorMut, visit_expressions,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

use super::ast::{bind_element, function_args, function_name, quoted, template, unsupported};
use crate::error::{Error, Result};

/// Table name → its top-level column names.
pub type Columns = BTreeMap<String, Vec<String>>;

/// Rewrites every `UNNEST` join of `statement`.
pub fn rewrite(statement: &mut Statement, columns: &Columns) -> Result<()> {
    let mut pass = Pass {
        columns,
        counter: 0,
    };
    match statement.visit(&mut pass) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Pass<'a> {
    columns: &'a Columns,
    counter: usize,
}

impl VisitorMut for Pass<'_> {
    type Break = Error;

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
        match self.set_expr(&mut query.body) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

enum Kind {
    Inner,
    Left,
}

struct Step {
    array: Expr,
    alias: Ident,
    /// `WITH OFFSET [AS o]`: the name of the element's position (`offset` by default).
    offset: Option<Ident>,
    kind: Kind,
    on: Option<Expr>,
}

impl Pass<'_> {
    fn set_expr(&mut self, body: &mut SetExpr) -> Result<()> {
        match body {
            SetExpr::Select(select) => {
                let Some(first) = select.from.first_mut() else {
                    return Ok(());
                };
                if let TableFactor::UNNEST { .. } = first.relation {
                    first.relation =
                        unnest_first(std::mem::replace(&mut first.relation, empty_unnest()))?;
                }
                let mut steps = Vec::new();
                let mut kept = Vec::new();
                for join in std::mem::take(&mut first.joins) {
                    if !matches!(join.relation, TableFactor::UNNEST { .. }) {
                        kept.push(join);
                        continue;
                    }
                    let (kind, on) = match join.join_operator {
                        JoinOperator::CrossJoin(_) => (Kind::Inner, None),
                        JoinOperator::Join(c) | JoinOperator::Inner(c) => {
                            (Kind::Inner, on_condition(c)?)
                        }
                        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                            (Kind::Left, on_condition(c)?)
                        }
                        _ => {
                            return Err(unsupported(
                                "this kind of join with UNNEST",
                                &join.relation,
                            ));
                        }
                    };
                    steps.push(step(join.relation, kind, on)?);
                }
                first.joins = kept;
                let mut rest = Vec::new();
                for twj in select.from.drain(1..) {
                    if matches!(twj.relation, TableFactor::UNNEST { .. }) && twj.joins.is_empty() {
                        steps.push(step(twj.relation, Kind::Inner, None)?);
                    } else {
                        rest.push(twj);
                    }
                }
                select.from.extend(rest);
                for step in &mut steps {
                    let mut parts = Vec::new();
                    if let Some(selection) = &select.selection {
                        conjuncts(selection, &mut parts);
                    }
                    if parts.iter().any(|c| rejects_null(c, &step.alias)) {
                        step.kind = Kind::Inner;
                    }
                    match (&step.kind, &step.offset) {
                        // Filtering the array first would renumber its elements: an
                        // inner join's `ON` becomes part of `WHERE` instead.
                        (Kind::Inner, Some(_)) => {
                            if let Some(on) = step.on.take() {
                                select.selection = Some(match select.selection.take() {
                                    None => on,
                                    Some(w) => and(&on, &w),
                                });
                            }
                        }
                        (Kind::Left, Some(_)) if step.on.is_some() => {
                            return Err(unsupported(
                                "LEFT JOIN UNNEST ... WITH OFFSET ... ON",
                                step.on.as_ref().expect("checked"),
                            ));
                        }
                        (Kind::Inner, None) => {
                            step.on = element_filter(
                                step.on.take(),
                                select.selection.as_ref(),
                                &step.alias,
                            );
                        }
                        (Kind::Left, _) => {}
                    }
                }
                if !steps.is_empty() {
                    let base = &mut select.from[0].relation;
                    let relation = std::mem::replace(base, empty_unnest());
                    *base = self.derive(relation, steps)?;
                }
                Ok(())
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)
            }
            _ => Ok(()),
        }
    }

    /// Wraps `relation` in one derived table per step.
    fn derive(&mut self, relation: TableFactor, steps: Vec<Step>) -> Result<TableFactor> {
        let (name, mut columns) = match &relation {
            TableFactor::Table { name, alias, .. } => {
                let last = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.clone())
                    .unwrap_or_default();
                let columns = self.columns.get(&last).cloned();
                (
                    alias
                        .as_ref()
                        .map_or_else(|| quoted(&last), |a| a.name.clone()),
                    columns,
                )
            }
            TableFactor::Derived { alias: Some(a), .. } => (a.name.clone(), None),
            other => {
                return Err(unsupported(
                    "UNNEST joined to a relation without an alias",
                    other,
                ));
            }
        };
        let mut relation = relation;
        if let TableFactor::Table {
            alias: alias @ None,
            ..
        } = &mut relation
        {
            *alias = Some(TableAlias {
                explicit: true,
                at: None,
                name: name.clone(),
                columns: vec![],
            });
        }
        for step in steps {
            self.counter += 1;
            let param = format!("__u{}", self.counter);
            let mut array = step.array;
            if let Some(mut on) = step.on {
                bind_element(&mut on, Some(&step.alias.value), &param);
                array = template(
                    &format!("array_filter(A, {param} -> C)"),
                    &[("A", &array), ("C", &on)],
                );
            }
            // Positions 0, 1, ... of the elements, unnested beside them.
            let mut offsets = step.offset.as_ref().map(|o| (positions(&array), o));
            if let Kind::Left = step.kind {
                // Positions of no element are `[]` too, and become `[NULL]` alike.
                if let Some((positions, _)) = &mut offsets {
                    *positions = template("bq_outer_elements(P)", &[("P", positions)]);
                }
                array = template("bq_outer_elements(A)", &[("A", &array)]);
            }
            let names: Vec<&Ident> = std::iter::once(&step.alias)
                .chain(step.offset.as_ref())
                .collect();
            let shadowed: Vec<String> = columns
                .as_ref()
                .map(|c| {
                    c.iter()
                        .filter(|c| names.iter().any(|n| c.eq_ignore_ascii_case(&n.value)))
                        .map(|c| format!("\"{c}\""))
                        .collect()
                })
                .unwrap_or_default();
            let exclude = if shadowed.is_empty() {
                String::new()
            } else {
                format!(" EXCLUDE ({})", shadowed.join(", "))
            };
            if let Some(c) = columns.as_mut() {
                c.retain(|c| !names.iter().any(|n| c.eq_ignore_ascii_case(&n.value)));
                c.extend(names.iter().map(|n| n.value.clone()));
            }
            let elements = Unnested {
                array: &array,
                alias: &step.alias,
                offsets: offsets.as_ref().map(|(p, o)| (p, *o)),
            };
            relation = unnesting(Some((relation, &name, &exclude)), elements)?;
        }
        Ok(relation)
    }
}

fn empty_unnest() -> TableFactor {
    TableFactor::UNNEST {
        alias: None,
        array_exprs: vec![],
        with_offset: false,
        with_offset_alias: None,
        with_ordinality: false,
    }
}

/// `FROM UNNEST(array) AS x [WITH OFFSET AS o]` first in FROM:
/// `FROM (SELECT unnest(array) AS x [, unnest(range(0, cardinality(array))) AS o]) AS x`.
fn unnest_first(relation: TableFactor) -> Result<TableFactor> {
    let Step {
        array,
        alias,
        offset,
        ..
    } = step(relation, Kind::Inner, None)?;
    let positions = positions(&array);
    let elements = Unnested {
        array: &array,
        alias: &alias,
        offsets: offset.as_ref().map(|o| (&positions, o)),
    };
    unnesting(None, elements)
}

/// The positions of `array`'s elements: `[0, 1, ..., n - 1]`.
fn positions(array: &Expr) -> Expr {
    template("range(0, cardinality(A))", &[("A", array)])
}

fn and(a: &Expr, b: &Expr) -> Expr {
    template("(A) AND (B)", &[("A", a), ("B", b)])
}

/// What a derived table unnests: an array as `alias`, and maybe its elements'
/// positions (an array as long) as a second column.
struct Unnested<'a> {
    array: &'a Expr,
    alias: &'a Ident,
    offsets: Option<(&'a Expr, &'a Ident)>,
}

/// The derived table `(SELECT [n.* [EXCLUDE (c)],] unnest(array) AS x [, unnest(positions)
/// AS o] [FROM base AS n])`, aliased `n` (or `x` without a base).
fn unnesting(
    base: Option<(TableFactor, &Ident, &str)>,
    unnested: Unnested<'_>,
) -> Result<TableFactor> {
    let x = unnested.alias;
    let (columns, from, alias) = match &base {
        Some((_, n, exclude)) => (
            format!("\"{}\".*{exclude}, ", n.value),
            format!(" FROM __base AS \"{}\"", n.value),
            (*n).clone(),
        ),
        None => (String::new(), String::new(), x.clone()),
    };
    let offset = unnested
        .offsets
        .map(|(_, o)| format!(", unnest(__offsets) AS \"{}\"", o.value))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {columns}unnest(__array) AS \"{}\"{offset}{from}",
        x.value
    );
    let mut query = Parser::new(&DuckDbDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| Error::Sql(format!("internal: {e}")))?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        unreachable!("the template is a SELECT")
    };
    if let Some((relation, ..)) = base {
        select.from[0].relation = relation;
    }
    // The last items of the select list: `unnest(__array)`, `unnest(__offsets)`.
    let unnests: Vec<&Expr> = std::iter::once(unnested.array)
        .chain(unnested.offsets.map(|(p, _)| p))
        .collect();
    let first = select.projection.len() - unnests.len();
    for (item, array) in select.projection[first..].iter_mut().zip(unnests) {
        if let SelectItem::ExprWithAlias { expr, .. } = item {
            *expr = template("unnest(A)", &[("A", array)]);
        }
    }
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            at: None,
            name: alias,
            columns: vec![],
        }),
        sample: None,
    })
}

/// `on` and every conjunct of `selection` that reads only `alias`, an inner join's
/// element (no other column, subquery, window or random function).
fn element_filter(on: Option<Expr>, selection: Option<&Expr>, alias: &Ident) -> Option<Expr> {
    let mut parts = Vec::new();
    if let Some(selection) = selection {
        conjuncts(selection, &mut parts);
    }
    parts
        .into_iter()
        .filter(|c| reads_only(c, alias))
        .cloned()
        .fold(on, |all, c| {
            Some(match all {
                None => c,
                Some(all) => and(&all, &c),
            })
        })
}

fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        e => out.push(e),
    }
}

/// Whether `e` reads `alias` and nothing else, and gives the same answer each time.
fn reads_only(e: &Expr, alias: &Ident) -> bool {
    let is_alias = |i: &Ident| i.value.eq_ignore_ascii_case(&alias.value);
    let mut reads = false;
    let flow = visit_expressions(e, |x| {
        let fine = match x {
            Expr::Identifier(i) => is_alias(i),
            Expr::CompoundIdentifier(parts) => is_alias(&parts[0]),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => false,
            Expr::Function(f) => {
                f.over.is_none()
                    && !matches!(function_name(f).as_deref(), Some("RAND" | "GENERATE_UUID"))
            }
            _ => true,
        };
        reads |= matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        if fine {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    flow.is_continue() && reads
}

/// Whether `e` (a conjunct) is never true where `alias` is NULL: a comparison, LIKE,
/// IN, BETWEEN or IS NOT NULL of an operand that is NULL with it.
fn rejects_null(e: &Expr, alias: &Ident) -> bool {
    let null = |x: &Expr| null_with(x, alias);
    reads_only(e, alias)
        && match e {
            Expr::Nested(inner) => rejects_null(inner, alias),
            Expr::BinaryOp { left, op, right } => {
                use BinaryOperator::*;
                matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq) && (null(left) || null(right))
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                null(expr) || null(pattern)
            }
            Expr::InList { expr, .. } => null(expr),
            Expr::Between {
                expr, low, high, ..
            } => null(expr) || null(low) || null(high),
            Expr::IsNotNull(x) => null(x),
            _ => false,
        }
}

/// Whether `e` is NULL whenever `alias` is: a path into it, through casts, arithmetic
/// and functions that return NULL for a NULL argument.
fn null_with(e: &Expr, alias: &Ident) -> bool {
    let null = |x: &Expr| null_with(x, alias);
    match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case(&alias.value),
        Expr::CompoundIdentifier(parts) => parts[0].value.eq_ignore_ascii_case(&alias.value),
        Expr::Nested(x) | Expr::Cast { expr: x, .. } | Expr::UnaryOp { expr: x, .. } => null(x),
        Expr::Substring { expr, .. } | Expr::Trim { expr, .. } => null(expr),
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator::*;
            matches!(op, Plus | Minus | Multiply | Divide | Modulo | StringConcat)
                && (null(left) || null(right))
        }
        Expr::Function(f) => {
            let strict = matches!(
                function_name(f).as_deref(),
                Some(
                    "LOWER"
                        | "UPPER"
                        | "TRIM"
                        | "LTRIM"
                        | "RTRIM"
                        | "SUBSTR"
                        | "SUBSTRING"
                        | "LENGTH"
                        | "CHAR_LENGTH"
                        | "CONCAT"
                        | "REPLACE"
                        | "ABS"
                        | "ROUND"
                )
            );
            strict && function_args(f).is_some_and(|args| args.iter().any(null))
        }
        _ => false,
    }
}

fn on_condition(c: JoinConstraint) -> Result<Option<Expr>> {
    match c {
        JoinConstraint::On(e) => Ok(Some(e)),
        JoinConstraint::None | JoinConstraint::Natural => Ok(None),
        JoinConstraint::Using(_) => Err(Error::Sql("unsupported: USING with UNNEST".into())),
    }
}

fn step(relation: TableFactor, kind: Kind, on: Option<Expr>) -> Result<Step> {
    let refuse = |what: &str| Err(unsupported(what, &relation));
    let TableFactor::UNNEST {
        alias,
        mut array_exprs,
        with_offset,
        with_offset_alias,
        ..
    } = relation.clone()
    else {
        unreachable!("only UNNEST relations are steps")
    };
    if array_exprs.len() != 1 {
        return refuse("UNNEST of several arrays in FROM");
    }
    let Some(alias) = alias.map(|a| a.name) else {
        return refuse("UNNEST in FROM without an alias");
    };
    Ok(Step {
        array: array_exprs.remove(0),
        alias,
        offset: with_offset.then(|| with_offset_alias.unwrap_or_else(|| Ident::new("offset"))),
        kind,
        on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::BigQueryDialect;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&BigQueryDialect {}, sql)
            .unwrap()
            .remove(0);
        let columns = Columns::from([(
            "t".to_string(),
            vec!["cost".to_string(), "labels".to_string()],
        )]);
        rewrite(&mut s, &columns).unwrap();
        s.to_string()
    }

    #[test]
    fn unnest_joins_become_derived_tables() {
        let cases = [
            (
                "SELECT x.key FROM t, UNNEST(labels) AS x",
                "SELECT x.key FROM (SELECT \"t\".*, unnest(labels) AS \"x\" FROM t AS \"t\") AS \"t\"",
            ),
            (
                "SELECT labels.value FROM t AS bq LEFT JOIN UNNEST(labels) AS labels ON labels.key = 'env'",
                "SELECT labels.value FROM (SELECT \"bq\".* EXCLUDE (\"labels\"), unnest(bq_outer_elements(array_filter(labels, __u1 -> __u1['key'] = 'env'))) AS \"labels\" FROM t AS bq) AS bq",
            ),
            (
                "SELECT l.value FROM t, UNNEST(labels) l WHERE l.key = 'env' AND cost > 0 AND (LOWER(l.value) LIKE 'p%' OR l.value IS NULL)",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(array_filter(labels, __u1 -> (__u1['key'] = 'env') AND (LOWER(__u1['value']) LIKE 'p%' OR __u1['value'] IS NULL))) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE l.key = 'env' AND cost > 0 AND (LOWER(l.value) LIKE 'p%' OR l.value IS NULL)",
            ),
            (
                "SELECT l.value FROM t JOIN UNNEST(labels) l ON l.key = 'env' WHERE l.value = 'prod' OR cost > 1",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(array_filter(labels, __u1 -> __u1['key'] = 'env')) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE l.value = 'prod' OR cost > 1",
            ),
            (
                "SELECT l.value FROM t LEFT JOIN UNNEST(labels) l WHERE l.key IS NULL",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(bq_outer_elements(labels)) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE l.key IS NULL",
            ),
            (
                "SELECT invoice.month FROM t LEFT JOIN UNNEST(credits) AS credits WHERE LOWER(credits.name) LIKE 'c%' AND cost > 0",
                "SELECT invoice.month FROM (SELECT \"t\".*, unnest(array_filter(credits, __u1 -> LOWER(__u1['name']) LIKE 'c%')) AS \"credits\" FROM t AS \"t\") AS \"t\" WHERE LOWER(credits.name) LIKE 'c%' AND cost > 0",
            ),
            (
                "SELECT l.value FROM t LEFT JOIN UNNEST(labels) l ON l.key = 'env' WHERE CAST(l.value AS INT64) + 1 BETWEEN 1 AND 5",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(array_filter(labels, __u1 -> (__u1['key'] = 'env') AND (CAST(__u1['value'] AS INT64) + 1 BETWEEN 1 AND 5))) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE CAST(l.value AS INT64) + 1 BETWEEN 1 AND 5",
            ),
            (
                "SELECT l.value FROM t LEFT JOIN UNNEST(labels) l WHERE COALESCE(l.value, 'none') = 'none' OR l.key = 'a'",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(bq_outer_elements(labels)) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE COALESCE(l.value, 'none') = 'none' OR l.key = 'a'",
            ),
            (
                "SELECT l.value FROM t, UNNEST(labels) l WHERE RAND() < l.weight AND l.key IN (SELECT k FROM keys)",
                "SELECT l.value FROM (SELECT \"t\".*, unnest(labels) AS \"l\" FROM t AS \"t\") AS \"t\" WHERE RAND() < l.weight AND l.key IN (SELECT k FROM keys)",
            ),
            (
                "SELECT x.key, i FROM t JOIN UNNEST(labels) AS x WITH OFFSET AS i ON i > 0 WHERE x.key = 'env'",
                "SELECT x.key, i FROM (SELECT \"t\".*, unnest(labels) AS \"x\", unnest(range(0, cardinality(labels))) AS \"i\" FROM t AS \"t\") AS \"t\" WHERE (i > 0) AND (x.key = 'env')",
            ),
            (
                "SELECT x.key, offset FROM t LEFT JOIN UNNEST(labels) AS x WITH OFFSET",
                "SELECT x.key, offset FROM (SELECT \"t\".*, unnest(bq_outer_elements(labels)) AS \"x\", unnest(bq_outer_elements(range(0, cardinality(labels)))) AS \"offset\" FROM t AS \"t\") AS \"t\"",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rewritten(input), expected, "{input}");
        }
    }
}
