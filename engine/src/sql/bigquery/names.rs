//! Output column names as BigQuery gives them.
//!
//! - An unaliased field path is named by its last part: `invoice.month` → `month`.
//! - Other unaliased expressions are `f0_`, `f1_`, ... in order.
//! - Aliases keep their case (`CUD_credits`), where DataFusion would lower-case them;
//!   references to them in GROUP BY, HAVING, QUALIFY and ORDER BY follow.
//!
//! Only the outermost query's names are output names. Inner queries name their field
//! paths by the last part too (`(SELECT sku.id FROM t)` has a column `id`), unquoted,
//! so that references from outside stay case-insensitive.
//!
//! [`group_by_aliases`] makes a GROUP BY name that is a SELECT alias mean the alias,
//! as BigQuery reads it, even where a column has the same name.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, OrderByKind, Query, Select, SelectItem, SetExpr, Statement, VisitMut,
    VisitorMut, visit_expressions_mut,
};

use super::ast::quoted;

/// Names the output columns of `statement`'s outermost query, then the field paths
/// of the queries within.
pub fn rewrite(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        name_query(query);
    }
    let _ = statement.visit(&mut EachSelect(name_paths));
}

/// Replaces each GROUP BY name that is the alias of one SELECT expression by that
/// expression's position: BigQuery's "aliases in the SELECT clause override names in
/// the corresponding FROM clause", where DataFusion takes the column. `SELECT
/// TO_JSON_STRING(labels) AS labels ... GROUP BY labels` groups by the text.
pub fn group_by_aliases(statement: &mut Statement) {
    let _ = statement.visit(&mut EachSelect(alias_positions));
}

/// Calls its function on every SELECT of every query, set operations' sides included.
struct EachSelect<F>(F);

impl<F: FnMut(&mut Select)> VisitorMut for EachSelect<F> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        each_select(&mut query.body, &mut self.0);
        ControlFlow::Continue(())
    }
}

fn each_select(body: &mut SetExpr, f: &mut impl FnMut(&mut Select)) {
    match body {
        SetExpr::Select(select) => f(select),
        SetExpr::SetOperation { left, right, .. } => {
            each_select(left, f);
            each_select(right, f);
        }
        _ => {}
    }
}

fn alias_positions(select: &mut Select) {
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return;
    };
    for e in exprs {
        let Expr::Identifier(name) = e else { continue };
        // An alias of another expression than the column of that name.
        let names_other = |item: &SelectItem| match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                let same = |i: &Ident| i.value.eq_ignore_ascii_case(&name.value);
                same(alias) && !matches!(expr, Expr::Identifier(c) if same(c))
            }
            _ => false,
        };
        let mut positions = select
            .projection
            .iter()
            .enumerate()
            .filter(|(_, item)| names_other(item))
            .map(|(i, _)| i + 1);
        if let (Some(position), None) = (positions.next(), positions.next()) {
            *e = Expr::value(sqlparser::ast::Value::Number(position.to_string(), false));
        }
    }
}

/// Gives every unaliased field path (`sku.id`) of a SELECT the name of its last part.
fn name_paths(select: &mut Select) {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) = item
            && parts.len() > 1
        {
            let alias = Ident::new(parts[parts.len() - 1].value.clone());
            let expr = Expr::CompoundIdentifier(std::mem::take(parts));
            *item = SelectItem::ExprWithAlias { expr, alias };
        }
    }
}

fn name_query(query: &mut Query) {
    let mut aliases = Vec::new();
    name_set_expr(&mut query.body, &mut aliases);
    if let Some(order_by) = &mut query.order_by
        && let OrderByKind::Expressions(exprs) = &mut order_by.kind
    {
        for e in exprs {
            refer(&mut e.expr, &aliases);
        }
    }
}

