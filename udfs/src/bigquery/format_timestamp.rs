//! `bq_format_timestamp(format, x)`: BigQuery's `FORMAT_TIMESTAMP` and `FORMAT_DATE`
//! (and Athena's `date_format`, its MySQL specifiers translated to these).
//!
//! Formats are written digit by digit from the value's local time (UTC or its
//! zone's), without a calendar library per row: every element BigQuery shares with
//! strftime but the week numbers, `%s` and `%Z`, and BigQuery's own: `%E<n>S`
//! (seconds with n fraction digits, cut, not rounded), `%E*S` (seconds with the
//! fraction's digits up to its last non-zero one), `%E4Y`, the zone's offset
//! `%z`/`%Ez` (`-0800`/`-08:00`) and `%Q` (quarter). `%Y` writes as many digits as the
//! year needs, as BigQuery's does. A format with any other element, or a year outside
//! 1-9999, is formatted by DataFusion's `to_char` (chrono's strftime).

use std::sync::{Arc, LazyLock};

use arrow::array::timezone::Tz;
use arrow::array::{Array, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Offset, TimeZone};
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

/// A number of a date or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Year,
    Century,
    YearOfCentury,
    Quarter,
    Month,
    Day,
    DayOfYear,
    /// 1 (Monday) to 7.
    IsoWeekday,
    /// 0 (Sunday) to 6.
    Weekday,
    Hour,
    Hour12,
    Minute,
    Second,
}

/// English names, as BigQuery writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Month {
        full: bool,
    },
    Weekday {
        full: bool,
    },
    /// `AM` or `PM`.
    Meridian,
}

/// A part of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text(char),
    /// A number padded to `width` characters with `pad` (a width of 0: as many digits
    /// as it needs, as `%Y` writes a year).
    Number {
        number: Number,
        width: u32,
        pad: char,
    },
    Name(Name),
    /// After `%E<n>S`: `.` and n digits; after `%E*S` (`None`): `.` and the digits up
    /// to the last non-zero one, nothing for a whole second.
    Fraction(Option<u32>),
    /// The zone's offset: `%z` (`-0800`) or `%Ez` (`-08:00`).
    Offset {
        colon: bool,
    },
}

/// A format made of the elements this module writes and literal text.
#[derive(Debug, PartialEq, Eq)]
struct Pattern {
    parts: Vec<Part>,
    /// Whether any part is a time of day (a date has none).
    timed: bool,
}

