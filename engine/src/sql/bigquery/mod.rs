//! BigQuery Standard SQL: parse with sqlparser's BigQuery dialect, then rewrite the AST
//! into SQL that DataFusion plans with BigQuery's meaning.
//!
//! Passes run in order over one statement, each a walk of the AST:
//! 1. table paths: `` `project.dataset.table` `` (and `project-ID` with hyphens) resolve
//!    to the name the table is registered under, and GROUP BY names that are SELECT
//!    aliases become their positions ([`names::group_by_aliases`]);
//! 2. [`unnest_subquery`]: subqueries over `UNNEST(array)` become array functions;
//! 3. [`unnest_from`]: `UNNEST` joins in FROM become derived tables that unnest;
//! 4. [`functions`]: functions, casts and `/` with BigQuery's semantics;
//! 5. [`names`]: output column names as BigQuery gives them.

pub(crate) mod ast;
pub mod functions;
pub mod names;
pub mod unnest_from;
pub mod unnest_subquery;

pub use unnest_from::Columns;

use std::ops::ControlFlow;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Statement, visit_relations_mut};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// Parses one BigQuery statement and rewrites it for DataFusion; `tables` names the
/// registered tables and their columns.
pub fn rewrite(text: &str, tables: &Columns) -> Result<Statement> {
    let mut statements =
        Parser::parse_sql(&BigQueryDialect {}, text).map_err(|e| Error::Sql(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Error::Sql(format!(
            "expected one statement, found {}",
            statements.len()
        )));
    }
    let mut statement = statements.remove(0);
    resolve_tables(&mut statement, tables);
    names::group_by_aliases(&mut statement);
    unnest_subquery::rewrite(&mut statement)?;
    unnest_from::rewrite(&mut statement, tables)?;
    functions::rewrite(&mut statement)?;
    names::rewrite(&mut statement);
    Ok(statement)
}

/// Replaces each table path that names a registered table by that table's name.
/// A path matches by its full text (`project.dataset.table`) or by its last part.
fn resolve_tables(statement: &mut Statement, tables: &Columns) {
    let _ = visit_relations_mut(statement, |name: &mut ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let full = parts.join(".");
        let last = parts.last().cloned().unwrap_or_default();
        let target = [full, last].into_iter().find(|n| tables.contains_key(n));
        if let Some(target) = target {
            *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
                '"', target,
            ))]);
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(names: &[&str]) -> Columns {
        names.iter().map(|s| (s.to_string(), vec![])).collect()
    }

    #[test]
    fn backticked_paths_resolve_to_registered_names() {
        let cases = [
            (
                "SELECT cost FROM `project.dataset.gcp_billing_export_v1_X`",
                "SELECT cost FROM \"project.dataset.gcp_billing_export_v1_X\"",
            ),
            (
                "SELECT 1 FROM `project-ID.dataset.gcp_billing_export_v1_X` AS t",
                "SELECT 1 FROM \"project-ID.dataset.gcp_billing_export_v1_X\" AS t",
            ),
            (
                "SELECT 1 FROM `my-project`.billing.gcp_billing_export",
                "SELECT 1 FROM \"gcp_billing_export\"",
            ),
            ("SELECT 1 FROM other", "SELECT 1 FROM other"),
        ];
        let t = tables(&[
            "project.dataset.gcp_billing_export_v1_X",
            "project-ID.dataset.gcp_billing_export_v1_X",
            "gcp_billing_export",
        ]);
        for (input, expected) in cases {
            let mut s = Parser::parse_sql(&BigQueryDialect {}, input)
                .unwrap()
                .remove(0);
            resolve_tables(&mut s, &t);
            assert_eq!(s.to_string(), expected, "{input}");
        }
    }

    #[test]
    fn more_than_one_statement_is_refused() {
        let err = rewrite("SELECT 1; SELECT 2", &tables(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SQL error: expected one statement, found 2"
        );
    }
}
