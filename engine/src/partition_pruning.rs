//! Reading only the stored files of the accounts and months a query asks for.
//!
//! A store keeps a GCP table's rows in `billing_account_id=<account>/invoice_month=
//! <month>/` folders, named by the rows' `billing_account_id` and `invoice.month`
//! ([`crate::convert`]). DataFusion prunes row groups by their statistics, which it
//! does not read for a field of a record (`invoice.month`), so `WHERE invoice.month =
//! '202402'` read every month's files. [`PartitionPruning`] takes a scan's pushed-down
//! predicate and drops the files whose folder names another account or month than its
//! `=`, `IN` or `OR`-of-`=` conjuncts allow; the predicate still filters the rows read.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::{ScalarFunctionExpr, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::convert::{ACCOUNT_FOLDER, MONTH_FOLDER, escape_partition};
use crate::plan_rewrite::replace_file_scans;

/// Drops the files of a store's GCP table that lie in folders its scan's predicate
/// rules out.
#[derive(Debug)]
pub struct PartitionPruning;

impl PhysicalOptimizerRule for PartitionPruning {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_file_scans(plan, pruned)
    }

    fn name(&self) -> &str {
        "partition_pruning"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `config` without the files its predicate rules out, or `None` if it keeps them all.
fn pruned(config: &FileScanConfig) -> Option<FileScanConfig> {
    let predicate = config.file_source().filter()?;
    let mut allowed: HashMap<&str, Vec<String>> = HashMap::new();
    for conjunct in split_conjunction(&predicate) {
        if let Some((folder, values)) = folder_values(conjunct) {
            let escaped: Vec<String> = values.iter().map(|v| escape_partition(v)).collect();
            // Two conjuncts on one folder: the values both allow.
            match allowed.get_mut(folder) {
                Some(known) => known.retain(|v| escaped.contains(v)),
                None => {
                    allowed.insert(folder, escaped);
                }
            }
        }
    }
    if allowed.is_empty() {
        return None;
    }
    let kept = |file: &PartitionedFile| {
        let folders = store_folders(file.object_meta.location.as_ref())?;
        Some(allowed.iter().all(|(folder, values)| {
            values
                .iter()
                .any(|v| folders.get(folder) == Some(&v.as_str()))
        }))
    };
    let mut groups = Vec::new();
    let mut dropped = false;
    for group in &config.file_groups {
        let mut files = Vec::new();
        for file in group.iter() {
            // Not a store's file: nothing can be said of its rows.
            if kept(file)? {
                files.push(file.clone());
            } else {
                dropped = true;
            }
        }
        groups.push(files);
    }
    if !dropped {
        return None;
    }
    let file_groups = if config.output_ordering.is_empty() {
        balanced(groups.concat(), config.file_groups.len())
    } else {
        // Each file stays in its group: the groups' order is the scan's.
        groups.into_iter().map(FileGroup::new).collect()
    };
    Some(
        FileScanConfigBuilder::from(config.clone())
            .with_file_groups(file_groups)
            .build(),
    )
}

/// `files` in `n` groups of about equal bytes (largest first, each to the lightest);
/// as many groups as before, so that the scan's partitions stay as planned.
fn balanced(mut files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    let size = |f: &PartitionedFile| {
        f.range
            .as_ref()
            .map_or(f.object_meta.size, |r| (r.end - r.start) as u64)
    };
    files.sort_by_key(|f| std::cmp::Reverse(size(f)));
    let mut groups: Vec<(u64, Vec<_>)> = vec![(0, Vec::new()); n.max(1)];
    for file in files {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += size(&file);
        lightest.1.push(file);
    }
    groups
        .into_iter()
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

/// The partition folders of a store file's path (`.../billing_account_id=A/
/// invoice_month=M/f.parquet`): folder name → escaped value.
fn store_folders(path: &str) -> Option<HashMap<&str, &str>> {
    let mut parts = path.rsplit('/').skip(1);
    let month = parts
        .next()?
        .strip_prefix(MONTH_FOLDER)?
        .strip_prefix('=')?;
    let account = parts
        .next()?
        .strip_prefix(ACCOUNT_FOLDER)?
        .strip_prefix('=')?;
    Some(HashMap::from([
        (MONTH_FOLDER, month),
        (ACCOUNT_FOLDER, account),
    ]))
}

/// The folder a conjunct `key = 'v'`, `key IN ('v', ...)` or `key = 'v' OR key = 'w'`
/// names, and its values.
fn folder_values(e: &Arc<dyn PhysicalExpr>) -> Option<(&'static str, Vec<String>)> {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        return match b.op() {
            Operator::Eq => {
                let (key, value) = match (folder(b.left()), text(b.right())) {
                    (Some(key), Some(value)) => (key, value),
                    _ => (folder(b.right())?, text(b.left())?),
                };
                Some((key, vec![value]))
            }
            Operator::Or => {
                let (key, mut values) = folder_values(b.left())?;
                let (other, more) = folder_values(b.right())?;
                values.extend(more);
                (key == other).then_some((key, values))
            }
            _ => None,
        };
    }
    let list = e.downcast_ref::<InListExpr>()?;
    if list.negated() {
        return None;
    }
    let values = list.list().iter().map(text).collect::<Option<Vec<_>>>()?;
    Some((folder(list.expr())?, values))
}

