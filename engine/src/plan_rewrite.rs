//! The walk the physical optimizer rules share, and the rebuilding of the nodes they
//! wrap around DataFusion's.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};

/// `plan` with every node, children first, replaced by what `replace` returns for it;
/// a node it returns `None` for stays.
pub(crate) fn replace_up(
    plan: Arc<dyn ExecutionPlan>,
    replace: impl Fn(&Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(match replace(&node)? {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(node),
        })
    })
    .map(|t| t.data)
}

/// `plan` with every file scan replaced by one of the configuration `replace` makes
/// of its own; a scan it returns `None` for stays.
pub(crate) fn replace_file_scans(
    plan: Arc<dyn ExecutionPlan>,
    replace: impl Fn(&FileScanConfig) -> Option<FileScanConfig>,
) -> Result<Arc<dyn ExecutionPlan>> {
    replace_up(plan, |node| {
        let config = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>());
        Ok(config
            .and_then(&replace)
            .map(|c| DataSourceExec::from_data_source(c) as _))
    })
}

/// `plan` with every node of type `P` that `wrap` takes for it replaced by what it
/// makes of it, children first.
pub(crate) fn wrap_each<P: ExecutionPlan + 'static, E: ExecutionPlan + 'static>(
    plan: Arc<dyn ExecutionPlan>,
    wrap: impl Fn(&P) -> Result<Option<E>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    replace_up(plan, |node| match node.downcast_ref::<P>() {
        Some(inner) => Ok(wrap(inner)?.map(|e| Arc::new(e) as Arc<dyn ExecutionPlan>)),
        None => Ok(None),
    })
}

/// The `with_new_children` of a node that wraps `inner`: `inner` over `children`,
/// its properties computed anew, wrapped again if `wrap` still takes it.
pub(crate) fn rewrap<P: ExecutionPlan + Clone + 'static, E: ExecutionPlan + 'static>(
    inner: &P,
    children: Vec<Arc<dyn ExecutionPlan>>,
    wrap: impl Fn(&P) -> Result<Option<E>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let node = Arc::new(inner.clone()).replace_children(
        children,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )?;
    let wrapped = match node.downcast_ref::<P>() {
        Some(p) => wrap(p)?,
        None => None,
    };
    Ok(match wrapped {
        Some(exec) => Arc::new(exec),
        None => node,
    })
}
