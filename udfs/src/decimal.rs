//! Exact conversion of money values to `Decimal128(38, 9)`.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type};
use datafusion::common::{Result, exec_err};

/// Scale of the money decimals the functions return (BigQuery NUMERIC).
pub const SCALE: i8 = 9;
/// Precision of the money decimals the functions return.
pub const PRECISION: u8 = 38;

/// `Decimal128(38, 9)`.
pub fn money_type() -> DataType {
    DataType::Decimal128(PRECISION, SCALE)
}

/// The value of a double at scale 9: its shortest round-trip decimal text, rounded
/// half away from zero where that text has more than 9 decimals.
pub fn f64_to_scaled(v: f64) -> Option<i128> {
    if !v.is_finite() {
        return None;
    }
    let text = format!("{v}");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = SCALE as usize;
    let mut value: i128 = int.parse().ok()?;
    for i in 0..scale {
        let d = frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i128);
        value = value.checked_mul(10)?.checked_add(d)?;
    }
    if frac.as_bytes().get(scale).is_some_and(|&b| b >= b'5') {
        value += 1;
    }
    Some(if negative { -value } else { value })
}

/// The `i`-th value of a numeric array at scale 9, or `None` when NULL.
pub fn scaled_at(array: &ArrayRef, i: usize) -> Result<Option<i128>> {
    if array.data_type().is_null() || array.is_null(i) {
        return Ok(None);
    }
    let v = match array.data_type() {
        DataType::Float64 => f64_to_scaled(array.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => f64_to_scaled(array.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Int64 => {
            (array.as_primitive::<Int64Type>().value(i) as i128).checked_mul(1_000_000_000)
        }
        DataType::Int32 => Some(array.as_primitive::<Int32Type>().value(i) as i128 * 1_000_000_000),
        DataType::Decimal128(_, s) => {
            let raw = array.as_primitive::<Decimal128Type>().value(i);
            rescale(raw, *s)
        }
        other => return exec_err!("expected a number, got {other}"),
    };
    match v {
        Some(v) => Ok(Some(v)),
        None => exec_err!("money value out of range of NUMERIC"),
    }
}

/// A decimal of scale `s` at scale 9, rounding half away from zero.
fn rescale(raw: i128, s: i8) -> Option<i128> {
    let diff = SCALE as i32 - s as i32;
    if diff >= 0 {
        raw.checked_mul(10i128.checked_pow(diff as u32)?)
    } else {
        let div = 10i128.checked_pow((-diff) as u32)?;
        let (q, r) = (raw / div, raw % div);
        Some(if r.abs() * 2 >= div {
            q + raw.signum()
        } else {
            q
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_take_their_written_decimal_value() {
        assert_eq!(f64_to_scaled(79.140979), Some(79_140_979_000));
        assert_eq!(f64_to_scaled(-4.763796), Some(-4_763_796_000));
        assert_eq!(f64_to_scaled(0.1 + 0.2), Some(300_000_000));
        assert_eq!(f64_to_scaled(1e-10), Some(0));
        assert_eq!(f64_to_scaled(5e-10), Some(1));
        assert_eq!(f64_to_scaled(-5e-10), Some(-1));
        assert_eq!(f64_to_scaled(f64::NAN), None);
        assert_eq!(rescale(15, 10), Some(2));
        assert_eq!(rescale(-15, 10), Some(-2));
        assert_eq!(rescale(7, 2), Some(70_000_000));
    }
}
