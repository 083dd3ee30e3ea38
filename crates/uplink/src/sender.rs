//! The per-route sender loop and its circuit breaker.

use std::time::Duration;

use hearth_model::{RecordId, Timestamp};
use hearth_outbox::{Claimed, OutboxWriter, Outcome, RetryPolicy, RouteId, Ticket, WriterError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{Failure, Uplink, UplinkError, redact_for_log};

/// Why a sender stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// The outbox failed (disk, database); the supervisor restarts the sender.
    #[error("route {route}: outbox: {source}")]
    Outbox {
        /// Route name.
        route: String,
        /// The writer's error.
        source: WriterError,
    },
}

/// What a sender reports (for status lines, metrics and technical alarms).
#[derive(Debug, Clone, PartialEq)]
pub enum SenderEvent {
    /// A batch was answered.
    Answered {
        /// Route name.
        route: String,
        /// Records delivered.
        delivered: usize,
        /// Records to retry.
        retry: usize,
        /// Records rejected (dead-lettered).
        rejected: usize,
        /// Records the route cannot carry and skips (`unsupported = "skip"`).
        skipped: usize,
    },
    /// The receiver failed a whole batch; the route waits before the next attempt.
    Failed {
        /// Route name.
        route: String,
        /// The uplink's error.
        error: String,
        /// Consecutive failures.
        failures: u32,
        /// How long the route now waits.
        wait: Duration,
    },
    /// The receiver refused the route itself ([`Failure::RouteRefused`]): the route pauses and
    /// keeps its records. Sent once when the refusals start, not for every probe.
    Refused {
        /// Route name.
        route: String,
        /// The uplink's reason (masked for logs, see [`redact_for_log`]).
        reason: String,
        /// How long the route pauses before it tries again.
        wait: Duration,
    },
    /// A refused route delivered again.
    Resumed {
        /// Route name.
        route: String,
    },
}

/// Whether a route's receiver refuses the route itself; the daemon turns changes into a
/// `route_refused` technical alarm (raised once, cleared when the route delivers again).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RouteStatus {
    /// Delivering, or trying to.
    #[default]
    Open,
    /// Paused because the receiver refuses the route (masked reason, see [`redact_for_log`]).
    Refused {
        /// What the receiver said and what to check.
        reason: String,
    },
}

/// The longest wait after a failure for a route that has delivered before: its receiver was
/// there a moment ago, so it is most likely back within seconds (a restart, a failover), and a
/// probe is one small request. A route that never delivered (wrong URL, receiver not set up
/// yet) backs off up to its policy's `max`.
pub const RECOVERY_CAP: Duration = Duration::from_secs(10);

/// The most records of a probe: the one batch a route sends after a failure, on one
/// connection, before it opens all its connections again.
pub const PROBE_BATCH: usize = 10;

/// A per-route circuit breaker: after a failed round the route waits, doubling up to a cap, and
/// honours the receiver's Retry-After; one success closes it.
///
/// A *round* is what the route has in flight at once (one batch per connection). All
/// connections failing together is one failure, not one per connection: each batch carries the
/// round it was launched in ([`Breaker::round`]), and a failure of a round already counted adds
/// nothing.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: RetryPolicy,
    failures: u32,
    /// Advances with every counted failure; batches launched before belong to a counted round.
    round: u64,
    /// The route delivered at least once (in this process): its waits are capped at
    /// `recovery_cap`.
    delivered_before: bool,
    /// [`RECOVERY_CAP`] unless set otherwise (tests).
    recovery_cap: Duration,
}

