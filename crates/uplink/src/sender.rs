//! The per-route sender loop and its circuit breaker.

use std::time::Duration;

use hearth_model::Timestamp;
use hearth_outbox::{OutboxWriter, Outcome, RetryPolicy, RouteId, Ticket, WriterError};
use tokio::sync::{mpsc, watch};

use crate::{Uplink, UplinkError};

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
}

/// A per-route circuit breaker: after a failed batch the route waits, doubling up to a cap, and
/// honours the receiver's Retry-After; one success closes it.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: RetryPolicy,
    failures: u32,
}

impl Breaker {
    /// A closed breaker with this backoff policy.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Record a failure; returns how long to wait before the next attempt.
    pub fn failure(&mut self, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = self.policy.delay(self.failures);
        retry_after.map_or(wait, |ra| wait.max(ra))
    }

    /// Record a success.
    pub fn success(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Drains one route into its uplink.
pub struct RouteSender {
    name: String,
    route: RouteId,
    writer: OutboxWriter,
    uplink: Box<dyn Uplink>,
    batch_size: usize,
    breaker: Breaker,
    idle_poll: Duration,
    events: Option<mpsc::Sender<SenderEvent>>,
}

impl std::fmt::Debug for RouteSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSender")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
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
            uplink,
            batch_size: batch_size.max(1),
            breaker: Breaker::new(retry),
            idle_poll: Duration::from_secs(1),
            events: None,
        })
    }

    /// Report events here (bounded; events are dropped when it is full, never blocking).
    pub fn with_events(mut self, events: mpsc::Sender<SenderEvent>) -> Self {
        self.events = Some(events);
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

    /// Run until `stop` turns true. Before the first claim, whatever this route had in flight
    /// (from a previous run of this sender) is released, so it is sent again.
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
        tracing::info!(route = %self.name, uplink = %self.uplink.describe(), "route sender started");
        let mut commits = self.writer.commits();
        loop {
            progress();
            if *stop.borrow() {
                return Ok(());
            }
            let claimed = self
                .writer
                .claim(self.route, self.batch_size)
                .await
                .map_err(self.outbox_err())?;
            if claimed.is_empty() {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(self.idle_poll) => {}
                }
                continue;
            }
            let tickets: Vec<Ticket> = claimed.iter().map(|c| c.ticket).collect();
            let answer = self.uplink.deliver(&claimed).await;
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
                    };
                    let answers = tickets.into_iter().zip(outcomes).collect();
                    self.writer
                        .settle(self.route, answers)
                        .await
                        .map_err(self.outbox_err())?;
                    self.emit(event);
                }
                Err(e) => {
                    let wait = self.breaker.failure(e.retry_after);
                    let not_before = e.retry_after.map(|d| Timestamp::now().saturating_add(d));
                    let answers = tickets
                        .into_iter()
                        .map(|t| (t, Outcome::Retry { not_before }))
                        .collect();
                    self.writer
                        .settle(self.route, answers)
                        .await
                        .map_err(self.outbox_err())?;
                    tracing::warn!(route = %self.name, error = %e, failures = self.breaker.failures(), wait_ms = wait.as_millis() as u64, "delivery failed; route backs off");
                    self.emit(SenderEvent::Failed {
                        route: self.name.clone(),
                        error: e.message.clone(),
                        failures: self.breaker.failures(),
                        wait,
                    });
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        progress();
                        tokio::select! {
                            _ = stop.changed() => { if *stop.borrow() { return Ok(()); } }
                            _ = tokio::time::sleep_until(deadline) => break,
                            _ = tokio::time::sleep(self.idle_poll) => {}
                        }
                    }
                }
            }
        }
    }
}
