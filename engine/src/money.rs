//! Exact money totals: row counts and the exact decimal sum of every money column,
//! recorded by conversion and reconciled by `verify`.
//!
//! A BigQuery FLOAT64 is summed as the shortest decimal that reads back as the same
//! double, which is the text BigQuery wrote into the export; decimals are summed as
//! they are. No sum here ever passes through a float.

use std::collections::BTreeMap;
use std::str::FromStr;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type};
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::BigInt;
use billq_udfs::decimal::shortest_decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Row count and exact money totals of a set of rows, as stored in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rows: u64,
    /// Money column path → exact decimal total, as plain decimal text.
    pub money: BTreeMap<String, String>,
}

/// Accumulates [`Totals`] over record batches.
#[derive(Debug, Clone)]
pub struct TotalsBuilder {
    rows: u64,
    sums: BTreeMap<String, ExactSum>,
}

/// An exact running sum of decimals `mantissa × 10^exponent`: one integer per
/// exponent (amounts of a column share a few, so a list beats a hash), spilled to a
/// big decimal on overflow.
#[derive(Debug, Clone, Default)]
struct ExactSum {
    buckets: Vec<(i32, i128)>,
    spill: BigDecimal,
}

impl ExactSum {
    fn add(&mut self, mantissa: i128, exponent: i32) {
        let bucket = match self.buckets.iter().position(|(e, _)| *e == exponent) {
            Some(i) => &mut self.buckets[i].1,
            None => {
                self.buckets.push((exponent, 0));
                &mut self.buckets.last_mut().expect("pushed").1
            }
        };
        match bucket.checked_add(mantissa) {
            Some(sum) => *bucket = sum,
            None => {
                self.spill += BigDecimal::new(BigInt::from(*bucket), -i64::from(exponent));
                *bucket = mantissa;
            }
        }
    }

    fn total(&self) -> BigDecimal {
        let mut total = self.spill.clone();
        for (exponent, mantissa) in &self.buckets {
            total += BigDecimal::new(BigInt::from(*mantissa), -i64::from(*exponent));
        }
        total
    }
}

impl TotalsBuilder {
    /// Starts totals of the given money column paths, each at zero.
    pub fn new(columns: &[&str]) -> Self {
        Self {
            rows: 0,
            sums: columns
                .iter()
                .map(|c| (c.to_string(), ExactSum::default()))
                .collect(),
        }
    }

    /// Adds a batch's rows and money values.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for (path, sum) in self.sums.iter_mut() {
            let mut segments = path.split('.');
            let first = segments.next().unwrap_or_default();
            let Some(column) = batch.column_by_name(first) else {
                continue;
            };
            for leaf in leaves(column, segments.collect::<Vec<_>>().as_slice()) {
                add_leaf(sum, &leaf, path)?;
            }
        }
        Ok(())
    }

    /// The totals so far.
    pub fn finish(&self) -> Totals {
        Totals {
            rows: self.rows,
            money: self
                .sums
                .iter()
                .map(|(k, v)| (k.clone(), plain(&v.total())))
                .collect(),
        }
    }
}

/// A decimal as plain text without trailing zeros ("12.5", "0", "-0.000001").
pub fn plain(v: &BigDecimal) -> String {
    let s = v.normalized().to_plain_string();
    if s == "-0" { "0".into() } else { s }
}

/// The arrays at the end of a dotted path, flattening lists on the way.
fn leaves(array: &ArrayRef, path: &[&str]) -> Vec<ArrayRef> {
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_any().downcast_ref::<ListArray>().expect("list");
            let offsets = list.value_offsets();
            let (start, end) = (offsets[0] as usize, offsets[list.len()] as usize);
            leaves(&list.values().slice(start, end - start), path)
        }
        DataType::Struct(_) => {
            let Some((name, rest)) = path.split_first() else {
                return vec![];
            };
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("struct");
            match s.column_by_name(name) {
                Some(child) => leaves(child, rest),
                None => vec![],
            }
        }
        _ if path.is_empty() => vec![array.clone()],
        _ => vec![],
    }
}

fn add_leaf(sum: &mut ExactSum, array: &ArrayRef, path: &str) -> Result<()> {
    let not_finite = || Error::Verify(format!("{path}: a value is not a finite number"));
    match array.data_type() {
        DataType::Float64 => {
            for v in array.as_primitive::<Float64Type>().iter().flatten() {
                let (mantissa, exponent) = shortest_decimal(v).ok_or_else(not_finite)?;
                sum.add(mantissa, exponent);
            }
        }
        DataType::Float32 => {
            for v in array.as_primitive::<Float32Type>().iter().flatten() {
                sum.spill += BigDecimal::from_str(&format!("{v}")).map_err(|_| not_finite())?;
            }
        }
        DataType::Decimal128(_, scale) => {
            for v in array.as_primitive::<Decimal128Type>().iter().flatten() {
                sum.add(v, -i32::from(*scale));
            }
        }
        DataType::Int64 => {
            for v in array.as_primitive::<Int64Type>().iter().flatten() {
                sum.add(i128::from(v), 0);
            }
        }
        DataType::Int32 => {
            for v in array.as_primitive::<Int32Type>().iter().flatten() {
                sum.add(i128::from(v), 0);
            }
        }
        DataType::Null => {}
        other => {
            return Err(Error::Verify(format!(
                "{path}: money column has type {other}, not a number"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Decimal128Array, Float64Array};
    use arrow::datatypes::{Field, Fields, Schema};
    use std::sync::Arc;

    #[test]
    fn float_sums_are_exact_decimal_sums_of_the_written_values() {
        // 0.1 + 0.2 in f64 is 0.30000000000000004; the written values sum to 0.3.
        let schema = Arc::new(Schema::new(vec![Field::new(
            "cost",
            DataType::Float64,
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![
                Some(0.1),
                None,
                Some(0.2),
                Some(-0.000001),
            ]))],
        )
        .unwrap();
        let mut t = TotalsBuilder::new(&["cost"]);
        t.add(&batch).unwrap();
        t.add(&batch).unwrap();
        let totals = t.finish();
        assert_eq!(totals.rows, 8);
        assert_eq!(totals.money["cost"], "0.599998");
    }

    #[test]
    fn sums_through_lists_of_records() {
        let item = Field::new(
            "item",
            DataType::Struct(Fields::from(vec![Field::new(
                "amount",
                DataType::Decimal128(38, 9),
                true,
            )])),
            true,
        );
        let amounts = Decimal128Array::from(vec![-4_763_796_000i128, 1, 2])
            .with_precision_and_scale(38, 9)
            .unwrap();
        let structs = StructArray::try_new(
            match item.data_type() {
                DataType::Struct(f) => f.clone(),
                _ => unreachable!(),
            },
            vec![Arc::new(amounts)],
            None,
        )
        .unwrap();
        let list = ListArray::try_new(
            Arc::new(item.clone()),
            arrow::buffer::OffsetBuffer::new(vec![0, 1, 1, 3].into()),
            Arc::new(structs),
            None,
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "credits",
            list.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(list)]).unwrap();
        let mut t = TotalsBuilder::new(&["credits.amount", "missing"]);
        t.add(&batch.slice(1, 2)).unwrap();
        assert_eq!(t.finish().money["credits.amount"], "0.000000003");
        assert_eq!(t.finish().money["missing"], "0");
    }
}
