//! Reading a source's batches ahead of their use, on threads of a scope: the reader's
//! own, and for a reader whose decoding can run elsewhere ([`BatchSource::chunk_decoder`]),
//! one decoding thread per core. Batches come out in the reader's order whatever
//! thread decoded them, so a conversion's output does not depend on scheduling.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use arrow::array::RecordBatch;

use crate::error::Result;
use crate::formats::BatchSource;

/// Decoded batches that may wait for their turn, beyond those being decoded.
const READ_AHEAD: usize = 4;

/// A numbered batch (or the error that ended the read).
type Numbered = (u64, Result<RecordBatch>);

/// Starts reading `reader` on threads of `scope`; returns its batches in order, and the
/// thread that hands the reader back (for its warnings and rejected rows) when done.
pub fn read_ahead<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    mut reader: Box<dyn BatchSource + 'env>,
) -> (
    InOrder,
    ScopedJoinHandle<'scope, Box<dyn BatchSource + 'env>>,
) {
    let (done, results) = sync_channel::<Numbered>(READ_AHEAD);
    let in_order = InOrder {
        results,
        next: 0,
        held: BTreeMap::new(),
    };
    let Some(decoder) = reader.chunk_decoder() else {
        let handle = scope.spawn(move || {
            for seq in 0.. {
                let Some(next) = reader.next_batch().transpose() else {
                    break;
                };
                let failed = next.is_err();
                if done.send((seq, next)).is_err() || failed {
                    break;
                }
            }
            reader
        });
        return (in_order, handle);
    };
    let decoders = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (work, chunks) = sync_channel(decoders);
    let chunks = Arc::new(Mutex::new(chunks));
    for _ in 0..decoders {
        let (chunks, done, decoder) = (chunks.clone(), done.clone(), decoder.clone());
        scope.spawn(move || {
            loop {
                // The lock is held while waiting (not while decoding): one taker at a time.
                let next = chunks.lock().expect("no thread panics").recv();
                let Ok((seq, chunk)) = next else { break };
                if done.send((seq, decoder.decode(chunk))).is_err() {
                    break;
                }
            }
        });
    }
    let handle = scope.spawn(move || {
        for seq in 0.. {
            match reader.next_chunk().transpose() {
                None => break,
                Some(Ok(chunk)) => {
                    if work.send((seq, chunk)).is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    let _ = done.send((seq, Err(e)));
                    break;
                }
            }
        }
        reader
    });
    (in_order, handle)
}

/// The batches of a read, in the reader's order.
pub struct InOrder {
    results: Receiver<Numbered>,
    next: u64,
    /// Batches decoded ahead of their turn.
    held: BTreeMap<u64, Result<RecordBatch>>,
}

impl Iterator for InOrder {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.held.remove(&self.next) {
                self.next += 1;
                return Some(item);
            }
            match self.results.recv() {
                Ok((seq, item)) => {
                    self.held.insert(seq, item);
                }
                Err(_) => return self.held.pop_first().map(|(_, item)| item),
            }
        }
    }
}
