//! The GCP standard usage cost export: NDJSON as `bq extract` writes it, or its Parquet
//! extract, from the same rows.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::sink::{Columns, Records, Repeated, Sink, utc_micros};
use crate::{
    CREDIT_TYPES, Error, Format, LABEL_KEYS, Options, REGIONS, Result, Rng, SERVICES, Time, Zipf,
    amount, check, days_in, month, usage_day,
};

/// Writes a GCP standard usage cost export into `out`; returns the files written.
pub fn gcp(options: &Options, out: &Path) -> Result<Vec<PathBuf>> {
    check(options, out)?;
    let mut rng = Rng(options.seed);
    let (services, skus, projects) = (Zipf::new(SERVICES.len()), Zipf::new(50), Zipf::new(200));
    let accounts = ["01A2B3-C4D5E6-F7A8B9", "0F1E2D-3C4B5A-697887"];
    let per_month = options.rows.div_ceil(u64::from(options.months));
    let mut files = Vec::new();
    let mut written = 0u64;
    for m in 0..options.months {
        let (year, mon) = month(m);
        let path = out.join(match options.format {
            Format::Export => format!("gcp_billing_export_{year}{mon:02}.jsonl.gz"),
            Format::Parquet => format!("gcp_billing_export_{year}{mon:02}-000000000000.parquet"),
        });
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut w = Sink::create(&path, options.format, || {
            let schema = parquet_schema();
            let columns = GcpColumns::new(&schema);
            (schema, columns)
        })
        .map_err(io)?;
        let rows = per_month.min(options.rows - written);
        let hours = u64::from(days_in(year, mon)) * 24;
        // Taxes and corrections take two rows an account at the month's end.
        let special = if rows >= 4 { 4 } else { 0 };
        let mut totals = [0.0f64; 2];
        for i in 0..rows - special {
            let account = (i % 2) as usize;
            let hour = i * hours / (rows - special).max(1);
            let (day, h) = ((hour / 24 + 1) as u32, (hour % 24) as u32);
            // One row in 200 is last month's usage, invoiced now (late usage).
            let (uy, um, ud) = usage_day(&mut rng, m, u64::from(day));
            let s = services.draw(&mut rng);
            let sku = skus.draw(&mut rng);
            let project = projects.draw(&mut rng);
            let region = REGIONS[(s + project) % REGIONS.len()];
            let cost = (rng.normal() * 1.2 - 2.0).exp();
            totals[account] += cost;
            let labels = (0..rng.below(11))
                .map(|k| (LABEL_KEYS[k], rng.below(5)))
                .collect();
            let credits = (0..rng.below(4))
                .map(|c| (c, -cost * 0.1 * rng.unit()))
                .collect();
            let at = |minute, second| Time::new(uy, um, ud as u32, h, minute, second);
            push(
                &mut w,
                &Row {
                    account: accounts[account],
                    service: SERVICES[s],
                    sku: Sku::Usage(sku),
                    start: at(0, 0),
                    end: at(59, 59),
                    project: Some(project),
                    labels,
                    location: Some(region),
                    export_time: Some(Time::new(year, mon, day, h, 30, 0)),
                    cost,
                    usage: true,
                    credits,
                    month: (year, mon),
                    cost_type: "regular",
                    cost_at_list: Some(cost * 1.25),
                },
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
                push(
                    &mut w,
                    &Row {
                        account: id,
                        service: SERVICES[0],
                        sku: Sku::Special(kind),
                        start: Time::new(year, mon, last, 0, 0, 0),
                        end: Time::new(year, mon, last, 23, 59, 59),
                        project: None,
                        labels: Vec::new(),
                        location: None,
                        export_time: None,
                        cost: value,
                        usage: false,
                        credits: Vec::new(),
                        month: (year, mon),
                        cost_type: kind,
                        cost_at_list: None,
                    },
                )
                .map_err(io)?;
            }
        }
        written += rows;
        w.close().map_err(io)?;
        files.push(path);
        if written >= options.rows {
            break;
        }
    }
    Ok(files)
}