impl Breaker {
    /// A closed breaker with this backoff policy.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            round: 0,
            delivered_before: false,
            recovery_cap: RECOVERY_CAP,
        }
    }

    /// Cap the waits of a route that has delivered before at `cap` instead of [`RECOVERY_CAP`].
    pub fn with_recovery_cap(mut self, cap: Duration) -> Self {
        self.recovery_cap = cap;
        self
    }

    /// The current round, to tag a batch with when it is launched.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Record the failure of a batch launched in `round`. Returns how long to wait before the
    /// next attempt, or `None` when that round's failure was already counted (another
    /// connection of the same round failed first; its wait stands).
    pub fn failure(&mut self, round: u64, retry_after: Option<Duration>) -> Option<Duration> {
        if round != self.round {
            return None;
        }
        self.round = self.round.wrapping_add(1);
        self.failures = self.failures.saturating_add(1);
        let mut wait = self.policy.delay(self.failures);
        if self.delivered_before {
            wait = wait.min(self.recovery_cap);
        }
        Some(retry_after.map_or(wait, |ra| wait.max(ra)))
    }

    /// Record a refusal of the route itself: the route pauses for the longest wait of its
    /// policy (default 5 min), or the receiver's Retry-After if longer. The refusal will not go
    /// away by itself (someone has to fix the route or the server), so probing it more often
    /// would only fill the receiver's logs.
    pub fn refused(&mut self, retry_after: Option<Duration>) -> Duration {
        self.round = self.round.wrapping_add(1);
        self.failures = self.failures.saturating_add(1);
        retry_after.map_or(self.policy.max, |ra| self.policy.max.max(ra))
    }

    /// Record a success.
    pub fn success(&mut self) {
        self.failures = 0;
        self.delivered_before = true;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the route is probing: after a failure it sends one small batch on one
    /// connection ([`PROBE_BATCH`]) until one succeeds.
    pub fn probing(&self) -> bool {
        self.failures > 0
    }
}

/// Drains one route into its uplinks: one batch in flight per uplink (connection).
pub struct RouteSender {
    name: String,
    route: RouteId,
    writer: OutboxWriter,
    /// Uplinks not delivering right now.
    idle: Vec<Box<dyn Uplink>>,
    connections: usize,
    description: String,
    batch_size: usize,
    breaker: Breaker,
    idle_poll: Duration,
    events: Option<mpsc::Sender<SenderEvent>>,
    /// Where the route's refused/open state is published (for the technical alarm); a watch,
    /// so the latest state is never lost to a full channel.
    status: Option<watch::Sender<RouteStatus>>,
    /// The receiver refuses the route: set by the first refusal, cleared by the first delivery.
    refused: bool,
}

impl std::fmt::Debug for RouteSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSender")
            .field("name", &self.name)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// One batch handed to an uplink, and what came back.
struct Flight {
    uplink: Box<dyn Uplink>,
    /// The breaker round it was launched in.
    round: u64,
    claimed: Vec<Claimed>,
    answer: Result<Vec<Outcome>, UplinkError>,
    took: Duration,
}

impl RouteSender {
    /// A sender for route `name`.
    pub fn new(
        name: &str,
        writer: OutboxWriter,
        uplink: Box<dyn Uplink>,
        batch_size: usize,
        retry: RetryPolicy,
    ) -> Result<Self, hearth_outbox::OutboxError> {
        Ok(Self {
            route: writer.route(name)?,
            name: name.to_owned(),
            writer,
            description: uplink.describe(),
            idle: vec![uplink],
            connections: 1,
            batch_size: batch_size.max(1),
            breaker: Breaker::new(retry),
            idle_poll: Duration::from_secs(1),
            events: None,
            status: None,
            refused: false,
        })
    }

    /// More uplinks to the same receiver (each its own connection): the route then has one
    /// batch in flight per uplink, so encoding the next batch and the receiver's work on the
    /// previous one overlap. Batches are still claimed oldest first, highest lane first, but
    /// their answers may arrive out of order; keep one uplink where the receiver needs strict
    /// arrival order.
    pub fn with_more_uplinks(mut self, more: impl IntoIterator<Item = Box<dyn Uplink>>) -> Self {
        self.idle.extend(more);
        self.connections = self.idle.len();
        self
    }

