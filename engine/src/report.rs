//! Reports defined as SQL files plus a small spec (`report.toml`: a title and, per
//! table, a name, a title, its SQL file and an optional bar chart), run over a
//! session's tables and written as CSV and JSON per table, a Markdown summary and one
//! self-contained HTML file with inline SVG charts. The built-in monthly report is
//! `engine/reports/monthly/`; users copy it and add their own tables without code.
//!
//! The SQL is DataFusion's, over `focus` and `focus_projects` (`focus` with each row's
//! project from the config); `${month}` (`YYYY-MM`), `${previous}` (the month before)
//! and `${six_months_ago}` are replaced before it runs. The same data gives the same
//! bytes: only the `generated` line of the summary and the HTML changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;

use std::str::FromStr;

use bigdecimal::BigDecimal;

use crate::config::{Budget, Project};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::sql::Dialect;

/// A report's spec.
#[derive(Debug, Clone, Deserialize)]
pub struct Spec {
    pub title: String,
    pub tables: Vec<TableSpec>,
    /// SQL text by file name.
    #[serde(skip)]
    sql: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSpec {
    pub name: String,
    pub title: String,
    pub sql: String,
    pub chart: Option<Chart>,
}

/// A bar chart of one column (`value`) by another (`label`); `stacked` splits each
/// label's bar by `series`.
#[derive(Debug, Clone, Deserialize)]
pub struct Chart {
    pub kind: String,
    pub label: String,
    pub value: String,
    pub series: Option<String>,
}

/// The built-in monthly report's files.
const MONTHLY: [(&str, &str); 14] = [
    (
        "report.toml",
        include_str!("../reports/monthly/report.toml"),
    ),
    (
        "invoice_totals.sql",
        include_str!("../reports/monthly/invoice_totals.sql"),
    ),
    (
        "by_service.sql",
        include_str!("../reports/monthly/by_service.sql"),
    ),
    (
        "by_project.sql",
        include_str!("../reports/monthly/by_project.sql"),
    ),
    (
        "by_charge.sql",
        include_str!("../reports/monthly/by_charge.sql"),
    ),
    (
        "untagged.sql",
        include_str!("../reports/monthly/untagged.sql"),
    ),
    (
        "month_over_month.sql",
        include_str!("../reports/monthly/month_over_month.sql"),
    ),
    ("trend.sql", include_str!("../reports/monthly/trend.sql")),
    (
        "top_movers.sql",
        include_str!("../reports/monthly/top_movers.sql"),
    ),
    (
        "late_charges.sql",
        include_str!("../reports/monthly/late_charges.sql"),
    ),
    (
        "projection.sql",
        include_str!("../reports/monthly/projection.sql"),
    ),
    (
        "by_team.sql",
        include_str!("../reports/monthly/by_team.sql"),
    ),
    (
        "domain_total.sql",
        include_str!("../reports/monthly/domain_total.sql"),
    ),
    (
        "trend_by_service.sql",
        include_str!("../reports/monthly/trend_by_service.sql"),
    ),
];

impl Spec {
    /// The built-in monthly report.
    pub fn monthly() -> Result<Self> {
        let files: BTreeMap<String, String> = MONTHLY
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        Self::from_files(Path::new("<built-in monthly report>"), files)
    }

    /// A report from a folder holding `report.toml` and its SQL files.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name.ends_with(".sql") || name == "report.toml" {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                files.insert(name, text);
            }
        }
        Self::from_files(dir, files)
    }

    fn from_files(origin: &Path, mut files: BTreeMap<String, String>) -> Result<Self> {
        let bad = |message: String| Error::Catalog {
            path: origin.join("report.toml"),
            message,
        };
        let text = files
            .remove("report.toml")
            .ok_or_else(|| bad("no report.toml".into()))?;
        let mut spec: Spec = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        for t in &spec.tables {
            if !files.contains_key(&t.sql) {
                return Err(bad(format!(
                    "table {} names {}, which is not there",
                    t.name, t.sql
                )));
            }
        }
        spec.sql = files;
        Ok(spec)
    }
}

/// A month as `YYYY-MM`, checked, and the months around it the SQL may use.
pub struct Month {
    pub text: String,
    year: i32,
    month: u32,
}

