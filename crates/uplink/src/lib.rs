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
//! - A receiver that refuses the route itself ([`Failure::RouteRefused`]) pauses the route
//!   with one `route_refused` state change and keeps every record; the first delivery clears
//!   it. Test: `tests/sender.rs::issue_6_a_refused_route_pauses_keeps_its_records_and_resumes`.
//! - A failed round (every connection failing together) counts once; a route that delivered
//!   before waits at most [`RECOVERY_CAP`] and probes with one small batch. Tests:
//!   `tests/sender.rs::issue_6_breaker_counts_a_failed_round_once_and_caps_the_wait_after_deliveries`,
//!   `tests/sender.rs::issue_6_a_route_resumes_after_an_outage_with_bounded_attempts`.
//! - A sender that restarts releases what it had in flight, so nothing stays stuck. Test:
//!   `tests/sender.rs::restarted_sender_resends_what_was_in_flight`.
#![forbid(unsafe_code)]

pub mod loopback;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use hearth_outbox::{Claimed, Outcome};
pub use sender::{
    Breaker, PROBE_BATCH, RECOVERY_CAP, RouteSender, RouteStatus, SenderError, SenderEvent,
};

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a whole batch failed; it decides how the route waits, never whether records are kept
/// (they always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failure {
    /// The receiver could not take the batch now (no connection, TLS failure, timeout, 5xx,
    /// garbage reply): the route backs off and tries again soon.
    #[default]
    Unavailable,
    /// The receiver refused the route itself, not its records (credentials or rights, a patient
    /// or organisation the route references that the server does not know, an unknown
    /// profile): every record would be refused alike, so the route pauses for a long while with
    /// a technical alarm instead of dead-lettering its records one by one.
    RouteRefused,
}

/// The whole batch failed (connection refused, timeout, TLS failure, garbage reply, a refusal
/// of the route): every record in it is kept and retried later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct UplinkError {
    /// What failed and what to do, for the operator.
    pub message: String,
    /// The receiver asked to wait this long (HTTP Retry-After).
    pub retry_after: Option<Duration>,
    /// Whether the receiver is away or refuses the route.
    pub failure: Failure,
}

impl UplinkError {
    /// A failure without a Retry-After.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            failure: Failure::Unavailable,
        }
    }

    /// The receiver refused the route itself ([`Failure::RouteRefused`]).
    pub fn route_refused(message: impl Into<String>) -> Self {
        Self {
            failure: Failure::RouteRefused,
            ..Self::new(message)
        }
    }
}

/// A receiver's or encoder's reason made fit for logs and technical alarms: numbers with a
/// decimal part and runs of 7 or more digits are masked, since a receiver may echo a measured
/// value or a personal identifier (national ids, phone numbers) in its diagnostics. Status
/// codes, MDC codes and entry indices stay readable. At most 300 characters.
pub fn redact_for_log(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len().min(320));
    let mut i = 0;
    while i < chars.len() && out.chars().count() < 300 {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A number: digits, optionally a decimal separator and more digits.
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let mut decimal = false;
        if i + 1 < chars.len() && matches!(chars[i], '.' | ',') && chars[i + 1].is_ascii_digit() {
            decimal = true;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        }
        if decimal || i - start >= 7 {
            out.push('#');
        } else {
            out.extend(&chars[start..i]);
        }
    }
    if i < chars.len() {
        out.push('…');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::redact_for_log;

    #[test]
    fn values_and_identifiers_are_masked_codes_stay() {
        assert_eq!(
            redact_for_log("HTTP 400: value 36.6 for Patient 12345678901 (MDC 150364, entry 3)"),
            "HTTP 400: value # for Patient # (MDC 150364, entry 3)"
        );
        assert_eq!(redact_for_log("7,5 mmol"), "# mmol");
        assert!(redact_for_log(&"x".repeat(500)).ends_with('…'));
    }
}
