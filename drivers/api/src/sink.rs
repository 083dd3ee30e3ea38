//! The port through which [`crate::Ingest`] stores what drivers submit, and the types it speaks.
//!
//! Drivers and vendors see only these types, never the storage behind them: hearth's outbox
//! implements [`RecordSink`] (`hearth-outbox` depends on this crate, not the other way round),
//! and [`crate::memory::MemorySink`] implements it in memory for tests. So a vendor's crate
//! builds and runs its conformance tests without SQLite or hearth's schema (ADR 0009).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hearth_model::{Device, DeviceId, Record};

/// A boxed future, as drivers return from [`crate::Driver::run`] and sinks from their methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What storing did with one submitted record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendOutcome {
    /// Stored, to be delivered to every route that carries its category.
    Stored,
    /// A record with the same id is already stored (a re-send): nothing changed.
    Duplicate,
    /// No route carries its category: kept as a dead letter, counted.
    Unrouted,
    /// The record breaks a model rule (e.g. a non-finite number): kept as a dead letter with
    /// this reason, counted.
    Invalid(String),
}

/// What a committed submission did with each record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// One outcome per submitted record, in order.
    pub outcomes: Vec<AppendOutcome>,
}

/// Why storage refused a request. Nothing of the request was stored, so the driver must not
/// acknowledge its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The transaction holding the request failed; nothing of it was stored.
    #[error("{message}")]
    Failed {
        /// What failed, for operators (it says what to do).
        message: String,
        /// Whether the same request may succeed later (disk full, database busy).
        transient: bool,
    },
    /// Storage has stopped (hearth is shutting down).
    #[error("the outbox writer has stopped (hearth is shutting down)")]
    Stopped,
}

impl IngestError {
    /// A failure that passes (disk full, database busy): the same request may succeed later,
    /// and [`crate::Ingest::retrying_until`] waits it out.
    pub fn transient(message: impl Into<String>) -> Self {
        IngestError::Failed {
            message: message.into(),
            transient: true,
        }
    }

    /// A failure that retrying will not mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        IngestError::Failed {
            message: message.into(),
            transient: false,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IngestError::Failed {
                transient: true,
                ..
            }
        )
    }
}

/// An entry of a driver's journal, committed with an append: `entries` under (`source`, `seq`);
/// entries of `source` older than `keep_from` are dropped in the same transaction. Small
/// bookkeeping blobs a driver keeps per source (e.g. which MQTT messages a batch covered), as
/// durable as the records they describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Whose journal.
    pub source: String,
    /// The entry's position (e.g. the first sequence number it covers).
    pub seq: i64,
    /// The driver's bytes.
    pub entries: Vec<u8>,
    /// Entries before this position are dropped.
    pub keep_from: i64,
}

/// A source's committed journal: (position, the driver's bytes), oldest entry first.
pub type Journal = Vec<(i64, Vec<u8>)>;

/// Durable storage for what drivers submit: the port [`crate::Ingest`] writes through.
///
/// Every write resolves only after it is durable ("committed"): a driver acknowledges its
/// source on that answer (DESIGN invariant 1). A write that fails stores nothing of itself.
/// Object-safe (methods return [`BoxFuture`]) so that `Ingest` holds any sink as
/// `Arc<dyn RecordSink>` and stays one concrete, cloneable type for drivers.
pub trait RecordSink: Send + Sync + 'static {
    /// Store `records`, the `cursors` (resume points, driver state) and optionally a `journal`
    /// entry in one transaction; one outcome per record, in order.
    fn append<'a>(
        &'a self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<Receipt, IngestError>>;

    /// Keep input of `source` that could not be parsed, with the parser's error (invariant 6).
    fn dead_letter<'a>(
        &'a self,
        source: &'a str,
        raw: Vec<u8>,
        error: String,
    ) -> BoxFuture<'a, Result<(), IngestError>>;

    /// Store what a device told about itself, merged with what it told before.
    fn put_device<'a>(
        &'a self,
        id: DeviceId,
        facts: Device,
    ) -> BoxFuture<'a, Result<(), IngestError>>;

    /// The last committed cursor of this key.
    fn cursor<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>, IngestError>>;

    /// Every committed cursor whose key starts with `prefix`.
    fn cursors<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>, IngestError>>;

    /// The committed journal of `source`, oldest entry first.
    fn journal<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Journal, IngestError>>;
}

/// A shared sink is a sink, so a caller may keep a handle (`Arc<MemorySink>`, or an
/// `Arc<dyn RecordSink>` it already holds) and give `Ingest` a clone.
impl<S: RecordSink + ?Sized> RecordSink for Arc<S> {
    fn append<'a>(
        &'a self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<Receipt, IngestError>> {
        (**self).append(records, cursors, journal)
    }

    fn dead_letter<'a>(
        &'a self,
        source: &'a str,
        raw: Vec<u8>,
        error: String,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        (**self).dead_letter(source, raw, error)
    }

    fn put_device<'a>(
        &'a self,
        id: DeviceId,
        facts: Device,
    ) -> BoxFuture<'a, Result<(), IngestError>> {
        (**self).put_device(id, facts)
    }

    fn cursor<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>, IngestError>> {
        (**self).cursor(key)
    }

    fn cursors<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>, IngestError>> {
        (**self).cursors(prefix)
    }

    fn journal<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Journal, IngestError>> {
        (**self).journal(source)
    }
}
