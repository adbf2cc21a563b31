//! Times as the exports write them, read as microseconds since the epoch, UTC.
//!
//! The forms BigQuery and the CURs write (`2024-01-10 00:00:00 UTC`,
//! `2023-11-01T00:00:00Z`, with up to six fraction digits) are read directly; any other
//! goes through arrow's parser, which takes every zone name and offset but looks each
//! one up (11% of a GCP NDJSON conversion's CPU went to its timestamps).

use std::ops::Range;

use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::error::ArrowError;
use chrono::{NaiveDate, NaiveTime};

/// `text` in microseconds since the epoch; a time without a zone is UTC.
pub fn parse_utc(text: &str) -> Result<i64, ArrowError> {
    match common_form(text) {
        Some(micros) => Ok(micros),
        None => string_to_datetime(&chrono::Utc, text).map(|t| t.timestamp_micros()),
    }
}

/// `YYYY-MM-DD hh:mm:ss[.ffffff]` with ` ` or `T` between date and time, then ` UTC`,
/// `Z` or nothing; `None` for anything else.
fn common_form(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let number = |r: Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (mut end, mut micros) = (19, 0);
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&digits) {
            return None;
        }
        end = 20 + digits;
        micros = number(20..end)? * 10u32.pow(6 - digits as u32);
    }
    if !matches!(&b[end..], b"" | b" UTC" | b"Z") {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    let time =
        NaiveTime::from_hms_micro_opt(number(11..13)?, number(14..16)?, number(17..19)?, micros)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form gives what arrow's own parser gives, whichever path reads it.
    #[test]
    fn common_forms_read_as_arrow_reads_them() {
        let arrow = |t: &str| {
            string_to_datetime(&chrono::Utc, t)
                .unwrap()
                .timestamp_micros()
        };
        for text in [
            "2024-01-10 00:00:00 UTC",
            "2024-02-29 23:59:59 UTC",
            "2023-11-01T00:00:00Z",
            "2022-07-01 00:00:00.5",
            "2022-07-01 13:14:15.000123 UTC",
            "1969-12-31 23:59:59.999999Z",
        ] {
            assert_eq!(common_form(text), Some(arrow(text)), "{text}");
            assert_eq!(parse_utc(text).unwrap(), arrow(text), "{text}");
        }
        // Other forms are arrow's to read (or refuse).
        for text in [
            "2024-01-10 00:00:00+02:00",
            "2024-01-10 00:00:00 Europe/Paris",
            "2024-01-10",
            "2024-01-10 00:00:00.1234567",
            "2024-01-10t00:00:00z",
        ] {
            assert_eq!(common_form(text), None, "{text}");
            assert_eq!(parse_utc(text).unwrap(), arrow(text), "{text}");
        }
        for text in [
            "2023-02-29 00:00:00 UTC",
            "2024-01-10 24:00:00 UTC",
            "yesterday",
        ] {
            assert_eq!(common_form(text), None, "{text}");
            assert!(parse_utc(text).is_err(), "{text}");
        }
    }
}
