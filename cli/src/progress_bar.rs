//! An indicatif progress bar behind the engine's `Progress`, shown only for work that
//! takes over a second, on a terminal, without `-q`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use billq_engine::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar per source, in bytes read.
pub struct Bar {
    bar: ProgressBar,
    enabled: bool,
    started: Mutex<Option<Instant>>,
}

impl Bar {
    /// A bar on stderr, unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Self {
            bar,
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Mutex::new(None),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, source: &str, bytes: u64) {
        self.bar.reset();
        self.bar.set_length(bytes);
        self.bar
            .set_message(source.rsplit('/').next().unwrap_or(source).to_string());
        *self.started.lock().expect("lock") = Some(Instant::now());
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        if self.enabled && self.bar.is_hidden() {
            let started = *self.started.lock().expect("lock");
            if started.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
                self.bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
    }

    fn end(&self) {
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
    }
}
