//! AWS CUR deliveries and their manifests.
//!
//! - Legacy CUR: in a billing period's folder (`<prefix>/<report>/20240101-20240201/`)
//!   AWS writes each delivery under a new assembly id and points the period's manifest
//!   (`<report>-Manifest.json`: `assemblyId`, `reportKeys`) at the current one.
//! - CUR 2.0 (Data Exports): data under `<export>/data/BILLING_PERIOD=2024-01/`, the
//!   manifest at `<export>/metadata/BILLING_PERIOD=2024-01/<export>-Manifest.json`,
//!   naming the current files in `dataFiles`.
//!
//! Only the files a period's manifest names are the period's data; earlier deliveries
//! are superseded, and rows converted from them leave the store in the same commit, so
//! a re-delivery never counts twice. A manifest that names a file that is not there,
//! or a period with several deliveries and no manifest, is refused. A manifest found
//! beside its files outside such a layout only describes them. Either way the
//! manifest is checked against the data it describes (columns, billing period), and
//! disagreements are reported, not trusted: the data's own header and dates decide.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::{self, SourceObject, StoreOptions};

/// A manifest and the files of the delivery it names.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// URL of the folder the delivery's files are in (a billing period's), ending in `/`.
    pub period: String,
    /// URLs of the current delivery's files.
    pub current: BTreeSet<String>,
    /// Whether other files under `period` are earlier deliveries, superseded.
    pub supersedes: bool,
    /// The manifest, as named in messages.
    pub manifest: String,
    /// The columns the manifest lists, by their table names (legacy tag and cost
    /// category columns as the maps they become).
    pub columns: BTreeSet<String>,
    /// The billing period the manifest gives, `YYYYMM`.
    pub month: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    report_keys: Vec<String>,
    #[serde(default)]
    data_files: Vec<String>,
    #[serde(default)]
    columns: Vec<ManifestColumn>,
    billing_period: Option<BillingPeriod>,
}

#[derive(Deserialize)]
struct ManifestColumn {
    category: Option<String>,
    name: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BillingPeriod {
    Range { start: String },
    Month(String),
}

/// The month, `YYYYMM` as in `invoice_month`, of `20180801T000000.000Z`,
/// `2024-01-01T00:00:00Z` or `2024-01`.
fn month_of(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
    (digits.len() == 6).then_some(digits)
}

/// Whether a folder name is a legacy CUR billing period (`20240101-20240201`).
fn is_legacy_period(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 17
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// Whether a folder name is a CUR 2.0 billing period (`BILLING_PERIOD=2024-01`).
fn is_export_period(name: &str) -> bool {
    name.strip_prefix("BILLING_PERIOD=")
        .is_some_and(|m| month_of(m).is_some())
}

/// Where a manifest's files are: the period folder (URL ending in `/`) and the folder
/// name that report keys are cut at, for a period-level manifest; `None` otherwise.
fn period_of(manifest_url: &str) -> Option<(String, String)> {
    let (folder, _) = manifest_url.rsplit_once('/')?;
    let (parent, name) = folder.rsplit_once('/')?;
    if is_legacy_period(name) {
        return Some((format!("{folder}/"), name.to_string()));
    }
    let export = parent.strip_suffix("/metadata")?;
    is_export_period(name).then(|| (format!("{export}/data/{name}/"), name.to_string()))
}

/// The table name of a manifest column.
fn column_name(c: &ManifestColumn) -> String {
    match c.category.as_deref() {
        Some("resourceTags") => "resource_tags".into(),
        Some("costCategory") => "cost_category".into(),
        Some(category) => crate::formats::aws::athena_name(&format!("{category}/{}", c.name)),
        None => c.name.clone(),
    }
}

/// Reads the manifests among the inputs and keeps, of `objects`, the files of each
/// period's current delivery (and everything outside period folders with a manifest).
pub async fn select(
    objects: Vec<SourceObject>,
    manifests: &[SourceObject],
    options: &StoreOptions,
) -> Result<(Vec<SourceObject>, Vec<Delivery>)> {
    let mut deliveries = Vec::new();
    for m in manifests {
        let fetched = source::fetch(m, options).await?;
        let text = std::fs::read(&fetched.path).map_err(|e| Error::io(&fetched.path, e))?;
        let bad = |message: String| Error::BadFile {
            path: m.display(),
            message,
        };
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("unreadable CUR manifest: {e}")))?;
        let keys = manifest.report_keys.iter().chain(&manifest.data_files);
        let (period, current, supersedes) = match period_of(&m.url) {
            Some((period, cut)) => {
                let current: BTreeSet<String> = keys
                    .filter_map(|k| {
                        k.split_once(&format!("{cut}/"))
                            .map(|(_, rest)| format!("{period}{rest}"))
                    })
                    .collect();
                if let Some(missing) = current
                    .iter()
                    .find(|url| !objects.iter().any(|o| &o.url == *url))
                {
                    return Err(bad(format!(
                        "names {}, which is not there: an incomplete delivery",
                        source::display_url(missing)
                    )));
                }
                (period, current, true)
            }
            None => {
                let folder = format!("{}/", m.url.rsplit_once('/').map_or("", |(f, _)| f));
                let names: BTreeSet<&str> = keys.filter_map(|k| k.rsplit('/').next()).collect();
                let current = objects
                    .iter()
                    .filter(|o| {
                        o.url
                            .strip_prefix(&folder)
                            .is_some_and(|name| names.contains(name))
                    })
                    .map(|o| o.url.clone())
                    .collect();
                (folder, current, false)
            }
        };
        deliveries.push(Delivery {
            period,
            current,
            supersedes,
            manifest: m.display(),
            columns: manifest.columns.iter().map(column_name).collect(),
            month: manifest.billing_period.and_then(|p| match p {
                BillingPeriod::Range { start } => month_of(&start),
                BillingPeriod::Month(m) => month_of(&m),
            }),
        });
    }
    refuse_unmanifested(&objects, &deliveries)?;
    let kept = objects
        .into_iter()
        .filter(|o| {
            deliveries
                .iter()
                .filter(|d| d.supersedes)
                .find(|d| o.url.starts_with(&d.period))
                .is_none_or(|d| d.current.contains(&o.url))
        })
        .collect();
    Ok((kept, deliveries))
}

