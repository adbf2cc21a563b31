//! `tags_map(x)`: key/value pairs as one map type, whatever their shape: GCP's
//! `labels` (an array of `{key, value}` records) or a map (AWS `resource_tags`, Azure
//! `tags`). The FOCUS view's `Tags` column.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, MapBuilder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Tags as `Map<Utf8, Utf8>`; NULL input gives an empty map.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TagsMap {
    signature: Signature,
}

impl TagsMap {
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for TagsMap {
    fn default() -> Self {
        Self::new()
    }
}

/// The map type `tags_map` returns, and that of the stores' tag and other key/value
/// columns: text keys and values.
pub fn map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Key/value pairs as a map of text: GCP `labels` (records) or AWS/Azure tag maps.",
        "tags_map(labels_or_tags)",
    )
    .with_sql_example("SELECT tags_map(labels)['env'] FROM gcp_billing_export")
    .with_argument(
        "labels_or_tags",
        "An array of {key, value} records, or a map.",
    )
    .build()
});

impl ScalarUDFImpl for TagsMap {
    fn name(&self) -> &str {
        "tags_map"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(map_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [x] = take_function_args(self.name(), &arrays)?;
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let (offsets, keys, values) = match x.data_type() {
            DataType::Map(..) => {
                let m = x.as_map();
                (
                    m.value_offsets().to_vec(),
                    cast(m.keys(), &DataType::Utf8)?,
                    cast(m.values(), &DataType::Utf8)?,
                )
            }
            DataType::List(_) => {
                let l = x.as_list::<i32>();
                let records = l.values().as_struct_opt();
                let field = |name: &str| records.and_then(|r| r.column_by_name(name));
                let (Some(k), Some(v)) = (field("key"), field("value")) else {
                    return exec_err!("tags_map expects {{key, value}} records");
                };
                (
                    l.value_offsets().to_vec(),
                    cast(k, &DataType::Utf8)?,
                    cast(v, &DataType::Utf8)?,
                )
            }
            DataType::Null => {
                for _ in 0..x.len() {
                    b.append(true)?;
                }
                return Ok(ColumnarValue::Array(Arc::new(b.finish())));
            }
            other => return exec_err!("tags_map expects labels or a map, got {other}"),
        };
        let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
        for row in 0..x.len() {
            if x.is_valid(row) {
                for i in offsets[row] as usize..offsets[row + 1] as usize {
                    if keys.is_valid(i) {
                        b.keys().append_value(keys.value(i));
                        b.values()
                            .append_option(values.is_valid(i).then(|| values.value(i)));
                    }
                }
            }
            b.append(true)?;
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
