//! Gathering rows scattered over many batches into one, as arrow's `interleave` does,
//! with each row's memory fetched ahead of its turn.
//!
//! A sort's gather reads its rows in key order, which is no order at all in memory: each
//! value is a cache miss, and a text value two (its offset, then its bytes). `interleave`
//! waits for every miss in turn (more than a third of a 10M-row sort's time). Here the rows
//! [`AHEAD`] places on are prefetched while one is copied, for the types a bill's sorts
//! carry (numbers, times, text, records of them); any other type goes to `interleave`.
//!
//! Rows that come mostly in runs of consecutive rows of one batch (a conversion's rows
//! put in time order: a few late ones moved, the rest as they came) are instead copied a
//! run at a time ([`Picked`]).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanBufferBuilder, GenericByteArray,
    MutableArrayData, PrimitiveArray, RecordBatch, RecordBatchOptions, StructArray,
    downcast_primitive, make_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::interleave;
use arrow::datatypes::{
    ArrowNativeType, BinaryType, ByteArrayType, DataType, LargeBinaryType, LargeUtf8Type,
    SchemaRef, Utf8Type,
};
use arrow::error::ArrowError;

/// How many rows ahead of the one copied its memory is prefetched.
const AHEAD: usize = 16;

/// The mean run length from which rows are copied a run at a time.
const RUN: usize = 8;

macro_rules! primitive_helper {
    ($t:ty, $arrays:ident, $indices:ident, $data_type:ident) => {
        primitive::<$t>($arrays, $indices, $data_type)
    };
}

/// The rows of `arrays` at `indices` ((array, row) pairs), in their order: what
/// `interleave(arrays, indices)` gives (and, for arrays of different types, its error).
fn gather(arrays: &[&dyn Array], indices: &[(usize, usize)]) -> Result<ArrayRef, ArrowError> {
    let Some(first) = arrays.first() else {
        return interleave(arrays, indices);
    };
    let data_type = first.data_type();
    if indices.is_empty() {
        return interleave(arrays, indices);
    }
    downcast_primitive! {
        data_type => (primitive_helper, arrays, indices, data_type),
        DataType::Utf8 => bytes::<Utf8Type>(arrays, indices),
        DataType::LargeUtf8 => bytes::<LargeUtf8Type>(arrays, indices),
        DataType::Binary => bytes::<BinaryType>(arrays, indices),
        DataType::LargeBinary => bytes::<LargeBinaryType>(arrays, indices),
        DataType::Struct(fields) if !fields.is_empty() => {
            let Some(structs) = arrays.iter().map(|a| a.as_struct_opt()).collect::<Option<Vec<_>>>() else {
                return interleave(arrays, indices);
            };
            let columns = (0..fields.len())
                .map(|i| {
                    let children: Vec<&dyn Array> =
                        structs.iter().map(|s| s.column(i).as_ref()).collect();
                    gather(&children, indices)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                columns,
                nulls(arrays, indices),
            )?))
        }
        _ => interleave(arrays, indices),
    }
}

/// Rows to fetch from several batches, in order: (batch, row) pairs, copied a run of
/// consecutive rows at a time where they come mostly in runs.
pub struct Picked {
    indices: Vec<(usize, usize)>,
    runs: Option<Vec<(usize, usize, usize)>>,
}

