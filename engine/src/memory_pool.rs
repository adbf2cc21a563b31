//! The memory pool of a session with a memory limit.
//!
//! DataFusion's `FairSpillPool` gives each operator that can spill an equal share of
//! what the others do not hold, and [`FairPool`] does the same, but for repartitions.
//! DataFusion 55's `RepartitionExec` writes a batch to a spill file when the pool
//! refuses it memory, and its reader can then wait forever: two inputs spilling at once
//! open two files, the reader waits on the older one for a batch that is in the newer,
//! and every thread parks (apache/datafusion#24883, fixed after 55.2). A query under a
//! small limit hung about one run in two. So the pool never refuses a repartition: its
//! batches are counted as held (a repartition holds only the batches in flight between
//! two stages), and the operators that can spill (sorts, aggregations, joins) make
//! room. Nor does a repartition take a share: `FairSpillPool` counted a repartition's
//! outputs among the sharers, and a sort beside one got half the memory it could have.
//! And the first stage of a hash aggregation holds a few MiB at most.

use std::sync::Mutex;

use datafusion::common::{Result, human_readable_size, resources_datafusion_err};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// The name DataFusion gives a repartition's reservations (`RepartitionExec[0]`).
const REPARTITION: &str = "RepartitionExec[";

/// The name of a hash aggregation's first stage, and the most it holds. Refused more,
/// it hands its groups on to the second stage and starts afresh, as DuckDB's first
/// stage does with its small tables: a table that fits a core's cache takes a row in
/// a fraction of the time of one of millions of groups, and a bill's rows come in
/// order of time, so most of an hour's repeats still meet. Grouping 100M rows by hour
/// x SKU x project (32M groups) under a 2 GiB limit: 10.1-10.3 s at 2.0-2.2 GB peak
/// RSS with the first stage holding up to its share, 7.9-8.0 s at 1.3 GB with 1-4 MiB.
const PARTIAL_AGGREGATION: &str = "PartialHashAggregateStream[";
const PARTIAL_AGGREGATION_BYTES: usize = 4 << 20;

/// Equal shares for the operators that can spill; repartitions always granted.
#[derive(Debug)]
pub(crate) struct FairPool {
    size: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Consumers that spill when refused.
    sharers: usize,
    /// Bytes they hold.
    spillable: usize,
    /// Bytes everyone else holds (repartitions among them).
    held: usize,
}

impl FairPool {
    /// A pool of `size` bytes; `usize::MAX` for no limit but the first stages'.
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a consumer takes a share: it can spill, and is no repartition.
fn shares(consumer: &MemoryConsumer) -> bool {
    consumer.can_spill() && !consumer.name().starts_with(REPARTITION)
}

impl std::fmt::Display for FairPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fair(pool_size: {})", human_readable_size(self.size))
    }
}

