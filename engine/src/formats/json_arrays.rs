//! JSON lines decoded straight into Arrow arrays in one pass, for the types billing
//! exports have: text, floats, integers, decimals, booleans, records and repeated fields.
//!
//! It reads only what it is sure of: well-formed JSON whose every value is of its
//! field's kind. Anything else (a key the schema does not have or has twice, a number
//! where text is expected, an escaped key, a line with more than one value) makes it
//! give up on the chunk, which arrow-json then decodes, its batch or its error
//! standing. So a batch returned here is the one arrow-json returns (strict mode,
//! primitives coerced), without arrow-json's tape and the lookup of each key by name:
//! keys are expected in the schema's order, as exports write them.

use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder,
    ListArray, NullArray, NullBufferBuilder, RecordBatch, StringBuilder, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{DataType, Decimal128Type, FieldRef, Fields, SchemaRef};

/// Why a chunk is left to arrow-json; what it met is not said, arrow-json will.
struct GiveUp;

type Read<T = ()> = Result<T, GiveUp>;

/// Whether every field of `schema` is of a type this decoder builds, and nullable
/// (arrow-json checks that a non-nullable field is present; this decoder does not).
pub(super) fn supports(schema: &SchemaRef) -> bool {
    schema.fields().iter().all(supported)
}

fn supported(field: &FieldRef) -> bool {
    field.is_nullable()
        && match field.data_type() {
            DataType::Null
            | DataType::Utf8
            | DataType::Float64
            | DataType::Int64
            | DataType::Boolean
            | DataType::Decimal128(..) => true,
            DataType::Struct(fields) => fields.iter().all(supported),
            DataType::List(item) => supported(item),
            _ => false,
        }
}

/// Decodes each line of `text` (ending at the offsets in `lines`) as a record of
/// `schema`, or `None` where arrow-json is to decode the chunk instead.
pub(super) fn decode(
    schema: &SchemaRef,
    text: &[u8],
    lines: &[(u64, usize)],
    sizes: &Sizes,
) -> Option<RecordBatch> {
    let text = simdutf8::basic::from_utf8(text).ok()?;
    let last = sizes.0.lock().expect("no panic").clone();
    let mut plan = Plan {
        rows: lines.len(),
        last: last
            .as_ref()
            .map(|(rows, lengths)| (*rows, lengths.as_slice())),
        at: 0,
    };
    let mut rows = Record::new(schema.fields(), &mut plan);
    let mut start = 0;
    for &(_, end) in lines {
        let mut line = Cursor {
            text: &text[..end],
            at: start,
        };
        line.space();
        rows.object(&mut line).ok()?;
        line.space();
        if line.at != end {
            return None;
        }
        start = end;
    }
    let mut lengths = Vec::with_capacity(plan.at);
    rows.lengths(&mut lengths);
    *sizes.0.lock().expect("no panic") = Some((lines.len(), lengths));
    let (_, columns, _) = rows.finish().ok()?.into_parts();
    RecordBatch::try_new(schema.clone(), columns).ok()
}

/// The lengths of each builder's buffers in the last chunk decoded (rows first, then
/// depth first in schema order), from which the next chunk's are allocated: a builder
/// grown by doubling holds up to twice its values, which counts as memory pending for
/// a row group and cuts row groups short.
#[derive(Default)]
pub(super) struct Sizes(Mutex<Option<(usize, Vec<usize>)>>);

/// Where the capacities of a chunk's builders come from, taken in the order of [`Sizes`].
struct Plan<'s> {
    rows: usize,
    last: Option<(usize, &'s [usize])>,
    at: usize,
}

impl Plan<'_> {
    /// The next builder's capacity: its length in the last chunk scaled to this one's
    /// rows, and a sixteenth more; `first` for the first chunk.
    fn capacity(&mut self, first: usize) -> usize {
        self.at += 1;
        match self.last {
            Some((rows, lengths)) => {
                let last = lengths.get(self.at - 1).copied().unwrap_or(first);
                let scaled = last * self.rows / rows.max(1);
                scaled + scaled / 16
            }
            None => first,
        }
    }
}