impl Picked {
    pub fn new(indices: Vec<(usize, usize)>) -> Self {
        let runs = runs(&indices);
        let by_runs = runs.len() * RUN <= indices.len();
        Self {
            indices,
            runs: by_runs.then_some(runs),
        }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// The picked rows of one column, given as its array in each batch.
    pub fn column(&self, arrays: &[&dyn Array]) -> Result<ArrayRef, ArrowError> {
        let Some(runs) = &self.runs else {
            return gather(arrays, &self.indices);
        };
        let data: Vec<_> = arrays.iter().map(|a| a.to_data()).collect();
        let mut out = MutableArrayData::new(data.iter().collect(), false, self.indices.len());
        for &(b, start, end) in runs {
            out.try_extend(b, start, end)?;
        }
        Ok(make_array(out.freeze()))
    }
}

/// The `picked` rows of `batches` (of `schema`), as one batch.
pub fn gather_rows(
    schema: SchemaRef,
    batches: &[&RecordBatch],
    picked: &Picked,
) -> Result<RecordBatch, ArrowError> {
    let columns = (0..schema.fields().len())
        .map(|i| {
            let column: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            picked.column(&column)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(picked.len()));
    RecordBatch::try_new_with_options(schema, columns, &options)
}

/// `indices` as runs of consecutive rows of one batch: (batch, first row, end).
fn runs(indices: &[(usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(b, row) in indices {
        match runs.last_mut() {
            Some((last, _, end)) if *last == b && *end == row => *end += 1,
            _ => runs.push((b, row, row + 1)),
        }
    }
    runs
}

/// Asks the CPU to fetch the cache line at `p` (a hint: it never faults).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch does not dereference; an address outside any mapping is ignored.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The validity of the gathered rows, if any of `arrays` has NULLs.
fn nulls(arrays: &[&dyn Array], indices: &[(usize, usize)]) -> Option<NullBuffer> {
    let nulls: Vec<Option<&NullBuffer>> = arrays.iter().map(|a| a.nulls()).collect();
    if nulls.iter().all(|n| n.is_none_or(|n| n.null_count() == 0)) {
        return None;
    }
    let mut valid = BooleanBufferBuilder::new(indices.len());
    for &(a, row) in indices {
        valid.append(nulls[a].is_none_or(|n| n.is_valid(row)));
    }
    Some(NullBuffer::new(valid.finish()))
}

fn primitive<T: ArrowPrimitiveType>(
    arrays: &[&dyn Array],
    indices: &[(usize, usize)],
    data_type: &DataType,
) -> Result<ArrayRef, ArrowError> {
    let Some(values) = arrays
        .iter()
        .map(|a| Some(a.as_primitive_opt::<T>()?.values().as_ref()))
        .collect::<Option<Vec<&[T::Native]>>>()
    else {
        return interleave(arrays, indices);
    };
    let mut out = Vec::with_capacity(indices.len());
    for (i, &(a, row)) in indices.iter().enumerate() {
        if let Some(&(a, row)) = indices.get(i + AHEAD) {
            prefetch(values[a].as_ptr().wrapping_add(row));
        }
        out.push(values[a][row]);
    }
    let array = PrimitiveArray::<T>::try_new(out.into(), nulls(arrays, indices))?;
    Ok(Arc::new(array.with_data_type(data_type.clone())))
}

fn bytes<T: ByteArrayType>(
    arrays: &[&dyn Array],
    indices: &[(usize, usize)],
) -> Result<ArrayRef, ArrowError> {
    let valid = nulls(arrays, indices);
    let Some(arrays) = arrays
        .iter()
        .map(|a| a.as_bytes_opt::<T>())
        .collect::<Option<Vec<_>>>()
    else {
        return interleave(arrays, indices);
    };
    let offsets: Vec<&[T::Offset]> = arrays.iter().map(|a| a.value_offsets()).collect();
    // The offsets first (fetched twice as far ahead as the bytes after them)...
    let mut ranges = Vec::with_capacity(indices.len());
    let mut ends = Vec::with_capacity(indices.len() + 1);
    ends.push(T::Offset::usize_as(0));
    let mut total = 0;
    for (i, &(a, row)) in indices.iter().enumerate() {
        if let Some(&(a, row)) = indices.get(i + 2 * AHEAD) {
            prefetch(offsets[a].as_ptr().wrapping_add(row));
        }
        let (start, end) = (offsets[a][row].as_usize(), offsets[a][row + 1].as_usize());
        ranges.push(start..end);
        total += end - start;
        ends.push(T::Offset::from_usize(total).ok_or(ArrowError::OffsetOverflowError(total))?);
    }
    // ...then the bytes.
    let data: Vec<&[u8]> = arrays.iter().map(|a| a.value_data()).collect();
    let mut values = Vec::with_capacity(total);
    for (i, &(a, _)) in indices.iter().enumerate() {
        if let (Some(&(a, _)), Some(range)) = (indices.get(i + AHEAD), ranges.get(i + AHEAD)) {
            prefetch(data[a].as_ptr().wrapping_add(range.start));
        }
        values.extend_from_slice(&data[a][ranges[i].clone()]);
    }
    // SAFETY: the offsets rise from 0 to the values' length, and each value is a whole
    // value of an array of the same type (valid UTF-8 where the type is text).
    let array = unsafe {
        GenericByteArray::<T>::new_unchecked(
            OffsetBuffer::new_unchecked(ends.into()),
            values.into(),
            valid,
        )
    };
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Float64Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
    };
    use arrow::compute::interleave_record_batch;
    use arrow::datatypes::{Field, Fields, Int64Type, Schema};

    /// Three batches' worth of one column, each made by `make` from its number, the
    /// middle one a slice (arrays with an offset).
    fn arrays(make: impl Fn(usize) -> ArrayRef) -> Vec<ArrayRef> {
        vec![make(0), make(1).slice(3, 40), make(2)]
    }

    /// Every row of `arrays` in a scattered order, some twice.
    fn scattered(arrays: &[ArrayRef]) -> Vec<(usize, usize)> {
        let mut rows: Vec<(usize, usize)> = arrays
            .iter()
            .enumerate()
            .flat_map(|(a, array)| (0..array.len()).map(move |r| (a, r)))
            .collect();
        let n = rows.len();
        rows.extend_from_within(..n / 3);
        let len = rows.len();
        (0..len).map(|i| rows[(i * 37 + 11) % len]).collect()
    }

    fn same_as_interleave(arrays: &[ArrayRef]) -> ArrayRef {
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        let indices = scattered(arrays);
        let gathered = gather(&refs, &indices).unwrap();
        assert_eq!(
            gathered.to_data(),
            interleave(&refs, &indices).unwrap().to_data()
        );
        gathered
    }

    fn text(n: usize) -> ArrayRef {
        Arc::new(StringArray::from_iter((0..50).map(|i| {
            (i % 7 != n).then(|| format!("{n}-{}", "x".repeat(i % 23)))
        })))
    }

    #[test]
    fn gathers_numbers_times_and_text_as_interleave_does() {
        let ints = same_as_interleave(&arrays(|n| {
            Arc::new(Int64Array::from_iter(
                (0..50).map(|i| (i % 5 != n).then_some((n * 100 + i) as i64)),
            ))
        }));
        assert_eq!(ints.as_primitive::<Int64Type>().value(0), 11);
        assert!(ints.null_count() > 0);
        same_as_interleave(&arrays(|n| {
            Arc::new(Float64Array::from_iter_values(
                (0..50).map(|i| (n * i) as f64 - 0.5),
            ))
        }));
        same_as_interleave(&arrays(|n| {
            Arc::new(
                TimestampMicrosecondArray::from_iter_values((0..50).map(|i| (n * i) as i64))
                    .with_timezone("UTC"),
            )
        }));
        let texts = same_as_interleave(&arrays(text));
        assert!(texts.null_count() > 0);
    }

    #[test]
    fn gathers_records_of_text_and_numbers_as_interleave_does() {
        let fields = Fields::from(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]);
        let gathered = same_as_interleave(&arrays(|n| {
            let valid = NullBuffer::from_iter((0..50).map(|i| i % 9 != n));
            let numbers = Arc::new(Int64Array::from_iter_values(0..50)) as ArrayRef;
            Arc::new(StructArray::new(
                fields.clone(),
                vec![text(n), numbers],
                Some(valid),
            ))
        }));
        assert!(gathered.null_count() > 0);
    }

    #[test]
    fn arrays_of_different_types_fail_as_in_interleave() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        let err = gather(&[ints.as_ref(), floats.as_ref()], &[(0, 1), (1, 0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid argument error: It is not possible to interleave arrays of different data types (Int64 and Float64)"
        );
    }

    #[test]
    fn rows_in_runs_or_scattered_come_out_as_interleave_puts_them() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Utf8, true),
            Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
        ]));
        let batches: Vec<RecordBatch> = (0..3)
            .map(|n| {
                let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
                    (0..50).map(|i| (i % 4 != n).then(|| vec![Some((n + i) as i64); i % 3])),
                );
                RecordBatch::try_new(schema.clone(), vec![text(n), Arc::new(list)]).unwrap()
            })
            .collect();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        // The rows in order but for every 30th, moved to the front: runs of 29 at most.
        let all: Vec<(usize, usize)> = (0..3).flat_map(|b| (0..50).map(move |r| (b, r))).collect();
        let (late, rest): (Vec<_>, Vec<_>) = all.iter().enumerate().partition(|(i, _)| i % 30 == 7);
        let in_runs: Vec<(usize, usize)> = late.into_iter().chain(rest).map(|(_, &r)| r).collect();
        assert!(runs(&in_runs).len() * RUN <= in_runs.len());
        let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
        let scattered = scattered(&arrays);
        assert!(runs(&scattered).len() * RUN > scattered.len());
        for indices in [in_runs, scattered] {
            let gathered =
                gather_rows(schema.clone(), &refs, &Picked::new(indices.clone())).unwrap();
            assert_eq!(gathered, interleave_record_batch(&refs, &indices).unwrap());
            assert_eq!(gathered.num_rows(), indices.len());
        }
    }

    #[test]
    fn other_types_go_to_interleave() {
        same_as_interleave(&arrays(|n| {
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                (0..50).map(|i| Some(vec![Some((n + i) as i64); i % 3])),
            ))
        }));
    }
}