    /// Report events here (bounded; events are dropped when it is full, never blocking).
    pub fn with_events(mut self, events: mpsc::Sender<SenderEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Publish the route's refused/open state here. A sender restarted by the supervisor takes
    /// over the state it finds, so an alarm raised before the restart is still cleared.
    pub fn with_status(mut self, status: watch::Sender<RouteStatus>) -> Self {
        self.refused = matches!(*status.borrow(), RouteStatus::Refused { .. });
        self.status = Some(status);
        self
    }

    /// Cap the wait after a failure of a route that has delivered before at `cap` (default
    /// [`RECOVERY_CAP`]).
    pub fn with_recovery_cap(mut self, cap: Duration) -> Self {
        self.breaker = self.breaker.with_recovery_cap(cap);
        self
    }

    /// How often an idle sender looks for retries that became due (default 1 s).
    pub fn with_idle_poll(mut self, d: Duration) -> Self {
        self.idle_poll = d;
        self
    }

    fn emit(&self, e: SenderEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(e);
        }
    }

    fn outbox_err(&self) -> impl Fn(WriterError) -> SenderError + '_ {
        |source| SenderError::Outbox {
            route: self.name.clone(),
            source,
        }
    }

    /// Run until `stop` turns true; batches in flight then get their answers and are settled
    /// before it returns. Before the first claim, whatever this route had in flight (from a
    /// previous run of this sender) is released, so it is sent again.
    pub async fn run(
        &mut self,
        mut stop: watch::Receiver<bool>,
        mut progress: impl FnMut(),
    ) -> Result<(), SenderError> {
        let released = self
            .writer
            .release_in_flight(self.route)
            .await
            .map_err(self.outbox_err())?;
        if released > 0 {
            tracing::info!(route = %self.name, released, "re-sending deliveries that were in flight");
        }
        tracing::info!(route = %self.name, uplink = %self.description, connections = self.connections, "route sender started");
        let mut commits = self.writer.commits();
        let mut flights: JoinSet<Flight> = JoinSet::new();
        // Set when a claim came back empty; cleared by new records or an answer (retries).
        let mut drained = false;
        let mut backoff_until: Option<Instant> = None;
        loop {
            progress();
            let stopping = *stop.borrow();
            if stopping && flights.is_empty() {
                return Ok(());
            }
            if backoff_until.is_some_and(|t| t <= Instant::now()) {
                backoff_until = None;
            }
            if !stopping && !drained && backoff_until.is_none() {
                drained = self.launch(&mut flights).await?;
            }
            if !flights.is_empty() {
                // The uplinks' own timeouts bound this wait; no progress is reported meanwhile,
                // so an uplink that hangs beyond them shows as a stalled task.
                tokio::select! {
                    joined = flights.join_next() => {
                        if let Some(flight) = joined {
                            let flight = flight.unwrap_or_else(|e| match e.try_into_panic() {
                                Ok(panic) => std::panic::resume_unwind(panic),
                                // Only a runtime shutting down cancels these tasks.
                                Err(_) => std::panic::resume_unwind(Box::new("route sender cancelled")),
                            });
                            let Flight { uplink, round, claimed, answer, took } = flight;
                            self.idle.push(uplink);
                            let answered = answer.as_ref().is_ok_and(|o| o.len() == claimed.len());
                            if answered {
                                // Close the breaker now, so a successful probe opens every
                                // connection at once.
                                self.breaker.success();
                            }
                            // Hand the free connection its next batch before the bookkeeping
                            // of this one, so the receiver is not kept waiting for our commit.
                            if answered && !*stop.borrow() && backoff_until.is_none() {
                                self.launch(&mut flights).await?;
                            }
                            let alone = flights.is_empty();
                            if let Some(wait) = self.settle(round, claimed, answer, took, alone).await? {
                                let until = Instant::now() + wait;
                                backoff_until = Some(backoff_until.map_or(until, |t| t.max(until)));
                            }
                            drained = false;
                        }
                    }
                    // A free connection takes new records while others are in flight: an alarm
                    // must not wait for an alarm the centre holds (issue 15), nor for a slow
                    // batch on another connection.
                    _ = commits.changed(), if !self.idle.is_empty() && backoff_until.is_none() => {
                        drained = false;
                    }
                    _ = tokio::time::sleep(self.idle_poll), if !self.idle.is_empty() && backoff_until.is_none() => {
                        drained = false;
                    }
                    _ = stop.changed() => {}
                }
                continue;
            }
            let wake = backoff_until.map_or(Instant::now() + self.idle_poll, |t| {
                t.min(Instant::now() + self.idle_poll)
            });
            tokio::select! {
                _ = stop.changed() => {}
                _ = commits.changed(), if backoff_until.is_none() => drained = false,
                _ = tokio::time::sleep_until(wake) => drained = false,
            }
        }
    }

    /// Claim a batch for every idle uplink and start delivering it. Returns whether the route
    /// ran out of due records.
    /// While the breaker is probing, only one small batch is in flight.
    async fn launch(&mut self, flights: &mut JoinSet<Flight>) -> Result<bool, SenderError> {
        loop {
            let probing = self.breaker.probing();
            if probing && !flights.is_empty() {
                return Ok(false);
            }
            let Some(mut uplink) = self.idle.pop() else {
                return Ok(false);
            };
            let max = if probing {
                self.batch_size.min(PROBE_BATCH)
            } else {
                self.batch_size
            };
            let round = self.breaker.round();
            let claimed = match self.writer.claim(self.route, max).await {
                Ok(c) => c,
                Err(e) => {
                    self.idle.push(uplink);
                    return Err((self.outbox_err())(e));
                }
            };
            if claimed.is_empty() {
                self.idle.push(uplink);
                return Ok(true);
            }
            flights.spawn(async move {
                let started = Instant::now();
                let answer = uplink.deliver(&claimed).await;
                Flight {
                    uplink,
                    round,
                    claimed,
                    answer,
                    took: started.elapsed(),
                }
            });
        }
    }

    /// Record a batch's answer in the outbox. Returns how long the route waits when the whole
    /// batch failed. `alone`: no other batch of the route is in flight.
    async fn settle(
        &mut self,
        round: u64,
        claimed: Vec<Claimed>,
        answer: Result<Vec<Outcome>, UplinkError>,
        took: Duration,
        alone: bool,
    ) -> Result<Option<Duration>, SenderError> {
        let tickets: Vec<Ticket> = claimed.iter().map(|c| c.ticket).collect();
        // The ids of the records the receiver refuses or the route skips, for the one log line
        // per dead letter or skip.
        let settled_away = |want_skipped: bool| -> Vec<(RecordId, String)> {
            match &answer {
                Ok(outcomes) if outcomes.len() == claimed.len() => claimed
                    .iter()
                    .zip(outcomes)
                    .filter_map(|(c, o)| match o {
                        Outcome::Rejected { reason } if !want_skipped => {
                            Some((c.record.id(), redact_for_log(reason)))
                        }
                        Outcome::Skipped { reason } if want_skipped => {
                            Some((c.record.id(), redact_for_log(reason)))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let rejected = settled_away(false);
        let skipped = settled_away(true);
        drop(claimed);
        let answer = match answer {
            Ok(outcomes) if outcomes.len() == tickets.len() => Ok(outcomes),
            Ok(outcomes) => Err(UplinkError::new(format!(
                "receiver answered {} outcomes for a batch of {}; treating the batch as failed",
                outcomes.len(),
                tickets.len()
            ))),
            Err(e) => Err(e),
        };
        match answer {
            Ok(outcomes) => {
                self.breaker.success();
                let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
                let event = SenderEvent::Answered {
                    route: self.name.clone(),
                    delivered: count(|o| matches!(o, Outcome::Delivered)),
                    retry: count(|o| matches!(o, Outcome::Retry { .. })),
                    rejected: count(|o| matches!(o, Outcome::Rejected { .. })),
                    skipped: count(|o| matches!(o, Outcome::Skipped { .. })),
                };
                let answers = tickets.into_iter().zip(outcomes).collect();
                self.writer
                    .settle(self.route, answers)
                    .await
                    .map_err(self.outbox_err())?;
                // Logged here, once the dead letter is committed, and nowhere else: an uplink's
                // refusal is not final until the whole batch is answered.
                for (record, reason) in &rejected {
                    tracing::warn!(route = %self.name, record = %record, reason = %reason, "record refused for good; dead-lettered");
                }
                for (record, reason) in &skipped {
                    tracing::info!(route = %self.name, record = %record, reason = %reason, "the route cannot carry this record and skips it (unsupported = skip); counted as skipped");
                }
                if let SenderEvent::Answered {
                    delivered,
                    retry,
                    rejected,
                    skipped,
                    ..
                } = &event
                {
                    tracing::debug!(route = %self.name, delivered, retry, rejected, skipped, took_ms = took.as_millis() as u64, "batch answered");
                    if self.refused && *delivered > 0 {
                        self.refused = false;
                        tracing::info!(route = %self.name, "the receiver takes the route's records again; route resumed");
                        if let Some(status) = &self.status {
                            status.send_replace(RouteStatus::Open);
                        }
                        self.emit(SenderEvent::Resumed {
                            route: self.name.clone(),
                        });
                    }
                }
                self.emit(event);
                Ok(None)
            }
            Err(e) if e.failure == Failure::RouteRefused => {
                // Not the records' fault: keep every one of them and pause the whole route.
                let wait = self.breaker.refused(e.retry_after);
                let not_before = Some(Timestamp::now().saturating_add(wait));
                retry_later(&self.writer, self.route, tickets, not_before)
                    .await
                    .map_err(self.outbox_err())?;
                let reason = redact_for_log(&e.message);
                let wait_ms = wait.as_millis() as u64;
                if self.refused {
                    tracing::info!(route = %self.name, reason = %reason, wait_ms, "the receiver still refuses the route; its records are kept");
                } else {
                    self.refused = true;
                    tracing::warn!(route = %self.name, reason = %reason, wait_ms, "the receiver refuses the route itself; pausing it and keeping its records");
                    if let Some(status) = &self.status {
                        status.send_replace(RouteStatus::Refused {
                            reason: reason.clone(),
                        });
                    }
                    self.emit(SenderEvent::Refused {
                        route: self.name.clone(),
                        reason,
                        wait,
                    });
                }
                Ok(Some(wait))
            }
            Err(e) => {
                let wait = self.breaker.failure(round, e.retry_after);
                if alone {
                    // The route's fault, not the records': put them back as they were, so
                    // their own retry delay does not grow with every probe of an outage and
                    // the backlog goes out as soon as the route's wait ends.
                    self.writer
                        .release_in_flight(self.route)
                        .await
                        .map_err(self.outbox_err())?;
                } else {
                    // Other batches are in flight: settle just this one.
                    let not_before = e.retry_after.map(|d| Timestamp::now().saturating_add(d));
                    retry_later(&self.writer, self.route, tickets, not_before)
                        .await
                        .map_err(self.outbox_err())?;
                }
                let Some(wait) = wait else {
                    tracing::debug!(route = %self.name, error = %e, "another batch of the same failed round; the route's wait stands");
                    return Ok(e.retry_after);
                };
                tracing::warn!(route = %self.name, error = %e, failures = self.breaker.failures(), wait_ms = wait.as_millis() as u64, "delivery failed; route backs off");
                self.emit(SenderEvent::Failed {
                    route: self.name.clone(),
                    error: e.message.clone(),
                    failures: self.breaker.failures(),
                    wait,
                });
                Ok(Some(wait))
            }
        }
    }
}

/// Settles every record of a batch on `route` as to be tried again, not before `not_before`.
async fn retry_later(
    writer: &OutboxWriter,
    route: RouteId,
    tickets: Vec<Ticket>,
    not_before: Option<Timestamp>,
) -> Result<(), WriterError> {
    let answers = tickets
        .into_iter()
        .map(|t| (t, Outcome::Retry { not_before }))
        .collect();
    writer.settle(route, answers).await
}
