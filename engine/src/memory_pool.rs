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
//!
//! A limit bounds the process, not only the pool: what the process holds outside it
//! when a query is planned (its code, the stores' Parquet metadata: 130 MiB with a
//! 100M-row store) comes off the pool ([`FairPool::fit_to_process`]), and while its
//! consumers grow with the process past three quarters of the limit, the pool gives
//! what the allocator holds free back to the system ([`return_free_memory`]) every
//! [`RETURN_INTERVAL`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// How often, at most, a pool under a limit gives free memory back as consumers grow,
/// once the process holds more than three quarters of the limit. A 100M-row sort under
/// 2 GiB peaked at 2.4-2.7 GiB of resident memory without it, 2.3 GiB given back only
/// after each run written, 2.02 GiB every 200 ms (55 s against 53 s). Given back every
/// 200 ms whatever the process held, a 10M-row sort that fits took 18% longer (the
/// pages fault back in) for 1.5% less.
const RETURN_INTERVAL: Duration = Duration::from_millis(200);

/// Equal shares for the operators that can spill; repartitions always granted. Clones
/// share one pool.
#[derive(Debug, Clone)]
pub(crate) struct FairPool {
    limit: usize,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// Bytes of the limit the process holds outside the pool, at most half of it.
    outside: usize,
    /// When free memory was last given back.
    returned: Instant,
    /// Consumers that spill when refused.
    sharers: usize,
    /// Bytes they hold.
    spillable: usize,
    /// Bytes everyone else holds (repartitions among them).
    held: usize,
}

impl FairPool {
    /// A pool of `limit` bytes; `usize::MAX` for no limit but the first stages'.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Arc::new(Mutex::new(State {
                outside: 0,
                returned: Instant::now(),
                sharers: 0,
                spillable: 0,
                held: 0,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes the pool grants: the limit less what the process holds outside it.
    fn size(&self, state: &State) -> usize {
        self.limit - state.outside
    }

    /// Takes what the process holds outside the pool (its resident memory, after
    /// giving back what the allocator holds free, less what the pool's consumers hold)
    /// off the limit. Under a limit, without knowing the process's memory (not Linux),
    /// nothing.
    pub(crate) fn fit_to_process(&self) {
        if self.limit == usize::MAX {
            return;
        }
        return_free_memory();
        if let Some(resident) = resident_bytes() {
            self.set_outside(resident);
        }
    }

    /// Whether a process holding `resident` bytes gives free memory back.
    fn near_limit(&self, resident: usize) -> bool {
        resident > self.limit / 4 * 3
    }

    fn set_outside(&self, resident: usize) {
        let mut state = self.state();
        let inside = state.spillable + state.held;
        state.outside = resident.saturating_sub(inside).min(self.limit / 2);
    }
}

/// The process's resident memory (`VmRSS`), where the system tells it.
pub(crate) fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: usize = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Gives the memory the allocator holds free back to the system. glibc keeps what a
/// thread frees for that thread's arena: a 100M-row sort under a 2 GiB limit, which
/// lets go of 1 GiB per run written, rose to 2.2-2.8 GiB of resident memory through
/// its runs and stayed at 1.9 GiB while it merged them (200 MiB when given back).
pub(crate) fn return_free_memory() {
    // SAFETY: malloc_trim only returns free pages; it takes the arenas' locks itself.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether a consumer takes a share: it can spill, and is no repartition.
fn shares(consumer: &MemoryConsumer) -> bool {
    consumer.can_spill() && !consumer.name().starts_with(REPARTITION)
}

impl std::fmt::Display for FairPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outside = self.state().outside;
        write!(
            f,
            "fair(pool_size: {}",
            human_readable_size(self.limit - outside)
        )?;
        match outside {
            0 => write!(f, ")"),
            _ => write!(
                f,
                ": the limit {} less {} the process holds outside the pool)",
                human_readable_size(self.limit),
                human_readable_size(outside)
            ),
        }
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
        let size = self.size(&state);
        let available = if consumer.name().starts_with(REPARTITION) {
            usize::MAX
        } else if shares(consumer) {
            // A sharer's part of what the others do not hold.
            let free = size.saturating_sub(state.held);
            free.checked_div(state.sharers).unwrap_or(free)
        } else {
            size.saturating_sub(state.held + state.spillable) + reservation.size()
        };
        if reservation.size() + additional > available {
            // Display locks the state.
            drop(state);
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
        if self.limit != usize::MAX && state.returned.elapsed() >= RETURN_INTERVAL {
            state.returned = Instant::now();
            drop(state);
            if resident_bytes().is_some_and(|resident| self.near_limit(resident)) {
                return_free_memory();
            }
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        let state = self.state();
        state.spillable + state.held
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.limit {
            usize::MAX => MemoryLimit::Infinite,
            _ => MemoryLimit::Finite(self.size(&self.state())),
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
    fn what_the_process_holds_outside_the_pool_comes_off_the_limit() {
        let pool = FairPool::new(1000);
        let dyn_pool: Arc<dyn MemoryPool> = Arc::new(pool.clone());
        let sort = MemoryConsumer::new("RowSortExec[0]")
            .with_can_spill(true)
            .register(&dyn_pool);
        sort.try_grow(400).unwrap();
        // Resident 700: 400 of it the pool's, 300 outside.
        pool.set_outside(700);
        assert!(sort.try_grow(301).is_err());
        sort.try_grow(300).unwrap();
        assert_eq!(
            pool.to_string(),
            "fair(pool_size: 700.0 B: the limit 1000.0 B less 300.0 B the process holds \
             outside the pool)"
        );
        assert!(matches!(dyn_pool.memory_limit(), MemoryLimit::Finite(700)));
        // Free memory is given back past three quarters of the limit.
        assert!(!pool.near_limit(750) && pool.near_limit(751));
        // At most half the limit is taken off.
        sort.free();
        pool.set_outside(4000);
        assert!(sort.try_grow(501).is_err());
        sort.try_grow(500).unwrap();
        // Without a limit nothing is.
        let unlimited = FairPool::new(usize::MAX);
        unlimited.fit_to_process();
        assert_eq!(
            unlimited.to_string(),
            format!("fair(pool_size: {})", human_readable_size(usize::MAX))
        );
    }

    /// Every sixteenth block kept, so the allocator cannot give the rest back by
    /// shrinking its heap from the top.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn resident_memory_is_measured_and_free_memory_given_back() {
        const MIB: usize = 1 << 20;
        // Another test's memory-limited session may give the process's free memory
        // back while this one frees its blocks (`fit_to_process`): such a round shows
        // nothing and is taken again.
        for round in 1.. {
            let before = resident_bytes().unwrap();
            let mut blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8 | 1; 64 << 10]).collect();
            let full = resident_bytes().unwrap();
            assert!(full >= before + 200 * MIB, "{before} -> {full}");
            let mut i = 0;
            blocks.retain(|_| {
                i += 1;
                i % 16 == 0
            });
            let freed = resident_bytes().unwrap();
            if freed < full - 64 * MIB {
                assert!(round < 5, "glibc gave it back itself: {full} -> {freed}");
                continue;
            }
            return_free_memory();
            let returned = resident_bytes().unwrap();
            assert!(
                returned <= full - 128 * MIB,
                "{full} -> {freed} -> {returned}"
            );
            assert_eq!(blocks.len(), 256);
            break;
        }
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
