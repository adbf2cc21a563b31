//! `to_json_string(value)`: BigQuery's `TO_JSON_STRING`.

use std::fmt::Write;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
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
        let mut out = StringBuilder::with_capacity(value.len(), value.len() * 16);
        let mut text = String::new();
        for row in 0..value.len() {
            text.clear();
            write_json(&mut text, value, row)?;
            out.append_value(&text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn quoted(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serialises"));
}

/// Appends the JSON of `array[row]` to `out`.
pub fn write_json(out: &mut String, array: &ArrayRef, row: usize) -> Result<()> {
    if array.is_null(row) {
        out.push_str(
            if matches!(
                array.data_type(),
                DataType::List(_) | DataType::LargeList(_)
            ) {
                "[]"
            } else {
                "null"
            },
        );
        return Ok(());
    }
    macro_rules! number {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(row));
        }};
    }
    match array.data_type() {
        DataType::Null => out.push_str("null"),
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
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
            out.push_str(trimmed);
        }
        DataType::Utf8 => quoted(out, array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => quoted(out, array.as_string::<i64>().value(row)),
        DataType::Utf8View => quoted(out, array.as_string_view().value(row)),
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
        DataType::Map(_, _) => {
            let m = array.as_map();
            let o = m.value_offsets();
            out.push('{');
            for (n, i) in (o[row] as usize..o[row + 1] as usize).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let mut key = String::new();
                write_json(&mut key, m.keys(), i)?;
                if key.starts_with('"') {
                    out.push_str(&key);
                } else {
                    quoted(out, &key);
                }
                out.push(':');
                write_json(out, m.values(), i)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.push('{');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quoted(out, field.name());
                out.push(':');
                write_json(out, s.column(i), row)?;
            }
            out.push('}');
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let (values, range) = match array.data_type() {
                DataType::List(_) => {
                    let l = array.as_list::<i32>();
                    let o = l.value_offsets();
                    (l.values().clone(), o[row] as usize..o[row + 1] as usize)
                }
                _ => {
                    let l = array.as_list::<i64>();
                    let o = l.value_offsets();
                    (l.values().clone(), o[row] as usize..o[row + 1] as usize)
                }
            };
            out.push('[');
            for (n, i) in range.enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(out, &values, i)?;
            }
            out.push(']');
        }
        other => return exec_err!("to_json_string does not support {other}"),
    }
    Ok(())
}
