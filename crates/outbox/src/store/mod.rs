//! The outbox proper: open (with recovery), batches (group commit), claims and settlements.
//!
//! This module holds the types and the state the concerns share; each concern is a child
//! module with its own `impl Outbox` / `impl Batch` block:
//! - `open`: connect, integrity check, quarantine, migrations, route registration, scoping of
//!   stored ids to the gateway, recovery of in-flight deliveries;
//! - `batch`: the [`Batch`] transaction, its running totals and its commit;
//! - `append`: append with fan-out, dead-lettering on ingest;
//! - `deliver`: claims, settlements and finished deliveries;
//! - `cap`: cap, expiry and retention, the cap and dead-letter alarms;
//! - `cursors`: cursors, journals and device facts.

use std::path::{Path, PathBuf};

use hearth_model::{Lane, Record, Timestamp};
use rusqlite::Connection;

use crate::error::OutboxError;
use crate::options::{OutboxOptions, RetryPolicy};

mod append;
mod batch;
mod cap;
mod cursors;
mod deliver;
mod open;

pub use batch::Batch;
pub use cap::DEAD_LETTERS_KIND;

/// A configured route, by its stable database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(i64);

/// Identifies one claimed delivery so that it can be settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    seq: i64,
    lane: Lane,
}

impl Ticket {
    /// The record's lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }
    /// The record's insertion sequence number (monotonic per database).
    pub fn seq(&self) -> i64 {
        self.seq
    }
}

/// A record handed to a route for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Settle with this.
    pub ticket: Ticket,
    /// The record.
    pub record: Record,
    /// How many attempts this route already made (0 on the first).
    pub attempts: u32,
}

/// What a receiver said about one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver acknowledged it: it leaves the outbox for this route (invariant 2).
    Delivered,
    /// Not now (5xx, timeout, connection lost): retry with backoff, not before the given time.
    Retry {
        /// The receiver's Retry-After, if it gave one.
        not_before: Option<Timestamp>,
    },
    /// Rejected for good (4xx with a reason, HL7 AR): moves to the dead-letter table.
    Rejected {
        /// The receiver's reason, kept with the dead letter.
        reason: String,
    },
    /// The route cannot carry it (no mapping in its receiver's profile) and is set to skip such
    /// records (`unsupported = "skip"`): it leaves the route like a delivered one, counted as
    /// `skipped:<route>`, and is not kept as a dead letter (the sender logs the reason).
    Skipped {
        /// Why the route cannot carry it, for the sender's log.
        reason: String,
    },
}

/// What happened to one appended record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored, with a delivery for each route of its category.
    Stored,
    /// A record with the same id is already stored (a re-send): nothing changed.
    Duplicate,
    /// No route carries its category: kept in the dead-letter table, counted.
    Unrouted,
    /// The record breaks a model rule (e.g. a non-finite number): dead-lettered, counted.
    Invalid(String),
}

/// What a commit did besides storing the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Records dropped to stay under the cap, per lane (index = lane code). Never alarms.
    pub dropped: [u64; 4],
    /// The cap is exceeded by records that may not be dropped (alarms).
    pub over_cap_with_alarms: bool,
    /// Dead letters dropped to stay under the cap (never an alarm's).
    pub dead_letters_dropped: u64,
}

impl CommitReport {
    /// Total records dropped by this commit.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// What opening the outbox found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The database file did not exist and was created.
    pub created: bool,
    /// The file was corrupt and was moved to this path (a critical technical alarm was stored).
    pub quarantined: Option<PathBuf>,
    /// Deliveries that were in flight when hearth stopped and are pending again.
    pub recovered_in_flight: u64,
    /// Schema version after migrations.
    pub schema_version: i64,
}

#[derive(Debug, Clone)]
struct Route {
    id: RouteId,
    name: String,
    retry: RetryPolicy,
}

#[derive(Debug, Clone, Copy, Default)]
struct LaneTotal {
    rows: i64,
    bytes: i64,
}

/// State beside the connection; split from it so that a [`Batch`] can borrow both.
#[derive(Debug)]
struct Inner {
    path: PathBuf,
    opts: OutboxOptions,
    routes: Vec<Route>,
    /// Route ids per category code: the fan-out table (invariant 5).
    fan_out: [Vec<RouteId>; 3],
    /// Routes that take readings only (never alarms or technical alarms).
    readings_only: Vec<RouteId>,
    /// Routes that take alarms and technical alarms only (never readings).
    alarms_only: Vec<RouteId>,
    /// Every route id in the database, including routes no longer configured, so that dropping
    /// or expiring a record removes all of its deliveries.
    all_route_ids: Vec<RouteId>,
    totals: [LaneTotal; 4],
    /// Rows and stored payload bytes of the dead-letter table (they count in the cap).
    dead: LaneTotal,
    /// `PRAGMA data_version` when the totals were last read: another connection (`hearth
    /// outbox requeue`) changed them when it differs.
    data_version: i64,
}

/// The durable store-and-forward queue. One writer owns it; see the crate docs.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    inner: Inner,
}

impl Outbox {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The id of a configured route.
    pub fn route(&self, name: &str) -> Result<RouteId, OutboxError> {
        self.inner
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .ok_or_else(|| OutboxError::UnknownRoute(name.to_owned()))
    }

    /// Names of the configured routes, in configuration order.
    /// The routes that take alarms only (alarm receivers): their claims and settlements go
    /// ahead of queued bulk work in the writer.
    pub fn alarm_routes(&self) -> Vec<RouteId> {
        self.inner.alarms_only.clone()
    }

    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.inner.routes.iter().map(|r| r.name.as_str())
    }

    /// Records currently stored, total.
    pub fn len(&self) -> u64 {
        self.inner.totals.iter().map(|t| t.rows.max(0) as u64).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Payload bytes currently stored, total.
    pub fn payload_bytes(&self) -> u64 {
        self.inner
            .totals
            .iter()
            .map(|t| t.bytes.max(0) as u64)
            .sum()
    }

    /// Statistics, read through this connection.
    pub fn stats(&self, now: Timestamp) -> Result<crate::Stats, OutboxError> {
        crate::stats::collect(&self.conn, &self.inner.path, now)
    }

    /// The connection, for tests and benchmarks that inspect the file.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
