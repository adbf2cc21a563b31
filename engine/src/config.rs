//! `billq.toml`: named sources, as a FinOps tool is given them: where the exports are
//! delivered, whose account they bill, and how to reach them. Secrets are never in the
//! file: it names the environment variables or the AWS profile that hold them.
//!
//! ```toml
//! store = "/var/lib/billq/store"          # where reports read (relative: beside this file)
//!
//! [sources.prod-aws]
//! url = "s3://acme-billing/cur/"          # bucket and prefix of the deliveries
//! account_name = "Acme production"
//! billing_account_id = "111122223333"     # the payer
//! target_account_id = "444455556666"      # the account billed, when not the payer
//! region = "us-east-1"
//! access_key_id_env = "ACME_AWS_KEY_ID"   # or profile = "billing", or neither:
//! secret_access_key_env = "ACME_AWS_SECRET" #   the standard AWS_* environment
//! # endpoint = "http://127.0.0.1:9000"    # an S3-compatible server
//! # allow_http = true
//!
//! [[budgets]]                             # checked by `billq report monthly`
//! name = "aws-prod"
//! provider = "aws"                        # gcp, aws or azure; all if left out
//! billing_account_id = "111122223333"     # optional
//! currency = "USD"
//! monthly = "25000.00"                    # exact decimal text
//! # project = "web"                       # or a project's share (see [[projects]])
//!
//! [[projects]]                            # who owes what, across providers
//! name = "web"
//! accounts = ["111122223333", "mca:1234"] # billing or sub-account ids (projects, subscriptions)
//! tags = { team = "web" }                 # or rows with one of these tag values
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::StoreOptions;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The store that reports read when no `--data` is given.
    pub store: Option<PathBuf>,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub projects: Vec<Project>,
}

/// A project or team: the accounts and tags whose cost it owns. A row belongs to the
/// first project (in the file's order) it matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A monthly budget over the invoice totals of a provider, billing account and currency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub name: String,
    /// A project of `[[projects]]`: its share of the bill (then `provider` and
    /// `billing_account_id` are not used).
    pub project: Option<String>,
    pub provider: Option<String>,
    pub billing_account_id: Option<String>,
    pub currency: String,
    /// The amount, as decimal text.
    pub monthly: String,
}

/// One named source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub url: String,
    pub account_name: Option<String>,
    pub billing_account_id: Option<String>,
    pub target_account_id: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
    /// A profile of the shared credentials file (`~/.aws/credentials`).
    pub profile: Option<String>,
    pub access_key_id_env: Option<String>,
    pub secret_access_key_env: Option<String>,
    pub session_token_env: Option<String>,
}

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: Self = toml::from_str(&text).map_err(|e| Error::Catalog {
            path: path.to_path_buf(),
            message: format!("bad config: {}", e.message()),
        })?;
        // A relative store is beside the config file.
        if let (Some(store), Some(dir)) = (&config.store, path.parent()) {
            config.store = Some(dir.join(store));
        }
        Ok(config)
    }

    /// The source called `name`.
    pub fn source(&self, name: &str, path: &Path) -> Result<&SourceConfig> {
        self.sources.get(name).ok_or_else(|| Error::Catalog {
            path: path.to_path_buf(),
            message: format!(
                "no source named {name} (sources: {})",
                self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Store options for a URL: those of the source whose URL it is under.
    pub fn options_for(&self, url: &str) -> Result<StoreOptions> {
        match self.sources.values().find(|s| url.starts_with(&s.url)) {
            Some(s) => s.store_options(),
            None => Ok(StoreOptions::default()),
        }
    }
}

impl SourceConfig {
    /// The object store settings of this source, secrets read from where it names them.
    pub fn store_options(&self) -> Result<StoreOptions> {
        let mut options = Vec::new();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                options.push((key.to_string(), v));
            }
        };
        set("aws_region", self.region.clone());
        set("aws_endpoint", self.endpoint.clone());
        set(
            "aws_allow_http",
            self.allow_http.then(|| "true".to_string()),
        );
        if let Some(profile) = &self.profile {
            for (key, value) in profile_credentials(profile)? {
                set(&key, Some(value));
            }
        }
        for (key, env) in [
            ("aws_access_key_id", &self.access_key_id_env),
            ("aws_secret_access_key", &self.secret_access_key_env),
            ("aws_session_token", &self.session_token_env),
        ] {
            if let Some(env) = env {
                let value = std::env::var(env).map_err(|_| Error::BadUrl {
                    url: self.url.clone(),
                    message: format!("the config names ${env} for {key}, but it is not set"),
                })?;
                set(key, Some(value));
            }
        }
        Ok(StoreOptions(options))
    }
}

/// The keys of one profile of the AWS shared credentials file
/// (`$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
pub(crate) fn profile_credentials(profile: &str) -> Result<Vec<(String, String)>> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut in_profile = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
        } else if in_profile && let Some((k, v)) = line.split_once('=') {
            let key = k.trim().to_ascii_lowercase();
            if [
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ]
            .contains(&key.as_str())
            {
                out.push((key, v.trim().to_string()));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Catalog {
            path,
            message: format!("no credentials for profile {profile}"),
        });
    }
    Ok(out)
}
