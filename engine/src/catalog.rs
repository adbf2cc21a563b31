//! The store's catalog: one JSON file that records every converted source object and
//! the Parquet files holding its rows.
//!
//! The catalog is the store's only commit point. Tables read exactly the files it
//! lists, and it is replaced atomically (written beside, then renamed), so a run that
//! fails or is killed leaves the previous catalog, and with it the previous data, in
//! force; files it wrote but never committed are invisible and swept by the next run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::Totals;
use crate::source::SourceObject;

/// The catalog's file name inside a store directory.
pub const CATALOG_FILE: &str = "_billq_catalog.json";
/// Folder of a store holding the rows lenient conversions set aside, one CSV a source.
pub const REJECTS_DIR: &str = "_rejects";
/// Folder of a store where a run stages files before its commit.
pub const STAGING_DIR: &str = ".staging";
const FORMAT_VERSION: u32 = 1;

/// Everything a store holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub format_version: u32,
    pub sources: Vec<SourceEntry>,
}

/// One converted source object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceEntry {
    pub url: String,
    pub size: u64,
    pub modified: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The table its rows belong to.
    pub table: String,
    /// Rows and exact money totals as read from the source.
    pub totals: Totals,
    pub files: Vec<FileEntry>,
    /// Rows set aside by a lenient conversion (not in `totals`), and where they are.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// The source's schema (field name and Arrow type of every column), as converted.
    pub schema: Vec<(String, String)>,
    /// Columns named otherwise in the source: column → the file's own header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_names: BTreeMap<String, String>,
    pub converted_at: String,
}

/// One Parquet file of the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the store directory, with `/` separators.
    pub path: String,
    pub rows: u64,
    /// Hive-style partition values (`billing_account_id`, `invoice_month`).
    pub partition: BTreeMap<String, String>,
}

impl SourceEntry {
    /// Whether `obj` is the same content this entry was converted from.
    pub fn is_current(&self, obj: &SourceObject) -> bool {
        self.url == obj.url
            && self.size == obj.size
            && self.modified == obj.modified
            && self.etag == obj.etag
    }
}

impl Catalog {
    /// Reads the catalog of `dir`; a missing or empty directory is an empty store.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let catalog: Catalog =
                    serde_json::from_slice(&bytes).map_err(|e| Error::Catalog {
                        path: path.clone(),
                        message: format!("unreadable catalog: {e}"),
                    })?;
                if catalog.format_version != FORMAT_VERSION {
                    return Err(Error::Catalog {
                        path,
                        message: format!(
                            "catalog format {} is not supported (this billq reads format {FORMAT_VERSION})",
                            catalog.format_version
                        ),
                    });
                }
                Ok(catalog)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog {
                format_version: FORMAT_VERSION,
                sources: vec![],
            }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Reads the catalog of a store that must exist (for queries and verify).
    pub fn open_existing(dir: &Path) -> Result<Self> {
        if !dir.join(CATALOG_FILE).is_file() {
            return Err(Error::Catalog {
                path: dir.to_path_buf(),
                message: format!(
                    "not a billq store (no {CATALOG_FILE}); create one with `billq convert SRC --out DIR`"
                ),
            });
        }
        Self::load(dir)
    }

    /// Writes the catalog atomically: to a temporary file, synced, then renamed. The
    /// file is as readable as any other the store's user creates (umask), not private
    /// as temporary files are.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CATALOG_FILE);
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| Error::Catalog {
            path: path.clone(),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut temp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        temp.write_all(&text)
            .map_err(|e| Error::io(temp.path(), e))?;
        temp.as_file()
            .sync_all()
            .map_err(|e| Error::io(temp.path(), e))?;
        temp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        sync_dir(dir)
    }

    /// The entry converted from this URL.
    pub fn source(&self, url: &str) -> Option<&SourceEntry> {
        self.sources.iter().find(|s| s.url == url)
    }

    /// Puts `entry` in, replacing the entry of the same URL; returns the replaced one.
    pub fn upsert(&mut self, entry: SourceEntry) -> Option<SourceEntry> {
        match self.sources.iter_mut().find(|s| s.url == entry.url) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                self.sources.push(entry);
                self.sources.sort_by(|a, b| a.url.cmp(&b.url));
                None
            }
        }
    }

    /// Table name → absolute paths of its files.
    pub fn tables(&self, dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
        let mut tables: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for s in &self.sources {
            let files = tables.entry(s.table.clone()).or_default();
            files.extend(s.files.iter().map(|f| dir.join(&f.path)));
        }
        tables
    }

    /// For each column of `table` that a source named otherwise, the sources' names.
    pub fn source_names(
        &self,
        table: &str,
    ) -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for entry in self.sources.iter().filter(|s| s.table == table) {
            for (column, original) in &entry.source_names {
                out.entry(column.clone())
                    .or_default()
                    .insert(original.clone());
            }
        }
        out
    }

    /// Every file path (relative) the catalog refers to: data and rejects.
    pub fn file_paths(&self) -> std::collections::BTreeSet<&str> {
        self.sources
            .iter()
            .flat_map(|s| {
                s.files
                    .iter()
                    .map(|f| f.path.as_str())
                    .chain(s.rejects.as_deref())
            })
            .collect()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_catalog_is_as_readable_as_the_stores_other_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Catalog::default().save(dir.path()).unwrap();
        let other = dir.path().join("other");
        std::fs::File::create(&other).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(CATALOG_FILE)), mode(&other));
        let saved = std::fs::read_to_string(dir.path().join(CATALOG_FILE)).unwrap();
        assert!(saved.ends_with("}\n"), "{saved}");
    }
}
