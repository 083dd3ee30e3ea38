//! # hearth-uplink
//!
//! Interface B plumbing shared by every receiver format:
//! - [`Uplink`]: deliver a batch of claimed records, answer one [`Outcome`] per record
//!   (delivered / retry later / rejected with reason) or fail the whole batch ([`UplinkError`]).
//! - [`RouteSender`]: the loop that drains one route: claim (highest lane first) → deliver →
//!   settle, with a per-route circuit breaker (exponential backoff with jitter, honouring a
//!   receiver's Retry-After) so a receiver that is down is not hammered.
//! - [`loopback::LoopbackUplink`]: a receiver on this machine (an SQLite file) used by the demo
//!   and the crash tests until the FHIR, PCD-01 and SCAIP uplinks arrive.
//!
//! Wire formats live in the `uplink-*` crates, not here.
//!
//! ## Invariants
//! - A record is settled as delivered only on the uplink's explicit `Delivered` (DESIGN
//!   invariant 2); a failed batch is retried, never dropped. Tests:
//!   `tests/sender.rs::failed_batches_are_retried_until_delivered`,
//!   `tests/sender.rs::wrong_number_of_answers_is_treated_as_a_failed_batch`.
//! - A sender that restarts releases what it had in flight, so nothing stays stuck. Test:
//!   `tests/sender.rs::restarted_sender_resends_what_was_in_flight`.
#![forbid(unsafe_code)]

pub mod loopback;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use hearth_outbox::{Claimed, Outcome};
pub use sender::{Breaker, RouteSender, SenderError, SenderEvent};

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The whole batch failed (connection refused, timeout, TLS failure, garbage reply): every
/// record in it is retried later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct UplinkError {
    /// What failed and what to do, for the operator.
    pub message: String,
    /// The receiver asked to wait this long (HTTP Retry-After).
    pub retry_after: Option<Duration>,
}

impl UplinkError {
    /// A failure without a Retry-After.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// One receiver format over one transport.
pub trait Uplink: Send {
    /// Short description for logs (`loopback /var/lib/hearth/x.db`, `fhir https://…`).
    fn describe(&self) -> String;

    /// Deliver a batch. On `Ok`, exactly one outcome per record, in order.
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>>;
}
