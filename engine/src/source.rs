//! Source objects: what the user names on the command line (a file, a directory, a glob
//! or an object store URL) resolved to a list of export files with their identity
//! (size, modification time, etag), and fetched to local disk for reading.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{Error, Result};

/// One export file, local or remote, with what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    /// Canonical URL: `file:///abs/path` for local files.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, RFC 3339.
    pub modified: String,
    /// The store's etag, where it has one.
    pub etag: Option<String>,
}

impl SourceObject {
    /// The local path of a `file://` source.
    pub fn local_path(&self) -> Option<PathBuf> {
        Url::parse(&self.url).ok()?.to_file_path().ok()
    }

    /// What to call the source in messages: its path when local, else its URL.
    pub fn display(&self) -> String {
        display_url(&self.url)
    }
}

/// What to call a source URL in messages: its path when local, else the URL.
pub fn display_url(url: &str) -> String {
    Url::parse(url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .map_or_else(|| url.to_string(), |p| p.display().to_string())
}

/// File name endings of export files picked up from directories and prefixes.
const EXPORT_SUFFIXES: [&str; 8] = [
    ".json", ".jsonl", ".ndjson", ".parquet", ".avro", ".gz", ".csv", ".zip",
];

/// A file AWS writes beside the data that is no export: the Athena integration's status.
const NOT_EXPORT: &str = "cost_and_usage_data_status.parquet";

/// Whether a file found in a folder is read: an export, or a CUR manifest.
fn is_export_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.starts_with('_')
        && EXPORT_SUFFIXES.iter().any(|s| name.ends_with(s))
        && !name.ends_with(NOT_EXPORT)
}

/// What the inputs name: export files, and the CUR deliveries that chose among them.
#[derive(Debug, Default)]
pub struct Resolved {
    pub objects: Vec<SourceObject>,
    pub deliveries: Vec<crate::deliveries::Delivery>,
}

/// Resolves command-line inputs to export files, in a stable order, without duplicates;
/// in folders with CUR manifests, to the current delivery of each billing period.
pub async fn resolve(inputs: &[String], options: &StoreOptions) -> Result<Resolved> {
    let mut out = Vec::new();
    let mut manifests = Vec::new();
    for input in inputs {
        let found = if is_remote(input) {
            resolve_url(input, options).await?
        } else {
            resolve_local(input)?
        };
        for obj in found {
            let list = if obj.url.ends_with(MANIFEST) {
                &mut manifests
            } else {
                &mut out
            };
            if !list.iter().any(|o: &SourceObject| o.url == obj.url) {
                list.push(obj);
            }
        }
    }
    let (objects, deliveries) = crate::deliveries::select(out, &manifests, options).await?;
    Ok(Resolved {
        objects,
        deliveries,
    })
}

/// The file name ending of AWS CUR manifests.
const MANIFEST: &str = "-Manifest.json";

/// Whether an input is a URL other than `file://` (which is read as a local path).
fn is_remote(input: &str) -> bool {
    input.contains("://") && !input.starts_with("file://")
}

fn resolve_local(input: &str) -> Result<Vec<SourceObject>> {
    let path_text = input.strip_prefix("file://").unwrap_or(input);
    if path_text.contains(['*', '?', '[']) {
        let mut files = Vec::new();
        let options = glob::MatchOptions {
            require_literal_leading_dot: true,
            ..Default::default()
        };
        let paths = glob::glob_with(path_text, options).map_err(|e| Error::BadUrl {
            url: input.to_string(),
            message: format!("bad glob pattern: {e}"),
        })?;
        for p in paths {
            let p = p.map_err(|e| Error::io(e.path().to_path_buf(), e.into()))?;
            if p.is_file() {
                files.push(local_object(&p)?);
            }
        }
        if files.is_empty() {
            return Err(Error::NoFiles {
                path: input.to_string(),
            });
        }
        return Ok(files);
    }
    let path = Path::new(path_text);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: input.to_string(),
        },
        _ => Error::io(path, e),
    })?;
    if meta.is_file() {
        return Ok(vec![local_object(path)?]);
    }
    let mut files = Vec::new();
    walk(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(Error::NoFiles {
            path: input.to_string(),
        });
    }
    files.iter().map(|p| local_object(p)).collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else if is_export_name(&name) {
            out.push(path);
        }
    }
    Ok(())
}

fn local_object(path: &Path) -> Result<SourceObject> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let meta = std::fs::metadata(&abs).map_err(|e| Error::io(&abs, e))?;
    let modified = meta
        .modified()
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default();
    let url = Url::from_file_path(&abs)
        .map_err(|_| Error::BadUrl {
            url: abs.display().to_string(),
            message: "not an absolute path".into(),
        })?
        .to_string();
    Ok(SourceObject {
        url,
        size: meta.len(),
        modified,
        etag: None,
    })
}

