//! Realistic synthetic billing exports, deterministic per seed and streamed (constant
//! memory), for tests and benchmarks of very large exports.
//!
//! GCP: the standard usage cost export as `bq extract` writes it (newline-delimited
//! JSON, gzip), one file per invoice month: hourly usage over the months, services,
//! SKUs and projects drawn from Zipf distributions, 0-10 labels and 0-3 credits a row,
//! log-normal costs with 6 decimals, a tax row per account and month, corrections
//! (`adjustment` rows) and late usage (usage of one month on the next month's invoice).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What can go wrong writing an export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// SplitMix64: small, fast, and the same stream for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Zipf(s = 1.1) over `n` ranks, by its cumulative weights.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        Self(
            (1..=n)
                .map(|k| {
                    total += 1.0 / (k as f64).powf(1.1);
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let x = rng.unit() * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|c| *c < x).min(self.0.len() - 1)
    }
}

const SERVICES: [(&str, &str); 12] = [
    ("6F81-5844-456A", "Compute Engine"),
    ("95FF-2EF5-5EA1", "Cloud Storage"),
    ("24E6-581D-38E5", "BigQuery"),
    ("9662-B51E-5089", "Cloud SQL"),
    ("CCD8-9BF1-090E", "Kubernetes Engine"),
    ("152E-C115-5142", "Cloud Run"),
    ("E505-1604-58F8", "Networking"),
    ("58CD-E7C3-72CA", "Cloud Logging"),
    ("29E7-DA93-CA13", "Cloud Functions"),
    ("A1E8-BE35-7EBC", "Pub/Sub"),
    ("2062-016F-44A2", "Cloud Memorystore"),
    ("5490-F7B7-8DF6", "Vertex AI"),
];
const REGIONS: [&str; 6] = [
    "us-central1",
    "us-east1",
    "europe-west1",
    "europe-west4",
    "asia-east1",
    "australia-southeast1",
];
const LABEL_KEYS: [&str; 10] = [
    "env",
    "team",
    "app",
    "cost-center",
    "owner",
    "tier",
    "region",
    "version",
    "component",
    "customer",
];
const CREDIT_TYPES: [(&str, &str); 3] = [
    ("SUSTAINED_USAGE_DISCOUNT", "Sustained Usage Discount"),
    ("COMMITTED_USAGE_DISCOUNT", "Committed Use Discount"),
    ("PROMOTION", "Free Trial"),
];

/// What to generate.
pub struct GcpOptions {
    /// Rows in all, taxes and corrections included.
    pub rows: u64,
    /// Months of usage, from January 2024.
    pub months: u32,
    pub seed: u64,
}

