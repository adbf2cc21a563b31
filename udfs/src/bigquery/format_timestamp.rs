//! `bq_format_timestamp(format, x)`: BigQuery's `FORMAT_TIMESTAMP` and `FORMAT_DATE`
//! (and Athena's `date_format`, its MySQL specifiers translated to these).
//!
//! The formats billing queries use (`'%Y%m'`, `'%Y-%m-%d'`, `'%F %T'`: numeric parts
//! and literal text) are written digit by digit from the UTC value, without a
//! calendar library per row. Any other format, a zoned value or a year outside
//! 0-9999 is formatted by DataFusion's `to_char`, as before.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Formats timestamps and dates as BigQuery does; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqFormatTimestamp {
    signature: Signature,
}

impl BqFormatTimestamp {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl Default for BqFormatTimestamp {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "FORMAT_TIMESTAMP(format, ts) and FORMAT_DATE(format, d): strftime-style format elements.",
        "bq_format_timestamp(format, x)",
    )
    .with_argument("format", "A format string such as '%Y%m'.")
    .with_argument("x", "A timestamp (UTC) or a date.")
    .build()
});

impl ScalarUDFImpl for BqFormatTimestamp {
    fn name(&self) -> &str {
        "bq_format_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [format, value] = take_function_args(self.name(), &args.args)?;
        let pattern = match format {
            ColumnarValue::Scalar(s) => s.try_as_str().flatten().and_then(Pattern::parse),
            ColumnarValue::Array(_) => None,
        };
        let written = match pattern {
            Some(p) => p.write(&value.to_array(args.number_rows)?)?,
            None => None,
        };
        match written {
            Some(strings) => Ok(ColumnarValue::Array(strings)),
            None => to_char(args),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// DataFusion's `to_char(x, format)`, for what [`Pattern`] does not write.
fn to_char(args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let ScalarFunctionArgs {
        mut args,
        mut arg_fields,
        number_rows,
        return_field,
        config_options,
    } = args;
    args.swap(0, 1);
    arg_fields.swap(0, 1);
    datafusion::functions::datetime::to_char().invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows,
        return_field,
        config_options,
    })
}

/// A part of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text(char),
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// A format made only of numeric date and time parts and literal text.
#[derive(Debug, PartialEq, Eq)]
struct Pattern {
    parts: Vec<Part>,
    /// Whether any part is a time of day (a date has none).
    timed: bool,
}

impl Pattern {
    /// The format's parts, or `None` if it has an element this fast path does not write.
    fn parse(format: &str) -> Option<Self> {
        let mut parts = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let part = match c {
                '%' => match chars.next()? {
                    '%' => Part::Text('%'),
                    'Y' => Part::Year,
                    'm' => Part::Month,
                    'd' => Part::Day,
                    'H' => Part::Hour,
                    'M' => Part::Minute,
                    'S' => Part::Second,
                    'F' => {
                        parts.extend(Self::parse("%Y-%m-%d")?.parts);
                        continue;
                    }
                    'T' => {
                        parts.extend(Self::parse("%H:%M:%S")?.parts);
                        continue;
                    }
                    _ => return None,
                },
                c => Part::Text(c),
            };
            parts.push(part);
        }
        let timed = parts
            .iter()
            .any(|p| matches!(p, Part::Hour | Part::Minute | Part::Second));
        Some(Self { parts, timed })
    }

    /// Writes each value of `x` (a UTC timestamp, or a date when no part is a time of
    /// day); `None` if `x` is of another type or a year is outside 0-9999.
    fn write(&self, x: &dyn Array) -> Result<Option<Arc<dyn Array>>> {
        const DAY: i64 = 86_400;
        let fits = match x.data_type() {
            DataType::Timestamp(_, zone) => zone.as_deref().is_none_or(is_utc),
            DataType::Date32 => !self.timed,
            _ => false,
        };
        if !fits {
            return Ok(None);
        }
        let micros = cast(x, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let mut out = StringBuilder::with_capacity(x.len(), x.len() * 8);
        let mut line = String::new();
        for v in micros.as_primitive::<TimestampMicrosecondType>() {
            let Some(v) = v else {
                out.append_null();
                continue;
            };
            let s = v.div_euclid(1_000_000);
            let (year, month, day) = civil(s.div_euclid(DAY));
            if !(0..=9999).contains(&year) {
                return Ok(None);
            }
            let time = s.rem_euclid(DAY);
            line.clear();
            for part in &self.parts {
                let (n, width) = match part {
                    Part::Text(c) => {
                        line.push(*c);
                        continue;
                    }
                    Part::Year => (year, 4),
                    Part::Month => (month, 2),
                    Part::Day => (day, 2),
                    Part::Hour => (time / 3600, 2),
                    Part::Minute => (time / 60 % 60, 2),
                    Part::Second => (time % 60, 2),
                };
                for p in (0..width).rev() {
                    line.push(char::from(b'0' + (n / 10i64.pow(p) % 10) as u8));
                }
            }
            out.append_value(&line);
        }
        Ok(Some(Arc::new(out.finish())))
    }
}

fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "utc" | "Z" | "+00:00" | "Etc/UTC")
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    use chrono::{DateTime, NaiveDate};

    fn written(format: &str, x: &dyn Array) -> Option<Vec<Option<String>>> {
        let strings = Pattern::parse(format)?.write(x).unwrap()?;
        Some(
            strings
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(String::from))
                .collect(),
        )
    }

    #[test]
    fn numeric_formats_match_chrono_across_the_calendar() {
        // 0000-01-01 to 9999-12-31, at a different time of day each day.
        let micros: Vec<i64> = (-719_528..2_932_896)
            .step_by(7)
            .map(|d: i64| d * 86_400_000_000 + d.rem_euclid(86_400) * 1_000_000)
            .collect();
        let x = TimestampMicrosecondArray::from(micros.clone()).with_timezone("UTC");
        for format in ["%Y%m", "%F %T", "%Y-%m-%dT%H:%M:%SZ", "100%% %d/%m"] {
            let ours = written(format, &x).unwrap();
            for (m, s) in micros.iter().zip(ours) {
                let t = DateTime::from_timestamp_micros(*m).unwrap();
                assert_eq!(s.unwrap(), t.format(format).to_string(), "{m} {format}");
            }
        }
    }

    #[test]
    fn dates_nulls_and_what_is_left_to_to_char() {
        let days = Date32Array::from(vec![Some(19_754), None]);
        assert_eq!(
            written("%Y-%m", &days).unwrap(),
            [Some("2024-02".into()), None]
        );
        assert_eq!(written("%H", &days), None, "a date has no hour");
        assert_eq!(Pattern::parse("%b %Y"), None, "month names go to to_char");
        let zoned = TimestampMicrosecondArray::from(vec![0]).with_timezone("America/New_York");
        assert_eq!(written("%Y", &zoned), None);
        let far = TimestampMicrosecondArray::from(vec![
            NaiveDate::from_ymd_opt(10_000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros(),
        ]);
        assert_eq!(written("%Y", &far), None);
    }
}
