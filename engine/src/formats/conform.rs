//! Brings arrays to a target Arrow type by field name, recursively through records and
//! lists: fields the target has and the data lacks become NULL, the rest are cast.
//! Used where a file carries the right fields in another physical shape (a BigQuery
//! Parquet extract, say) and must land in the documented schema.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use arrow::error::ArrowError;
use billq_udfs::decimal::{shortest_at_scale, shortest_decimal};

/// Why an array could not be conformed.
#[derive(Debug)]
pub enum ConformError {
    /// A double with no decimal value where an amount is expected (NaN, an infinity,
    /// or past the decimal's range): the field's path, the row, the value and the type.
    NotAnAmount {
        path: Vec<String>,
        row: usize,
        value: f64,
        target: DataType,
    },
    Arrow(ArrowError),
}

impl From<ArrowError> for ConformError {
    fn from(e: ArrowError) -> Self {
        ConformError::Arrow(e)
    }
}

impl ConformError {
    /// The error of a child array's value: inside field `name`, and where the child's
    /// rows are the entries of lists, in the list of `offsets` that holds it.
    fn within(self, name: Option<&str>, offsets: Option<&OffsetBuffer<i32>>) -> Self {
        match self {
            ConformError::NotAnAmount {
                mut path,
                row,
                value,
                target,
            } => {
                if let Some(name) = name {
                    path.insert(0, name.to_string());
                }
                let row =
                    offsets.map_or(row, |o| o.partition_point(|&end| end as usize <= row) - 1);
                ConformError::NotAnAmount {
                    path,
                    row,
                    value,
                    target,
                }
            }
            other => other,
        }
    }
}

type Result<T> = std::result::Result<T, ConformError>;

/// Conforms every column of `batch` to `schema`, matching columns by name.
pub fn conform_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(col) => conform(col, f.data_type()).map_err(|e| e.within(Some(f.name()), None)),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Conforms one array to `target`.
pub fn conform(array: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    match (array.data_type(), target) {
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("struct");
            let children = fields
                .iter()
                .map(|f| match s.column_by_name(f.name()) {
                    Some(c) => {
                        conform(c, f.data_type()).map_err(|e| e.within(Some(f.name()), None))
                    }
                    None => Ok(new_null_array(f.data_type(), s.len())),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                s.nulls().cloned(),
            )?))
        }
        (DataType::List(_), DataType::List(item)) => {
            let l = array.as_any().downcast_ref::<ListArray>().expect("list");
            let values = conform(l.values(), item.data_type())
                .map_err(|e| e.within(None, Some(l.offsets())))?;
            Ok(Arc::new(ListArray::try_new(
                item.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?))
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            let m = array.as_map();
            let DataType::Struct(kv) = entries.data_type() else {
                return Ok(cast(array, target)?);
            };
            let keys = conform(m.keys(), kv[0].data_type())
                .map_err(|e| e.within(Some(kv[0].name()), Some(m.offsets())))?;
            let values = conform(m.values(), kv[1].data_type())
                .map_err(|e| e.within(Some(kv[1].name()), Some(m.offsets())))?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Ok(Arc::new(MapArray::try_new(
                entries.clone(),
                m.offsets().clone(),
                entries_array,
                m.nulls().cloned(),
                *sorted,
            )?))
        }
        (DataType::Float64, DataType::Decimal128(precision, scale)) => {
            Ok(Arc::new(exact_decimals(array, *precision, *scale)?))
        }
        (DataType::Float64, DataType::Utf8) => Ok(Arc::new(
            array
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| shortest_decimal(v?).map(|(m, e)| plain_decimal(m, e)))
                .collect::<StringArray>(),
        )),
        _ => Ok(cast(array, target)?),
    }
}

/// `mantissa × 10^exponent` written out without an exponent.
fn plain_decimal(mantissa: i128, exponent: i32) -> String {
    let digits = mantissa.unsigned_abs().to_string();
    let sign = if mantissa < 0 { "-" } else { "" };
    match usize::try_from(-exponent) {
        Err(_) => format!("{sign}{digits}{}", "0".repeat(exponent as usize)),
        Ok(k) if digits.len() > k => {
            let (int, frac) = digits.split_at(digits.len() - k);
            format!("{sign}{int}.{frac}")
        }
        Ok(k) => format!("{sign}0.{}{digits}", "0".repeat(k - digits.len())),
    }
}

