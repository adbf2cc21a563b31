//! Azure's legacy billing APIs, read from their raw replies (one file a page):
//!
//! - Usage Aggregates (`{"value": [{"properties": {...}}], "nextLink": ...}`) become
//!   `azure_usage` rows: the documented properties (`usageStartTime`, `meterId`,
//!   `quantity`, `unit`, ...), `infoFields` as a map, and `instanceData` (a JSON string)
//!   opened into `resourceUri`, `location`, `tags` and `additionalInfo`, the text kept.
//! - RateCard (`{"Meters": [...], "Currency": ...}`) becomes `azure_ratecard`, one row
//!   per price tier: `tierMinimum` is a key of `MeterRates` (`{"0": 1.99, "100": 0.99}`),
//!   `rate` its price, with the meter's `includedQuantity` and `effectiveDate`; a reply
//!   does not name its offer, so `rateCard` is the reply's file name.
//!
//! Numbers are read from their JSON text as exact decimals.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::csv_export::{SCALE, json_entries, map_type, parse_decimal, parse_timestamp};
use super::{BatchSource, ExportKind, Packing, open_text};
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct UsagePage<'a> {
    #[serde(borrow)]
    value: Vec<UsageItem<'a>>,
}

#[derive(Deserialize)]
struct UsageItem<'a> {
    id: Option<String>,
    #[serde(borrow)]
    properties: UsageProperties<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageProperties<'a> {
    subscription_id: Option<String>,
    usage_start_time: Option<String>,
    usage_end_time: Option<String>,
    meter_id: Option<String>,
    meter_name: Option<String>,
    meter_category: Option<String>,
    meter_sub_category: Option<String>,
    meter_region: Option<String>,
    unit: Option<String>,
    #[serde(borrow)]
    quantity: Option<&'a RawValue>,
    #[serde(borrow)]
    info_fields: Option<&'a RawValue>,
    instance_data: Option<String>,
}

/// `instanceData`: `{"Microsoft.Resources": {"resourceUri": ..., "location": ..., ...}}`.
#[derive(Deserialize, Default)]
struct InstanceData<'a> {
    #[serde(rename = "Microsoft.Resources", borrow, default)]
    resources: Option<Resources<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Resources<'a> {
    resource_uri: Option<String>,
    location: Option<String>,
    #[serde(borrow)]
    tags: Option<&'a RawValue>,
    #[serde(borrow)]
    additional_info: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RateCard<'a> {
    #[serde(borrow)]
    meters: Vec<Meter<'a>>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meter<'a> {
    effective_date: Option<String>,
    #[serde(borrow)]
    included_quantity: Option<&'a RawValue>,
    meter_category: Option<String>,
    meter_id: Option<String>,
    meter_name: Option<String>,
    #[serde(borrow)]
    meter_rates: BTreeMap<String, &'a RawValue>,
    meter_region: Option<String>,
    meter_sub_category: Option<String>,
    #[serde(default)]
    meter_tags: Vec<String>,
    unit: Option<String>,
}

/// One reply, read whole (a page is small), as one batch.
pub struct ApiReply {
    kind: ExportKind,
    schema: SchemaRef,
    batch: Option<RecordBatch>,
}

/// The text of a file if it is one JSON document that is an Azure API reply (by its
/// top-level keys); `None` for anything else, such as newline-delimited records.
fn reply_text(path: &Path, packing: Packing) -> Result<Option<(ExportKind, String)>> {
    let mut text = String::new();
    let mut reader = open_text(path, packing, None)?;
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .map_err(|e| Error::io(path, e))?;
    // A complete record on the first line is NDJSON unless it has a reply's keys.
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(&first)
        && !(o.contains_key("value") || o.contains_key("Meters"))
    {
        return Ok(None);
    }
    text.push_str(&first);
    reader
        .read_to_string(&mut text)
        .map_err(|e| Error::io(path, e))?;
    #[derive(Deserialize)]
    struct Keys {
        value: Option<Vec<serde_json::Value>>,
        #[serde(rename = "Meters")]
        meters: Option<serde_json::Value>,
    }
    let Ok(keys) = serde_json::from_str::<Keys>(&text) else {
        return Ok(None);
    };
    let kind = match (keys.value, keys.meters) {
        (Some(items), _) if items.iter().all(|i| i.get("properties").is_some()) => {
            ExportKind::AzureUsage
        }
        (_, Some(_)) => ExportKind::AzureRateCard,
        _ => return Ok(None),
    };
    Ok(Some((kind, text)))
}

