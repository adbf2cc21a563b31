//! Writing query results in the conventional formats.

use std::io::Write;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use billq_engine::Error;

use crate::args::Format;

/// Writes `batches` (of `schema`) to `out` in `format`.
pub fn write(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::io("<output>", e);
    match format {
        Format::Table => {
            let table =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
            writeln!(out, "{table}").map_err(io)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(flat_schema(schema)))?;
            }
            for b in batches {
                w.write(&flattened(b)?)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
            w.into_inner().write_all(b"\n").map_err(io)?;
        }
        Format::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
        Format::Markdown => write_markdown(schema, batches, out)?,
    }
    Ok(())
}

/// Whether a type is nested (records, arrays, maps): CSV has no place for those.
fn nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(_, _)
    )
}

/// `schema` with nested columns as text.
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match nested(f.data_type()) {
            true => Field::new(f.name(), DataType::Utf8, true),
            false => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` with nested values written as JSON text (`{"env":"prod"}`), as BigQuery's
/// CSV export writes them; NULL stays empty.
fn flattened(batch: &RecordBatch) -> Result<RecordBatch, Error> {
    let schema = flat_schema(&batch.schema());
    let columns = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef, Error> {
            if !nested(c.data_type()) {
                return Ok(c.clone());
            }
            let mut texts = StringBuilder::new();
            for row in 0..c.len() {
                if c.is_null(row) {
                    texts.append_null();
                } else {
                    let mut json = String::new();
                    billq_udfs::bigquery::to_json_string::write_json(&mut json, c, row)?;
                    texts.append_value(json);
                }
            }
            Ok(Arc::new(texts.finish()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn write_markdown(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::io("<output>", e);
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let names: Vec<String> = schema.fields().iter().map(|f| escape(f.name())).collect();
    writeln!(out, "| {} |", names.join(" | ")).map_err(io)?;
    writeln!(out, "|{}", " --- |".repeat(names.len())).map_err(io)?;
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| escape(&f.value(row).to_string()))
                .collect();
            writeln!(out, "| {} |", cells.join(" | ")).map_err(io)?;
        }
    }
    Ok(())
}
