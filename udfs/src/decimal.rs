//! Exact decimal values of money amounts: a FLOAT64 amount is the shortest decimal
//! that reads back as the same double, and NUMERIC results are `Decimal128(38, 9)`.

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

/// The shortest decimal that reads back as `v`, as `(mantissa, exponent)` with
/// `v = mantissa × 10^exponent`: the text the export carried. `None` for NaN and ±∞.
pub fn shortest_decimal(v: f64) -> Option<(i128, i32)> {
    match few_decimals(v) {
        Some((mantissa, exponent)) => Some(without_trailing_zeros(mantissa, exponent)),
        None => written_decimal(v),
    }
}

/// [`shortest_decimal`]'s value at `scale` decimals, rounded half away from zero past
/// them: `at_scale` of it, without taking off the zeros that scaling adds back.
pub fn shortest_at_scale(v: f64, scale: i8) -> Option<i128> {
    let (mantissa, exponent) = match few_decimals(v) {
        Some((mantissa, exponent)) => (i128::from(mantissa), exponent),
        None => written_decimal(v)?,
    };
    at_scale(mantissa, exponent, scale)
}

/// Exact powers of ten as doubles (10^22 is the last one a double holds exactly).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 10^`n`, if an i128 holds it (`n` ≤ 38).
pub fn ten_pow(n: u32) -> Option<i128> {
    TENS.get(n as usize).copied()
}

/// 10^0 to 10^38, every power of ten an i128 holds.
const TENS: [i128; 39] = {
    let mut tens = [1i128; 39];
    let mut i = 1;
    while i < tens.len() {
        tens[i] = tens[i - 1] * 10;
        i += 1;
    }
    tens
};

