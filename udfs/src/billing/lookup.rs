//! `label(labels, key)`, `has_label(labels, key)` and `tag(tags, key [, namespace])`:
//! key lookups without unnesting, in the exports' key/value arrays (GCP `labels`,
//! `tags`) and maps (AWS `resource_tags`, `cost_category`).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::aws_name::athena_name;

/// What a lookup returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// `label(labels, key)`: the value of the first entry with `key`, or NULL.
    Label,
    /// `has_label(labels, key)`: whether an entry has `key`.
    HasLabel,
    /// `tag(tags, key [, namespace])`: like `label`, optionally in one namespace.
    Tag,
}

/// A key lookup in a `labels`, `system_labels`, `project.labels` or `tags` array.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KeyLookup {
    signature: Signature,
    lookup: Lookup,
}

impl KeyLookup {
    pub fn new(lookup: Lookup) -> Self {
        let signature = match lookup {
            Lookup::Tag => Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(2),
                    datafusion::logical_expr::TypeSignature::Any(3),
                ],
                Volatility::Immutable,
            ),
            _ => Signature::any(2, Volatility::Immutable),
        };
        Self { signature, lookup }
    }
}

static LABEL_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "The value of the label with this key, or NULL.",
        "label(labels, key)",
    )
    .with_sql_example(
        "SELECT label(labels, 'env') AS env, SUM(cost) FROM gcp_billing_export GROUP BY 1",
    )
    .with_argument("labels", "An array of {key, value} records.")
    .with_argument("key", "The key to look up.")
    .build()
});
static HAS_LABEL_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "Whether a label with this key exists.",
        "has_label(labels, key)",
    )
    .with_argument("labels", "An array of {key, value} records.")
    .with_argument("key", "The key to look for.")
    .build()
});
static TAG_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "The value of the tag with this key (in this namespace, if given), or NULL.",
        "tag(tags, key [, namespace])",
    )
    .with_sql_example(
        "SELECT tag(resource_tags, 'user:Name') AS name, SUM(line_item_unblended_cost) FROM aws_cur GROUP BY 1",
    )
    .with_argument(
        "tags",
        "An array of {key, value, namespace} records (GCP), or a map (AWS `resource_tags`, \
         where a key not found as written is matched by AWS's column naming rule, so \
         `user:Name` also finds CUR 2.0's `user_name`).",
    )
    .with_argument("key", "The tag key.")
    .with_argument("namespace", "The tag's namespace (the parent resource id).")
    .build()
});

fn as_strings(a: &ArrayRef) -> Result<StringArray> {
    Ok(cast(a, &DataType::Utf8)?.as_string::<i32>().clone())
}

impl ScalarUDFImpl for KeyLookup {
    fn name(&self) -> &str {
        match self.lookup {
            Lookup::Label => "label",
            Lookup::HasLabel => "has_label",
            Lookup::Tag => "tag",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let ok = match &arg_types[0] {
            DataType::List(item) => {
                matches!(item.data_type(), DataType::Struct(f) if f.find("key").is_some())
            }
            DataType::Map(..) | DataType::Null => true,
            _ => false,
        };
        if !ok {
            return plan_err!(
                "{} expects an array of records with a key field, or a map, got {}",
                self.name(),
                arg_types[0]
            );
        }
        Ok(if self.lookup == Lookup::HasLabel {
            DataType::Boolean
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = arrays[0].len();
        let keys = as_strings(&arrays[1])?;
        let namespaces = arrays.get(2).map(as_strings).transpose()?;
        let mut found: Vec<Option<String>> = vec![None; rows];
        let mut present = vec![false; rows];
        let entries = match arrays[0].data_type() {
            DataType::List(_) => {
                let list = arrays[0].as_list::<i32>();
                let Some(records) = list
                    .values()
                    .as_any()
                    .downcast_ref::<arrow::array::StructArray>()
                else {
                    return exec_err!("{}: entries are not records", self.name());
                };
                Some((
                    list.value_offsets().to_vec(),
                    as_strings(records.column_by_name("key").expect("checked"))?,
                    records
                        .column_by_name("value")
                        .map(as_strings)
                        .transpose()?,
                    records
                        .column_by_name("namespace")
                        .map(as_strings)
                        .transpose()?,
                ))
            }
            DataType::Map(..) => {
                let map = arrays[0].as_map();
                Some((
                    map.value_offsets().to_vec(),
                    as_strings(map.keys())?,
                    Some(as_strings(map.values())?),
                    None,
                ))
            }
            _ => None,
        };
        // In maps (AWS tags), a key not found as written is looked for in the other
        // form AWS writes it in: `user:Name` (legacy CUR) finds CUR 2.0's `user_name`,
        // and `user_name` finds `user:Name`; `user:Name` never finds `user:name`.
        let by_aws_name = matches!(arrays[0].data_type(), DataType::Map(..));
        if let Some((offsets, entry_keys, values, entry_ns)) = entries {
            for row in 0..rows {
                if arrays[0].is_null(row) || keys.is_null(row) {
                    continue;
                }
                let range = offsets[row] as usize..offsets[row + 1] as usize;
                let ns_ok = |i: usize| match (&namespaces, &entry_ns) {
                    (Some(want), Some(have)) => {
                        !want.is_null(row) && have.is_valid(i) && have.value(i) == want.value(row)
                    }
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                let at = range
                    .clone()
                    .find(|&i| {
                        ns_ok(i) && entry_keys.is_valid(i) && entry_keys.value(i) == keys.value(row)
                    })
                    .or_else(|| {
                        let wanted = keys.value(row);
                        let wanted_name = athena_name(wanted);
                        range.clone().filter(|_| by_aws_name).find(|&i| {
                            entry_keys.is_valid(i)
                                && (entry_keys.value(i) == wanted_name
                                    || athena_name(entry_keys.value(i)) == wanted)
                        })
                    });
                if let Some(i) = at {
                    present[row] = true;
                    found[row] = values
                        .as_ref()
                        .filter(|v| v.is_valid(i))
                        .map(|v| v.value(i).to_string());
                }
            }
        }
        let out: ArrayRef = match self.lookup {
            Lookup::HasLabel => Arc::new(BooleanArray::from(
                (0..rows)
                    .map(|r| (!keys.is_null(r)).then_some(present[r]))
                    .collect::<Vec<_>>(),
            )),
            _ => Arc::new(StringArray::from(found)),
        };
        Ok(ColumnarValue::Array(out))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.lookup {
            Lookup::Label => &LABEL_DOC,
            Lookup::HasLabel => &HAS_LABEL_DOC,
            Lookup::Tag => &TAG_DOC,
        })
    }
}