/// A position in one line's text.
struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        let bytes = self.text.as_bytes();
        while bytes.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    /// Takes `byte`, after any whitespace.
    fn expect(&mut self, byte: u8) -> Read {
        self.space();
        match self.peek() == Some(byte) {
            true => {
                self.at += 1;
                Ok(())
            }
            false => Err(GiveUp),
        }
    }

    /// Takes `word` (`null`, `true`, `false`).
    fn word(&mut self, word: &str) -> Read {
        match self.text.as_bytes()[self.at..].starts_with(word.as_bytes()) {
            true => {
                self.at += word.len();
                Ok(())
            }
            false => Err(GiveUp),
        }
    }

    /// A string's text without escapes (the cursor on its opening quote), or `None`
    /// before an escape, the cursor then left on the opening quote.
    fn plain_string(&mut self) -> Read<Option<&'t str>> {
        let start = self.at + 1;
        let bytes = &self.text.as_bytes()[start..];
        match memchr::memchr2(b'"', b'\\', bytes) {
            Some(n) if bytes[n] == b'"' => {
                self.at = start + n + 1;
                Ok(Some(&self.text[start..start + n]))
            }
            Some(_) => Ok(None),
            None => Err(GiveUp),
        }
    }

    /// A string's text with its escapes undone into `out` (the cursor on its opening
    /// quote), as arrow-json undoes them.
    fn escaped_string(&mut self, out: &mut String) -> Read {
        out.clear();
        self.at += 1;
        loop {
            let bytes = &self.text.as_bytes()[self.at..];
            let n = memchr::memchr2(b'"', b'\\', bytes).ok_or(GiveUp)?;
            out.push_str(&self.text[self.at..self.at + n]);
            self.at += n + 1;
            if bytes[n] == b'"' {
                return Ok(());
            }
            let escaped = *self.text.as_bytes().get(self.at).ok_or(GiveUp)?;
            self.at += 1;
            out.push(match escaped {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode()?,
                _ => return Err(GiveUp),
            });
        }
    }

    /// The character of a `\u` escape (the cursor after the `u`), a surrogate pair's
    /// second half included.
    fn unicode(&mut self) -> Read<char> {
        let high = self.hex4()?;
        if let Some(c) = char::from_u32(high) {
            return Ok(c);
        }
        self.word("\\u")?;
        let low = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) || !(0xDC00..0xE000).contains(&low) {
            return Err(GiveUp);
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).ok_or(GiveUp)
    }

    fn hex4(&mut self) -> Read<u32> {
        let digits = self.text.get(self.at..self.at + 4).ok_or(GiveUp)?;
        self.at += 4;
        match digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            true => u32::from_str_radix(digits, 16).map_err(|_| GiveUp),
            false => Err(GiveUp),
        }
    }

    /// A number as JSON writes it, and whether it is an integer. A token arrow-json
    /// would read further (`1.2.3`, `1-2`) is not one.
    fn number(&mut self) -> Read<(&'t str, bool)> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        let mut at = start + usize::from(bytes.get(start) == Some(&b'-'));
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => _ = digits(&mut at),
            _ => return Err(GiveUp),
        }
        let mut integer = true;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            integer = false;
            if !digits(&mut at) {
                return Err(GiveUp);
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            integer = false;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                return Err(GiveUp);
            }
        }
        if matches!(
            bytes.get(at),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            return Err(GiveUp);
        }
        self.at = at;
        Ok((&self.text[start..at], integer))
    }

    /// Reads the elements between `open` and `close` (an array's or an object's),
    /// `element` reading each from its first byte, and the commas between them.
    fn elements(
        &mut self,
        open: u8,
        close: u8,
        mut element: impl FnMut(&mut Self) -> Read,
    ) -> Read {
        self.expect(open)?;
        self.space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.space();
            element(self)?;
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// Takes `null` if it comes next.
    fn null(&mut self) -> Read<bool> {
        match self.peek() {
            Some(b'n') => self.word("null").map(|_| true),
            _ => Ok(false),
        }
    }
}

