//! AWS exports read from S3: a real S3-protocol server (moto's, from PyPI, installed
//! by `scripts/test`) on 127.0.0.1, started and stopped by the test. One test turns
//! moto's IAM auth on, so the server checks keys and signatures: it creates an IAM user
//! and key in its first requests, and every later request must be signed with that key
//! (moto 5 miscomputes signatures of keys with `=` and of listings with a prefix, so
//! that test lists a bucket's root).

use std::io::Write;
use std::process::Command;

use crate::common::*;

/// A moto S3 server on a free loopback port, with one IAM user's access key; stopped
/// on drop.
struct S3Server {
    /// Kept for its drop, which stops the server.
    _server: LocalServer,
    port: u16,
    key_id: String,
    secret: String,
}

/// Creates an IAM user allowed everything and prints its access key id and secret:
/// the four requests moto lets through before it checks signatures.
const SETUP: &str = "import sys, json, boto3\n\
    iam = boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                       aws_access_key_id='setup', aws_secret_access_key='setup')\n\
    iam.create_user(UserName='billq')\n\
    key = iam.create_access_key(UserName='billq')['AccessKey']\n\
    policy = iam.create_policy(PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17',\n\
        'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))\n\
    iam.attach_user_policy(UserName='billq', PolicyArn=policy['Policy']['Arn'])\n\
    print(key['AccessKeyId'], key['SecretAccessKey'])\n";

impl S3Server {
    /// A server that takes any credentials.
    fn start() -> Self {
        Self::launch(false)
    }

    /// A server that checks access keys and signatures.
    fn with_auth() -> Self {
        Self::launch(true)
    }

    fn launch(auth: bool) -> Self {
        let mut moto = Command::new("python3");
        moto.env(
            "INITIAL_NO_AUTH_ACTION_COUNT",
            if auth { "4" } else { "inf" },
        );
        let server = LocalServer::start_with(
            moto,
            |port| {
                [
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ]
                .map(String::from)
                .to_vec()
            },
            "moto (python3 -m moto.server)",
        );
        let port = server.port;
        if !auth {
            return Self {
                _server: server,
                port,
                key_id: "testing".into(),
                secret: "testing".into(),
            };
        }
        let setup = Command::new("python3")
            .args(["-c", SETUP, &format!("http://127.0.0.1:{port}")])
            .output()
            .unwrap();
        assert!(
            setup.status.success(),
            "{}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let keys = String::from_utf8(setup.stdout).unwrap();
        let (key_id, secret) = keys.trim().split_once(' ').unwrap();
        Self {
            _server: server,
            port,
            key_id: key_id.to_string(),
            secret: secret.to_string(),
        }
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
                              aws_access_key_id=sys.argv[4], aws_secret_access_key=sys.argv[5])\n\
            if sys.argv[3]:\n    s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=sys.stdin.buffer.read())\n\
            else:\n    s3.create_bucket(Bucket=sys.argv[2])\n";
        let out = output_with_stdin(
            Command::new("python3").args([
                "-c",
                script,
                &format!("http://127.0.0.1:{}", self.port),
                bucket,
                key,
                &self.key_id,
                &self.secret,
            ]),
            body,
        );
        assert!(
            out.status.success(),
            "upload of {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `billq` with the AWS environment pointing at this server.
    fn billq(&self) -> Command {
        let mut cmd = billq();
        cmd.env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        )
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", &self.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &self.secret)
        .env("AWS_REGION", "us-east-1");
        cmd
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
    assert_eq!(
        stdout_of(
            csv_query(s3.billq(), store.path(), "datafusion")
                .arg("SELECT COUNT(*) AS n, SUM(line_item_unblended_cost) AS c FROM aws_cur")
        ),
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
        .env("ACME_KEY", &s3.key_id)
        .env("ACME_SECRET", &s3.secret)
        .output()
        .unwrap();
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(
        log.starts_with("converted s3://acme-billing/cur/cur-1.csv -> aws_cur (5 rows, "),
        "{log}"
    );
    assert!(!log.contains(&s3.secret));
    let catalog = String::from_utf8(catalog_bytes(&store)).unwrap();
    assert!(!catalog.contains(&s3.secret) && !catalog.contains(&s3.key_id));

    // A credential the config names but the environment lacks is one clear error.
    let out = billq()
        .args(["convert", "--source", "prod-aws", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&store)
        .env("ACME_KEY", &s3.key_id)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "billq: s3://acme-billing/cur/: the config names $ACME_SECRET for aws_secret_access_key, but it is not set\n"
    );
}

/// The CUR 2.0 fixture's data, with `edit` applied to its CSV text, gzip-compressed.
fn cur2_data(edit: impl Fn(String) -> String) -> Vec<u8> {
    use std::io::Read;
    let packed = std::fs::read(testdata(
        "aws/cur2/billing/data/BILLING_PERIOD=2024-03/billing-00001.csv.gz",
    ))
    .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(packed.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(edit(text).as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// A CUR 2.0 manifest naming one data file of an execution folder.
fn cur2_manifest(execution: &str) -> String {
    format!(
        r#"{{"exportName": "billing", "executionId": "{execution}",
            "billingPeriod": {{"start": "2024-03-01T00:00:00.000Z", "end": "2024-04-01T00:00:00.000Z"}},
            "dataFiles": ["s3://acme/exports/billing/data/BILLING_PERIOD=2024-03/{execution}/billing-00001.csv.gz"]}}"#
    )
}

#[test]
fn cur2_deliveries_and_a_dbr_zip_from_a_bucket_and_bad_ones_leave_the_store() {
    let s3 = S3Server::start();
    s3.put("/acme", b"");
    let period = "/acme/exports/billing/data/BILLING_PERIOD=2024-03";
    let manifest = "/acme/exports/billing/metadata/BILLING_PERIOD=2024-03/billing-Manifest.json";
    s3.put(
        &format!("{period}/e1/billing-00001.csv.gz"),
        &cur2_data(|t| t),
    );
    s3.put(manifest, cur2_manifest("e1").as_bytes());
    let zip_name =
        "111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv.zip";
    let zip = std::fs::read(testdata(&format!("aws/{zip_name}"))).unwrap();
    s3.put(&format!("/acme/exports/dbr/{zip_name}"), &zip);

    let store = tempfile::tempdir().unwrap();
    let run = |s3: &S3Server, env: &[(&str, &str)]| {
        let mut cmd = s3.billq();
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["convert", "s3://acme/exports/", "--out"])
            .arg(store.path())
            .output()
            .unwrap()
    };
    let total = || {
        query_csv(
            store.path(),
            "SELECT COUNT(*) AS n, SUM(line_item_unblended_cost) AS c FROM aws_cur",
        )
    };
    let out = run(&s3, &[]);
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("converted s3:/{period}/e1/billing-00001.csv.gz -> aws_cur (5 rows, 1 file(s); line_item_blended_cost=0.1385,")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "converted s3://acme/exports/dbr/{zip_name} -> aws_dbr (5 rows, "
        )),
        "{log}"
    );
    assert!(!log.contains("warning"), "{log}");
    assert_eq!(total(), "n,c\n5,0.138500000000000000000000\n");

    // A new execution corrects a line: it replaces the earlier one, never adds to it.
    s3.put(
        &format!("{period}/e2/billing-00001.csv.gz"),
        &cur2_data(|t| t.replace(",0.023,", ",0.025,")),
    );
    s3.put(manifest, cur2_manifest("e2").as_bytes());
    let out = run(&s3, &[]);
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("converted s3:/{period}/e2/billing-00001.csv.gz -> aws_cur (5 rows, 1 file(s); line_item_blended_cost=0.1405,")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "superseded s3:/{period}/e1/billing-00001.csv.gz\n"
        )),
        "{log}"
    );
    assert_eq!(total(), "n,c\n5,0.140500000000000000000000\n");
    let good = catalog_bytes(store.path());

    // A truncated gzip and a corrupt zip: one clear line each, store as it was.
    let data = cur2_data(|t| t.replace(",0.023,", ",0.027,"));
    s3.put(
        &format!("{period}/e3/billing-00001.csv.gz"),
        &data[..data.len() / 2],
    );
    s3.put(manifest, cur2_manifest("e3").as_bytes());
    let out = run(&s3, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!("billq: s3:/{period}/e3/billing-00001.csv.gz:")),
        "{err}"
    );
    assert!(
        err.ends_with(": truncated gzip stream (unexpected end of file)\n"),
        "{err}"
    );
    assert_eq!(catalog_bytes(store.path()), good);
    assert_eq!(total(), "n,c\n5,0.140500000000000000000000\n");
    s3.put(manifest, cur2_manifest("e2").as_bytes());

    s3.put(
        &format!("/acme/exports/dbr/{zip_name}"),
        &zip[..zip.len() - 30],
    );
    let out = run(&s3, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        format!(
            "billq: s3://acme/exports/dbr/{zip_name}: corrupt zip archive: invalid Zip archive: Could not find EOCD\n"
        )
    );
    assert_eq!(catalog_bytes(store.path()), good);
    // With the good archive back, the store reconciles with the bucket.
    s3.put(&format!("/acme/exports/dbr/{zip_name}"), &zip);
    let verify = s3
        .billq()
        .args(["verify", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0));
}