impl MemoryPool for FairPool {
    fn name(&self) -> &str {
        "fair"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        if shares(consumer) {
            self.state().sharers += 1;
        }
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if shares(consumer) {
            let mut state = self.state();
            state.sharers = state.sharers.saturating_sub(1);
        }
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        let mut state = self.state();
        match shares(reservation.consumer()) {
            true => state.spillable += additional,
            false => state.held += additional,
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let mut state = self.state();
        match shares(reservation.consumer()) {
            true => state.spillable -= shrink,
            false => state.held -= shrink,
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let consumer = reservation.consumer();
        let mut state = self.state();
        if consumer.name().starts_with(PARTIAL_AGGREGATION)
            && reservation.size() + additional > PARTIAL_AGGREGATION_BYTES
        {
            return Err(resources_datafusion_err!(
                "{} holds {PARTIAL_AGGREGATION_BYTES} bytes at most: it hands its groups on",
                consumer.name()
            ));
        }
        let available = if consumer.name().starts_with(REPARTITION) {
            usize::MAX
        } else if shares(consumer) {
            // A sharer's part of what the others do not hold.
            let free = self.size.saturating_sub(state.held);
            free.checked_div(state.sharers).unwrap_or(free)
        } else {
            self.size.saturating_sub(state.held + state.spillable) + reservation.size()
        };
        if reservation.size() + additional > available {
            return Err(resources_datafusion_err!(
                "Failed to allocate additional {} for {} with {} already allocated for this \
                 reservation - {} remain available for the total memory pool: {}",
                human_readable_size(additional),
                consumer.name(),
                human_readable_size(reservation.size()),
                human_readable_size(available.saturating_sub(reservation.size())),
                self
            ));
        }
        match shares(consumer) {
            true => state.spillable += additional,
            false => state.held += additional,
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        let state = self.state();
        state.spillable + state.held
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.size {
            usize::MAX => MemoryLimit::Infinite,
            size => MemoryLimit::Finite(size),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use datafusion::error::DataFusionError;

    use super::*;
    use crate::{Dialect, Session};

    #[test]
    fn sharers_split_what_others_hold_not_and_repartitions_are_always_granted() {
        let pool: Arc<dyn MemoryPool> = Arc::new(FairPool::new(1000));
        let consumer = |name: &str, spills| {
            MemoryConsumer::new(name)
                .with_can_spill(spills)
                .register(&pool)
        };
        let sort0 = consumer("RowSortExec[0]", true);
        let sort1 = consumer("RowSortExec[1]", true);
        let repartition = consumer("RepartitionExec[0]", true);
        let merge = consumer("SortPreservingMergeExec[0]", false);
        // Two sharers, not three.
        sort0.try_grow(500).unwrap();
        assert!(sort0.try_grow(1).is_err());
        // A repartition is granted past the limit; what it holds shrinks the shares.
        repartition.try_grow(2000).unwrap();
        repartition.shrink(1700);
        sort1.try_grow(350).unwrap();
        assert!(sort1.try_grow(1).is_err());
        // An operator that cannot spill gets what nobody holds.
        let refused = merge.try_grow(1).unwrap_err().to_string();
        assert_eq!(
            refused,
            "Resources exhausted: Failed to allocate additional 1.0 B for \
             SortPreservingMergeExec[0] with 0.0 B already allocated for this reservation - \
             0.0 B remain available for the total memory pool: fair(pool_size: 1000.0 B)"
        );
        sort0.free();
        merge.try_grow(100).unwrap();
        // One sharer left: its share is all that the others do not hold.
        drop(sort0);
        sort1.try_grow(250).unwrap();
        assert!(sort1.try_grow(1).is_err());
        assert_eq!(pool.reserved(), 1000);
    }

    #[test]
    fn a_first_stage_of_aggregation_holds_a_few_mib_with_or_without_a_limit() {
        for size in [1 << 30, usize::MAX] {
            let pool: Arc<dyn MemoryPool> = Arc::new(FairPool::new(size));
            let partial = MemoryConsumer::new("PartialHashAggregateStream[1]")
                .with_can_spill(true)
                .register(&pool);
            let last = MemoryConsumer::new("FinalHashAggregateStream[1]")
                .with_can_spill(true)
                .register(&pool);
            partial.try_grow(PARTIAL_AGGREGATION_BYTES).unwrap();
            assert_eq!(
                partial.try_grow(1).unwrap_err().to_string(),
                "Resources exhausted: PartialHashAggregateStream[1] holds 4194304 bytes at \
                 most: it hands its groups on"
            );
            last.try_grow(64 << 20).unwrap();
        }
        assert!(matches!(
            FairPool::new(usize::MAX).memory_limit(),
            MemoryLimit::Infinite
        ));
    }

    /// Under 64 KiB a two-stage aggregation of 3000 groups spills between its stages;
    /// before this pool about one run in two never finished. Each run answers or fails
    /// for want of memory, sometimes with DataFusion's context around that failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aggregation_spilling_between_stages_finishes() {
        let dir = tempfile::tempdir().unwrap();
        for month in ["202401", "202402"] {
            let rows: String = (0..3000)
                .map(|i| {
                    let row = serde_json::json!({
                        "billing_account_id": "A",
                        "sku": {"id": "s", "description": format!("SKU {i:05} {}", "x".repeat(40))},
                        "usage_start_time": "2024-01-10 00:00:00 UTC",
                        "cost": 1.0,
                        "invoice": {"month": month},
                    });
                    format!("{row}\n")
                })
                .collect();
            std::fs::write(dir.path().join(format!("{month}.jsonl")), rows).unwrap();
        }
        let mut s = Session::with_memory_limit(64 * 1024).unwrap();
        s.add_table("t", dir.path().to_str().unwrap())
            .await
            .unwrap();
        let sql = "SELECT MIN(n), MAX(n), COUNT(*) \
                   FROM (SELECT sku.description, COUNT(*) AS n FROM t GROUP BY 1)";
        for attempt in 0..12 {
            let run = s.sql(sql, Dialect::BigQuery).await.unwrap().collect();
            match tokio::time::timeout(Duration::from_secs(30), run).await {
                Err(_) => panic!("attempt {attempt} did not finish in 30 s"),
                Ok(Ok(batches)) => {
                    let text = arrow::util::pretty::pretty_format_batches(&batches).unwrap();
                    assert!(text.to_string().contains("| 2   | 2   | 3000 |"), "{text}");
                }
                Ok(Err(e)) => {
                    let root = e.find_root();
                    assert!(
                        matches!(root, DataFusionError::ResourcesExhausted(_)),
                        "{e}"
                    );
                }
            }
        }
    }
}
