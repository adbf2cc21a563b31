//! `billq`: a thin command-line layer over `billq-engine`.

mod args;
mod commands;
mod print_format;
mod progress_bar;

use std::process::ExitCode;

use clap::Parser;

use args::Cli;

/// Exit code of a run that found a verification mismatch.
pub const EXIT_MISMATCH: u8 = 3;

/// Exit code of a report that found a budget exceeded, or projected to be.
pub const EXIT_BUDGET: u8 = 4;

/// Caps glibc's malloc arenas at one per core (its default is eight per core). A
/// conversion hands batches between decoding, partitioning and encoding threads, and
/// memory freed into one thread's arena stays mapped beside the others': a 10M-row
/// conversion peaked at 761-997 MiB, and at 565-698 MiB with one arena per core, in
/// the same time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only tunes the allocator; no other thread has started yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    cap_malloc_arenas();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("billq: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("billq: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error's message on one line.
fn one_line(e: &billq_engine::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_broken_pipe(e: &billq_engine::Error) -> bool {
    matches!(e, billq_engine::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}
