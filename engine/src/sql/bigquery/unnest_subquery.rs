//! Subqueries over `UNNEST(array)` of the outer row become array functions.
//!
//! DataFusion cannot run an `UNNEST` of an outer row's column inside a subquery, and
//! would plan a join for it where an array function does the work in place:
//!
//! | BigQuery | planned as |
//! |---|---|
//! | `(SELECT SUM(e) FROM UNNEST(a) x [WHERE w])` | `bq_array_sum(array_transform(array_filter(a, x -> w), x -> e))` |
//! | `(SELECT COUNT(*) FROM UNNEST(a) x ...)` | `coalesce(cardinality(...), 0)` |
//! | `MIN`, `MAX`, `AVG`, `STRING_AGG`, `ARRAY_AGG`, `LOGICAL_OR`, `LOGICAL_AND` | `array_min`, `array_max`, `array_avg`, `array_to_string`, `array_transform`, `array_any_match` |
//! | `(SELECT e FROM UNNEST(a) x WHERE w)` (no aggregate) | the first match: `array_element(array_transform(...), 1)` |
//! | `v [NOT] IN (SELECT e FROM UNNEST(a) ...)`, `v [NOT] IN UNNEST(a)` | `array_has(...) IS [NOT] TRUE` |
//! | `[NOT] EXISTS (SELECT ... FROM UNNEST(a) x WHERE w)` | `array_any_match(a, x -> w) IS [NOT] TRUE` (no list is built) |
//! | `[NOT] EXISTS (SELECT ... FROM UNNEST(a))` | `(cardinality(a) > 0) IS [NOT] TRUE` |
//! | `ARRAY(SELECT e FROM UNNEST(a) x [WHERE w])` | `coalesce(array_transform(array_filter(a, x -> w), x -> e), make_array())` (`[]` for no rows) |
//!
//! `ORDER BY` the selected value (as written, its alias, or `1`) sorts the values
//! (`array_sort`, NULLs first ascending and last descending, as BigQuery); `LIMIT n`
//! keeps the first `n` of them (`array_slice`), or makes a scalar NULL and `EXISTS`
//! false when `n` is 0.
//!
//! Truth tests are `IS [NOT] TRUE`, not `[NOT] coalesce(x, false)`: the optimizer
//! splits `NOT coalesce(x, false)` into `x IS NULL OR NOT x`, which computes `x` twice.
//!
//! `SUM(c.amount)` over `credits` becomes `credits_total`'s kin `bq_array_sum`, which
//! keeps BigQuery's result type (DataFusion's `array_sum` turns NUMERIC into FLOAT64).
//! With no alias, bare names in the subquery are the element's fields.

use sqlparser::ast::{
    Expr, FunctionArguments, GroupByExpr, Ident, LimitClause, OrderByKind, Query, SelectItem,
    SetExpr, Statement, TableFactor, Value,
};

use super::ast::{
    bind_element, function_args, function_name, rewrite_expressions, template, unsupported,
};
use crate::error::Result;

/// Rewrites every subquery over `UNNEST` in `statement`.
pub fn rewrite(statement: &mut Statement) -> Result<()> {
    let mut counter = 0usize;
    rewrite_expressions(statement, |e| convert(e, &mut counter))
}

/// A subquery `SELECT item FROM UNNEST(array) [AS alias] [WHERE filter]`, with the
/// element bound to a lambda parameter.
struct OverUnnest {
    param: String,
    array: Expr,
    /// The subquery's WHERE.
    filter: Option<Expr>,
    item: Expr,
    /// The subquery's `LIMIT n`.
    limit: Option<Expr>,
    /// The subquery's `ORDER BY` of its selected value: (descending, NULLs first).
    order: Option<(bool, bool)>,
}

impl OverUnnest {
    /// `e`, or NULL (`otherwise`) under a `LIMIT` that keeps no row.
    fn limited(&self, e: Expr, otherwise: &str) -> Expr {
        match &self.limit {
            None => e,
            Some(n) => template(
                &format!("CASE WHEN N >= 1 THEN E ELSE {otherwise} END"),
                &[("N", n), ("E", &e)],
            ),
        }
    }

