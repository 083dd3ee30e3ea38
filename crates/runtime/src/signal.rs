//! The OS signals that ask hearth to shut down: `SIGTERM` (systemd's stop)
//! and `SIGINT` (Ctrl-C when run by hand).
//!
//! Handlers are installed eagerly by [`ShutdownSignals::install`], so a
//! signal that arrives while the daemon is still starting is not lost, and a
//! failure to install surfaces at startup instead of as a daemon that cannot
//! be stopped.

use std::fmt;
use std::future::Future;
use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Which signal asked for shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// `SIGTERM`.
    Terminate,
    /// `SIGINT`.
    Interrupt,
}

impl fmt::Display for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        })
    }
}

/// Installed `SIGTERM` and `SIGINT` handlers.
///
/// [`recv`](Self::recv) can be called again, for example to abort the grace
/// period on a second Ctrl-C.
#[derive(Debug)]
pub struct ShutdownSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignals {
    /// Installs the handlers; from now on these signals no longer kill the
    /// process.
    /// Must be called inside a Tokio runtime with I/O enabled.
    ///
    /// # Errors
    ///
    /// The OS refused to install a handler.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next `SIGTERM` or `SIGINT`. Cancel-safe.
    pub async fn recv(&mut self) -> ShutdownSignal {
        tokio::select! {
            Some(()) = self.terminate.recv() => ShutdownSignal::Terminate,
            Some(()) = self.interrupt.recv() => ShutdownSignal::Interrupt,
            // Both streams ended; tokio never does this while the runtime
            // lives, and a daemon that cannot be signalled any more should
            // not shut itself down because of it.
            else => std::future::pending().await,
        }
    }
}

/// Installs the handlers now and returns a future that resolves on the first
/// `SIGTERM` or `SIGINT`; pass it (mapped to `()`) to
/// [`Supervisor::run`](crate::Supervisor::run).
///
/// # Errors
///
/// See [`ShutdownSignals::install`].
pub fn shutdown_signal() -> io::Result<impl Future<Output = ShutdownSignal> + Send + 'static> {
    let mut signals = ShutdownSignals::install()?;
    Ok(async move { signals.recv().await })
}