fn name_set_expr(body: &mut SetExpr, aliases: &mut Vec<Ident>) {
    match body {
        SetExpr::Select(select) => {
            let mut anonymous = 0;
            for item in &mut select.projection {
                let named = match item {
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) if parts.len() > 1 => {
                        Some((
                            Expr::CompoundIdentifier(parts.clone()),
                            quoted(&parts[parts.len() - 1].value),
                        ))
                    }
                    SelectItem::UnnamedExpr(Expr::Identifier(_)) => None,
                    SelectItem::UnnamedExpr(e) => {
                        let name = format!("f{anonymous}_");
                        anonymous += 1;
                        Some((e.clone(), quoted(&name)))
                    }
                    SelectItem::ExprWithAlias { alias, .. } => {
                        if alias.quote_style.is_none()
                            && alias.value.chars().any(|c| c.is_ascii_uppercase())
                        {
                            *alias = quoted(&alias.value);
                            aliases.push(alias.clone());
                        }
                        None
                    }
                    _ => None,
                };
                if let Some((expr, alias)) = named {
                    *item = SelectItem::ExprWithAlias { expr, alias };
                }
            }
            if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                for e in exprs {
                    refer(e, aliases);
                }
            }
            for e in [&mut select.having, &mut select.qualify]
                .into_iter()
                .flatten()
            {
                refer(e, aliases);
            }
        }
        SetExpr::SetOperation { left, .. } => name_set_expr(left, aliases),
        SetExpr::Query(q) => name_query(q),
        _ => {}
    }
}

/// Points unquoted references to a case-preserved alias at it.
fn refer(expr: &mut Expr, aliases: &[Ident]) {
    if aliases.is_empty() {
        return;
    }
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::Identifier(i) = e
            && i.quote_style.is_none()
            && let Some(a) = aliases
                .iter()
                .find(|a| a.value.eq_ignore_ascii_case(&i.value))
        {
            *i = a.clone();
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::BigQueryDialect;
    use sqlparser::parser::Parser;

    #[test]
    fn outputs_are_named_as_bigquery_names_them() {
        let mut s = Parser::parse_sql(
            &BigQueryDialect {},
            "SELECT invoice.month, SUM(cost), SUM(x) AS CUD_credits, cost FROM t GROUP BY 1 ORDER BY cud_credits",
        )
        .unwrap()
        .remove(0);
        rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT invoice.month AS \"month\", SUM(cost) AS \"f0_\", SUM(x) AS \"CUD_credits\", cost FROM t GROUP BY 1 ORDER BY \"CUD_credits\""
        );
    }

    #[test]
    fn group_by_names_an_alias_before_a_column() {
        let mut s = Parser::parse_sql(
            &BigQueryDialect {},
            "SELECT TO_JSON_STRING(labels) AS labels, LOWER(sku) AS Sku, cost AS cost, \
             SUM(cost) FROM t GROUP BY labels, sku, cost, project \
             UNION ALL SELECT a AS x, b AS x, 1, 2 FROM (SELECT y AS z FROM u GROUP BY z) GROUP BY x",
        )
        .unwrap()
        .remove(0);
        group_by_aliases(&mut s);
        // An alias of its own column stays a name, a column no alias names too, and
        // so does a name two aliases share; a subquery's aliases are its own.
        assert_eq!(
            s.to_string(),
            "SELECT TO_JSON_STRING(labels) AS labels, LOWER(sku) AS Sku, cost AS cost, \
             SUM(cost) FROM t GROUP BY 1, 2, cost, project \
             UNION ALL SELECT a AS x, b AS x, 1, 2 FROM (SELECT y AS z FROM u GROUP BY 1) GROUP BY x"
        );
    }

    #[test]
    fn inner_field_paths_are_named_by_their_last_part() {
        let mut s = Parser::parse_sql(
            &BigQueryDialect {},
            "SELECT x.id FROM (SELECT sku.id, cost FROM t UNION ALL SELECT sku.id, cost FROM u) AS x",
        )
        .unwrap()
        .remove(0);
        rewrite(&mut s);
        assert_eq!(
            s.to_string(),
            "SELECT x.id AS \"id\" FROM (SELECT sku.id AS id, cost FROM t UNION ALL SELECT sku.id AS id, cost FROM u) AS x"
        );
    }
}
