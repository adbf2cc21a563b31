//! Building blocks for the rewrite passes: expressions made from SQL templates with
//! placeholders, names, and access to an array element's fields.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Spanned,
    Statement, Subscript, Value, visit_expressions_mut,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// Parses a template of this module's own (DuckDB syntax, for lambdas), replacing each
/// identifier named in `subs` by its expression. Templates are constants: a parse
/// failure is a bug.
pub fn template(text: &str, subs: &[(&str, &Expr)]) -> Expr {
    let mut expr = Parser::new(&DuckDbDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|e| panic!("bad rewrite template {text:?}: {e}"));
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Expr::Identifier(i) = e
            && let Some((_, with)) = subs.iter().find(|(name, _)| *name == i.value)
        {
            *e = (*with).clone();
        }
        ControlFlow::<()>::Continue(())
    });
    expr
}

/// Replaces, bottom-up, every expression of `statement` for which `convert` returns one.
pub fn rewrite_expressions(
    statement: &mut Statement,
    mut convert: impl FnMut(&Expr) -> Result<Option<Expr>>,
) -> Result<()> {
    let flow = visit_expressions_mut(statement, |e| match convert(e) {
        Ok(Some(new)) => {
            *e = new;
            ControlFlow::Continue(())
        }
        Ok(None) => ControlFlow::Continue(()),
        Err(err) => ControlFlow::<Error>::Break(err),
    });
    match flow {
        ControlFlow::Break(err) => Err(err),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The error for a construct billq cannot plan, with its place in the query.
pub fn unsupported(what: impl std::fmt::Display, node: &impl Spanned) -> Error {
    let start = node.span().start;
    if start.line == 0 {
        Error::Sql(format!("unsupported: {what}"))
    } else {
        Error::Sql(format!(
            "unsupported: {what} at line {}, column {}",
            start.line, start.column
        ))
    }
}

/// A double-quoted identifier: kept as written by DataFusion (no lower-casing).
pub fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// SQL text of a string literal.
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The text of a string literal expression.
pub fn literal_text(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The upper-case name of a function with a one-part name.
pub fn function_name(f: &Function) -> Option<String> {
    match f.name.0.as_slice() {
        [part] => part.as_ident().map(|i| i.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// The plain positional arguments of a call (none with names or clauses); `*` counts
/// as no argument.
pub fn function_args(f: &Function) -> Option<Vec<Expr>> {
    match &f.args {
        FunctionArguments::List(list)
            if list.clauses.is_empty() && list.duplicate_treatment.is_none() =>
        {
            list.args
                .iter()
                .filter(|a| !matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Wildcard)))
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect()
        }
        FunctionArguments::None => Some(vec![]),
        _ => None,
    }
}

/// `root['a']['b']`: record field access DataFusion plans on any expression,
/// lambda parameters included.
pub fn field_access(root: Expr, path: &[Ident]) -> Expr {
    if path.is_empty() {
        return root;
    }
    Expr::CompoundFieldAccess {
        root: Box::new(root),
        access_chain: path
            .iter()
            .map(|f| {
                AccessExpr::Subscript(Subscript::Index {
                    index: Expr::Value(Value::SingleQuotedString(f.value.clone()).into()),
                })
            })
            .collect(),
    }
}

/// Rebinds references to an array element inside `expr` to a lambda parameter:
/// `alias` and `alias.f.g` (or, with no alias, bare `f`) become `param` and
/// `param['f']['g']`.
pub fn bind_element(expr: &mut Expr, alias: Option<&str>, param: &str) {
    let _ = visit_expressions_mut(expr, |e| {
        let is_alias = |i: &Ident| alias.is_some_and(|a| i.value.eq_ignore_ascii_case(a));
        let replacement = match e {
            Expr::Identifier(i) if is_alias(i) => Some(Expr::Identifier(Ident::new(param))),
            Expr::Identifier(i) if alias.is_none() => Some(field_access(
                Expr::Identifier(Ident::new(param)),
                std::slice::from_ref(i),
            )),
            Expr::CompoundIdentifier(parts) if is_alias(&parts[0]) => Some(field_access(
                Expr::Identifier(Ident::new(param)),
                &parts[1..],
            )),
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_and_elements_rebind() {
        let arr = Expr::Identifier(Ident::new("credits"));
        let mut body = template("c.amount * 2 + cost", &[]);
        bind_element(&mut body, Some("c"), "__e1");
        let e = template(
            "array_transform(A, __e1 -> B)",
            &[("A", &arr), ("B", &body)],
        );
        assert_eq!(
            e.to_string(),
            "array_transform(credits, __e1 -> __e1['amount'] * 2 + cost)"
        );
        let mut bare = template("key = 'x'", &[]);
        bind_element(&mut bare, None, "__e2");
        assert_eq!(bare.to_string(), "__e2['key'] = 'x'");
    }
}
