//! Where generated rows go: a provider's text export (gzip), or Arrow columns written
//! as Parquet row groups (snappy, as BigQuery and AWS write them) without going
//! through text.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::Arc;

use arrow::array::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, ListArray, StringBuilder, StructArray,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::Format;

/// Rows per Parquet row group: the writer holds one group's pages in memory.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A gzip text file being written.
pub(crate) type Gz = BufWriter<flate2::write::GzEncoder<File>>;

fn gz(file: File) -> Gz {
    BufWriter::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ))
}

/// Arrow columns that rows are appended to.
pub(crate) trait Columns {
    /// The columns of the rows appended since the last call, in the schema's order.
    fn take(&mut self) -> Vec<ArrayRef>;
}

/// An export file being written: text (gzip), or Parquet from columns `C`.
pub(crate) enum Sink<C> {
    Text(Gz),
    Parquet(ParquetFile<C>),
}

impl<C: Columns> Sink<C> {
    /// A new file (its folders made) of `format`: gzip text, or Parquet of the schema
    /// and columns `parquet` gives.
    pub fn create(
        path: &Path,
        format: Format,
        parquet: impl FnOnce() -> (SchemaRef, C),
    ) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        match format {
            Format::Export => Ok(Sink::Text(gz(file))),
            Format::Parquet => {
                let (schema, columns) = parquet();
                ParquetFile::new(file, schema, columns).map(Sink::Parquet)
            }
        }
    }

    /// Writes a text line (`text`), or appends a row to the columns (`append`).
    pub fn row(
        &mut self,
        text: impl FnOnce(&mut Gz) -> io::Result<()>,
        append: impl FnOnce(&mut C),
    ) -> io::Result<()> {
        match self {
            Sink::Text(w) => text(w),
            Sink::Parquet(p) => p.row(append),
        }
    }

    /// Writes what is buffered and closes the file.
    pub fn close(self) -> io::Result<()> {
        match self {
            Sink::Text(w) => {
                w.into_inner().map_err(|e| e.into_error())?.finish()?;
                Ok(())
            }
            Sink::Parquet(p) => p.close(),
        }
    }
}

/// A Parquet file being written, a row group at a time.
pub(crate) struct ParquetFile<C> {
    columns: C,
    /// Rows in the columns, not yet written.
    rows: usize,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
}

impl<C: Columns> ParquetFile<C> {
    fn new(file: File, schema: SchemaRef, columns: C) -> io::Result<Self> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
            .map_err(io::Error::other)?;
        Ok(Self {
            columns,
            rows: 0,
            schema,
            writer,
        })
    }

    fn row(&mut self, append: impl FnOnce(&mut C)) -> io::Result<()> {
        append(&mut self.columns);
        self.rows += 1;
        if self.rows == ROW_GROUP_ROWS {
            self.write_row_group()?;
        }
        Ok(())
    }

    fn write_row_group(&mut self) -> io::Result<()> {
        self.rows = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), self.columns.take())
            .map_err(io::Error::other)?;
        self.writer.write(&batch).map_err(io::Error::other)
    }

    fn close(mut self) -> io::Result<()> {
        if self.rows > 0 {
            self.write_row_group()?;
        }
        self.writer.close().map_err(io::Error::other)?;
        Ok(())
    }
}

/// The values of one field of a record: text, doubles, booleans, or a list of records.
pub(crate) enum Values {
    Text(StringBuilder),
    Number(Float64Builder),
    Boolean(BooleanBuilder),
    List(Repeated),
}

impl Values {
    pub fn text(&mut self) -> &mut StringBuilder {
        match self {
            Values::Text(b) => b,
            _ => unreachable!("a text field expected"),
        }
    }

    pub fn number(&mut self) -> &mut Float64Builder {
        match self {
            Values::Number(b) => b,
            _ => unreachable!("a double field expected"),
        }
    }