/// `YYYYMM` of the month `m` months after January 2024.
fn month(m: u32) -> (u32, u32) {
    (2024 + m / 12, m % 12 + 1)
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `x` with 6 decimals, as JSON writes it.
fn amount(x: f64) -> String {
    let text = format!("{x:.6}");
    if text == "-0.000000" {
        "0.000000".into()
    } else {
        text
    }
}

/// Writes a GCP standard usage cost export into `out`; returns the files written.
pub fn gcp(options: &GcpOptions, out: &Path) -> Result<Vec<PathBuf>> {
    if options.months == 0 || options.rows == 0 {
        return Err(Error::Invalid(
            "--rows and --months must be at least 1".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut rng = Rng(options.seed);
    let (services, skus, projects) = (Zipf::new(SERVICES.len()), Zipf::new(50), Zipf::new(200));
    let accounts = ["01A2B3-C4D5E6-F7A8B9", "0F1E2D-3C4B5A-697887"];
    let per_month = options.rows.div_ceil(u64::from(options.months));
    let mut files = Vec::new();
    let mut written = 0u64;
    for m in 0..options.months {
        let (year, mon) = month(m);
        let path = out.join(format!("gcp_billing_export_{year}{mon:02}.jsonl.gz"));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(io)?;
        let mut w = BufWriter::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        let rows = per_month.min(options.rows - written);
        let hours = u64::from(days_in(year, mon)) * 24;
        // Taxes and corrections take two rows an account at the month's end.
        let special = if rows >= 4 { 4 } else { 0 };
        let mut totals = [0.0f64; 2];
        for i in 0..rows - special {
            let account = (i % 2) as usize;
            let hour = i * hours / (rows - special).max(1);
            let (day, h) = (hour / 24 + 1, hour % 24);
            // One row in 200 is last month's usage, invoiced now (late usage).
            let (uy, um, ud) = if m > 0 && rng.below(200) == 0 {
                let (py, pm) = month(m - 1);
                (py, pm, days_in(py, pm) as u64)
            } else {
                (year, mon, day)
            };
            let s = services.draw(&mut rng);
            let (service_id, service) = SERVICES[s];
            let sku = skus.draw(&mut rng);
            let project = projects.draw(&mut rng);
            let region = REGIONS[(s + project) % REGIONS.len()];
            let cost = (rng.normal() * 1.2 - 2.0).exp();
            totals[account] += cost;
            let labels: Vec<String> = (0..rng.below(11))
                .map(|k| {
                    format!(
                        r#"{{"key":"{}","value":"v{}"}}"#,
                        LABEL_KEYS[k],
                        rng.below(5)
                    )
                })
                .collect();
            let credits: Vec<String> = (0..rng.below(4))
                .map(|c| {
                    let (kind, name) = CREDIT_TYPES[c];
                    format!(
                        r#"{{"name":"{name}","amount":{},"full_name":"{name}","id":"{kind}-{sku}","type":"{kind}"}}"#,
                        amount(-cost * 0.1 * rng.unit())
                    )
                })
                .collect();
            let start = format!("{uy}-{um:02}-{ud:02} {h:02}:00:00 UTC");
            let end = format!("{uy}-{um:02}-{ud:02} {h:02}:59:59 UTC");
            writeln!(
                w,
                r#"{{"billing_account_id":"{}","service":{{"id":"{service_id}","description":"{service}"}},"sku":{{"id":"{service_id}-SKU-{sku:04}","description":"{service} SKU {sku}"}},"usage_start_time":"{start}","usage_end_time":"{end}","project":{{"id":"project-{project:03}","number":"{}","name":"Project {project}","labels":[{{"key":"team","value":"t{}"}}]}},"labels":[{}],"system_labels":[],"location":{{"location":"{region}","country":"US","region":"{region}"}},"export_time":"{year}-{mon:02}-{day:02} {h:02}:30:00 UTC","cost":{},"currency":"USD","currency_conversion_rate":1,"usage":{{"amount":{},"unit":"seconds","amount_in_pricing_units":{},"pricing_unit":"hour"}},"credits":[{}],"invoice":{{"month":"{year}{mon:02}"}},"cost_type":"regular","cost_at_list":{}}}"#,
                accounts[account],
                100_000 + project,
                project % 17,
                labels.join(","),
                amount(cost),
                3600,
                1,
                credits.join(","),
                amount(cost * 1.25),
            )
            .map_err(io)?;
        }
        for (account, id) in accounts.iter().enumerate().take(special as usize / 2) {
            // Two rows each: the month's tax and a correction.
            let last = days_in(year, mon);
            for (kind, value) in [
                ("tax", totals[account] * 0.08),
                ("adjustment", -totals[account] * 0.002),
            ] {
                writeln!(
                    w,
                    r#"{{"billing_account_id":"{id}","service":{{"id":"{}","description":"{}"}},"sku":{{"id":"{kind}","description":"{kind}"}},"usage_start_time":"{year}-{mon:02}-{last:02} 00:00:00 UTC","usage_end_time":"{year}-{mon:02}-{last:02} 23:59:59 UTC","labels":[],"system_labels":[],"cost":{},"currency":"USD","currency_conversion_rate":1,"credits":[],"invoice":{{"month":"{year}{mon:02}"}},"cost_type":"{kind}"}}"#,
                    SERVICES[0].0,
                    SERVICES[0].1,
                    amount(value),
                )
                .map_err(io)?;
            }
        }
        written += rows;
        w.into_inner()
            .map_err(|e| io(e.into_error()))?
            .finish()
            .map_err(io)?;
        files.push(path);
        if written >= options.rows {
            break;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_zipf_favours_low_ranks() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        assert_eq!(a.next(), b.next());
        let z = Zipf::new(10);
        let mut counts = [0; 10];
        for _ in 0..10_000 {
            counts[z.draw(&mut a)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[9]);
        assert_eq!(amount(-0.0000001), "0.000000");
        assert_eq!(days_in(2024, 2), 29);
    }
}
