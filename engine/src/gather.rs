//! Gathering rows scattered over many batches into one, as arrow's `interleave` does,
//! a range of consecutive rows of one batch at a time, with each range's memory
//! fetched ahead of its turn.
//!
//! A sort's gather reads its rows in key order, which is no order at all in memory: each
//! value is a cache miss, and a text value two (its offset, then its bytes). `interleave`
//! waits for every miss in turn (more than a third of a 10M-row sort's time). Here the
//! ranges [`AHEAD`] places on are prefetched while one is copied. Rows that come mostly
//! in runs (a conversion's rows put in time order: a few late ones moved, the rest as
//! they came) are copied a run at a time, and an array's or a map's entries, which lie
//! together for each row, a row's at a time. Numbers, times, text, records, arrays and
//! maps of them are copied so; any other type goes to `interleave`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanBufferBuilder, GenericByteArray,
    GenericListArray, MapArray, OffsetSizeTrait, PrimitiveArray, RecordBatch, RecordBatchOptions,
    StructArray, downcast_primitive,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::interleave;
use arrow::datatypes::{
    BinaryType, ByteArrayType, DataType, FieldRef, LargeBinaryType, LargeUtf8Type, SchemaRef,
    Utf8Type,
};
use arrow::error::ArrowError;

/// How many ranges ahead of the one copied their memory is prefetched.
const AHEAD: usize = 16;

/// Consecutive rows of one array: (array, first row, end).
type Range = (usize, usize, usize);

/// Rows to fetch from several batches, in order: (batch, row) pairs, kept as ranges
/// of consecutive rows of one batch.
pub struct Picked {
    ranges: Vec<Range>,
    len: usize,
}