/// Refuses a billing period folder holding several deliveries (assembly or execution
/// folders) and no manifest to tell the current one.
fn refuse_unmanifested(objects: &[SourceObject], deliveries: &[Delivery]) -> Result<()> {
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in objects {
        let parts: Vec<&str> = o.url.rsplitn(4, '/').collect();
        if let [_, delivery, period, parent] = parts.as_slice()
            && (is_legacy_period(period) || is_export_period(period))
        {
            folders
                .entry(format!("{parent}/{period}/"))
                .or_default()
                .insert(delivery.to_string());
        }
    }
    for (period, found) in folders {
        let covered = deliveries
            .iter()
            .any(|d| d.supersedes && d.period == period);
        if !covered && found.len() > 1 {
            return Err(Error::BadFile {
                path: source::display_url(&period),
                message: format!(
                    "{} deliveries ({}) and no manifest to tell the current one; include the report's manifest",
                    found.len(),
                    found.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(())
}

impl Delivery {
    /// What the manifest gets wrong about one of its files, converted into a table with
    /// these `columns` and these rows per invoice month.
    pub fn disagreements(
        &self,
        file: &str,
        columns: &[String],
        months: &BTreeMap<String, u64>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if !self.columns.is_empty() {
            let listed: BTreeSet<&str> = self.columns.iter().map(String::as_str).collect();
            let data: BTreeSet<&str> = columns
                .iter()
                .map(String::as_str)
                .filter(|c| *c != "is_total_row")
                .collect();
            let some = |names: Vec<&str>, what: &str| {
                (!names.is_empty()).then(|| {
                    let shown: Vec<&str> = names.iter().take(3).copied().collect();
                    format!("{} {what}, e.g. {}", names.len(), shown.join(", "))
                })
            };
            let differences: Vec<String> = [
                some(data.difference(&listed).copied().collect(), "not listed"),
                some(
                    listed.difference(&data).copied().collect(),
                    "listed but absent",
                ),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !differences.is_empty() {
                out.push(format!(
                    "{}: lists {} columns, but {file} has {} ({}): the file's own header is used",
                    self.manifest,
                    listed.len(),
                    data.len(),
                    differences.join("; "),
                ));
            }
        }
        if let Some(month) = &self.month {
            let total: u64 = months.values().sum();
            let other: Vec<String> = months
                .iter()
                .filter(|(m, _)| *m != month)
                .map(|(m, n)| format!("{m}: {n}"))
                .collect();
            if !other.is_empty() {
                let elsewhere: u64 = total - months.get(month).copied().unwrap_or(0);
                out.push(format!(
                    "{}: billing period {month}, but {elsewhere} of {total} rows of {file} bill in other periods ({}): each row is stored under its own bill_billing_period_start_date",
                    self.manifest,
                    other.join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_manifests_are_told_from_assembly_copies_and_loose_ones() {
        assert_eq!(
            period_of("s3://b/cur/r/20240101-20240201/r-Manifest.json"),
            Some((
                "s3://b/cur/r/20240101-20240201/".into(),
                "20240101-20240201".into()
            ))
        );
        assert_eq!(
            period_of("s3://b/cur/r/20240101-20240201/abc-123/r-Manifest.json"),
            None
        );
        assert_eq!(
            period_of("s3://b/x/e/metadata/BILLING_PERIOD=2024-01/e-Manifest.json"),
            Some((
                "s3://b/x/e/data/BILLING_PERIOD=2024-01/".into(),
                "BILLING_PERIOD=2024-01".into()
            ))
        );
        assert_eq!(period_of("file:///tmp/bucket/r-Manifest.json"), None);
        assert_eq!(month_of("20180801T000000.000Z").as_deref(), Some("201808"));
        assert_eq!(month_of("2024-01").as_deref(), Some("202401"));
    }
}
