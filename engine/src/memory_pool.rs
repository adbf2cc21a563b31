//! The memory pool of a session with a memory limit.
//!
//! DataFusion 55's `RepartitionExec` writes a batch to a spill file when the pool
//! refuses it memory, and its reader can then wait forever: two inputs spilling at once
//! open two files, the reader waits on the older one for a batch that is in the newer,
//! and every thread parks (apache/datafusion#24883, fixed after 55.2). A query under a
//! small limit hung about one run in two. So the pool never refuses a repartition: its
//! batches are counted as before, and the operators that can spill (sorts,
//! aggregations, joins) make room. A repartition holds only the batches in flight
//! between two stages (its channels close while every output has one waiting).

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// The name DataFusion gives a repartition's reservations (`RepartitionExec[0]`).
const REPARTITION: &str = "RepartitionExec[";

/// A pool that grants every request of a repartition and passes the rest to `inner`.
#[derive(Debug)]
pub(crate) struct RepartitionsNeverSpill<P> {
    inner: P,
}

impl<P: MemoryPool> RepartitionsNeverSpill<P> {
    pub(crate) fn new(inner: P) -> Self {
        Self { inner }
    }
}

fn is_repartition(reservation: &MemoryReservation) -> bool {
    reservation.consumer().name().starts_with(REPARTITION)
}

impl<P: MemoryPool> std::fmt::Display for RepartitionsNeverSpill<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl<P: MemoryPool> MemoryPool for RepartitionsNeverSpill<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if is_repartition(reservation) {
            self.inner.grow(reservation, additional);
            Ok(())
        } else {
            self.inner.try_grow(reservation, additional)
        }
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::error::DataFusionError;

    use crate::{Dialect, Session};

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