    pub fn boolean(&mut self) -> &mut BooleanBuilder {
        match self {
            Values::Boolean(b) => b,
            _ => unreachable!("a boolean field expected"),
        }
    }

    pub fn list(&mut self) -> &mut Repeated {
        match self {
            Values::List(r) => r,
            _ => unreachable!("a repeated field expected"),
        }
    }

    fn append_null(&mut self) {
        match self {
            Values::Text(b) => b.append_null(),
            Values::Number(b) => b.append_null(),
            Values::Boolean(b) => b.append_null(),
            // Under a null record: an empty list, never read.
            Values::List(r) => r.end_row(),
        }
    }

    fn finish(&mut self, field: &Field) -> ArrayRef {
        match self {
            Values::Text(b) => Arc::new(b.finish()),
            Values::Number(b) => Arc::new(b.finish()),
            Values::Boolean(b) => Arc::new(b.finish()),
            Values::List(r) => r.finish(field),
        }
    }
}

/// A column of records (nullable) being built from its fields' values.
pub(crate) struct Records {
    pub fields: Vec<Values>,
    valid: NullBufferBuilder,
}

impl Records {
    /// The records of `field`, a struct or a list of structs.
    pub fn of(field: &Field) -> Self {
        let fields = record_fields(field)
            .iter()
            .map(|f| match f.data_type() {
                DataType::Float64 => Values::Number(Float64Builder::new()),
                DataType::Boolean => Values::Boolean(BooleanBuilder::new()),
                DataType::List(_) => Values::List(Repeated::of(f)),
                _ => Values::Text(StringBuilder::new()),
            })
            .collect();
        Self {
            fields,
            valid: NullBufferBuilder::new(0),
        }
    }

    /// Ends a record whose fields were appended, or appends a null one.
    pub fn end_row(&mut self, present: bool) {
        if !present {
            self.fields.iter_mut().for_each(Values::append_null);
        }
        self.valid.append(present);
    }

    fn len(&self) -> usize {
        self.valid.len()
    }

    /// The struct column of `field`'s type.
    pub fn finish(&mut self, field: &Field) -> ArrayRef {
        let fields = record_fields(field);
        let children = self
            .fields
            .iter_mut()
            .zip(fields.iter())
            .map(|(values, field)| values.finish(field))
            .collect();
        Arc::new(StructArray::new(
            fields.clone(),
            children,
            self.valid.finish(),
        ))
    }
}

/// A column of lists of records (never null) being built.
pub(crate) struct Repeated {
    pub records: Records,
    offsets: Vec<i32>,
}

impl Repeated {
    /// The lists of `field`, a list of structs.
    pub fn of(field: &Field) -> Self {
        Self {
            records: Records::of(field),
            offsets: vec![0],
        }
    }

    /// Appends a record whose fields were appended.
    pub fn end_record(&mut self) {
        self.records.end_row(true);
    }

    /// Ends a row's list: the records appended since the last row's.
    pub fn end_row(&mut self) {
        let len = i32::try_from(self.records.len()).expect("under 2^31 records a row group");
        self.offsets.push(len);
    }

    /// The list column of `field`'s type.
    pub fn finish(&mut self, field: &Field) -> ArrayRef {
        let DataType::List(item) = field.data_type() else {
            unreachable!("{} is not a list", field.name())
        };
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        Arc::new(ListArray::new(
            FieldRef::clone(item),
            OffsetBuffer::new(offsets.into()),
            self.records.finish(item),
            None,
        ))
    }
}

/// The fields of a struct column, or of the structs a list column holds.
fn record_fields(field: &Field) -> &Fields {
    match field.data_type() {
        DataType::Struct(fields) => fields,
        DataType::List(item) => record_fields(item),
        other => unreachable!("{} is {other}, not a record", field.name()),
    }
}

/// A column of UTC timestamps in microseconds.
pub(crate) fn utc_micros() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}