impl Picked {
    pub fn new(indices: Vec<(usize, usize)>) -> Self {
        let mut ranges: Vec<Range> = Vec::new();
        for &(b, row) in &indices {
            match ranges.last_mut() {
                Some((last, _, end)) if *last == b && *end == row => *end += 1,
                _ => ranges.push((b, row, row + 1)),
            }
        }
        Self {
            ranges,
            len: indices.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The picked rows of one column, given as its array in each batch: what
    /// `interleave` gives (and, for arrays of different types, its error).
    pub fn column(&self, arrays: &[&dyn Array]) -> Result<ArrayRef, ArrowError> {
        copy(arrays, &self.ranges, self.len)
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

macro_rules! primitive_helper {
    ($t:ty, $arrays:ident, $ranges:ident, $len:ident, $data_type:ident) => {
        primitive::<$t>($arrays, $ranges, $len, $data_type)
    };
}

/// The rows of `arrays` in `ranges` (`len` rows in all), in order.
fn copy(arrays: &[&dyn Array], ranges: &[Range], len: usize) -> Result<ArrayRef, ArrowError> {
    let Some(first) = arrays.first() else {
        return fallback(arrays, ranges);
    };
    let data_type = first.data_type();
    if arrays.iter().any(|a| a.data_type() != data_type) || ranges.is_empty() {
        return fallback(arrays, ranges);
    }
    downcast_primitive! {
        data_type => (primitive_helper, arrays, ranges, len, data_type),
        DataType::Utf8 => bytes::<Utf8Type>(arrays, ranges, len),
        DataType::LargeUtf8 => bytes::<LargeUtf8Type>(arrays, ranges, len),
        DataType::Binary => bytes::<BinaryType>(arrays, ranges, len),
        DataType::LargeBinary => bytes::<LargeBinaryType>(arrays, ranges, len),
        DataType::Struct(fields) if !fields.is_empty() => {
            let structs: Vec<&StructArray> = arrays.iter().map(|a| a.as_struct()).collect();
            let columns = (0..fields.len())
                .map(|i| {
                    let children: Vec<&dyn Array> =
                        structs.iter().map(|s| s.column(i).as_ref()).collect();
                    copy(&children, ranges, len)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                columns,
                nulls(arrays, ranges, len),
            )?))
        }
        DataType::List(field) => list::<i32>(arrays, field, ranges, len),
        DataType::LargeList(field) => list::<i64>(arrays, field, ranges, len),
        DataType::Map(field, sorted) => {
            let maps: Vec<&MapArray> = arrays.iter().map(|a| a.as_map()).collect();
            let offsets: Vec<&[i32]> = maps.iter().map(|m| m.value_offsets()).collect();
            let entries_of: Vec<&dyn Array> = maps.iter().map(|m| m.entries() as &dyn Array).collect();
            let (offsets, values) = entries(&offsets, &entries_of, ranges, len)?;
            Ok(Arc::new(MapArray::try_new(
                field.clone(),
                offsets,
                values.as_struct().clone(),
                nulls(arrays, ranges, len),
                *sorted,
            )?))
        }
        _ => fallback(arrays, ranges),
    }
}

/// `interleave` of the rows in `ranges`.
fn fallback(arrays: &[&dyn Array], ranges: &[Range]) -> Result<ArrayRef, ArrowError> {
    let indices: Vec<(usize, usize)> = ranges
        .iter()
        .flat_map(|&(a, start, end)| (start..end).map(move |row| (a, row)))
        .collect();
    interleave(arrays, &indices)
}

/// The rows in `ranges` of lists of `field`.
fn list<O: OffsetSizeTrait>(
    arrays: &[&dyn Array],
    field: &FieldRef,
    ranges: &[Range],
    len: usize,
) -> Result<ArrayRef, ArrowError> {
    let lists: Vec<&GenericListArray<O>> = arrays.iter().map(|a| a.as_list::<O>()).collect();
    let offsets: Vec<&[O]> = lists.iter().map(|l| l.value_offsets()).collect();
    let values: Vec<&dyn Array> = lists.iter().map(|l| l.values().as_ref()).collect();
    let (offsets, values) = entries(&offsets, &values, ranges, len)?;
    Ok(Arc::new(GenericListArray::<O>::try_new(
        field.clone(),
        offsets,
        values,
        nulls(arrays, ranges, len),
    )?))
}

/// The entries of the lists (or maps) in `ranges`, given as each array's offsets and
/// entries: the new offsets, and the entries, each list's lying together.
fn entries<O: OffsetSizeTrait>(
    offsets: &[&[O]],
    values: &[&dyn Array],
    ranges: &[Range],
    len: usize,
) -> Result<(OffsetBuffer<O>, ArrayRef), ArrowError> {
    let (offsets, mut spans, total) = rebased(offsets, ranges, len)?;
    spans.retain(|&(_, start, end)| end > start);
    Ok((offsets, copy(values, &spans, total)?))
}

/// The offsets of the rows in `ranges`, given each array's, counted from 0; the span
/// of values (bytes, or a list's entries) each range holds, as a range of its array;
/// and their total. The offsets are fetched [`AHEAD`] twice over ahead of their use.
fn rebased<O: OffsetSizeTrait>(
    offsets: &[&[O]],
    ranges: &[Range],
    len: usize,
) -> Result<(OffsetBuffer<O>, Vec<Range>, usize), ArrowError> {
    let mut spans = Vec::with_capacity(ranges.len());
    let mut ends = Vec::with_capacity(len + 1);
    ends.push(O::usize_as(0));
    let mut total = 0;
    for (i, &(a, start, end)) in ranges.iter().enumerate() {
        if let Some(&(a, start, _)) = ranges.get(i + 2 * AHEAD) {
            prefetch(offsets[a].as_ptr().wrapping_add(start));
        }
        let offsets = &offsets[a][start..=end];
        let base = offsets[0].as_usize();
        for offset in &offsets[1..] {
            ends.push(O::usize_as(total + offset.as_usize() - base));
        }
        let last = offsets[offsets.len() - 1].as_usize();
        spans.push((a, base, last));
        total += last - base;
    }
    O::from_usize(total).ok_or_else(|| ArrowError::OffsetOverflowError(total))?;
    // SAFETY: the offsets rise from 0 to the values' total.
    let offsets = unsafe { OffsetBuffer::new_unchecked(ends.into()) };
    Ok((offsets, spans, total))
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

/// The validity of the rows in `ranges`, if any of `arrays` has NULLs.
fn nulls(arrays: &[&dyn Array], ranges: &[Range], len: usize) -> Option<NullBuffer> {
    let nulls: Vec<Option<&NullBuffer>> = arrays.iter().map(|a| a.nulls()).collect();
    if nulls.iter().all(|n| n.is_none_or(|n| n.null_count() == 0)) {
        return None;
    }
    let mut valid = BooleanBufferBuilder::new(len);
    for &(a, start, end) in ranges {
        match nulls[a] {
            None => valid.append_n(end - start, true),
            Some(n) if end - start == 1 => valid.append(n.is_valid(start)),
            Some(n) => {
                let offset = n.offset();
                valid.append_packed_range(offset + start..offset + end, n.validity());
            }
        }
    }
    Some(NullBuffer::new(valid.finish()))
}

fn primitive<T: ArrowPrimitiveType>(
    arrays: &[&dyn Array],
    ranges: &[Range],
    len: usize,
    data_type: &DataType,
) -> Result<ArrayRef, ArrowError> {
    let values: Vec<&[T::Native]> = arrays
        .iter()
        .map(|a| a.as_primitive::<T>().values().as_ref())
        .collect();
    let mut out = Vec::with_capacity(len);
    for (i, &(a, start, end)) in ranges.iter().enumerate() {
        if let Some(&(a, start, _)) = ranges.get(i + AHEAD) {
            prefetch(values[a].as_ptr().wrapping_add(start));
        }
        if end - start == 1 {
            out.push(values[a][start]);
        } else {
            out.extend_from_slice(&values[a][start..end]);
        }
    }
    let array = PrimitiveArray::<T>::try_new(out.into(), nulls(arrays, ranges, len))?;
    Ok(Arc::new(array.with_data_type(data_type.clone())))
}

fn bytes<T: ByteArrayType>(
    arrays: &[&dyn Array],
    ranges: &[Range],
    len: usize,
) -> Result<ArrayRef, ArrowError> {
    let valid = nulls(arrays, ranges, len);
    let arrays: Vec<&GenericByteArray<T>> = arrays.iter().map(|a| a.as_bytes::<T>()).collect();
    let offsets: Vec<&[T::Offset]> = arrays.iter().map(|a| a.value_offsets()).collect();
    // The offsets first, then the bytes.
    let (offsets, spans, total) = rebased(&offsets, ranges, len)?;
    let data: Vec<&[u8]> = arrays.iter().map(|a| a.value_data()).collect();
    let mut values = Vec::with_capacity(total);
    for (i, &(a, start, end)) in spans.iter().enumerate() {
        if let Some(&(a, start, _)) = spans.get(i + AHEAD) {
            prefetch(data[a].as_ptr().wrapping_add(start));
        }
        values.extend_from_slice(&data[a][start..end]);
    }
    // SAFETY: the offsets rise from 0 to the values' length, and each value is a whole
    // value of an array of the same type (valid UTF-8 where the type is text).
    let array = unsafe { GenericByteArray::<T>::new_unchecked(offsets, values.into(), valid) };
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Float64Array, Int64Array, ListArray, MapBuilder, StringArray, StringBuilder,
        TimestampMicrosecondArray,
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
        let gathered = Picked::new(indices.clone()).column(&refs).unwrap();
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
        let picked = Picked::new(vec![(0, 1), (1, 0)]);
        let err = picked
            .column(&[ints.as_ref(), floats.as_ref()])
            .unwrap_err();
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
        // 5 rows moved, leaving 8 runs.
        assert_eq!(Picked::new(in_runs.clone()).ranges.len(), 13);
        let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
        let scattered = scattered(&arrays);
        assert_eq!(Picked::new(scattered.clone()).ranges.len(), scattered.len());
        for indices in [in_runs, scattered] {
            let gathered =
                gather_rows(schema.clone(), &refs, &Picked::new(indices.clone())).unwrap();
            assert_eq!(gathered, interleave_record_batch(&refs, &indices).unwrap());
            assert_eq!(gathered.num_rows(), indices.len());
        }
    }

    #[test]
    fn gathers_arrays_and_maps_as_interleave_does() {
        let numbers = same_as_interleave(&arrays(|n| {
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                (0..50).map(|i| (i % 6 != n).then(|| vec![Some((n + i) as i64); i % 3])),
            ))
        }));
        assert!(numbers.null_count() > 0);
        // Labels: arrays of key and value records, as GCP's `labels`.
        let label = Fields::from(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, true),
        ]);
        same_as_interleave(&arrays(|n| {
            let counts: Vec<usize> = (0..50).map(|i| (i + n) % 4).collect();
            let entries: usize = counts.iter().sum();
            let keys = StringArray::from_iter_values((0..entries).map(|e| format!("k{}", e % 5)));
            let values =
                StringArray::from_iter((0..entries).map(|e| (e % 4 != n).then(|| format!("v{e}"))));
            let labels =
                StructArray::new(label.clone(), vec![Arc::new(keys), Arc::new(values)], None);
            let item = Arc::new(Field::new_list_field(DataType::Struct(label.clone()), true));
            Arc::new(ListArray::new(
                item,
                OffsetBuffer::from_lengths(counts),
                Arc::new(labels),
                None,
            ))
        }));
        // Maps of text, as CUR 2.0's `resource_tags`, some NULL.
        same_as_interleave(&arrays(|n| {
            let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            for i in 0..50 {
                for k in 0..(i + n) % 3 {
                    map.keys().append_value(format!("k{k}"));
                    map.values().append_value(format!("v{i}-{n}"));
                }
                map.append(i % 8 != n).unwrap();
            }
            Arc::new(map.finish())
        }));
    }

    #[test]
    fn other_types_go_to_interleave() {
        same_as_interleave(&arrays(|n| {
            Arc::new(BooleanArray::from_iter(
                (0..50).map(|i| (i % 3 != n).then_some(i % 2 == 0)),
            ))
        }));
    }
}