/// Object store settings (`aws_region`, `aws_access_key_id`, ...) that override the
/// environment's, from a configured source. Never printed: they may hold secrets.
#[derive(Clone, Default)]
pub struct StoreOptions(pub Vec<(String, String)>);

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "StoreOptions({keys:?})")
    }
}

/// The object store for a URL, configured from the environment the way each cloud's
/// own tools are (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...), then
/// from `options`.
pub fn store_for(url: &Url, options: &StoreOptions) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let mut settings: Vec<(String, String)> = std::env::vars().collect();
    settings.extend(options.0.iter().cloned());
    // AWS's chain: keys in the environment (or the config), else `$AWS_PROFILE`'s.
    let has_key = settings
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("aws_access_key_id"));
    if url.scheme() == "s3"
        && !has_key
        && let Ok(profile) = std::env::var("AWS_PROFILE")
    {
        settings.extend(crate::config::profile_credentials(&profile)?);
    }
    let (store, path) = object_store::parse_url_opts(url, settings).map_err(|e| Error::BadUrl {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    Ok((Arc::from(store), path))
}

fn unreadable(url: &str, e: object_store::Error) -> Error {
    let message = match e {
        object_store::Error::NotFound { .. } => "not found".to_string(),
        other => format!("cannot read: {other}"),
    };
    Error::BadUrl {
        url: url.to_string(),
        message,
    }
}

async fn resolve_url(input: &str, options: &StoreOptions) -> Result<Vec<SourceObject>> {
    let url = Url::parse(input).map_err(|e| Error::BadUrl {
        url: input.to_string(),
        message: e.to_string(),
    })?;
    let (store, path) = store_for(&url, options)?;
    let base = url_without_path(&url);
    let remote = |meta: ObjectMeta| SourceObject {
        url: format!("{base}/{}", meta.location),
        size: meta.size,
        modified: meta
            .last_modified
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        etag: meta.e_tag,
    };
    if !input.ends_with('/')
        && let Ok(meta) = store.head(&path).await
    {
        return Ok(vec![remote(meta)]);
    }
    let mut listed: Vec<ObjectMeta> = store
        .list(Some(&path))
        .try_collect()
        .await
        .map_err(|e| unreadable(input, e))?;
    listed.retain(|m| m.location.filename().is_some_and(is_export_name));
    listed.sort_by(|a, b| a.location.cmp(&b.location));
    if listed.is_empty() {
        return Err(Error::NoFiles {
            path: input.to_string(),
        });
    }
    Ok(listed.into_iter().map(remote).collect())
}

fn url_without_path(url: &Url) -> String {
    let mut base = url.clone();
    base.set_path("");
    base.set_query(None);
    base.to_string().trim_end_matches('/').to_string()
}

/// A source's bytes on local disk: the file itself, or a downloaded temporary copy.
pub struct Fetched {
    pub path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

/// Makes a source readable from local disk, downloading it when remote.
pub async fn fetch(obj: &SourceObject, options: &StoreOptions) -> Result<Fetched> {
    if let Some(path) = obj.local_path() {
        return Ok(Fetched { path, _temp: None });
    }
    let url = Url::parse(&obj.url).map_err(|e| Error::BadUrl {
        url: obj.url.clone(),
        message: e.to_string(),
    })?;
    let (store, path) = store_for(&url, options)?;
    let result = store
        .get(&path)
        .await
        .map_err(|e| unreadable(&obj.url, e))?;
    let temp = tempfile::NamedTempFile::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(|e| Error::io(temp.path(), e))?);
    let mut stream = result.into_stream();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| unreadable(&obj.url, e))?
    {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| Error::io(temp.path(), e))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| Error::io(temp.path(), e))?;
    let temp = temp.into_temp_path();
    Ok(Fetched {
        path: temp.to_path_buf(),
        _temp: Some(temp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directories_glob_and_files_resolve_once_each_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.json.gz", ".hidden.jsonl", "notes.txt"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let d = dir.path().display().to_string();
        let found = resolve(
            &[d.clone(), format!("{d}/*.jsonl")],
            &StoreOptions::default(),
        )
        .await
        .unwrap()
        .objects;
        let names: Vec<_> = found
            .iter()
            .map(|o| o.url.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.json.gz", "b.jsonl"]);
        assert!(found[0].url.starts_with("file:///"));
        assert_eq!(found[0].size, 2);
    }

    #[tokio::test]
    async fn a_missing_path_is_named() {
        let err = resolve(&["/no/such/export.jsonl".into()], &StoreOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/no/such/export.jsonl: no such file or directory"
        );
    }
}