/// The folder whose name is the value of `e`: `billing_account_id`, or
/// `get_field(invoice, 'month')`, as text.
fn folder(e: &Arc<dyn PhysicalExpr>) -> Option<&'static str> {
    if let Some(cast) = e.downcast_ref::<CastExpr>() {
        return match cast.cast_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => folder(cast.expr()),
            _ => None,
        };
    }
    if let Some(c) = e.downcast_ref::<Column>() {
        return (c.name() == ACCOUNT_FOLDER).then_some(ACCOUNT_FOLDER);
    }
    let f = e.downcast_ref::<ScalarFunctionExpr>()?;
    let [record, field] = f.args() else {
        return None;
    };
    let is_invoice = record
        .downcast_ref::<Column>()
        .is_some_and(|c| c.name() == "invoice");
    (f.name() == "get_field" && is_invoice && text(field).as_deref() == Some("month"))
        .then_some(MONTH_FOLDER)
}

/// The text of a literal.
fn text(e: &Arc<dyn PhysicalExpr>) -> Option<String> {
    scalar_text(e.downcast_ref::<Literal>()?.value())
}

fn scalar_text(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        ScalarValue::Dictionary(_, v) => scalar_text(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{plan, rows, seed_session};
    use crate::{Dialect, Session};

    /// `bill`: 14 rows of one account, invoiced in 202006 (4), 202310 (5) and 202311 (5).
    async fn session() -> Session {
        seed_session("bill", "invoice_example.jsonl").await
    }

    /// The months of the files the plan of `sql` reads.
    async fn months_read(s: &Session, sql: &str) -> Vec<&'static str> {
        let plan = plan(s, sql).await;
        ["202006", "202310", "202311"]
            .into_iter()
            .filter(|m| plan.contains(&format!("invoice_month={m}/")))
            .collect()
    }

    #[tokio::test]
    async fn reads_only_the_folders_of_the_months_and_accounts_asked_for() {
        let s = session().await;
        let per_month = "SELECT invoice.month, COUNT(*), money_sum(cost) FROM bill";
        let all = rows(
            &s,
            &format!("{per_month} GROUP BY 1 ORDER BY 1"),
            Dialect::BigQuery,
        )
        .await;
        assert_eq!(all.len(), 3, "{all:?}");
        for (filter, months, answer) in [
            (
                "invoice.month = '202311'",
                vec!["202311"],
                vec![all[2].clone()],
            ),
            (
                "invoice.month IN ('202006', '202311') AND cost > -1000",
                vec!["202006", "202311"],
                vec![all[0].clone(), all[2].clone()],
            ),
            (
                "'202310' = invoice.month AND billing_account_id = '123456-ABCDEF-123456'",
                vec!["202310"],
                vec![all[1].clone()],
            ),
            // Not an equality: every file is read.
            (
                "invoice.month > '202006'",
                vec!["202006", "202310", "202311"],
                all[1..].to_vec(),
            ),
        ] {
            let sql = format!("{per_month} WHERE {filter} GROUP BY 1 ORDER BY 1");
            assert_eq!(rows(&s, &sql, Dialect::BigQuery).await, answer, "{filter}");
            assert_eq!(months_read(&s, &sql).await, months, "{filter}");
        }
        let nobody = "SELECT COUNT(*) FROM bill WHERE billing_account_id = 'nobody'";
        assert_eq!(rows(&s, nobody, Dialect::BigQuery).await, ["0"]);
        assert_eq!(months_read(&s, nobody).await, Vec::<&str>::new());
    }
}
