//! Helpers shared by the integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `billq` binary under test.
pub fn billq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_billq"))
}

/// Runs `cmd` with `input` on its standard input, to its end.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
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
    query_csv_in(store, "datafusion", sql)
}

/// Runs a query in `dialect` (bigquery, athena, datafusion) on a store and returns its
/// CSV output.
pub fn query_csv_in(store: &Path, dialect: &str, sql: &str) -> String {
    stdout_of(csv_query(billq(), store, dialect).arg(sql))
}

/// Runs a DataFusion-dialect query on a store, writing its answer to `file` as
/// Parquet, and asserts success.
pub fn query_to_parquet(store: &Path, file: &Path, sql: &str) {
    stdout_of(
        billq()
            .args([
                "query",
                "--dialect",
                "datafusion",
                "--format",
                "parquet",
                "-o",
            ])
            .arg(file)
            .arg("--data")
            .arg(store)
            .arg(sql),
    );
}

/// `cmd` made `billq query --dialect DIALECT --format csv --data STORE`, for more
/// options and the SQL to follow.
pub fn csv_query(mut cmd: Command, store: &Path, dialect: &str) -> Command {
    cmd.args(["query", "--dialect", dialect, "--format", "csv", "--data"])
        .arg(store);
    cmd
}

/// Runs a command that must succeed; returns its standard output.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
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

/// A server on a free loopback port (an emulator of a cloud store), stopped on drop.
pub struct LocalServer {
    child: std::process::Child,
    pub port: u16,
}

impl LocalServer {
    /// Starts `program` with the arguments `args(port)` gives for a free port, and
    /// waits (up to 60 s) until it accepts connections; `what` names it in failures.
    pub fn start(program: &Path, args: impl Fn(u16) -> Vec<String>, what: &str) -> Self {
        Self::start_with(std::process::Command::new(program), args, what)
    }

    /// [`LocalServer::start`] with a prepared command (environment, say).
    pub fn start_with(
        mut command: std::process::Command,
        args: impl Fn(u16) -> Vec<String>,
        what: &str,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command
            .args(args(port))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} (scripts/test installs it): {e}"));
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{what} did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