/// The arrays of one field being built.
enum Column {
    Null(usize),
    Text(StringBuilder),
    Float(Float64Builder),
    Integer(Int64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Boolean(BooleanBuilder),
    Record(Record),
    Repeated(Repeated),
}

/// A record's fields being built, in the schema's order.
struct Record {
    fields: Fields,
    columns: Vec<Column>,
    valid: NullBufferBuilder,
    /// Which fields the current object has given.
    seen: Vec<bool>,
    /// Undone escapes of the current string.
    scratch: String,
}

/// A repeated field being built: its offsets, validity and items.
struct Repeated {
    item: FieldRef,
    offsets: Vec<i32>,
    valid: NullBufferBuilder,
    items: Box<Column>,
}

impl Column {
    fn new(field: &FieldRef, plan: &mut Plan) -> Self {
        let rows = plan.rows;
        match field.data_type() {
            DataType::Null => Column::Null(0),
            DataType::Utf8 => {
                let items = plan.capacity(rows);
                Column::Text(StringBuilder::with_capacity(
                    items,
                    plan.capacity(rows * 16),
                ))
            }
            DataType::Float64 => Column::Float(Float64Builder::with_capacity(plan.capacity(rows))),
            DataType::Int64 => Column::Integer(Int64Builder::with_capacity(plan.capacity(rows))),
            DataType::Decimal128(p, s) => {
                let values = Decimal128Builder::with_capacity(plan.capacity(rows));
                Column::Decimal(values, *p, *s)
            }
            DataType::Boolean => {
                Column::Boolean(BooleanBuilder::with_capacity(plan.capacity(rows)))
            }
            DataType::Struct(fields) => Column::Record(Record::new(fields, plan)),
            DataType::List(item) => {
                let lists = plan.capacity(rows);
                let mut offsets = Vec::with_capacity(lists + 1);
                offsets.push(0);
                Column::Repeated(Repeated {
                    item: item.clone(),
                    offsets,
                    valid: NullBufferBuilder::new(lists),
                    items: Box::new(Column::new(item, plan)),
                })
            }
            other => unreachable!("{other} is not supported"),
        }
    }

    /// Pushes the lengths of this column's buffers, in the order [`Column::new`] takes
    /// their capacities.
    fn lengths(&self, out: &mut Vec<usize>) {
        match self {
            Column::Null(_) => {}
            Column::Text(b) => out.extend([b.len(), b.values_slice().len()]),
            Column::Record(r) => r.lengths(out),
            Column::Repeated(r) => {
                out.push(r.valid.len());
                r.items.lengths(out);
            }
            other => out.push(other.len()),
        }
    }