impl Month {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Unanswerable(format!("--month {text:?} is not YYYY-MM"));
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        let (year, month): (i32, u32) =
            (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Self {
            text: text.to_string(),
            year,
            month,
        })
    }

    /// `YYYY-MM` `n` months earlier.
    fn back(&self, n: u32) -> String {
        let index = self.year * 12 + self.month as i32 - 1 - n as i32;
        format!(
            "{:04}-{:02}",
            index.div_euclid(12),
            index.rem_euclid(12) + 1
        )
    }
}

/// One table of a run report: column names and rows of display text (`None`: NULL).
pub struct Table {
    pub spec: TableSpec,
    pub columns: Vec<String>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// A value as the report writes it: decimals exactly, without trailing zeros.
fn cell(array: &dyn Array, row: usize, formatter: &ArrayFormatter) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let text = formatter.value(row).to_string();
    Some(match array.data_type() {
        DataType::Decimal128(_, s) if *s > 0 && text.contains('.') => {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => text,
    })
}

fn table(
    spec: &TableSpec,
    batches: &[RecordBatch],
    schema: &arrow::datatypes::Schema,
) -> Result<Table> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| cell(c.as_ref(), row, f))
                    .collect(),
            );
        }
    }
    Ok(Table {
        spec: spec.clone(),
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        numeric: schema
            .fields()
            .iter()
            .map(|f| f.data_type().is_numeric())
            .collect(),
        rows,
    })
}

/// `text` as an SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Registers `focus_projects`: the `focus` view with `x_Project`, the first of
/// `projects` a row belongs to (by billing or sub-account, or by a tag), else
/// `(unassigned)`; so per-project totals add up to the whole bill.
pub async fn register_projects(session: &Session, projects: &[Project]) -> Result<()> {
    let mut case = String::from("CASE");
    for p in projects {
        let accounts: Vec<String> = p.accounts.iter().map(|a| lit(a)).collect();
        let mut tests: Vec<String> = Vec::new();
        if !accounts.is_empty() {
            let list = accounts.join(", ");
            tests.push(format!(
                "\"BillingAccountId\" IN ({list}) OR \"SubAccountId\" IN ({list})"
            ));
        }
        tests.extend(
            p.tags
                .iter()
                .map(|(k, v)| format!("tag(\"Tags\", {}) = {}", lit(k), lit(v))),
        );
        if !tests.is_empty() {
            let _ = write!(case, " WHEN {} THEN {}", tests.join(" OR "), lit(&p.name));
        }
    }
    let case = if case == "CASE" {
        "'(unassigned)'".to_string()
    } else {
        case + " ELSE '(unassigned)' END"
    };
    session
        .context()
        .sql(&format!(
            "CREATE OR REPLACE VIEW focus_projects AS SELECT *, {case} AS \"x_Project\" FROM focus"
        ))
        .await?;
    Ok(())
}

/// Runs every table of `spec` for `month`.
pub async fn run(
    session: &Session,
    spec: &Spec,
    month: &Month,
    projects: &[Project],
) -> Result<Vec<Table>> {
    if !session.has_table("focus") {
        return Err(Error::Unanswerable(
            "the report needs billing data: no GCP, AWS, Azure or FOCUS table in the given stores"
                .into(),
        ));
    }
    register_projects(session, projects).await?;
    let mut out = Vec::new();
    for t in &spec.tables {
        let sql = spec.sql[&t.sql]
            .replace("${month}", &month.text)
            .replace("${previous}", &month.back(1))
            .replace("${six_months_ago}", &month.back(6));
        let df = session
            .sql(&sql, Dialect::DataFusion)
            .await
            .map_err(|e| Error::Unanswerable(format!("report table {}: {e}", t.name)))?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        out.push(table(t, &batches, &schema)?);
    }
    Ok(out)
}

fn csv(t: &Table) -> String {
    let quote = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut out = t
        .columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| quote(v.as_deref().unwrap_or("")))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Rows as JSON objects; numbers keep their exact decimal text.
