//! BigQuery's semantics where DataFusion's built-ins differ; the BigQuery front end
//! plans calls to these in place of the built-ins.

pub mod array_sum;
pub mod cast_int64;
pub mod date_trunc;
pub mod divide;
pub mod format_timestamp;
pub mod outer_elements;
pub mod to_json_string;

use datafusion::logical_expr::DocSection;

/// The documentation section of these functions.
pub(crate) const SECTION: DocSection = DocSection {
    include: true,
    label: "BigQuery Functions",
    description: None,
};