/// Writes a row as a line of the NDJSON export or into the Parquet extract's columns.
fn push(w: &mut Sink<GcpColumns>, row: &Row) -> io::Result<()> {
    w.row(|text| row.write_json(text), |columns| columns.push(row))
}

/// A row's SKU: a service's usage SKU by rank, or a tax's or correction's.
enum Sku {
    Usage(usize),
    Special(&'static str),
}

/// One row of the export; money unrounded (the export writes 6 decimals).
struct Row {
    account: &'static str,
    /// (id, description)
    service: (&'static str, &'static str),
    sku: Sku,
    start: Time,
    end: Time,
    /// The project's rank.
    project: Option<usize>,
    /// (key, rank of the value `v<rank>`)
    labels: Vec<(&'static str, usize)>,
    location: Option<&'static str>,
    export_time: Option<Time>,
    cost: f64,
    /// Whether the row has usage (an hour, in seconds).
    usage: bool,
    /// (index in [`CREDIT_TYPES`], amount)
    credits: Vec<(usize, f64)>,
    month: (u32, u32),
    cost_type: &'static str,
    cost_at_list: Option<f64>,
}

impl Row {
    /// The SKU's id and description.
    fn sku(&self) -> (String, String) {
        let (service_id, service) = self.service;
        match self.sku {
            Sku::Usage(n) => (
                format!("{service_id}-SKU-{n:04}"),
                format!("{service} SKU {n}"),
            ),
            Sku::Special(kind) => (kind.to_string(), kind.to_string()),
        }
    }

    /// The credit's id: its type and the SKU's rank.
    fn credit_id(&self, kind: &str) -> String {
        match self.sku {
            Sku::Usage(n) => format!("{kind}-{n}"),
            Sku::Special(s) => format!("{kind}-{s}"),
        }
    }

    /// The row's resource tags: a cost center inherited from most projects, and an
    /// environment and a colour set on some SKUs' resources (none on taxes and
    /// corrections). Derived from the project and SKU, so they draw nothing.
    fn tags(&self) -> Vec<Tag> {
        let (Some(p), Sku::Usage(n)) = (self.project, &self.sku) else {
            return Vec::new();
        };
        let organization = ORGANIZATION.0.to_string();
        let mut tags = Vec::new();
        if p % 5 != 0 {
            tags.push(Tag {
                key: "cost_center",
                value: COST_CENTERS[p % COST_CENTERS.len()],
                inherited: true,
                namespace: organization.clone(),
            });
        }
        if (n + p) % 3 == 0 {
            tags.push(Tag {
                key: "environment",
                value: ["prod", "staging", "dev"][n % 3],
                inherited: false,
                namespace: organization,
            });
        }
        if (n + p) % 4 == 0 {
            tags.push(Tag {
                key: "color",
                value: ["red", "green", "blue"][p % 3],
                inherited: false,
                namespace: format!("project-{p:03}"),
            });
        }
        tags
    }