impl ApiReply {
    /// Reads `path` if it is a Usage Aggregates page or a RateCard reply.
    pub fn open(path: &Path, display: &str, packing: Packing) -> Result<Option<Self>> {
        let Some((kind, text)) = reply_text(path, packing)? else {
            return Ok(None);
        };
        let bad = |e: serde_json::Error| Error::BadRow {
            path: display.to_string(),
            line: e.line() as u64,
            message: format!("not an Azure API reply: {e}"),
        };
        let batch = match kind {
            ExportKind::AzureUsage => usage_batch(&serde_json::from_str(&text).map_err(bad)?),
            _ => ratecard_batch(
                &serde_json::from_str(&text).map_err(bad)?,
                &rate_card_name(display),
            ),
        }
        .map_err(|message| Error::BadFile {
            path: display.to_string(),
            message,
        })?;
        Ok(Some(Self {
            kind,
            schema: batch.schema(),
            batch: Some(batch),
        }))
    }
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn decimal(name: &str) -> Field {
    Field::new(name, DataType::Decimal128(38, SCALE), true)
}

fn timestamp(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )
}

/// An exact decimal of a JSON number (or numeric string); `Err` names what it is.
fn number(what: &str, raw: Option<&RawValue>) -> std::result::Result<Option<i128>, String> {
    let Some(raw) = raw.map(RawValue::get).filter(|r| *r != "null") else {
        return Ok(None);
    };
    parse_decimal(raw.trim_matches('"'))
        .map(Some)
        .ok_or_else(|| format!("{what} {raw} is not a number"))
}

fn date(what: &str, value: Option<&String>) -> std::result::Result<Option<i64>, String> {
    value
        .map(|v| parse_timestamp(v).ok_or_else(|| format!("{what} {v:?} is not a date")))
        .transpose()
}

type Maps = MapBuilder<StringBuilder, StringBuilder>;