impl Pattern {
    /// The format's parts, or `None` if it has an element this module does not write.
    fn parse(format: &str) -> Option<Self> {
        let mut parts = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                parts.push(Part::Text(c));
                continue;
            }
            let number = |number, width, pad| Part::Number { number, width, pad };
            let part = match chars.next()? {
                '%' => Part::Text('%'),
                'n' => Part::Text('\n'),
                't' => Part::Text('\t'),
                'Y' => number(Number::Year, 0, '0'),
                'C' => number(Number::Century, 2, '0'),
                'y' => number(Number::YearOfCentury, 2, '0'),
                'Q' => number(Number::Quarter, 1, '0'),
                'm' => number(Number::Month, 2, '0'),
                'd' => number(Number::Day, 2, '0'),
                'e' => number(Number::Day, 2, ' '),
                'j' => number(Number::DayOfYear, 3, '0'),
                'u' => number(Number::IsoWeekday, 1, '0'),
                'w' => number(Number::Weekday, 1, '0'),
                'H' => number(Number::Hour, 2, '0'),
                'k' => number(Number::Hour, 2, ' '),
                'I' => number(Number::Hour12, 2, '0'),
                'l' => number(Number::Hour12, 2, ' '),
                'M' => number(Number::Minute, 2, '0'),
                'S' => number(Number::Second, 2, '0'),
                'B' => Part::Name(Name::Month { full: true }),
                'b' | 'h' => Part::Name(Name::Month { full: false }),
                'A' => Part::Name(Name::Weekday { full: true }),
                'a' => Part::Name(Name::Weekday { full: false }),
                'p' => Part::Name(Name::Meridian),
                'z' => Part::Offset { colon: false },
                'E' => {
                    parts.extend(Self::extended(&mut chars)?);
                    continue;
                }
                short => {
                    let long = match short {
                        'F' => "%Y-%m-%d",
                        'D' | 'x' => "%m/%d/%y",
                        'T' | 'X' => "%H:%M:%S",
                        'R' => "%H:%M",
                        'c' => "%a %b %e %H:%M:%S %Y",
                        _ => return None,
                    };
                    parts.extend(Self::parse(long)?.parts);
                    continue;
                }
            };
            parts.push(part);
        }
        let timed = parts.iter().any(|p| match p {
            Part::Number { number, .. } => matches!(
                number,
                Number::Hour | Number::Hour12 | Number::Minute | Number::Second
            ),
            Part::Name(name) => *name == Name::Meridian,
            Part::Fraction(_) | Part::Offset { .. } => true,
            Part::Text(_) => false,
        });
        Some(Self { parts, timed })
    }

    /// The parts of a BigQuery `%E` element, its `%E` already read.
    fn extended(chars: &mut std::str::Chars) -> Option<Vec<Part>> {
        let rest = chars.as_str();
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let second = Part::Number {
            number: Number::Second,
            width: 2,
            pad: '0',
        };
        let (parts, read) = match (&rest[..digits], rest[digits..].chars().next()?) {
            ("", 'z') => (vec![Part::Offset { colon: true }], 1),
            ("", '*') if rest[1..].starts_with('S') => (vec![second, Part::Fraction(None)], 2),
            ("4", 'Y') => {
                let year = Part::Number {
                    number: Number::Year,
                    width: 4,
                    pad: '0',
                };
                (vec![year], 2)
            }
            (n, 'S') if !n.is_empty() && n.len() <= 2 => {
                let n = n.parse().ok().filter(|n| *n <= 12)?;
                (vec![second, Part::Fraction(Some(n))], digits + 1)
            }
            _ => return None,
        };
        *chars = rest[read..].chars();
        Some(parts)
    }

    /// Writes each value of `x` (a timestamp, in its zone's local time, or a date when
    /// no part is a time of day); `None` if `x` is of another type or a year is
    /// outside 1-9999.
    fn write(&self, x: &dyn Array) -> Result<Option<Arc<dyn Array>>> {
        let zone = match x.data_type() {
            DataType::Timestamp(_, Some(zone)) if !is_utc(zone) => Some(zone.parse::<Tz>()?),
            DataType::Timestamp(..) => None,
            DataType::Date32 if !self.timed => None,
            _ => return Ok(None),
        };
        let micros = cast(x, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let mut out = StringBuilder::with_capacity(x.len(), x.len() * 8);
        let mut line = String::new();
        let mut last = None;
        for v in micros.as_primitive::<TimestampMicrosecondType>() {
            let Some(v) = v else {
                out.append_null();
                continue;
            };
            let offset = match &zone {
                Some(zone) => DateTime::from_timestamp_micros(v).map_or(0, |t| {
                    let offset = zone.offset_from_utc_datetime(&t.naive_utc());
                    offset.fix().local_minus_utc()
                }),
                None => 0,
            };
            let local = v + i64::from(offset) * 1_000_000;
            // A bill's rows come in order of time, many to a day or an hour: the text
            // of a value at the same local day (or time, for a timed format) is the last.
            let key = match self.timed {
                true => (local, offset),
                false => (local.div_euclid(DAY * 1_000_000), 0),
            };
            if last.replace(key) == Some(key) {
                out.append_value(&line);
                continue;
            }
            let Some(t) = Local::new(local) else {
                return Ok(None);
            };
            line.clear();
            for part in &self.parts {
                match *part {
                    Part::Text(c) => line.push(c),
                    Part::Number { number, width, pad } => {
                        let n = t.number(number);
                        let digits = n.checked_ilog10().unwrap_or(0) + 1;
                        line.extend((digits..width).map(|_| pad));
                        push_digits(&mut line, n, digits);
                    }
                    Part::Name(name) => line.push_str(t.name(name)),
                    Part::Fraction(Some(0)) => {}
                    Part::Fraction(Some(n)) => {
                        line.push('.');
                        let fraction = match n {
                            0..=6 => t.micros / 10i64.pow(6 - n),
                            _ => t.micros * 10i64.pow(n - 6),
                        };
                        push_digits(&mut line, fraction, n);
                    }
                    Part::Fraction(None) if t.micros == 0 => {}
                    Part::Fraction(None) => {
                        let zeros = (1..6).take_while(|z| t.micros % 10i64.pow(*z) == 0);
                        let kept = 6 - zeros.count() as u32;
                        line.push('.');
                        push_digits(&mut line, t.micros / 10i64.pow(6 - kept), kept);
                    }
                    Part::Offset { colon } => {
                        line.push(if offset < 0 { '-' } else { '+' });
                        let minutes = i64::from(offset.abs() / 60);
                        push_digits(&mut line, minutes / 60, 2);
                        if colon {
                            line.push(':');
                        }
                        push_digits(&mut line, minutes % 60, 2);
                    }
                }
            }
            out.append_value(&line);
        }
        Ok(Some(Arc::new(out.finish())))
    }
}

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Appends the last `width` decimal digits of `n` (not negative).
fn push_digits(line: &mut String, n: i64, width: u32) {
    for p in (0..width).rev() {
        line.push(char::from(b'0' + (n / 10i64.pow(p) % 10) as u8));
    }
}