    /// The row as a line of the NDJSON export (absent fields left out).
    fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        let (service_id, service) = self.service;
        let (sku_id, sku) = self.sku();
        write!(
            w,
            r#"{{"billing_account_id":"{}","service":{{"id":"{service_id}","description":"{service}"}},"sku":{{"id":"{sku_id}","description":"{sku}"}},"usage_start_time":"{}","usage_end_time":"{}""#,
            self.account, self.start, self.end
        )?;
        if let Some(p) = self.project {
            write!(
                w,
                r#","project":{{"id":"project-{p:03}","number":"{}","name":"Project {p}","labels":[{{"key":"team","value":"t{}"}}],"ancestry_numbers":"{}","ancestors":["#,
                100_000 + p,
                p % 17,
                ancestry_numbers(p)
            )?;
            for (i, (resource_name, display_name)) in ancestors(p).iter().enumerate() {
                let comma = if i > 0 { "," } else { "" };
                write!(
                    w,
                    r#"{comma}{{"resource_name":"{resource_name}","display_name":"{display_name}"}}"#
                )?;
            }
            w.write_all(b"]}")?;
        }
        w.write_all(br#","labels":["#)?;
        for (i, (key, value)) in self.labels.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            write!(w, r#"{comma}{{"key":"{key}","value":"v{value}"}}"#)?;
        }
        w.write_all(br#"],"system_labels":[]"#)?;
        if let Some(region) = self.location {
            write!(
                w,
                r#","location":{{"location":"{region}","country":"US","region":"{region}"}}"#
            )?;
        }
        w.write_all(br#","tags":["#)?;
        for (i, tag) in self.tags().iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            write!(
                w,
                r#"{comma}{{"key":"{}","value":"{}","inherited":{},"namespace":"{}"}}"#,
                tag.key, tag.value, tag.inherited, tag.namespace
            )?;
        }
        w.write_all(b"]")?;
        if let Some(t) = self.export_time {
            write!(w, r#","export_time":"{t}""#)?;
        }
        write!(
            w,
            r#","cost":{},"currency":"USD","currency_conversion_rate":1"#,
            amount(self.cost)
        )?;
        if self.usage {
            w.write_all(br#","usage":{"amount":3600,"unit":"seconds","amount_in_pricing_units":1,"pricing_unit":"hour"}"#)?;
        }
        w.write_all(br#","credits":["#)?;
        for (i, &(c, value)) in self.credits.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let (kind, name) = CREDIT_TYPES[c];
            write!(
                w,
                r#"{comma}{{"name":"{name}","amount":{},"full_name":"{name}","id":"{}","type":"{kind}"}}"#,
                amount(value),
                self.credit_id(kind)
            )?;
        }
        let (year, mon) = self.month;
        write!(
            w,
            r#"],"invoice":{{"month":"{year}{mon:02}"}},"cost_type":"{}""#,
            self.cost_type
        )?;
        if let Some(c) = self.cost_at_list {
            write!(w, r#","cost_at_list":{}"#, amount(c))?;
        }
        writeln!(w, "}}")
    }
}

/// The value a double of the export has: its 6 decimals read back.
fn exported(x: f64) -> f64 {
    amount(x).parse().expect("a formatted number")
}

/// The organization every project sits in: (number, display name). Its number is also
/// the namespace of its tag keys, as in Google's examples.
const ORGANIZATION: (&str, &str) = ("821092389413", "example.com");
/// Folders under the organization: (number, display name). Platform sits in Engineering.
const FOLDERS: [(&str, &str); 4] = [
    ("1234", "Engineering"),
    ("5678", "Data"),
    ("9012", "Sales"),
    ("3456", "Platform"),
];
const COST_CENTERS: [&str; 6] = [
    "android_mobile_apps",
    "ios_mobile_apps",
    "web_storefront",
    "data_platform",
    "infrastructure",
    "machine_learning",
];

/// A resource tag as the export records it.
struct Tag {
    key: &'static str,
    value: &'static str,
    inherited: bool,
    /// The organization's number or the project's id that owns the key.
    namespace: String,
}

/// The folders of project `p`, from its parent up: one of the four, Platform's under
/// Engineering.
fn folders(p: usize) -> Vec<(&'static str, &'static str)> {
    match p % FOLDERS.len() {
        3 => vec![FOLDERS[3], FOLDERS[0]],
        f => vec![FOLDERS[f]],
    }
}

/// `project.ancestors`: (resource_name, display_name) from the project up to the
/// organization.
fn ancestors(p: usize) -> Vec<(String, String)> {
    let mut chain = vec![(format!("projects/{}", 100_000 + p), format!("Project {p}"))];
    chain.extend(
        folders(p)
            .into_iter()
            .map(|(number, name)| (format!("folders/{number}"), name.to_string())),
    );
    chain.push((
        format!("organizations/{}", ORGANIZATION.0),
        ORGANIZATION.1.to_string(),
    ));
    chain
}

/// `project.ancestry_numbers`: the organization's and folders' numbers from the top,
/// as `/org/folder/.../`.
fn ancestry_numbers(p: usize) -> String {
    let mut numbers = format!("/{}/", ORGANIZATION.0);
    for (number, _) in folders(p).iter().rev() {
        numbers.push_str(number);
        numbers.push('/');
    }
    numbers
}

/// The Parquet extract's columns, in [`parquet_schema`]'s order.
struct GcpColumns {
    schema: SchemaRef,
    account: StringBuilder,
    service: Records,
    sku: Records,
    start: TimestampMicrosecondBuilder,
    end: TimestampMicrosecondBuilder,
    project: Records,
    labels: Repeated,
    system_labels: Repeated,
    location: Records,
    tags: Repeated,
    export_time: TimestampMicrosecondBuilder,
    cost: Float64Builder,
    currency: StringBuilder,
    conversion_rate: Float64Builder,
    usage: Records,
    credits: Repeated,
    invoice: Records,
    cost_type: StringBuilder,
    cost_at_list: Float64Builder,
}

impl GcpColumns {
    fn new(schema: &SchemaRef) -> Self {
        let field = |name: &str| schema.field_with_name(name).expect("a field of the schema");
        Self {
            schema: schema.clone(),
            account: StringBuilder::new(),
            service: Records::of(field("service")),
            sku: Records::of(field("sku")),
            start: utc_micros(),
            end: utc_micros(),
            project: Records::of(field("project")),
            labels: Repeated::of(field("labels")),
            system_labels: Repeated::of(field("system_labels")),
            location: Records::of(field("location")),
            tags: Repeated::of(field("tags")),
            export_time: utc_micros(),
            cost: Float64Builder::new(),
            currency: StringBuilder::new(),
            conversion_rate: Float64Builder::new(),
            usage: Records::of(field("usage")),
            credits: Repeated::of(field("credits")),
            invoice: Records::of(field("invoice")),
            cost_type: StringBuilder::new(),
            cost_at_list: Float64Builder::new(),
        }
    }
}

impl GcpColumns {
    fn push(&mut self, row: &Row) {
        self.account.append_value(row.account);
        let (service_id, service) = row.service;
        self.service.fields[0].text().append_value(service_id);
        self.service.fields[1].text().append_value(service);
        self.service.end_row(true);
        let (sku_id, sku) = row.sku();
        self.sku.fields[0].text().append_value(sku_id);
        self.sku.fields[1].text().append_value(sku);
        self.sku.end_row(true);
        self.start.append_value(row.start.micros());
        self.end.append_value(row.end.micros());
        if let Some(p) = row.project {
            let f = &mut self.project.fields;
            f[0].text().append_value(format!("project-{p:03}"));
            f[1].text().append_value((100_000 + p).to_string());
            f[2].text().append_value(format!("Project {p}"));
            let labels = f[3].list();
            labels.records.fields[0].text().append_value("team");
            labels.records.fields[1]
                .text()
                .append_value(format!("t{}", p % 17));
            labels.end_record();
            labels.end_row();
            f[4].text().append_value(ancestry_numbers(p));
            let ancestors_list = f[5].list();
            for (resource_name, display_name) in ancestors(p) {
                let a = &mut ancestors_list.records.fields;
                a[0].text().append_value(resource_name);
                a[1].text().append_value(display_name);
                ancestors_list.end_record();
            }
            ancestors_list.end_row();
        }
        self.project.end_row(row.project.is_some());
        for (key, value) in &row.labels {
            self.labels.records.fields[0].text().append_value(key);
            self.labels.records.fields[1]
                .text()
                .append_value(format!("v{value}"));
            self.labels.end_record();
        }
        self.labels.end_row();
        self.system_labels.end_row();
        if let Some(region) = row.location {
            for (f, value) in self.location.fields.iter_mut().zip([region, "US", region]) {
                f.text().append_value(value);
            }
        }
        self.location.end_row(row.location.is_some());
        for tag in row.tags() {
            let f = &mut self.tags.records.fields;
            f[0].text().append_value(tag.key);
            f[1].text().append_value(tag.value);
            f[2].boolean().append_value(tag.inherited);
            f[3].text().append_value(tag.namespace);
            self.tags.end_record();
        }
        self.tags.end_row();
        self.export_time
            .append_option(row.export_time.map(|t| t.micros()));
        self.cost.append_value(exported(row.cost));
        self.currency.append_value("USD");
        self.conversion_rate.append_value(1.0);
        if row.usage {
            let f = &mut self.usage.fields;
            f[0].number().append_value(3600.0);
            f[1].text().append_value("seconds");
            f[2].number().append_value(1.0);
            f[3].text().append_value("hour");
        }
        self.usage.end_row(row.usage);
        for &(c, value) in &row.credits {
            let (kind, name) = CREDIT_TYPES[c];
            let f = &mut self.credits.records.fields;
            f[0].text().append_value(name);
            f[1].number().append_value(exported(value));
            f[2].text().append_value(name);
            f[3].text().append_value(row.credit_id(kind));
            f[4].text().append_value(kind);
            self.credits.end_record();
        }
        self.credits.end_row();
        let (year, mon) = row.month;
        self.invoice.fields[0]
            .text()
            .append_value(format!("{year}{mon:02}"));
        self.invoice.end_row(true);
        self.cost_type.append_value(row.cost_type);
        self.cost_at_list
            .append_option(row.cost_at_list.map(exported));
    }
}

impl Columns for GcpColumns {
    fn take(&mut self) -> Vec<ArrayRef> {
        let schema = self.schema.clone();
        let field = |name: &str| schema.field_with_name(name).expect("a field of the schema");
        vec![
            Arc::new(self.account.finish()),
            self.service.finish(field("service")),
            self.sku.finish(field("sku")),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            self.project.finish(field("project")),
            self.labels.finish(field("labels")),
            self.system_labels.finish(field("system_labels")),
            self.location.finish(field("location")),
            self.tags.finish(field("tags")),
            Arc::new(self.export_time.finish()),
            Arc::new(self.cost.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.conversion_rate.finish()),
            self.usage.finish(field("usage")),
            self.credits.finish(field("credits")),
            self.invoice.finish(field("invoice")),
            Arc::new(self.cost_type.finish()),
            Arc::new(self.cost_at_list.finish()),
        ]
    }
}

/// The schema of a BigQuery Parquet extract of the standard usage cost export (the
/// fields the generator writes).
fn parquet_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let double = |name: &str| Field::new(name, DataType::Float64, true);
    let time = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )
    };
    let record = |name: &str, fields: Vec<Field>| {
        Field::new(name, DataType::Struct(Fields::from(fields)), true)
    };
    let repeated = |name: &str, fields: Vec<Field>| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new(
                "element",
                DataType::Struct(Fields::from(fields)),
                true,
            ))),
            true,
        )
    };
    let key_values = |name: &str| repeated(name, vec![text("key"), text("value")]);
    let id_description = |name: &str| record(name, vec![text("id"), text("description")]);
    Arc::new(Schema::new(vec![
        text("billing_account_id"),
        id_description("service"),
        id_description("sku"),
        time("usage_start_time"),
        time("usage_end_time"),
        record(
            "project",
            vec![
                text("id"),
                text("number"),
                text("name"),
                key_values("labels"),
                text("ancestry_numbers"),
                repeated(
                    "ancestors",
                    vec![text("resource_name"), text("display_name")],
                ),
            ],
        ),
        key_values("labels"),
        key_values("system_labels"),
        record(
            "location",
            vec![text("location"), text("country"), text("region")],
        ),
        repeated(
            "tags",
            vec![
                text("key"),
                text("value"),
                Field::new("inherited", DataType::Boolean, true),
                text("namespace"),
            ],
        ),
        time("export_time"),
        double("cost"),
        text("currency"),
        double("currency_conversion_rate"),
        record(
            "usage",
            vec![
                double("amount"),
                text("unit"),
                double("amount_in_pricing_units"),
                text("pricing_unit"),
            ],
        ),
        repeated(
            "credits",
            vec![
                text("name"),
                double("amount"),
                text("full_name"),
                text("id"),
                text("type"),
            ],
        ),
        record("invoice", vec![text("month")]),
        text("cost_type"),
        double("cost_at_list"),
    ]))
}
