//! AWS exports read from S3: a real S3-protocol server (moto's, from PyPI, installed
//! by `scripts/test`) on 127.0.0.1, started and stopped by the test.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A moto S3 server on a free loopback port, stopped on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] (scripts/test installs it)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    /// Creates a bucket (`/bucket`) or uploads an object (`/bucket/key`) with boto3, a
    /// real signed S3 client (moto's server requirements install it).
    fn put(&self, path: &str, body: &[u8]) {
        let (bucket, key) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path.trim_start_matches('/'), ""));
        let script = "import sys, boto3\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                              aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            if sys.argv[3]:\n    s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=sys.stdin.buffer.read())\n\
            else:\n    s3.create_bucket(Bucket=sys.argv[2])\n";
        let mut child = Command::new("python3")
            .args([
                "-c",
                script,
                &format!("http://127.0.0.1:{}", self.port),
                bucket,
                key,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        assert!(child.wait().unwrap().success(), "upload of {path} failed");
    }

    /// `billq` with the AWS environment pointing at this server.
    fn billq(&self) -> assert_cmd::Command {
        let mut cmd = billq();
        cmd.env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        )
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
        cmd
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cur_and_dbr_convert_from_a_bucket_and_a_redelivery_replaces() {
    let s3 = S3Server::start();
    s3.put("/billing", b"");
    let cur = std::fs::read(testdata("aws/cur_legacy_2024-01_2024-02.csv")).unwrap();
    let dbr = std::fs::read(testdata(
        "aws/dbr_111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv",
    ))
    .unwrap();
    s3.put("/billing/reports/cur/20240101-20240201/cur-1.csv", &cur);
    s3.put(
        "/billing/reports/dbr/111122223333-aws-billing-detailed-line-items-2015-03.csv",
        &dbr,
    );
    let store = tempfile::tempdir().unwrap();
    let convert = |s3: &S3Server| {
        let out = s3
            .billq()
            .args(["convert", "s3://billing/reports/", "--out"])
            .arg(store.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let log = convert(&s3);
    assert!(log.contains("converted s3://billing/reports/cur/20240101-20240201/cur-1.csv -> aws_cur (5 rows, 2 file(s); "), "{log}");
    assert!(log.contains("-> aws_dbr (5 rows, 3 file(s); "), "{log}");
    assert!(!log.contains("warning"), "{log}");
    assert!(
        log.contains(" line_item_unblended_cost=0.10360028382,"),
        "{log}"
    );

    // Unchanged objects are not converted again.
    let again = convert(&s3);
    assert_eq!(
        again
            .lines()
            .filter(|l| l.starts_with("unchanged s3://billing/reports/"))
            .count(),
        2,
        "{again}"
    );

    // AWS re-delivers the period with a correction: it replaces, never doubles.
    let corrected = String::from_utf8(cur.clone())
        .unwrap()
        .replace("0.1920000000,0.1900000000", "0.2920000000,0.1900000000");
    s3.put(
        "/billing/reports/cur/20240101-20240201/cur-1.csv",
        corrected.as_bytes(),
    );
    let log = convert(&s3);
    assert!(
        log.contains(
            "replaced s3://billing/reports/cur/20240101-20240201/cur-1.csv -> aws_cur (5 rows, "
        ),
        "{log}"
    );
    assert!(
        log.contains(" line_item_unblended_cost=0.20360028382,"),
        "{log}"
    );
    let out = s3
        .billq()
        .args([
            "query",
            "--dialect",
            "datafusion",
            "--format",
            "csv",
            "--data",
        ])
        .arg(store.path())
        .arg("SELECT COUNT(*) AS n, SUM(line_item_unblended_cost) AS c FROM aws_cur")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "n,c\n5,0.203600283820000000000000\n"
    );
    let verify = s3
        .billq()
        .args(["verify", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_missing_bucket_is_one_clear_error_and_leaves_the_store() {
    let s3 = S3Server::start();
    let store = tempfile::tempdir().unwrap();
    convert(
        store.path(),
        &[&testdata("aws/cur_legacy_2024-01_2024-02.csv")],
    );
    let before = catalog_bytes(store.path());
    let out = s3
        .billq()
        .args(["convert", "s3://no-such-bucket/cur/", "--out"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("billq: s3://no-such-bucket/cur/: cannot read: "),
        "{err}"
    );
    assert!(err.contains("NoSuchBucket"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(catalog_bytes(store.path()), before);
}

#[test]
fn a_configured_source_brings_its_own_endpoint_and_named_credentials() {
    let s3 = S3Server::start();
    s3.put("/acme-billing", b"");
    s3.put(
        "/acme-billing/cur/cur-1.csv",
        &std::fs::read(testdata("aws/cur_legacy_2024-01_2024-02.csv")).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("billq.toml");
    std::fs::write(
        &config,
        format!(
            "[sources.prod-aws]\nurl = \"s3://acme-billing/cur/\"\naccount_name = \"Acme\"\n\
             billing_account_id = \"111122223333\"\nregion = \"us-east-1\"\n\
             endpoint = \"http://127.0.0.1:{}\"\nallow_http = true\n\
             access_key_id_env = \"ACME_KEY\"\nsecret_access_key_env = \"ACME_SECRET\"\n",
            s3.port
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = billq()
        .args(["convert", "--source", "prod-aws", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&store)
        .env("ACME_KEY", "testing")
        .env("ACME_SECRET", "secret-value-never-printed")
        .output()
        .unwrap();
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(
        log.starts_with("converted s3://acme-billing/cur/cur-1.csv -> aws_cur (5 rows, "),
        "{log}"
    );
    assert!(!log.contains("secret-value-never-printed"));
    let catalog = String::from_utf8(catalog_bytes(&store)).unwrap();
    assert!(!catalog.contains("secret-value-never-printed") && !catalog.contains("testing"));

    // A credential the config names but the environment lacks is one clear error.
    let out = billq()
        .args(["convert", "--source", "prod-aws", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&store)
        .env("ACME_KEY", "testing")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "billq: s3://acme-billing/cur/: the config names $ACME_SECRET for aws_secret_access_key, but it is not set\n"
    );
}