/// A time's calendar date and time of day, as read on a clock.
struct Local {
    year: i64,
    month: i64,
    day: i64,
    /// Days since 1970-01-01.
    days: i64,
    seconds: i64,
    micros: i64,
}

impl Local {
    /// The local time of `micros` after 1970-01-01 00:00, if its year is 1 to 9999.
    fn new(micros: i64) -> Option<Self> {
        let s = micros.div_euclid(1_000_000);
        let days = s.div_euclid(DAY);
        let (year, month, day) = civil(days);
        (1..=9999).contains(&year).then_some(Self {
            year,
            month,
            day,
            days,
            seconds: s.rem_euclid(DAY),
            micros: micros.rem_euclid(1_000_000),
        })
    }

    fn number(&self, number: Number) -> i64 {
        let hour = self.seconds / 3600;
        match number {
            Number::Year => self.year,
            Number::Century => self.year / 100,
            Number::YearOfCentury => self.year % 100,
            Number::Quarter => (self.month + 2) / 3,
            Number::Month => self.month,
            Number::Day => self.day,
            Number::DayOfYear => {
                const BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
                let leap = self.year % 4 == 0 && (self.year % 100 != 0 || self.year % 400 == 0);
                BEFORE[self.month as usize - 1] + self.day + i64::from(leap && self.month > 2)
            }
            Number::IsoWeekday => (self.days + 3).rem_euclid(7) + 1,
            Number::Weekday => (self.days + 4).rem_euclid(7),
            Number::Hour => hour,
            Number::Hour12 => (hour + 11) % 12 + 1,
            Number::Minute => self.seconds / 60 % 60,
            Number::Second => self.seconds % 60,
        }
    }