fn json(t: &Table) -> String {
    let rows: Vec<String> = t
        .rows
        .iter()
        .map(|row| {
            let fields: Vec<String> = t
                .columns
                .iter()
                .zip(row)
                .zip(&t.numeric)
                .map(|((c, v), numeric)| {
                    let value = match v {
                        None => "null".to_string(),
                        Some(v) if *numeric => v.clone(),
                        Some(v) => serde_json::Value::String(v.clone()).to_string(),
                    };
                    format!("{}: {value}", serde_json::Value::String(c.clone()))
                })
                .collect();
            format!("  {{{}}}", fields.join(", "))
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

fn markdown_table(t: &Table) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}\n",
        t.columns.join(" | "),
        " --- |".repeat(t.columns.len())
    );
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| escape(v.as_deref().unwrap_or("")))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of `chart.value` by `chart.label`, as inline SVG.
fn svg_chart(t: &Table, chart: &Chart) -> Option<String> {
    let label = t.columns.iter().position(|c| *c == chart.label)?;
    let value = t.columns.iter().position(|c| *c == chart.value)?;
    // Amounts in different currencies share the axis: each bar says its currency.
    let currency = t.columns.iter().position(|c| c == "currency");
    let bars: Vec<(String, f64, String)> = t
        .rows
        .iter()
        .filter_map(|r| {
            let text = r[value].clone()?;
            let unit = currency.and_then(|i| r[i].clone()).unwrap_or_default();
            Some((
                r[label].clone().unwrap_or_default(),
                text.parse().ok()?,
                format!("{text} {unit}").trim_end().to_string(),
            ))
        })
        .take(12)
        .collect();
    if bars.is_empty() {
        return None;
    }
    let max = bars
        .iter()
        .map(|b| b.1.abs())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (width, row) = (640.0, 26.0);
    let height = row * bars.len() as f64 + 10.0;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">"#,
        html_escape(&t.spec.title)
    );
    for (i, (name, v, text)) in bars.iter().enumerate() {
        let y = 5.0 + i as f64 * row;
        let w = (v.abs() / max * 360.0).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty:.1}" font-size="12">{name}</text><rect class="bar" x="200" y="{y:.1}" width="{w:.1}" height="18" fill="{fill}"/><text x="{tx:.1}" y="{ty:.1}" font-size="12">{text}</text>"##,
            ty = y + 13.0,
            name = html_escape(&name.chars().take(30).collect::<String>()),
            fill = if *v < 0.0 { "#c0504d" } else { "#4f81bd" },
            tx = 205.0 + w,
            text = html_escape(text),
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Series colours of stacked charts.
const PALETTE: [&str; 9] = [
    "#4f81bd", "#c0504d", "#9bbb59", "#8064a2", "#4bacc6", "#f79646", "#2c4d75", "#772c2a",
    "#7f7f7f",
];