/// [`shortest_decimal`]'s value found without writing digits, where `v` reads back
/// from a decimal of at most `d` decimals, `d` the most its binary exponent allows:
/// the doubles that read back as `v` span less than 10^-d, so that decimal is the
/// only one and the shortest, and times 10^d it is an integer below 2^53, which a
/// double holds exactly. Returned as that integer and `-d`, trailing zeros and all.
fn few_decimals(v: f64) -> Option<(i64, i32)> {
    let binary_exponent = ((v.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    // floor(n × log10(2)) for n below 1650, as ryu computes it; d ≥ 1 from n = 4.
    let n = 52 - binary_exponent;
    if n < 4 {
        return None;
    }
    let d = (((n * 78_913) >> 18) as usize).min(POW10.len() - 1);
    let scaled = (v * POW10[d]).round();
    if scaled / POW10[d] != v {
        return None;
    }
    Some((scaled as i64, -(d as i32)))
}

/// `mantissa × 10^exponent` (`exponent` < 0) without trailing zeros, written as ryu
/// writes it (`5.0`, `0.5`, `1e-7`).
fn without_trailing_zeros(mut mantissa: i64, mut exponent: i32) -> (i128, i32) {
    if mantissa == 0 {
        return (0, -1);
    }
    // Up to 15 (a double's integers have at most 16 digits).
    for (zeros, power) in [(8, 100_000_000), (4, 10_000), (2, 100), (1, 10)] {
        if exponent + zeros <= -1 && mantissa % power == 0 {
            mantissa /= power;
            exponent += zeros;
        }
    }
    (i128::from(mantissa), exponent)
}

/// [`shortest_decimal`] read from ryu's shortest round-trip text.
fn written_decimal(v: f64) -> Option<(i128, i32)> {
    if !v.is_finite() {
        return None;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v);
    let (number, exponent) = match text.split_once(['e', 'E']) {
        Some((n, e)) => (n, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    let exponent = exponent - frac.len() as i32;
    Some((if negative { -mantissa } else { mantissa }, exponent))
}

/// `value / divisor`, rounded half away from zero.
pub fn div_round(value: i128, divisor: i128) -> i128 {
    let (q, r) = (value / divisor, value % divisor);
    if r != 0 && r.unsigned_abs() * 2 >= divisor.unsigned_abs() {
        if (value < 0) == (divisor < 0) {
            q + 1
        } else {
            q - 1
        }
    } else {
        q
    }
}

/// `mantissa × 10^exponent` as an integer of `scale` decimals, rounded half away
/// from zero past them; `None` when it does not fit.
pub fn at_scale(mantissa: i128, exponent: i32, scale: i8) -> Option<i128> {
    let shift = exponent + i32::from(scale);
    if shift >= 0 {
        mantissa.checked_mul(ten_pow(shift as u32)?)
    } else if shift < -38 {
        Some(0)
    } else {
        Some(div_round(mantissa, TENS[(-shift) as usize]))
    }
}

/// The value of a double at scale 9: its shortest round-trip decimal, rounded half
/// away from zero where that has more than 9 decimals.
pub fn f64_to_scaled(v: f64) -> Option<i128> {
    shortest_at_scale(v, SCALE)
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
    at_scale(raw, -i32::from(s), SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_decimal_is_ryus_without_writing_it() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..3_000_000u64 {
            let r = next();
            let v = match i % 5 {
                // Money as exports write it: k / 10^d.
                0 => (r % 10_000_000_000) as f64 / 10f64.powi((r >> 40) as i32 % 13),
                1 => -((r % 1_000_000) as f64) / 10f64.powi((r >> 40) as i32 % 10),
                // Amounts of 10 decimals (CUR's), doubles near a power of two
                // (where the decimals the fast path tries change), and any double.
                2 => (r % 10_000_000_000_000_000) as f64 / 1e10,
                3 => 2f64.powi((r >> 58) as i32 - 32) * (1.0 - (r % 1_000_000) as f64 * 1e-16),
                _ => f64::from_bits(r),
            };
            if v.is_finite() {
                assert_eq!(shortest_decimal(v), written_decimal(v), "{v:e}");
            }
            if i % 10 == 0 {
                for scale in [0, 2, 9, 10, 24, 38] {
                    let scaled = shortest_decimal(v).and_then(|(m, e)| at_scale(m, e, scale));
                    assert_eq!(shortest_at_scale(v, scale), scaled, "{v:e} at {scale}");
                }
            }
        }
        for v in [
            0.0,
            -0.0,
            5.0,
            -5.0,
            0.5,
            1e-7,
            1.5e-6,
            1e-5,
            4_194_303.0,
            123_456.0,
            262_143.999_999_999_9,
            0.125_024_611_8,
            1e-20,
            5e-324,
            9_007_199_254_740_991.0,
            f64::MAX,
        ] {
            assert_eq!(shortest_decimal(v), written_decimal(v), "{v:e}");
        }
    }

    #[test]
    fn doubles_take_their_written_decimal_value() {
        assert_eq!(f64_to_scaled(79.140979), Some(79_140_979_000));
        assert_eq!(f64_to_scaled(-4.763796), Some(-4_763_796_000));
        assert_eq!(f64_to_scaled(0.1 + 0.2), Some(300_000_000));
        assert_eq!(f64_to_scaled(1e-10), Some(0));
        assert_eq!(f64_to_scaled(5e-10), Some(1));
        assert_eq!(f64_to_scaled(-5e-10), Some(-1));
        assert_eq!(f64_to_scaled(f64::NAN), None);
        assert_eq!(
            f64_to_scaled(1.5e20),
            Some(150_000_000_000_000_000_000_000_000_000)
        );
        assert_eq!(shortest_decimal(1e-7), Some((1, -7)));
        assert_eq!(shortest_decimal(-79.140979), Some((-79140979, -6)));
        assert_eq!(shortest_decimal(0.0), Some((0, -1)));
        assert_eq!(div_round(15, 10), 2);
        assert_eq!(div_round(-15, 10), -2);
        assert_eq!(div_round(14, -10), -1);
        assert_eq!(div_round(-25, -10), 3);
        assert_eq!(at_scale(1, -50, 24), Some(0));
        assert_eq!(
            at_scale(25_893_953_072_562_468, -21, 24),
            Some(25_893_953_072_562_468_000)
        );
        assert_eq!(rescale(15, 10), Some(2));
        assert_eq!(rescale(-15, 10), Some(-2));
        assert_eq!(rescale(7, 2), Some(70_000_000));
    }
}