    /// Reads the value at the cursor into this column.
    fn value(&mut self, at: &mut Cursor, scratch: &mut String) -> Read {
        at.space();
        if at.null()? {
            self.push_null();
            return Ok(());
        }
        match self {
            Column::Null(_) => return Err(GiveUp),
            Column::Text(b) => {
                if at.peek() != Some(b'"') {
                    return Err(GiveUp);
                }
                match at.plain_string()? {
                    Some(text) => b.append_value(text),
                    None => {
                        at.escaped_string(scratch)?;
                        b.append_value(&*scratch);
                    }
                }
            }
            Column::Float(b) => {
                let v: f64 = at.number()?.0.parse().map_err(|_| GiveUp)?;
                if !v.is_finite() {
                    return Err(GiveUp);
                }
                b.append_value(v);
            }
            Column::Integer(b) => match at.number()? {
                (text, true) => b.append_value(text.parse().map_err(|_| GiveUp)?),
                (_, false) => return Err(GiveUp),
            },
            Column::Decimal(b, p, s) => {
                let text = match at.peek() {
                    Some(b'"') => at.plain_string()?.ok_or(GiveUp)?,
                    _ => at.number()?.0,
                };
                b.append_value(parse_decimal::<Decimal128Type>(text, *p, *s).map_err(|_| GiveUp)?);
            }
            Column::Boolean(b) => match at.peek() {
                Some(b't') => at.word("true").map(|_| b.append_value(true))?,
                _ => at.word("false").map(|_| b.append_value(false))?,
            },
            Column::Record(r) => r.object(at)?,
            Column::Repeated(r) => {
                at.elements(b'[', b']', |at| r.items.value(at, scratch))?;
                let end = i32::try_from(r.items.len()).map_err(|_| GiveUp)?;
                r.offsets.push(end);
                r.valid.append_non_null();
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Column::Null(n) => *n += 1,
            Column::Text(b) => b.append_null(),
            Column::Float(b) => b.append_null(),
            Column::Integer(b) => b.append_null(),
            Column::Decimal(b, ..) => b.append_null(),
            Column::Boolean(b) => b.append_null(),
            Column::Record(r) => {
                r.columns.iter_mut().for_each(Column::push_null);
                r.valid.append_null();
            }
            Column::Repeated(r) => {
                r.offsets.push(*r.offsets.last().expect("starts with 0"));
                r.valid.append_null();
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Null(n) => *n,
            Column::Text(b) => b.len(),
            Column::Float(b) => b.len(),
            Column::Integer(b) => b.len(),
            Column::Decimal(b, ..) => b.len(),
            Column::Boolean(b) => b.len(),
            Column::Record(r) => r.valid.len(),
            Column::Repeated(r) => r.valid.len(),
        }
    }

    fn finish(self) -> Read<ArrayRef> {
        Ok(match self {
            Column::Null(n) => Arc::new(NullArray::new(n)),
            Column::Text(mut b) => Arc::new(b.finish()),
            Column::Float(mut b) => Arc::new(b.finish()),
            Column::Integer(mut b) => Arc::new(b.finish()),
            Column::Decimal(mut b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(p, s)
                    .map_err(|_| GiveUp)?,
            ),
            Column::Boolean(mut b) => Arc::new(b.finish()),
            Column::Record(r) => Arc::new(r.finish()?),
            Column::Repeated(mut r) => Arc::new(
                ListArray::try_new(
                    r.item,
                    OffsetBuffer::new(r.offsets.into()),
                    r.items.finish()?,
                    r.valid.finish(),
                )
                .map_err(|_| GiveUp)?,
            ),
        })
    }
}

impl Record {
    fn new(fields: &Fields, plan: &mut Plan) -> Self {
        let valid = NullBufferBuilder::new(plan.capacity(plan.rows));
        Self {
            fields: fields.clone(),
            columns: fields.iter().map(|f| Column::new(f, plan)).collect(),
            valid,
            seen: vec![false; fields.len()],
            scratch: String::new(),
        }
    }

    /// Reads the object at the cursor: each key is looked for first where the one
    /// before it was found plus one, and fields it does not give are NULL.
    fn object(&mut self, at: &mut Cursor) -> Read {
        let mut next = 0;
        at.elements(b'{', b'}', |at| {
            if at.peek() != Some(b'"') {
                return Err(GiveUp);
            }
            let key = at.plain_string()?.ok_or(GiveUp)?;
            let i = match self.fields.get(next) {
                Some(f) if f.name() == key => next,
                _ => self
                    .fields
                    .iter()
                    .position(|f| f.name() == key)
                    .ok_or(GiveUp)?,
            };
            if std::mem::replace(&mut self.seen[i], true) {
                return Err(GiveUp);
            }
            at.expect(b':')?;
            next = i + 1;
            self.columns[i].value(at, &mut self.scratch)
        })?;
        for (column, seen) in self.columns.iter_mut().zip(&mut self.seen) {
            if !std::mem::replace(seen, false) {
                column.push_null();
            }
        }
        self.valid.append_non_null();
        Ok(())
    }

    fn lengths(&self, out: &mut Vec<usize>) {
        out.push(self.valid.len());
        self.columns.iter().for_each(|c| c.lengths(out));
    }

    fn finish(mut self) -> Read<StructArray> {
        let columns = self
            .columns
            .into_iter()
            .map(Column::finish)
            .collect::<Read<Vec<_>>>()?;
        StructArray::try_new(self.fields, columns, self.valid.finish()).map_err(|_| GiveUp)
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};
    use arrow::json::ReaderBuilder;

    use super::*;

    fn schema() -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let pair = Fields::from(vec![text("key"), text("value")]);
        let item = Field::new("item", DataType::Struct(pair), true);
        Arc::new(Schema::new(vec![
            text("id"),
            Field::new("cost", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("price", DataType::Decimal128(38, 9), true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("none", DataType::Null, true),
            Field::new(
                "usage",
                DataType::Struct(Fields::from(vec![
                    text("unit"),
                    Field::new("amount", DataType::Float64, true),
                ])),
                true,
            ),
            Field::new("labels", DataType::List(Arc::new(item)), true),
            Field::new(
                "names",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]))
    }

    /// The chunk of `lines` as this decoder and as arrow-json (strict, coercing) read it.
    fn both(lines: &[&str]) -> (Option<RecordBatch>, Result<RecordBatch, String>) {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
            ends.push((n as u64 + 1, text.len()));
        }
        let mut decoder = ReaderBuilder::new(schema())
            .with_coerce_primitive(true)
            .with_strict_mode(true)
            .build_decoder()
            .unwrap();
        let arrow_json = decoder
            .decode(&text)
            .and_then(|_| decoder.flush())
            .map(|b| b.unwrap())
            .map_err(|e| e.to_string());
        (
            decode(&schema(), &text, &ends, &Sizes::default()),
            arrow_json,
        )
    }

    #[test]
    fn reads_what_arrow_json_reads_as_arrow_json_does() {
        let lines = [
            r#"{"id":"a","cost":1.5,"n":-3,"price":"0.000000001","ok":true,"none":null,"usage":{"unit":"h","amount":2e3},"labels":[{"key":"k","value":"v"}],"names":["x","y"]}"#,
            r#"  { "labels" : [ ] , "id" : "caf\u00e9 \"q\" \\ \/ \n\t\b\f\r \ud83d\ude00" , "usage" : null }  "#,
            r#"{"cost":-0,"n":0,"price":12.5,"ok":false,"labels":null,"names":[null,"z"],"usage":{}}"#,
            r#"{"cost":0.1E-2,"price":-1e2,"labels":[{"value":"only"},null,{}],"id":null,"names":[]}"#,
            r#"{}"#,
        ];
        let (direct, arrow_json) = both(&lines);
        let direct = direct.expect("every line is read directly");
        assert_eq!(direct, arrow_json.unwrap());
        assert_eq!(direct.num_rows(), 5);
        let id = direct
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>();
        assert_eq!(id.unwrap().value(1), "café \"q\" \\ / \n\t\u{8}\u{c}\r 😀");
    }

    #[test]
    fn gives_up_where_arrow_json_is_to_say_what_is_wrong() {
        let lines = [
            r#"{"id":"a","other":1}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"id":1}"#,
            r#"{"cost":"1.5"}"#,
            r#"{"cost":1.}"#,
            r#"{"cost":01}"#,
            r#"{"cost":1.2.3}"#,
            r#"{"n":1.0}"#,
            r#"{"n":99999999999999999999}"#,
            r#"{"ok":1}"#,
            r#"{"none":"x"}"#,
            r#"{"i\u0064":"a"}"#,
            r#"{"id":"a"} {"id":"b"}"#,
            r#"{"id":"a""#,
            r#"{"usage":[]}"#,
            r#"{"labels":{"key":"k"}}"#,
            r#"{"id":"\x"}"#,
            r#"{"id":"\ud83d"}"#,
            r#"{"id":nul}"#,
        ];
        for line in lines {
            let (direct, arrow_json) = both(&[r#"{"id":"fine"}"#, line]);
            assert!(direct.is_none(), "{line} read directly as {arrow_json:?}");
        }
        // Where arrow-json reads such a line, the chunk still gets its batch from it.
        let (direct, arrow_json) = both(&[r#"{"i\u0064":"a","cost":"1.5"}"#]);
        assert!(direct.is_none());
        assert_eq!(arrow_json.unwrap().num_rows(), 1);
    }

    #[test]
    fn supports_nullable_fields_of_the_types_it_builds() {
        assert!(supports(&schema()));
        let time = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
        let timed = Schema::new(vec![Field::new("t", time, true)]);
        assert!(!supports(&Arc::new(timed)));
        let required = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
        assert!(!supports(&Arc::new(required)));
    }
}
