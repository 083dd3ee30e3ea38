//! # hearth-outbox
//!
//! The durable store-and-forward queue between interface A (drivers) and interface B (uplinks):
//! one SQLite file in WAL mode with `synchronous=FULL`. Every record that enters is committed
//! before its source is acknowledged, fans out to one delivery per route configured for its
//! category, and leaves only when every route's receiver acknowledged it, a receiver rejected it
//! for good (dead letter), its retention expired, or the cap forced it out (never an alarm).
//!
//! It is not a network client and knows no wire format: uplinks claim typed [`Claimed`] records
//! and settle them with an [`Outcome`]. Its own storage encoding is private (`codec.rs`).
//!
//! Where it sits: `drivers → ingest → **outbox** → uplinks` (DESIGN.md data flow). Drivers
//! reach it only through `hearth_driver_api::Ingest`, which stores through the API's
//! `RecordSink` trait; [`OutboxWriter`] implements it (`sink.rs`), so drivers never depend on
//! this crate (ADR 0009). One writer thread owns an [`Outbox`]; it batches work from many
//! tasks into one [`Batch`] (group commit: one fsync for many records). Readers such as [`stats()`] open their own read-only
//! connection and never block the writer.
//!
//! ## Invariants
//! - A record is durable when [`Batch::commit`] returns, across a power cut: WAL with
//!   `synchronous=FULL`, and the directory is fsynced after the file is created or replaced
//!   (DESIGN invariants 1, 8). Tests: `tests/outbox.rs::committed_records_survive_reopen`,
//!   `rolled_back_batch_leaves_nothing`.
//! - A record leaves a route only on that route's [`Outcome::Delivered`],
//!   [`Outcome::Rejected`] or (a route set to skip what it cannot carry) [`Outcome::Skipped`];
//!   it leaves the outbox only when no route needs it (invariant 2).
//!   Test: `tests/model.rs` (model-based, with restarts mid-batch).
//! - A route never receives a category it is not configured for (invariant 5). Tests:
//!   `tests/outbox.rs::routes_only_see_their_categories`, `tests/model.rs`.
//! - Claims return the highest lane first (invariant 3). Test:
//!   `tests/outbox.rs::alarms_are_claimed_before_older_measurements`.
//! - At the cap, the oldest records of the lowest lane go first, never alarms, and a technical
//!   alarm is stored (invariant 4). Test: `tests/outbox.rs::full_outbox_drops_lowest_lane_never_alarms`.
//! - A corrupt file is moved aside, never deleted, and a critical technical alarm is stored in
//!   the fresh one. Test: `tests/outbox.rs::corrupt_file_is_quarantined_and_reported`.
//! - A full disk is an error the caller can retry, never a panic. Test:
//!   `tests/outbox.rs::full_disk_is_reported_and_nothing_is_half_written`.
//! - With [`OutboxWriter::spawn_with_reserve`] (the daemon), a full disk switches the writer to
//!   "alarms only" in the room of a deleted reserve file and stores a critical `disk_full`
//!   technical alarm, cleared once when space is back. Tests: `reserve::tests`,
//!   `writer::tests::alarms_only_admits_alarms_and_bookkeeping_only`, `tests/disk_full.rs` (root).
//!
//! ## Example
//! ```
//! use hearth_model::*;
//! use hearth_outbox::*;
//! let dir = tempfile::tempdir().unwrap();
//! let route = RouteSpec { name: "hub".into(), categories: vec![Category::Health], retry: RetryPolicy::default(), readings_only: false, alarms_only: false };
//! let (mut outbox, _) = Outbox::open(OutboxOptions::new(dir.path().join("outbox.db"), vec![route])).unwrap();
//! let now = Timestamp::now();
//! let reading = Reading::builder(DeviceId::new("sim", "1").unwrap(), Mdc(150364), Value::numeric(36.6))
//!     .sequence(1).build(now);
//! outbox.append_all(&[Record::Reading(reading)], now).unwrap();
//! let hub = outbox.route("hub").unwrap();
//! let mut batch = outbox.batch().unwrap();
//! let claimed = batch.claim(hub, 100, now).unwrap();
//! let answers: Vec<_> = claimed.iter().map(|c| (c.ticket, Outcome::Delivered)).collect();
//! batch.settle(hub, &answers, now).unwrap();
//! batch.commit().unwrap();
//! assert!(outbox.is_empty());
//! ```
#![forbid(unsafe_code)]

mod alarm_log;
mod codec;
mod dead;
mod error;
mod keep;
mod options;
mod reserve;
mod schema;
mod sink;
mod stats;
mod store;
mod writer;

pub use alarm_log::{
    ALARM_LOG_DETAIL_MAX_BYTES, ALARM_LOG_PRUNED, ALARM_LOG_TEXT_MAX_BYTES, AlarmLog,
    AlarmLogEntry, AlarmLogQuery, DEFAULT_MAX_ALARM_LOG, LoggedAlarmEvent, alarm_log,
};
pub use dead::{DeadLetter, DeadLetterQuery, Requeue, RequeueReport, dead_letters, requeue};
pub use error::OutboxError;
pub use keep::{KEEP_INPUT_BYTES, fnv1a};
pub use options::{IntegrityCheck, OutboxOptions, Retention, RetryPolicy, RouteSpec};
pub use reserve::{DEFAULT_RESERVE_BYTES, DISK_FULL_SOURCE};
pub use schema::SCHEMA_VERSION;
pub use stats::{LaneStats, RouteLaneStats, RouteStats, Stats, stats};
pub use store::{
    AppendOutcome, Batch, Claimed, CommitReport, DEAD_LETTERS_KIND, OpenReport, Outbox, Outcome,
    RouteId, Ticket,
};
pub use writer::{Committed, JournalEntry, OutboxWriter, WAL_LIMIT_BYTES, WriterError};
