//! AWS CUR deliveries: in a billing period's folder
//! (`<prefix>/<report>/20240101-20240201/`) AWS writes each delivery under a new
//! assembly id and points the period's manifest (`<report>-Manifest.json`) at the
//! current one (`assemblyId`, `reportKeys`). Only the files the manifest names are the
//! period's data; earlier assemblies are superseded, and rows converted from them
//! leave the store in the same commit, so a re-delivery never counts twice.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::{self, SourceObject, StoreOptions};

/// A billing period folder and the files of its current delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// URL of the period folder, ending in `/`.
    pub period: String,
    /// URLs of the current delivery's files.
    pub current: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    report_keys: Vec<String>,
}

/// Whether a folder name is a CUR billing period (`20240101-20240201`).
fn is_period(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 17
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// The period folder (URL ending in `/`) of a period-level manifest, if it is one.
fn period_of(manifest_url: &str) -> Option<String> {
    let (folder, _) = manifest_url.rsplit_once('/')?;
    let name = folder.rsplit('/').next()?;
    is_period(name).then(|| format!("{folder}/"))
}

/// Keeps, of `objects`, the files of each period's current delivery (and everything
/// outside period folders with a manifest); returns them with the deliveries found.
pub async fn select(
    objects: Vec<SourceObject>,
    manifests: &[SourceObject],
    options: &StoreOptions,
) -> Result<(Vec<SourceObject>, Vec<Delivery>)> {
    let mut deliveries = Vec::new();
    for m in manifests {
        let Some(period) = period_of(&m.url) else {
            continue;
        };
        let fetched = source::fetch(m, options).await?;
        let text = std::fs::read(&fetched.path).map_err(|e| Error::io(&fetched.path, e))?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| Error::BadFile {
            path: m.display(),
            message: format!("unreadable CUR manifest: {e}"),
        })?;
        let period_name = period
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let current = manifest
            .report_keys
            .iter()
            .filter_map(|k| {
                k.split_once(&format!("{period_name}/"))
                    .map(|(_, rest)| format!("{period}{rest}"))
            })
            .collect();
        deliveries.push(Delivery { period, current });
    }
    let kept = objects
        .into_iter()
        .filter(|o| {
            deliveries
                .iter()
                .find(|d| o.url.starts_with(&d.period))
                .is_none_or(|d| d.current.contains(&o.url))
        })
        .collect();
    Ok((kept, deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_manifests_are_told_from_assembly_copies() {
        assert_eq!(
            period_of("s3://b/cur/r/20240101-20240201/r-Manifest.json").as_deref(),
            Some("s3://b/cur/r/20240101-20240201/")
        );
        assert_eq!(
            period_of("s3://b/cur/r/20240101-20240201/abc-123/r-Manifest.json"),
            None
        );
        assert!(!is_period("2024-01"));
    }
}