#[test]
fn wrong_keys_are_one_clear_error_and_leave_the_store() {
    let s3 = S3Server::with_auth();
    s3.put("/acme", b"");
    s3.put(
        "/acme/cur-1.csv",
        &std::fs::read(testdata("aws/cur_legacy_2024-01_2024-02.csv")).unwrap(),
    );
    let store = tempfile::tempdir().unwrap();
    let run = |key_id: &str, secret: &str| {
        s3.billq()
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .args(["convert", "s3://acme/", "--out"])
            .arg(store.path())
            .output()
            .unwrap()
    };
    let out = run(&s3.key_id, &s3.secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = catalog_bytes(store.path());
    for (key_id, secret, code) in [
        (
            s3.key_id.as_str(),
            "not-the-secret",
            "SignatureDoesNotMatch",
        ),
        ("AKIANOSUCHKEY", "not-the-secret", "InvalidAccessKeyId"),
    ] {
        let out = run(key_id, secret);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("billq: s3://acme/: cannot read: ") && err.contains(code),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains(secret) && !err.contains(&s3.secret), "{err}");
        assert_eq!(catalog_bytes(store.path()), good);
    }

    // With no key in the environment, `AWS_PROFILE` names the shared credentials
    // file's profile to sign with.
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = AKIANOSUCHKEY\naws_secret_access_key = x\n\n\
             [billing]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s3.key_id, s3.secret
        ),
    )
    .unwrap();
    let out = s3
        .billq()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "billing")
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .args(["convert", "s3://acme/", "--out"])
        .arg(store.path())
        .output()
        .unwrap();
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{log}");
    assert_eq!(log, "unchanged s3://acme/cur-1.csv\n");
}
