//! Progress reporting: the engine counts the bytes it reads, a front end shows them.

use std::io::Read;

/// Receives progress of a long operation. The CLI implements it with a progress bar.
pub trait Progress: Send + Sync {
    /// A source of `bytes` bytes starts.
    fn begin(&self, source: &str, bytes: u64);
    /// `bytes` more bytes of the current source were read.
    fn advance(&self, bytes: u64);
    /// The current source is done.
    fn end(&self);
}

/// A reader that reports the bytes read through it.
pub struct Counting<'p, R> {
    inner: R,
    progress: Option<&'p dyn Progress>,
}

impl<'p, R> Counting<'p, R> {
    /// Wraps `inner`; with no `progress` it only reads.
    pub fn new(inner: R, progress: Option<&'p dyn Progress>) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.advance(n as u64);
        }
        Ok(n)
    }
}
