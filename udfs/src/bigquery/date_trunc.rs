//! `bq_date_trunc(part, ts)`: DataFusion's `date_trunc`, evaluated once per run of
//! equal values.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, UInt32Array};
use arrow::compute::{partition, take};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// `date_trunc` in a time zone converts every value to local time and back (with
/// chrono-tz), some 300 ns a value; a bill's usage times repeat, hourly, thousands of
/// rows in a row. This truncates the first value of each run of equal ones, through
/// DataFusion's own `date_trunc`, and repeats its answer for the rest.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BqDateTrunc {
    inner: Arc<ScalarUDF>,
}

impl BqDateTrunc {
    pub fn new() -> Self {
        Self {
            inner: datafusion::functions::datetime::date_trunc(),
        }
    }
}

impl Default for BqDateTrunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::SECTION,
        "date_trunc, computed once for each run of equal values: what TIMESTAMP_TRUNC, \
         DATETIME_TRUNC and DATE_TRUNC plan to.",
        "bq_date_trunc(part, timestamp)",
    )
    .with_argument(
        "part",
        "year, quarter, month, week, day, hour, minute or second.",
    )
    .with_argument("timestamp", "A timestamp, in the time zone to truncate in.")
    .build()
});

impl ScalarUDFImpl for BqDateTrunc {
    fn name(&self) -> &str {
        "bq_date_trunc"
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(ColumnarValue::Array(values)) = args.args.get(1) else {
            return self.inner.invoke_with_args(args);
        };
        let runs = partition(std::slice::from_ref(values))?.ranges();
        if runs.len() * 2 > values.len() {
            return self.inner.invoke_with_args(args);
        }
        let firsts = UInt32Array::from_iter_values(runs.iter().map(|r| r.start as u32));
        let run_of_row = UInt32Array::from_iter_values(
            runs.iter()
                .enumerate()
                .flat_map(|(i, r)| std::iter::repeat_n(i as u32, r.len())),
        );
        args.args[1] = ColumnarValue::Array(take(values.as_ref(), &firsts, None)?);
        args.number_rows = runs.len();
        let truncated = self.inner.invoke_with_args(args)?.into_array(runs.len())?;
        Ok(ColumnarValue::Array(take(
            truncated.as_ref(),
            &run_of_row,
            None,
        )?))
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, TimestampMicrosecondArray};
    use arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;

    /// What `udf` gives for `part` over `values`.
    fn truncated(udf: &ScalarUDF, part: &str, values: &ArrayRef) -> ArrayRef {
        let fields = vec![
            Arc::new(Field::new("p", DataType::Utf8, false)),
            Arc::new(Field::new("t", values.data_type().clone(), true)),
        ];
        let args = vec![
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(part.to_string()))),
            ColumnarValue::Array(values.clone()),
        ];
        let scalars: Vec<Option<&ScalarValue>> = vec![None, None];
        let return_field = udf
            .return_field_from_args(ReturnFieldArgs {
                arg_fields: &fields,
                scalar_arguments: &scalars,
            })
            .unwrap();
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields: fields,
            number_rows: values.len(),
            return_field,
            config_options: Arc::new(ConfigOptions::default()),
        })
        .unwrap()
        .into_array(values.len())
        .unwrap()
    }

    #[test]
    fn truncates_as_date_trunc_does_a_run_at_a_time() {
        // Hours of 2024-11-02 to 2024-11-04 in New York (the clocks went back on
        // the 3rd at 06:00 UTC), in runs of 1 to 5 equal values, with NULLs.
        let hour = 3_600_000_000i64;
        let start = 1_730_505_600_000_000i64; // 2024-11-02T00:00:00Z
        let values: Vec<Option<i64>> = (0..72)
            .flat_map(|h| {
                let v = (h % 7 != 3).then_some(start + h * hour + 1_234_567);
                std::iter::repeat_n(v, (h % 5 + 1) as usize)
            })
            .collect();
        let values: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone("America/New_York"));
        let ours = ScalarUDF::from(BqDateTrunc::new());
        let theirs = datafusion::functions::datetime::date_trunc();
        // Every value apart (no runs), which goes to date_trunc as it is, too.
        let apart: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..72).map(|h| start + h * hour))
                .with_timezone("America/New_York"),
        );
        for values in [&values, &apart] {
            for part in ["day", "hour", "week", "month", "minute"] {
                let expected = truncated(&theirs, part, values);
                let ours = truncated(&ours, part, values);
                assert_eq!(ours.as_ref(), expected.as_ref(), "{part}");
            }
        }
    }
}