    /// The selected values: `item` of each selected element, in the `ORDER BY`'s order.
    fn ordered(&self) -> Expr {
        let all = transform(&self.selected(), &self.param, &self.item);
        match self.order {
            None => all,
            Some((descending, nulls_first)) => template(
                &format!(
                    "array_sort(A, '{}', '{}')",
                    if descending { "DESC" } else { "ASC" },
                    if nulls_first {
                        "NULLS FIRST"
                    } else {
                        "NULLS LAST"
                    }
                ),
                &[("A", &all)],
            ),
        }
    }

    /// The selected values in order, the first `n` under `LIMIT n`.
    fn values(&self) -> Expr {
        let ordered = self.ordered();
        match &self.limit {
            None => ordered,
            Some(n) => template("array_slice(A, 1, N)", &[("A", &ordered), ("N", n)]),
        }
    }

    /// The elements the subquery selects from: the array, filtered by the WHERE.
    fn selected(&self) -> Expr {
        match &self.filter {
            None => self.array.clone(),
            Some(w) => template(
                &format!("array_filter(A, {} -> W)", self.param),
                &[("A", &self.array), ("W", w)],
            ),
        }
    }
}

fn convert(e: &Expr, counter: &mut usize) -> Result<Option<Expr>> {
    Ok(match e {
        Expr::Subquery(q) => over_unnest(q, counter)?.map(|u| u.limited(scalar(&u), "NULL")),
        Expr::Function(f) if function_name(f).as_deref() == Some("ARRAY") => {
            let FunctionArguments::Subquery(q) = &f.args else {
                return Ok(None);
            };
            let Some(u) = over_unnest(q, counter)? else {
                return Err(unsupported(
                    "ARRAY(SELECT ...) of anything but UNNEST(array)",
                    q.as_ref(),
                ));
            };
            // Zero rows, even of a NULL array, make an empty array.
            Some(template("coalesce(V, make_array())", &[("V", &u.values())]))
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => over_unnest(subquery, counter)?.map(|u| membership(&u.values(), expr, *negated)),
        Expr::InUnnest {
            expr,
            array_expr,
            negated,
        } => Some(membership(array_expr, expr, *negated)),
        Expr::Exists { subquery, negated } => match over_unnest(subquery, counter)? {
            Some(u) => {
                let any = match &u.filter {
                    None => template("(cardinality(A) > 0)", &[("A", &u.array)]),
                    Some(w) => template(
                        &format!("array_any_match(A, {} -> W)", u.param),
                        &[("A", &u.array), ("W", w)],
                    ),
                };
                Some(is_true(u.limited(any, "false"), *negated))
            }
            None => None,
        },
        _ => None,
    })
}

fn membership(values: &Expr, value: &Expr, negated: bool) -> Expr {
    let has = template("array_has(A, V)", &[("A", values), ("V", value)]);
    is_true(has, negated)
}

/// `e IS TRUE`, or `e IS NOT TRUE`: NULL is false, in one evaluation of `e`.
fn is_true(e: Expr, negated: bool) -> Expr {
    if negated {
        Expr::IsNotTrue(Box::new(e))
    } else {
        Expr::IsTrue(Box::new(e))
    }
}

/// `array_transform(array, param -> item)`, or the array itself for `param -> param`.
fn transform(array: &Expr, param: &str, item: &Expr) -> Expr {
    if matches!(item, Expr::Identifier(i) if i.value == param) {
        return array.clone();
    }
    let text = format!("array_transform(A, {param} -> B)");
    template(&text, &[("A", array), ("B", item)])
}

fn scalar(u: &OverUnnest) -> Expr {
    let array = u.selected();
    let (param, item) = (&u.param, &u.item);
    let aggregate = match item {
        Expr::Function(f) if f.over.is_none() => function_name(f).zip(function_args(f)),
        _ => None,
    };
    let first_selected = || template("array_element(T, 1)", &[("T", &u.ordered())]);
    let Some((name, args)) = aggregate else {
        return first_selected();
    };
    let first = args.first().cloned();
    let values = |arg: &Option<Expr>| arg.as_ref().map(|a| transform(&array, param, a));
    let nonempty = |e: &Expr| {
        template(
            "CASE WHEN cardinality(A) > 0 THEN E END",
            &[("A", &array), ("E", e)],
        )
    };
    match (name.as_str(), values(&first)) {
        ("SUM", Some(v)) => template("bq_array_sum(V)", &[("V", &v)]),
        ("COUNT", None) => template("coalesce(cardinality(A), 0)", &[("A", &array)]),
        ("COUNT", Some(_)) if is_wildcard_like(first.as_ref()) => {
            template("coalesce(cardinality(A), 0)", &[("A", &array)])
        }
        ("COUNT", Some(v)) => template(
            "coalesce(cardinality(array_filter(V, __x -> __x IS NOT NULL)), 0)",
            &[("V", &v)],
        ),
        ("MIN", Some(v)) => template("array_min(V)", &[("V", &v)]),
        ("MAX", Some(v)) => template("array_max(V)", &[("V", &v)]),
        ("AVG", Some(v)) => template("array_avg(V)", &[("V", &v)]),
        ("ANY_VALUE", Some(v)) => template("array_element(V, 1)", &[("V", &v)]),
        ("ARRAY_AGG", Some(v)) => v,
        ("STRING_AGG", Some(v)) => {
            let sep = args.get(1).cloned().unwrap_or_else(|| template("','", &[]));
            nonempty(&template(
                "array_to_string(V, S)",
                &[("V", &v), ("S", &sep)],
            ))
        }
        ("LOGICAL_OR", Some(v)) => {
            nonempty(&template("array_any_match(V, __x -> __x)", &[("V", &v)]))
        }
        ("LOGICAL_AND", Some(v)) => nonempty(&template(
            "NOT array_any_match(V, __x -> NOT __x)",
            &[("V", &v)],
        )),
        _ => first_selected(),
    }
}

fn is_wildcard_like(arg: Option<&Expr>) -> bool {
    matches!(arg, Some(Expr::Value(_)))
}

/// Recognises a subquery over `UNNEST`; refuses, with its reason, one it cannot plan.
fn over_unnest(q: &Query, counter: &mut usize) -> Result<Option<OverUnnest>> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return Ok(None);
    };
    let [from] = select.from.as_slice() else {
        return Ok(None);
    };
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset,
        ..
    } = &from.relation
    else {
        return Ok(None);
    };
    let refuse = |what: &str| Err(unsupported(format!("{what} in a subquery over UNNEST"), q));
    if !from.joins.is_empty() {
        return refuse("a JOIN");
    }
    if *with_offset || array_exprs.len() != 1 {
        return refuse("WITH OFFSET or several arrays");
    }
    if q.with.is_some() {
        return refuse("WITH");
    }
    let limit = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: Some(n),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => Some(n.clone()),
        Some(_) => return refuse("OFFSET"),
    };
    if !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        || select.having.is_some()
        || select.distinct.is_some()
    {
        return refuse("GROUP BY, HAVING or DISTINCT");
    }
    *counter += 1;
    let param = format!("__e{counter}");
    let alias = alias.as_ref().map(|a| a.name.value.as_str());
    // `SELECT *` of an UNNEST is its element.
    let (written, named) = match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(e)] => (Some(e), None),
        [SelectItem::ExprWithAlias { expr: e, alias }] => (Some(e), Some(alias)),
        [SelectItem::Wildcard(_)] => (None, None),
        _ => return refuse("a select list other than one expression"),
    };
    let item = match written {
        Some(e) => {
            let mut e = e.clone();
            bind_element(&mut e, alias, &param);
            e
        }
        None => Expr::Identifier(param.as_str().into()),
    };
    // Only the selected value can be ordered by: the list of values is what is sorted.
    let order = match q.order_by.as_ref().map(|o| &o.kind) {
        None => None,
        Some(OrderByKind::Expressions(keys)) => match keys.as_slice() {
            [key] if orders_selected(&key.expr, written, named) => {
                let descending = key.options.asc == Some(false);
                Some((descending, key.options.nulls_first.unwrap_or(!descending)))
            }
            _ => return refuse("ORDER BY other than the selected value"),
        },
        Some(OrderByKind::All(_)) => return refuse("ORDER BY ALL"),
    };
    let filter = select.selection.clone().map(|mut filter| {
        bind_element(&mut filter, alias, &param);
        filter
    });
    Ok(Some(OverUnnest {
        param,
        array: array_exprs[0].clone(),
        filter,
        item,
        limit,
        order,
    }))
}