/// Doubles as decimals at the value they were written with (their shortest
/// round-trip text), rounded half away from zero only past `scale` digits; where
/// arrow's cast would multiply in floating point. A double with no such decimal is an
/// error, not a NULL: an amount silently dropped would be missing from the totals.
fn exact_decimals(array: &ArrayRef, precision: u8, scale: i8) -> Result<Decimal128Array> {
    let doubles = array.as_primitive::<Float64Type>();
    let out: Decimal128Array = doubles.unary_opt(|v| shortest_at_scale(v, scale));
    if out.null_count() > doubles.null_count()
        && let Some(row) = (0..out.len()).find(|&i| out.is_null(i) && doubles.is_valid(i))
    {
        return Err(ConformError::NotAnAmount {
            path: Vec::new(),
            row,
            value: doubles.value(row),
            target: DataType::Decimal128(precision, scale),
        });
    }
    Ok(out.with_precision_and_scale(precision, scale)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Float64Array};

    #[test]
    fn doubles_become_the_decimals_they_were_written_as() {
        let input: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.1),
            None,
            Some(2.5893953072562468e-05),
        ]));
        let out = conform(&input, &DataType::Decimal128(38, 24)).unwrap();
        let d = out.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(d.value_as_string(0), "0.100000000000000000000000");
        assert!(d.is_null(1));
        assert_eq!(d.value_as_string(2), "0.000025893953072562468000");
        let text = conform(&input, &DataType::Utf8).unwrap();
        let text = text.as_string::<i32>();
        assert_eq!(text.value(0), "0.1");
        assert_eq!(text.value(2), "0.000025893953072562468");
        assert_eq!(plain_decimal(-125, 1), "-1250");
        assert_eq!(plain_decimal(5, -3), "0.005");
    }
    use arrow::datatypes::{Field, Fields};

    #[test]
    fn doubles_with_no_decimal_are_refused_where_they_are() {
        let not_an_amount =
            |array: ArrayRef, target: DataType| match conform(&array, &target).unwrap_err() {
                ConformError::NotAnAmount {
                    path, row, value, ..
                } => (path, row, value.to_string()),
                ConformError::Arrow(e) => panic!("{e}"),
            };
        let money = DataType::Decimal128(38, 24);
        let doubles = |values: Vec<Option<f64>>| Arc::new(Float64Array::from(values)) as ArrayRef;
        assert_eq!(
            not_an_amount(
                doubles(vec![Some(1.5), None, Some(f64::INFINITY)]),
                money.clone()
            ),
            (vec![], 2, "inf".to_string())
        );
        assert_eq!(
            not_an_amount(doubles(vec![Some(1e15)]), money.clone()),
            (vec![], 0, "1000000000000000".to_string())
        );
        // Credits: a list of records per row; the third row's second credit.
        let credit = Fields::from(vec![Field::new("amount", DataType::Float64, true)]);
        let amounts = doubles(vec![Some(-1.0), Some(-2.0), Some(-0.5), Some(f64::NAN)]);
        let credits = ListArray::new(
            Arc::new(Field::new_list_field(
                DataType::Struct(credit.clone()),
                true,
            )),
            arrow::buffer::OffsetBuffer::from_lengths([1, 1, 0, 2]),
            Arc::new(StructArray::new(credit, vec![amounts], None)),
            None,
        );
        let target = Fields::from(vec![Field::new("amount", money, true)]);
        let target = DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(target),
            true,
        )));
        assert_eq!(
            not_an_amount(Arc::new(credits), target),
            (vec!["amount".to_string()], 3, "NaN".to_string())
        );
    }

    #[test]
    fn fills_missing_struct_fields_with_null_and_casts_by_name() {
        let input: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("amount", DataType::Float32, true)),
            Arc::new(Float32Array::from(vec![1.5])) as ArrayRef,
        )]));
        let target = DataType::Struct(Fields::from(vec![
            Field::new("unit", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let out = conform(&input, &target).unwrap();
        let s = out.as_any().downcast_ref::<StructArray>().unwrap();
        assert!(s.column(0).is_null(0));
        assert_eq!(
            s.column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(s.column(1).data_type(), &DataType::Float64);
    }
}
