//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `billq` binary under test.
pub fn billq() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("billq"))
}

/// A file or folder of the project's `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

/// Runs `billq convert SRC... --out STORE`, whatever comes of it.
pub fn try_convert(store: &Path, sources: &[&Path]) -> std::process::Output {
    billq()
        .arg("convert")
        .args(sources)
        .arg("--out")
        .arg(store)
        .output()
        .unwrap()
}

/// Asserts that `billq verify` reconciles every source of the store.
pub fn assert_verified(store: &Path) {
    let out = billq()
        .args(["verify", "--data"])
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `billq convert SRC... --out STORE` and asserts success; returns its log.
pub fn convert(store: &Path, sources: &[&Path]) -> String {
    let out = try_convert(store, sources);
    assert!(
        out.status.success(),
        "convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs a DataFusion-dialect query on a store and returns its CSV output.
pub fn query_csv(store: &Path, sql: &str) -> String {
    let out = billq()
        .args([
            "query",
            "--dialect",
            "datafusion",
            "--format",
            "csv",
            "--data",
        ])
        .arg(store)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The catalog file's bytes, to show that a failed run changed nothing.
pub fn catalog_bytes(store: &Path) -> Vec<u8> {
    std::fs::read(store.join("_billq_catalog.json")).unwrap_or_default()
}

/// Every file below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The first stored Parquet file of a store (relative path).
pub fn first_parquet(store: &Path) -> String {
    first_file_under(store, "gcp/")
}

/// The first file of a store whose relative path starts with `prefix`.
pub fn first_file_under(store: &Path, prefix: &str) -> String {
    files_below(store)
        .into_iter()
        .find(|f| f.starts_with(prefix))
        .expect("a file")
}
