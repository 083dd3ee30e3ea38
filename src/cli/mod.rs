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

/// Write to stdout; exit 0 when the reader closed the pipe, exit 1 on any other write error.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

pub mod ble;
pub mod config;
pub mod demo;
pub mod outbox;
pub mod receiver;
pub mod run;
pub mod zigbee2mqtt;