    fn name(&self, name: Name) -> &'static str {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        const WEEKDAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        let (full, short) = match name {
            Name::Meridian => return if self.seconds < 43_200 { "AM" } else { "PM" },
            Name::Month { full } => (MONTHS[self.month as usize - 1], !full),
            Name::Weekday { full } => (WEEKDAYS[self.number(Number::Weekday) as usize], !full),
        };
        if short { &full[..3] } else { full }
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
    use chrono::NaiveDate;

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
        // 1000-01-01 to 9999-12-31, at a different time of day each day (years of
        // fewer digits below).
        let micros: Vec<i64> = (-354_285..2_932_896)
            .step_by(7)
            .map(|d: i64| d * 86_400_000_000 + d.rem_euclid(86_400) * 1_000_000)
            .collect();
        let x = TimestampMicrosecondArray::from(micros.clone()).with_timezone("UTC");
        for (ours, chrono) in [
            ("%E4Y%m", "%Y%m"),
            ("%F %T", "%F %T"),
            ("%E4Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%SZ"),
            ("100%% %d/%m", "100%% %d/%m"),
            ("%c|%x|%X|%D|%R", "%c|%x|%X|%D|%R"),
            ("%A %a %B %b %h %e %j %u %w", "%A %a %B %b %h %e %j %u %w"),
            ("%I %l %k %p %C %y%n%t", "%I %l %k %p %C %y%n%t"),
        ] {
            let written = written(ours, &x).unwrap();
            for (m, s) in micros.iter().zip(written) {
                let t = DateTime::from_timestamp_micros(*m).unwrap();
                assert_eq!(s.unwrap(), t.format(chrono).to_string(), "{m} {ours}");
            }
        }
    }

    #[test]
    fn bigquery_elements_seconds_fractions_years_and_offsets() {
        // BigQuery's documented examples, and absl's (BigQuery formats with absl).
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        let x = TimestampMicrosecondArray::from(vec![
            at("2008-12-25T15:30:12.345678Z"),
            at("2008-12-25T15:30:05Z"),
            at("2008-12-25T15:30:05.006007Z"),
            at("2026-09-04T12:28:45.540200Z"),
            at("1969-12-31T23:59:59.999999Z"),
        ])
        .with_timezone("UTC");
        let cases = [
            (
                "%E*S",
                ["12.345678", "05", "05.006007", "45.5402", "59.999999"],
            ),
            ("%E3S", ["12.345", "05.000", "05.006", "45.540", "59.999"]),
            ("%E0S", ["12", "05", "05", "45", "59"]),
            (
                "%E9S",
                [
                    "12.345678000",
                    "05.000000000",
                    "05.006007000",
                    "45.540200000",
                    "59.999999000",
                ],
            ),
            (
                "%Y-%m-%dT%H:%M:%E6S%Ez",
                [
                    "2008-12-25T15:30:12.345678+00:00",
                    "2008-12-25T15:30:05.000000+00:00",
                    "2008-12-25T15:30:05.006007+00:00",
                    "2026-09-04T12:28:45.540200+00:00",
                    "1969-12-31T23:59:59.999999+00:00",
                ],
            ),
            (
                "%E4Y %z",
                [
                    "2008 +0000",
                    "2008 +0000",
                    "2008 +0000",
                    "2026 +0000",
                    "1969 +0000",
                ],
            ),
        ];
        for (format, want) in cases {
            let got: Vec<String> = written(format, &x).unwrap().into_iter().flatten().collect();
            assert_eq!(got, want, "{format}");
        }
        let early = Date32Array::from(vec![-717_701, -354_285]); // 0005-01-01, 1000-01-01
        assert_eq!(
            written("%Y|%E4Y", &early).unwrap(),
            [Some("5|0005".into()), Some("1000|1000".into())],
            "%Y as many digits as the year needs"
        );
        let quarters = Date32Array::from(vec![19_813, 19_814, 19_905, 20_088]);
        let q: Vec<_> = written("%Q", &quarters)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            q,
            ["1", "2", "3", "4"],
            "2024-03-31, -04-01, -07-01, -12-31"
        );
        assert_eq!(
            written(
                "%b %Y %Ez",
                &TimestampMicrosecondArray::from(vec![1_230_219_000_000_000]).with_timezone("UTC")
            )
            .unwrap(),
            [Some("Dec 2008 +00:00".into())],
            "BigQuery's documented example"
        );
        for unwritten in ["%E*", "%E13S", "%E3Y", "%E", "%EQ", "%Z", "%s", "%"] {
            assert_eq!(Pattern::parse(unwritten), None, "{unwritten}");
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
        assert_eq!(Pattern::parse("%V %Y"), None, "ISO weeks go to to_char");
        let zoned = TimestampMicrosecondArray::from(vec![0, 15_552_000_000_000])
            .with_timezone("America/New_York");
        assert_eq!(
            written("%F %T %z|%Ez", &zoned).unwrap(),
            [
                Some("1969-12-31 19:00:00 -0500|-05:00".into()),
                Some("1970-06-29 20:00:00 -0400|-04:00".into())
            ],
            "local time and offset, summer time too"
        );
        // Values repeated, on one day, and the hour New York's clocks repeat in November.
        let hour = 3_600_000_000;
        let fall_back = 1_730_611_800_000_000; // 2024-11-03 05:30 UTC, 01:30 EDT
        let repeated = TimestampMicrosecondArray::from(vec![
            Some(fall_back),
            Some(fall_back),
            None,
            Some(fall_back + hour),
            Some(fall_back + 2 * hour),
        ])
        .with_timezone("America/New_York");
        assert_eq!(
            written("%F %H:%M %Ez", &repeated).unwrap(),
            [
                Some("2024-11-03 01:30 -04:00".into()),
                Some("2024-11-03 01:30 -04:00".into()),
                None,
                Some("2024-11-03 01:30 -05:00".into()),
                Some("2024-11-03 02:30 -05:00".into()),
            ]
        );
        let days: Vec<_> = written("%d", &repeated)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(days, ["03", "03", "03", "03"]);
        let utc =
            TimestampMicrosecondArray::from(vec![0, 0, hour, 86_400_000_000 - 1, 86_400_000_000]);
        let utc: Vec<_> = written("%F|%H", &utc)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            utc,
            [
                "1970-01-01|00",
                "1970-01-01|00",
                "1970-01-01|01",
                "1970-01-01|23",
                "1970-01-02|00"
            ]
        );
        let india = TimestampMicrosecondArray::from(vec![0]).with_timezone("Asia/Kolkata");
        assert_eq!(
            written("%H:%M %z", &india).unwrap(),
            [Some("05:30 +0530".into())]
        );
        let year_zero = Date32Array::from(vec![-719_163]);
        assert_eq!(
            written("%Y", &year_zero),
            None,
            "BigQuery's dates start at year 1"
        );
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
