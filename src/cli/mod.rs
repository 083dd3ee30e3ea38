//! One module per command-line verb.

/// `println!` for the CLI's output: a reader that went away (`hearth … | head`) ends the
/// command quietly, as for other Unix tools, instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for the CLI's output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

/// Directories an early exit from [`write_out`] removes (the demo's temporary data directory;
/// process exit skips the destructors that would).
static REMOVE_AT_EXIT: std::sync::Mutex<Vec<std::path::PathBuf>> =
    std::sync::Mutex::new(Vec::new());

/// Remove `dir` if the command ends early because its reader went away.
pub(crate) fn remove_at_early_exit(dir: &std::path::Path) {
    if let Ok(mut dirs) = REMOVE_AT_EXIT.lock() {
        dirs.push(dir.to_owned());
    }
}

/// Write to stdout; exit 0 when the reader closed the pipe, exit 1 on any other write error.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        let code = if e.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            eprintln!("error: cannot write to standard output: {e}");
            1
        };
        if let Ok(dirs) = REMOVE_AT_EXIT.lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        std::process::exit(code);
    }
}

pub mod alarms;
pub mod ble;
pub mod config;
pub mod demo;
pub mod outbox;
pub mod receiver;
pub mod run;
pub mod zigbee2mqtt;