/// Whether an `ORDER BY` key is the select list's one value: `1`, the value as written,
/// or its alias.
fn orders_selected(key: &Expr, written: Option<&Expr>, named: Option<&Ident>) -> bool {
    let ordinal = matches!(key, Expr::Value(v) if v.value == Value::Number("1".into(), false));
    let alias = matches!((key, named), (Expr::Identifier(k), Some(n)) if k.value.eq_ignore_ascii_case(&n.value));
    ordinal || alias || written == Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::BigQueryDialect;
    use sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&BigQueryDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite(&mut s).unwrap();
        s.to_string()
    }

    #[test]
    fn subqueries_over_unnest_become_array_functions() {
        let cases = [
            (
                "SELECT ARRAY(SELECT c.id FROM UNNEST(credits) c WHERE c.amount < 0) FROM t",
                "SELECT coalesce(array_transform(array_filter(credits, __e1 -> __e1['amount'] < 0), __e1 -> __e1['id']), make_array()) FROM t",
            ),
            (
                "SELECT IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0) FROM t",
                "SELECT IFNULL(bq_array_sum(array_transform(credits, __e1 -> __e1['amount'])), 0) FROM t",
            ),
            (
                "SELECT 1 FROM t WHERE 'color' NOT IN (SELECT key FROM UNNEST(tags))",
                "SELECT 1 FROM t WHERE array_has(array_transform(tags, __e1 -> __e1['key']), 'color') IS NOT TRUE",
            ),
            (
                "SELECT (SELECT l.value FROM UNNEST(labels) AS l WHERE l.key = 'env') FROM t",
                "SELECT array_element(array_transform(array_filter(labels, __e1 -> __e1['key'] = 'env'), __e1 -> __e1['value']), 1) FROM t",
            ),
            (
                "SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM UNNEST(labels) l WHERE l.key = 'env')",
                "SELECT 1 FROM t WHERE array_any_match(labels, __e1 -> __e1['key'] = 'env') IS TRUE",
            ),
            (
                "SELECT NOT EXISTS (SELECT * FROM UNNEST(credits)) FROM t",
                "SELECT (cardinality(credits) > 0) IS NOT TRUE FROM t",
            ),
            (
                "SELECT (SELECT COUNT(*) FROM UNNEST(credits)) FROM t",
                "SELECT coalesce(cardinality(credits), 0) FROM t",
            ),
            (
                "SELECT 'a' IN UNNEST(xs) FROM t",
                "SELECT array_has(xs, 'a') IS TRUE FROM t",
            ),
            (
                "SELECT (SELECT l.value FROM UNNEST(labels) l WHERE l.key = 'env' LIMIT 1) FROM t",
                "SELECT CASE WHEN 1 >= 1 THEN array_element(array_transform(array_filter(labels, __e1 -> __e1['key'] = 'env'), __e1 -> __e1['value']), 1) ELSE NULL END FROM t",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rewritten(input), expected, "{input}");
        }
    }

    #[test]
    fn unsupported_shapes_are_named() {
        let mut s = Parser::parse_sql(
            &BigQueryDialect {},
            "SELECT (SELECT c.amount FROM UNNEST(credits) c ORDER BY c.name LIMIT 1) FROM t",
        )
        .unwrap()
        .remove(0);
        let err = rewrite(&mut s).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "SQL error: unsupported: ORDER BY other than the selected value in a subquery over UNNEST"
            ),
            "{err}"
        );
    }
}