/// A stacked bar chart: one bar per `chart.label` value, split by `chart.series`, with
/// a legend; negative amounts are left out of the stacks.
fn svg_stacked(t: &Table, chart: &Chart) -> Option<String> {
    let at = |name: &str| t.columns.iter().position(|c| c == name);
    let (label, value, series) = (
        at(&chart.label)?,
        at(&chart.value)?,
        at(chart.series.as_deref()?)?,
    );
    let mut labels: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut parts: Vec<(usize, usize, f64)> = Vec::new();
    let index = |list: &mut Vec<String>, item: String| {
        list.iter().position(|x| *x == item).unwrap_or_else(|| {
            list.push(item);
            list.len() - 1
        })
    };
    for r in &t.rows {
        let v: f64 = r[value].as_deref()?.parse().ok()?;
        let li = index(&mut labels, r[label].clone().unwrap_or_default());
        let si = index(&mut names, r[series].clone().unwrap_or_default());
        parts.push((li, si, v.max(0.0)));
    }
    let total = |li: usize| parts.iter().filter(|p| p.0 == li).map(|p| p.2).sum::<f64>();
    let max = (0..labels.len()).map(total).fold(0.0, f64::max);
    if labels.is_empty() || max <= 0.0 {
        return None;
    }
    let (width, row) = (640.0, 26.0);
    let height = row * (labels.len() + names.len().div_ceil(3)) as f64 + 20.0;
    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-label="{}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">"#,
        html_escape(&t.spec.title)
    );
    for (li, name) in labels.iter().enumerate() {
        let y = 5.0 + li as f64 * row;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}" font-size="12">{}</text>"#,
            y + 13.0,
            html_escape(name)
        );
        let mut x = 120.0;
        for (_, si, v) in parts.iter().filter(|p| p.0 == li) {
            let w = v / max * 440.0;
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="18" fill="{}"><title>{}</title></rect>"#,
                PALETTE[si % PALETTE.len()],
                html_escape(&names[*si])
            );
            x += w;
        }
    }
    let legend_y = 15.0 + labels.len() as f64 * row;
    for (si, name) in names.iter().enumerate() {
        let (x, y) = ((si % 3) as f64 * 210.0, legend_y + (si / 3) as f64 * row);
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            PALETTE[si % PALETTE.len()],
            x + 16.0,
            y + 11.0,
            html_escape(&name.chars().take(28).collect::<String>())
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

fn html(spec: &Spec, month: &Month, tables: &[Table], generated: &str) -> String {
    let mut body = String::new();
    for t in tables {
        let _ = write!(
            body,
            "<section id=\"{}\"><h2>{}</h2>",
            t.spec.name,
            html_escape(&t.spec.title)
        );
        let chart = t.spec.chart.as_ref().and_then(|c| match c.kind.as_str() {
            "stacked" => svg_stacked(t, c),
            _ => svg_chart(t, c),
        });
        if let Some(svg) = chart {
            body.push_str(&svg);
        }
        body.push_str("<table><thead><tr>");
        for c in &t.columns {
            let _ = write!(body, "<th>{}</th>", html_escape(c));
        }
        body.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            body.push_str("<tr>");
            for (v, numeric) in row.iter().zip(&t.numeric) {
                let class = if *numeric { " class=\"num\"" } else { "" };
                let _ = write!(
                    body,
                    "<td{class}>{}</td>",
                    html_escape(v.as_deref().unwrap_or(""))
                );
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table></section>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} {month}</title>\n\
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
th,td{{border:1px solid #ccc;padding:4px 8px}}td.num{{text-align:right;font-family:monospace}}\
section{{page-break-inside:avoid}}@media print{{body{{margin:0}}}}</style></head>\n\
<body><h1>{title}: {month}</h1><p class=\"generated\">{generated}</p>\n{body}</body></html>\n",
        title = html_escape(&spec.title),
        month = month.text,
        generated = html_escape(generated),
    )
}

/// How a month's spend stands against a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    pub name: String,
    pub budget: BigDecimal,
    pub actual: BigDecimal,
    pub projected: BigDecimal,
    /// `ok`, `projected over` or `over`.
    pub status: &'static str,
}

/// A decimal of a report cell (`None` for NULL or text that is no number).
fn decimal(v: &Option<String>) -> Option<BigDecimal> {
    v.as_deref().and_then(|t| BigDecimal::from_str(t).ok())
}

/// Checks `budgets` against the report's `invoice_totals` (actual) and `projection`
/// (each provider's run rate, applied to its accounts' totals).
pub fn check_budgets(budgets: &[Budget], tables: &[Table]) -> Result<Vec<BudgetCheck>> {
    let find = |name: &str| tables.iter().find(|t| t.spec.name == name);
    let column = |t: &Table, name: &str| t.columns.iter().position(|c| c == name);
    let (Some(invoices), projection) = (find("invoice_totals"), find("projection")) else {
        return Err(Error::Unanswerable(
            "budgets need the report's invoice_totals table".into(),
        ));
    };
    let at = |t: &Table, names: [&str; 3]| names.map(|n| column(t, n));
    let [Some(provider), Some(account), Some(currency)] =
        at(invoices, ["provider", "billing_account_id", "currency"])
    else {
        return Err(Error::Unanswerable(
            "invoice_totals lacks provider, billing_account_id or currency".into(),
        ));
    };
    let total = column(invoices, "total");
    let mut out = Vec::new();
    for b in budgets {
        let amount = BigDecimal::from_str(&b.monthly).map_err(|_| {
            Error::Unanswerable(format!(
                "budget {}: {:?} is not an amount",
                b.name, b.monthly
            ))
        })?;
        let matches = |row: &[Option<String>]| {
            b.provider
                .as_deref()
                .is_none_or(|p| row[provider].as_deref() == Some(p))
                && b.billing_account_id
                    .as_deref()
                    .is_none_or(|a| row[account].as_deref() == Some(a))
                && row[currency].as_deref() == Some(b.currency.as_str())
        };
        let mut actual = BigDecimal::from(0);
        let mut projected = BigDecimal::from(0);
        if let Some(project) = &b.project {
            (actual, projected) = project_spend(tables, project, &b.currency);
        }
        for row in invoices
            .rows
            .iter()
            .filter(|r| b.project.is_none() && matches(r))
        {
            let spent = total.and_then(|i| decimal(&row[i])).unwrap_or_default();
            // The provider's run rate: projected / to date, in the report's names.
            let rate = projection.and_then(|p| {
                let [Some(pp), Some(pc), Some(to_date)] =
                    at(p, ["provider", "currency", "to_date"])
                else {
                    return None;
                };
                let projected = column(p, "projected")?;
                let name = match row[provider].as_deref()? {
                    "gcp" => "Google Cloud",
                    "aws" => "AWS",
                    "azure" => "Microsoft",
                    other => other,
                };
                let r = p
                    .rows
                    .iter()
                    .find(|r| r[pp].as_deref() == Some(name) && r[pc] == row[currency])?;
                let (done, whole) = (decimal(&r[to_date])?, decimal(&r[projected])?);
                (done != 0).then(|| whole / done)
            });
            projected += match rate {
                Some(rate) => (&spent * rate).round(6),
                None => spent.clone(),
            };
            actual += spent;
        }
        let status = if actual > amount {
            "over"
        } else if projected > amount {
            "projected over"
        } else {
            "ok"
        };
        out.push(BudgetCheck {
            name: b.name.clone(),
            budget: amount,
            actual: actual.normalized(),
            projected: projected.normalized(),
            status,
        });
    }
    Ok(out)
}

/// A project's spend in `currency` (from `by_team`) and its projection, at the run
/// rate of all the month's charges in that currency (from `projection`).
fn project_spend(tables: &[Table], project: &str, currency: &str) -> (BigDecimal, BigDecimal) {
    let sum = |name: &str, keep: &dyn Fn(&Table, &[Option<String>]) -> bool, value: &str| {
        let mut total = BigDecimal::from(0);
        if let Some(t) = tables.iter().find(|t| t.spec.name == name)
            && let Some(i) = t.columns.iter().position(|c| c == value)
        {
            for row in t.rows.iter().filter(|r| keep(t, r)) {
                total += decimal(&row[i]).unwrap_or_default();
            }
        }
        total
    };
    let is = |t: &Table, row: &[Option<String>], column: &str, want: &str| {
        t.columns
            .iter()
            .position(|c| c == column)
            .is_some_and(|i| row[i].as_deref() == Some(want))
    };
    let in_currency = |t: &Table, r: &[Option<String>]| is(t, r, "currency", currency);
    let actual = sum(
        "by_team",
        &|t, r| is(t, r, "project", project) && in_currency(t, r),
        "total",
    );
    let (done, whole) = (
        sum("projection", &in_currency, "to_date"),
        sum("projection", &in_currency, "projected"),
    );
    let projected = if done == 0 {
        actual.clone()
    } else {
        (&actual * whole / done).round(6)
    };
    (actual, projected)
}

/// The budget checks as a report table (`budgets.csv`, ...).
pub fn budget_table(checks: &[BudgetCheck]) -> Table {
    Table {
        spec: TableSpec {
            name: "budgets".into(),
            title: "Budgets".into(),
            sql: String::new(),
            chart: None,
        },
        columns: ["name", "budget", "actual", "projected", "status"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, true, true, true, false],
        rows: checks
            .iter()
            .map(|c| {
                vec![
                    Some(c.name.clone()),
                    Some(c.budget.to_plain_string()),
                    Some(c.actual.to_plain_string()),
                    Some(c.projected.to_plain_string()),
                    Some(c.status.to_string()),
                ]
            })
            .collect(),
    }
}

/// The line that tells when and by what a report was made: the only part of a
/// report's files that changes when the data does not.
pub fn generated_line() -> String {
    format!(
        "generated {} by billq {}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&temp, bytes).map_err(|e| Error::io(&temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))
}

/// Writes the report's files into `out`; returns their paths.
pub fn write(
    spec: &Spec,
    month: &Month,
    tables: &[Table],
    out: &Path,
    generated: &str,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut written = Vec::new();
    let mut summary = format!("# {}: {}\n\n{generated}\n", spec.title, month.text);
    for t in tables {
        for (ext, text) in [("csv", csv(t)), ("json", json(t))] {
            let path = out.join(format!("{}.{ext}", t.spec.name));
            write_atomically(&path, text.as_bytes())?;
            written.push(path);
        }
        let _ = write!(summary, "\n## {}\n\n{}", t.spec.title, markdown_table(t));
    }
    for (name, text) in [
        ("summary.md", summary),
        ("report.html", html(spec, month, tables, generated)),
    ] {
        let path = out.join(name);
        write_atomically(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_the_built_in_spec() {
        let m = Month::parse("2024-01").unwrap();
        assert_eq!(m.back(1), "2023-12");
        assert_eq!(m.back(6), "2023-07");
        assert!(Month::parse("2024-13").is_err());
        assert!(Month::parse("24-01").is_err());
        let spec = Spec::monthly().unwrap();
        assert_eq!(spec.tables[0].name, "invoice_totals");
    }
}