fn new_map() -> Maps {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

/// Appends a JSON object's entries (text) as one map.
fn append_json(b: &mut Maps, raw: Option<&RawValue>) -> std::result::Result<(), String> {
    if let Some(raw) = raw.map(RawValue::get).filter(|r| *r != "null") {
        for (k, v) in json_entries(raw).map_err(|e| format!("not a JSON object: {e}"))? {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
    }
    b.append(true).map_err(|e| e.to_string())
}

fn usage_batch(page: &UsagePage) -> std::result::Result<RecordBatch, String> {
    let schema = Arc::new(Schema::new(vec![
        text("id"),
        text("subscriptionId"),
        timestamp("usageStartTime"),
        timestamp("usageEndTime"),
        text("meterId"),
        text("meterName"),
        text("meterCategory"),
        text("meterSubCategory"),
        text("meterRegion"),
        text("unit"),
        decimal("quantity"),
        Field::new("infoFields", map_type(), true),
        text("resourceUri"),
        text("location"),
        Field::new("tags", map_type(), true),
        Field::new("additionalInfo", map_type(), true),
        text("instanceData"),
    ]));
    let mut texts: Vec<StringBuilder> = (0..11).map(|_| StringBuilder::new()).collect();
    let mut times = [
        TimestampMicrosecondBuilder::new().with_timezone("UTC"),
        TimestampMicrosecondBuilder::new().with_timezone("UTC"),
    ];
    let mut quantity = Decimal128Builder::new()
        .with_precision_and_scale(38, SCALE)
        .map_err(|e| e.to_string())?;
    let (mut info, mut tags, mut additional) = (new_map(), new_map(), new_map());
    for (n, item) in page.value.iter().enumerate() {
        let at = |e: String| format!("value[{n}]: {e}");
        let p = &item.properties;
        let instance: InstanceData = match &p.instance_data {
            Some(t) => {
                serde_json::from_str(t).map_err(|e| at(format!("instanceData is not JSON: {e}")))?
            }
            None => InstanceData::default(),
        };
        let r = instance.resources.unwrap_or_default();
        let region = p.meter_region.clone().or_else(|| {
            let fields = json_entries(p.info_fields?.get()).ok()?;
            fields
                .into_iter()
                .find_map(|(k, v)| (k == "meteredRegion").then_some(v))
        });
        for (b, v) in texts.iter_mut().zip([
            item.id.as_ref(),
            p.subscription_id.as_ref(),
            p.meter_id.as_ref(),
            p.meter_name.as_ref(),
            p.meter_category.as_ref(),
            p.meter_sub_category.as_ref(),
            region.as_ref(),
            p.unit.as_ref(),
            r.resource_uri.as_ref(),
            r.location.as_ref(),
            p.instance_data.as_ref(),
        ]) {
            b.append_option(v);
        }
        times[0].append_option(date("usageStartTime", p.usage_start_time.as_ref()).map_err(at)?);
        times[1].append_option(date("usageEndTime", p.usage_end_time.as_ref()).map_err(at)?);
        quantity.append_option(number("quantity", p.quantity).map_err(at)?);
        append_json(&mut info, p.info_fields).map_err(at)?;
        append_json(&mut tags, r.tags).map_err(at)?;
        append_json(&mut additional, r.additional_info).map_err(at)?;
    }
    let mut texts = texts
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || texts.next().expect("eleven text columns");
    let [mut start, mut end] = times;
    let columns: Vec<ArrayRef> = vec![
        next(),
        next(),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        Arc::new(quantity.finish()),
        Arc::new(info.finish()),
        next(),
        next(),
        Arc::new(tags.finish()),
        Arc::new(additional.finish()),
        next(),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// A rate card's name: its reply's file name without `.json` (the reply itself does not
/// name its offer).
fn rate_card_name(display: &str) -> String {
    let file = display.rsplit(['/', '\\']).next().unwrap_or(display);
    file.strip_suffix(".gz")
        .unwrap_or(file)
        .trim_end_matches(".json")
        .to_string()
}

fn ratecard_batch(card: &RateCard, name: &str) -> std::result::Result<RecordBatch, String> {
    let schema = Arc::new(Schema::new(vec![
        text("rateCard"),
        text("meterId"),
        text("meterName"),
        text("meterCategory"),
        text("meterSubCategory"),
        text("meterRegion"),
        text("unit"),
        text("meterTags"),
        text("currency"),
        timestamp("effectiveDate"),
        decimal("includedQuantity"),
        decimal("tierMinimum"),
        decimal("rate"),
    ]));
    let mut texts: Vec<StringBuilder> = (0..9).map(|_| StringBuilder::new()).collect();
    let mut effective = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut decimals: Vec<Decimal128Builder> = (0..3)
        .map(|_| Decimal128Builder::new().with_precision_and_scale(38, SCALE))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for (n, m) in card.meters.iter().enumerate() {
        let at = |e: String| format!("Meters[{n}]: {e}");
        let included = number("IncludedQuantity", m.included_quantity).map_err(at)?;
        let since = date("EffectiveDate", m.effective_date.as_ref()).map_err(at)?;
        let mut tiers = m
            .meter_rates
            .iter()
            .map(|(minimum, rate)| {
                let minimum = parse_decimal(minimum)
                    .ok_or_else(|| at(format!("MeterRates key {minimum:?} is not a quantity")))?;
                Ok((minimum, number("MeterRates", Some(rate)).map_err(at)?))
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        tiers.sort_by_key(|(minimum, _)| *minimum);
        let tags = m.meter_tags.join(", ");
        for (minimum, rate) in tiers {
            for (b, v) in texts.iter_mut().zip([
                Some(name),
                m.meter_id.as_deref(),
                m.meter_name.as_deref(),
                m.meter_category.as_deref(),
                m.meter_sub_category.as_deref(),
                m.meter_region.as_deref(),
                m.unit.as_deref(),
                Some(tags.as_str()).filter(|t| !t.is_empty()),
                card.currency.as_deref(),
            ]) {
                b.append_option(v);
            }
            effective.append_option(since);
            decimals[0].append_option(included);
            decimals[1].append_value(minimum);
            decimals[2].append_option(rate);
        }
    }
    let mut columns: Vec<ArrayRef> = texts
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.push(Arc::new(effective.finish()));
    columns.extend(
        decimals
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

impl BatchSource for ApiReply {
    fn kind(&self) -> ExportKind {
        self.kind
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        Ok(self.batch.take())
    }
}
