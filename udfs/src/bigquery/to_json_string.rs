//! `to_json_string(value)`: BigQuery's `TO_JSON_STRING`.

use std::fmt::Write;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, LargeStringArray, OffsetSizeTrait, StringArray,
    StringBuilder, StringViewArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// JSON text of a value exactly as BigQuery writes it: no spaces, record fields in
/// schema order, `[]` for an empty (or NULL) array, `null` for NULL, timestamps as
/// `"2024-01-01T00:00:00Z"`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToJsonString {
    signature: Signature,
}

impl ToJsonString {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for ToJsonString {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "JSON text of any value, as BigQuery's TO_JSON_STRING writes it: no spaces, fields in \
         schema order, [] for an empty array.",
        "to_json_string(value)",
    )
    .with_sql_example("SELECT to_json_string(labels) FROM gcp_billing_export")
    .with_argument(
        "value",
        "Any value: record, array, string, number, timestamp.",
    )
    .build()
});

impl ScalarUDFImpl for ToJsonString {
    fn name(&self) -> &str {
        "to_json_string"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [value] = take_function_args(self.name(), &arrays)?;
        let json = Json::of(value.as_ref());
        let mut out = StringBuilder::with_capacity(value.len(), value.len() * 16);
        for row in 0..value.len() {
            json.write(&mut out, row)?;
            out.append_value("");
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
fn quoted(out: &mut impl Write, s: &str) {
    let plain = !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
    let _ = if plain {
        out.write_char('"')
            .and_then(|()| out.write_str(s))
            .and_then(|()| out.write_char('"'))
    } else {
        out.write_str(&serde_json::to_string(s).expect("a string serialises"))
    };
}

/// Appends the JSON of `array[row]` to `out`.
pub fn write_json(out: &mut String, array: &ArrayRef, row: usize) -> Result<()> {
    Json::of(array.as_ref()).write(out, row)
}

/// How an array's values are written as JSON: its type, and its children's, looked at
/// once for all its rows instead of once a value.
struct Json<'a> {
    nulls: Option<&'a NullBuffer>,
    /// What a NULL is written as: `[]` for an array, `null` for the rest.
    null: &'static str,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Boolean(&'a BooleanArray),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    /// Each field's JSON after its key, written beforehand (`,"name":`).
    Struct(Vec<(String, Json<'a>)>),
    List(&'a [i32], Box<Json<'a>>),
    LargeList(&'a [i64], Box<Json<'a>>),
    Map(&'a [i32], Box<[Json<'a>; 2]>),
    /// Numbers, dates, timestamps and the types without JSON (an error if not NULL):
    /// looked at a value at a time.
    Scalar(&'a dyn Array),
}

impl<'a> Json<'a> {
    fn of(array: &'a dyn Array) -> Self {
        let mut null = "null";
        let kind = match array.data_type() {
            DataType::Boolean => Kind::Boolean(array.as_boolean()),
            DataType::Utf8 => Kind::Utf8(array.as_string()),
            DataType::LargeUtf8 => Kind::LargeUtf8(array.as_string()),
            DataType::Utf8View => Kind::Utf8View(array.as_string_view()),
            DataType::Struct(fields) => {
                let s = array.as_struct();
                let keyed = fields.iter().zip(s.columns()).enumerate();
                Kind::Struct(
                    keyed
                        .map(|(i, (field, column))| {
                            let mut key = String::from(if i > 0 { "," } else { "" });
                            quoted(&mut key, field.name());
                            key.push(':');
                            (key, Json::of(column.as_ref()))
                        })
                        .collect(),
                )
            }
            DataType::List(_) => {
                null = "[]";
                let l = array.as_list::<i32>();
                Kind::List(l.value_offsets(), Box::new(Json::of(l.values().as_ref())))
            }
            DataType::LargeList(_) => {
                null = "[]";
                let l = array.as_list::<i64>();
                Kind::LargeList(l.value_offsets(), Box::new(Json::of(l.values().as_ref())))
            }
            DataType::Map(_, _) => {
                let m = array.as_map();
                let entries = [Json::of(m.keys().as_ref()), Json::of(m.values().as_ref())];
                Kind::Map(m.value_offsets(), Box::new(entries))
            }
            _ => Kind::Scalar(array),
        };
        Json {
            nulls: array.nulls(),
            null,
            kind,
        }
    }

    /// Appends the JSON of row `row`: `null` if NULL, `[]` for a NULL array.
    fn write(&self, out: &mut impl Write, row: usize) -> Result<()> {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            let _ = out.write_str(self.null);
            return Ok(());
        }
        match &self.kind {
            Kind::Boolean(a) => {
                let _ = out.write_str(if a.value(row) { "true" } else { "false" });
            }
            Kind::Utf8(a) => quoted(out, a.value(row)),
            Kind::LargeUtf8(a) => quoted(out, a.value(row)),
            Kind::Utf8View(a) => quoted(out, a.value(row)),
            Kind::Struct(fields) => {
                let _ = out.write_char('{');
                for (key, json) in fields {
                    let _ = out.write_str(key);
                    json.write(out, row)?;
                }
                let _ = out.write_char('}');
            }
            Kind::List(offsets, values) => elements(out, values, offsets, row)?,
            Kind::LargeList(offsets, values) => elements(out, values, offsets, row)?,
            Kind::Map(offsets, entries) => {
                let [keys, values] = entries.as_ref();
                let _ = out.write_char('{');
                for (n, i) in (offsets[row] as usize..offsets[row + 1] as usize).enumerate() {
                    if n > 0 {
                        let _ = out.write_char(',');
                    }
                    let mut key = String::new();
                    keys.write(&mut key, i)?;
                    if key.starts_with('"') {
                        let _ = out.write_str(&key);
                    } else {
                        quoted(out, &key);
                    }
                    let _ = out.write_char(':');
                    values.write(out, i)?;
                }
                let _ = out.write_char('}');
            }
            Kind::Scalar(a) => scalar(out, *a, row)?,
        }
        Ok(())
    }
}

/// Appends a list's elements, those of `offsets[row]..offsets[row + 1]`, as a JSON array.
fn elements<O: OffsetSizeTrait>(
    out: &mut impl Write,
    values: &Json,
    offsets: &[O],
    row: usize,
) -> Result<()> {
    let _ = out.write_char('[');
    for (n, i) in (offsets[row].as_usize()..offsets[row + 1].as_usize()).enumerate() {
        if n > 0 {
            let _ = out.write_char(',');
        }
        values.write(out, i)?;
    }
    let _ = out.write_char(']');
    Ok(())
}

/// Appends the JSON of a number, date or timestamp, `array[row]` (not NULL).
fn scalar(out: &mut impl Write, array: &dyn Array, row: usize) -> Result<()> {
    macro_rules! number {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(row));
        }};
    }
    match array.data_type() {
        DataType::Null => {
            let _ = out.write_str("null");
        }
        DataType::Int8 => number!(Int8Type),
        DataType::Int16 => number!(Int16Type),
        DataType::Int32 => number!(Int32Type),
        DataType::Int64 => number!(Int64Type),
        DataType::UInt8 => number!(UInt8Type),
        DataType::UInt16 => number!(UInt16Type),
        DataType::UInt32 => number!(UInt32Type),
        DataType::UInt64 => number!(UInt64Type),
        DataType::Float32 | DataType::Float64 => {
            let v = if let DataType::Float32 = array.data_type() {
                array.as_primitive::<Float32Type>().value(row) as f64
            } else {
                array.as_primitive::<Float64Type>().value(row)
            };
            if v.is_finite() {
                let _ = write!(out, "{v}");
            } else {
                quoted(
                    out,
                    if v.is_nan() {
                        "NaN"
                    } else if v > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    },
                );
            }
        }
        DataType::Decimal128(_, s) => {
            let text = arrow::array::Decimal128Array::from(vec![
                array.as_primitive::<Decimal128Type>().value(row),
            ])
            .with_precision_and_scale(38, *s)?
            .value_as_string(0);
            let trimmed = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.')
            } else {
                &text
            };
            let _ = out.write_str(trimmed);
        }
        DataType::Date32 => {
            let d = arrow::temporal_conversions::as_date::<Date32Type>(
                array.as_primitive::<Date32Type>().value(row) as i64,
            );
            quoted(out, &d.map(|d| d.to_string()).unwrap_or_default());
        }
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => {
                    array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000
                }
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row) * 1_000
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => {
                    array.as_primitive::<TimestampNanosecondType>().value(row) / 1_000
                }
            };
            let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
            quoted(out, &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        other => return exec_err!("to_json_string does not support {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListArray, StructArray};
    use arrow::buffer::{NullBuffer, OffsetBuffer};
    use arrow::datatypes::{Field, Fields};

    fn rows(array: &ArrayRef) -> Vec<String> {
        (0..array.len())
            .map(|row| {
                let mut out = String::new();
                write_json(&mut out, array, row).unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let texts = [
            "plain",
            "quote \" here",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "é ü 日本",
            "",
        ];
        let array: ArrayRef = Arc::new(StringViewArray::from(texts.to_vec()));
        let expected: Vec<String> = texts
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        assert_eq!(rows(&array), expected);
    }

    #[test]
    fn nested_nulls_are_null_and_null_lists_empty() {
        // Records {key, flag, n}: a NULL record, a NULL field, and a list holding a
        // NULL element; the list column itself NULL in its last row.
        let fields = Fields::from(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let records = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("c"),
                    Some("d"),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    None,
                ])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4)])),
            ],
            Some(NullBuffer::from(vec![true, true, false, true])),
        );
        let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
        let lists: ArrayRef = Arc::new(ListArray::new(
            item,
            OffsetBuffer::from_lengths([2, 0, 1, 1]),
            Arc::new(records),
            Some(NullBuffer::from(vec![true, true, true, false])),
        ));
        assert_eq!(
            rows(&lists),
            [
                r#"[{"key":"a","flag":true,"n":1},{"key":null,"flag":false,"n":2}]"#,
                "[]",
                "[null]",
                "[]",
            ]
        );
    }
}
