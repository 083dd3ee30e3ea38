//! # hearth-driver-api
//!
//! What a source of readings (a "driver": BLE health devices, zigbee2mqtt, a vendor's device)
//! implements, and what it gets to work with:
//!
//! - [`Driver`]: a long-running task that turns device input into typed [`hearth_model::Record`]s.
//! - [`Ingest`]: the one way into storage. [`Ingest::submit`] returns only after the records
//!   (and the driver's cursor) are durably committed, so a driver acknowledges its device or
//!   broker *after* `submit` returns and never before (DESIGN invariant 1).
//! - [`TechnicalAlarms`]: raise and clear technical alarms (A7: low battery, device offline …);
//!   edge-triggered, so repeating a condition does not flood the operator.
//! - [`RecordSink`]: the port `Ingest` stores through, with its own types ([`Receipt`],
//!   [`AppendOutcome`], [`IngestError`], [`JournalEntry`]). hearth's outbox implements it (the
//!   outbox depends on this crate, not the other way round); [`memory::MemorySink`] implements
//!   it in memory for tests. A driver crate therefore depends on the model and this crate only,
//!   never on SQLite or hearth's schema (ADR 0009).
//!
//! A driver knows its own wire format and nothing of the outbox schema, the routes or the
//! uplinks. It never panics on input: malformed input goes to [`Ingest::dead_letter`] with the
//! parser's error (invariant 6).
//!
//! ## Invariants
//! - `submit` resolves `Ok` only after the commit. Test: `tests::submit_returns_after_commit`
//!   (and, against the real outbox, `crates/outbox/tests/ingest.rs`).
//! - A technical alarm is stored once per state change. Test:
//!   `tests::technical_alarms_are_edge_triggered`.
//! - With [`Ingest::retrying_until`], a transient storage failure (disk full, busy) does not end
//!   the driver: the submission waits and is retried every [`RETRY_EVERY`] until it commits or
//!   hearth stops; nothing is acknowledged meanwhile. Test:
//!   `tests::a_transient_failure_is_retried_until_it_commits`.
#![forbid(unsafe_code)]

pub mod memory;
mod sink;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_model::{
    AlarmState, Device, DeviceId, DeviceRegistry, Record, Severity, TechnicalAlarm, TechnicalKind,
    Timestamp,
};
use tokio::sync::watch;

pub use sink::{AppendOutcome, BoxFuture, IngestError, Journal, JournalEntry, Receipt, RecordSink};

/// Why a driver stopped. The supervisor restarts it with backoff unless it is fatal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Storing failed (disk full, database error); the driver should not acknowledge anything.
    #[error("cannot store readings: {0}")]
    Ingest(#[from] IngestError),
    /// The driver's device link or transport failed (it will be restarted).
    #[error("{0}")]
    Link(String),
    /// The driver's configuration cannot work; restarting will not help.
    #[error("driver configuration: {0}")]
    Config(String),
}

/// How often a submission that failed transiently (disk full, busy) is tried again.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

/// The ingest handle: the only way into storage.
#[derive(Clone)]
pub struct Ingest {
    /// Where submissions are stored (the outbox in hearth, a [`memory::MemorySink`] in tests).
    sink: Arc<dyn RecordSink>,
    /// When set, transient failures are retried until this turns true (hearth stops).
    retry_until: Option<watch::Receiver<bool>>,
    /// Whether storage is failing transiently right now (logged once per change).
    waiting: Arc<AtomicBool>,
    /// The device facts this handle updates (shared with the uplinks by the daemon).
    devices: DeviceRegistry,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sink is a trait object without Debug (a vendor's sink need not implement it).
        f.debug_struct("Ingest")
            .field("retrying", &self.retry_until.is_some())
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// Store through `sink`. Every error is returned to the caller at once.
    pub fn new(sink: impl RecordSink) -> Self {
        Self::with_devices(sink, DeviceRegistry::new())
    }

    /// The one constructor; `new` and `with_devices` box the caller's sink into it.
    fn from_sink(sink: Arc<dyn RecordSink>, devices: DeviceRegistry) -> Self {
        Self {
            sink,
            retry_until: None,
            waiting: Arc::new(AtomicBool::new(false)),
            devices,
        }
    }

    /// Wait out transient storage failures (a full disk, a busy database): a submission that
    /// fails transiently is retried every [`RETRY_EVERY`] until it commits, or until `stop`
    /// turns true (then the error is returned; nothing was acknowledged). A full disk is a state
    /// that passes, not a reason to end (and restart) a driver.
    pub fn retrying_until(mut self, stop: watch::Receiver<bool>) -> Self {
        self.retry_until = Some(stop);
        self
    }

    /// Run `op` until it succeeds, fails for good, or (transient failures) hearth stops.
    async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, IngestError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, IngestError>>,
    {
        let Some(stop) = &self.retry_until else {
            return op().await;
        };
        let mut stop = stop.clone();
        loop {
            match op().await {
                Err(e) if e.is_transient() && !*stop.borrow() => {
                    if !self.waiting.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, retry_ms = RETRY_EVERY.as_millis() as u64,
                            "storage is unavailable; submissions wait and are retried, nothing is acknowledged meanwhile");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_EVERY) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
                other => {
                    if other.is_ok() && self.waiting.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            "storage is available again; waiting submissions are stored"
                        );
                    }
                    return other;
                }
            }
        }
    }

    /// Store through `sink` and keep `devices` up to date with the facts drivers report
    /// ([`Ingest::device_facts`]); the daemon shares the same registry with the uplinks.
    pub fn with_devices(sink: impl RecordSink, devices: DeviceRegistry) -> Self {
        Self::from_sink(Arc::new(sink), devices)
    }

    /// Report what a device told about itself (manufacturer, model, serial, firmware, EUI-64,
    /// battery: BLE Device Information Service, zigbee2mqtt `bridge/devices`). Facts not told
    /// are kept from earlier reports. Stored durably (the outbox's table `device`) before the shared
    /// registry is updated; nothing is written when nothing new was told.
    pub async fn device_facts(&self, id: &DeviceId, mut facts: Device) -> Result<(), IngestError> {
        facts.id = Some(id.clone());
        let known = self.devices.get(id);
        let mut merged = known.clone().unwrap_or_default();
        merged.merge(facts.clone());
        if known.as_ref() == Some(&merged) {
            return Ok(());
        }
        self.sink.put_device(id.clone(), facts.clone()).await?;
        self.devices.upsert(facts);
        Ok(())
    }

    /// The registry of device facts this handle updates.
    pub fn devices(&self) -> &DeviceRegistry {
        &self.devices
    }

    /// Store records durably, together with the driver's cursor (e.g. the last device sequence
    /// number these records cover). Returns after the commit: acknowledge the source only then.
    pub async fn submit(
        &self,
        records: Vec<Record>,
        cursor: Option<(String, i64)>,
    ) -> Result<Receipt, IngestError> {
        self.submit_with_journal(records, cursor.into_iter().collect(), None)
            .await
    }

    /// Store records durably together with several cursors (a driver's resume points and
    /// state) and optionally an entry of the driver's journal (small bookkeeping blobs kept per
    /// source, e.g. which messages a batch covered), all in one transaction.
    pub async fn submit_with_journal(
        &self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<JournalEntry>,
    ) -> Result<Receipt, IngestError> {
        if self.retry_until.is_some() {
            self.retrying(|| {
                self.sink
                    .append(records.clone(), cursors.clone(), journal.clone())
            })
            .await
        } else {
            self.sink.append(records, cursors, journal).await
        }
    }

    /// The committed journal of `source`, oldest entry first.
    pub async fn journal(&self, source: &str) -> Result<Journal, IngestError> {
        self.sink.journal(source).await
    }

    /// Every committed cursor whose key starts with `prefix` (a driver's state at start-up).
    pub async fn cursors(&self, prefix: &str) -> Result<Vec<(String, i64)>, IngestError> {
        self.sink.cursors(prefix).await
    }

    /// The last committed cursor of this key (resume point after a restart).
    pub async fn cursor(&self, key: &str) -> Result<Option<i64>, IngestError> {
        self.sink.cursor(key).await
    }

    /// Keep input that could not be parsed, with the parser's error (invariant 6).
    pub async fn dead_letter(
        &self,
        source: &str,
        raw: Vec<u8>,
        error: String,
    ) -> Result<(), IngestError> {
        if self.retry_until.is_some() {
            self.retrying(|| self.sink.dead_letter(source, raw.clone(), error.clone()))
                .await
        } else {
            self.sink.dead_letter(source, raw, error).await
        }
    }
}

/// Everything a running driver may use.
#[derive(Clone, Debug)]
pub struct DriverContext {
    /// The way into storage.
    pub ingest: Ingest,
    /// Raise and clear technical alarms.
    pub technical: TechnicalAlarms,
    shutdown: watch::Receiver<bool>,
}

impl DriverContext {
    /// Build a context; `shutdown` turns true when hearth stops.
    pub fn new(
        ingest: Ingest,
        technical: TechnicalAlarms,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            ingest,
            technical,
            shutdown,
        }
    }

    /// Resolves when hearth is stopping; drivers finish their current submission and return.
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Whether hearth is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A source of readings, alarms and technical alarms.
pub trait Driver: Send {
    /// Stable name (config `[[source]] name`), used in logs, cursors and dead letters.
    fn name(&self) -> &str;

    /// Run until `ctx.stopping()` resolves (then return `Ok`) or a failure (then return `Err`;
    /// the supervisor restarts the driver with backoff). Must not panic on any input.
    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>>;
}

/// Raise and clear technical alarms (the seam for remote management).
///
/// Edge-triggered: raising an alarm that is already raised (same source and kind) stores
/// nothing; clearing one that is not raised stores nothing.
#[derive(Clone, Debug)]
pub struct TechnicalAlarms {
    ingest: Ingest,
    active: Arc<Mutex<HashMap<(String, String), Severity>>>,
}

impl TechnicalAlarms {
    /// Alarms are stored through `ingest`.
    pub fn new(ingest: Ingest) -> Self {
        Self {
            ingest,
            active: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn transition(&self, source: &str, kind: &TechnicalKind, severity: Option<Severity>) -> bool {
        let key = (source.to_owned(), kind.as_str().to_owned());
        let mut active = match self.active.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match severity {
            Some(s) => active.insert(key, s).is_none(),
            None => active.remove(&key).is_some(),
        }
    }

    /// Raise an alarm. `message` is for operators: what happened and what to do; never health
    /// values or personal identifiers.
    pub async fn raise(
        &self,
        source: &str,
        kind: TechnicalKind,
        severity: Severity,
        message: impl Into<String>,
    ) -> Result<bool, IngestError> {
        if !self.transition(source, &kind, Some(severity)) {
            return Ok(false);
        }
        let alarm = TechnicalAlarm::new(
            source,
            kind.clone(),
            severity,
            AlarmState::Raised,
            message,
            Timestamp::now(),
        );
        let message = alarm.message.clone();
        if let Err(e) = self
            .ingest
            .submit(vec![Record::Technical(alarm)], None)
            .await
        {
            // Not stored: forget the state so that the next raise tries again.
            self.transition(source, &kind, None);
            return Err(e);
        }
        tracing::warn!(source, kind = kind.as_str(), severity = severity.as_str(), message = %message, "technical alarm raised");
        Ok(true)
    }

    /// Clear an alarm raised earlier.
    pub async fn clear(
        &self,
        source: &str,
        kind: TechnicalKind,
        message: impl Into<String>,
    ) -> Result<bool, IngestError> {
        let severity = {
            let active = match self.active.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            active
                .get(&(source.to_owned(), kind.as_str().to_owned()))
                .copied()
        };
        let Some(severity) = severity else {
            return Ok(false);
        };
        self.transition(source, &kind, None);
        let alarm = TechnicalAlarm::new(
            source,
            kind.clone(),
            severity,
            AlarmState::Cleared,
            message,
            Timestamp::now(),
        );
        if let Err(e) = self
            .ingest
            .submit(vec![Record::Technical(alarm)], None)
            .await
        {
            self.transition(source, &kind, Some(severity));
            return Err(e);
        }
        tracing::info!(source, kind = kind.as_str(), "technical alarm cleared");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySink;

    fn one_reading(seq: u32) -> Record {
        Record::Reading(
            hearth_model::Reading::builder(
                hearth_model::DeviceId::new("sim", "a").unwrap(),
                hearth_model::Mdc(1),
                hearth_model::Value::numeric(1.0),
            )
            .sequence(seq.into())
            .build(Timestamp::now()),
        )
    }

    /// Issue 6 (b): facts a driver reports are committed to storage and reach the shared
    /// registry the uplinks read; a repeat that tells nothing new writes nothing.
    #[tokio::test]
    async fn issue_6_device_facts_are_stored_and_shared() {
        let sink = MemorySink::new();
        let registry = DeviceRegistry::new();
        let ingest = Ingest::with_devices(sink.clone(), registry.clone());
        let id = DeviceId::new("ble", "0011223344556677").unwrap();
        let facts = Device {
            manufacturer: Some("Acme".into()),
            model: Some("T-1".into()),
            ..Device::default()
        };
        ingest.device_facts(&id, facts.clone()).await.unwrap();
        let stored = sink.device(&id).unwrap();
        assert_eq!(stored.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(registry.get(&id).unwrap().model.as_deref(), Some("T-1"));
        let before = sink.commits();
        ingest.device_facts(&id, facts).await.unwrap();
        assert_eq!(sink.commits(), before, "nothing new, nothing written");
    }

    /// Facts that could not be stored do not reach the registry either (it mirrors storage).
    #[tokio::test]
    async fn device_facts_not_stored_are_not_shared() {
        let sink = MemorySink::new();
        let ingest = Ingest::new(sink.clone());
        let id = DeviceId::new("ble", "1").unwrap();
        sink.fail_transiently();
        let facts = Device {
            model: Some("T-1".into()),
            ..Device::default()
        };
        assert!(ingest.device_facts(&id, facts).await.is_err());
        assert!(ingest.devices().get(&id).is_none());
    }

    #[tokio::test]
    async fn submit_returns_after_commit() {
        let sink = MemorySink::new();
        let ingest = Ingest::new(sink.clone());
        let receipt = ingest
            .submit(vec![one_reading(1)], Some(("sim:a".into(), 1)))
            .await
            .unwrap();
        assert_eq!(receipt.outcomes, vec![AppendOutcome::Stored]);
        // The sink committed the records and the cursor together before `submit` resolved.
        // Against the real outbox (a second SQLite connection sees them):
        // crates/outbox/tests/ingest.rs.
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.committed_cursor("sim:a"), Some(1));
        assert_eq!(sink.commits(), 1);
    }

    /// A failed submission stores nothing, the cursor included, and says so to the driver.
    #[tokio::test]
    async fn a_failed_submission_moves_no_cursor() {
        let sink = MemorySink::new();
        let ingest = Ingest::new(sink.clone());
        sink.fail_for_good("read-only file system");
        let e = ingest
            .submit(vec![one_reading(1)], Some(("sim:a".into(), 1)))
            .await
            .unwrap_err();
        assert!(!e.is_transient());
        assert_eq!(
            DriverError::from(e).to_string(),
            "cannot store readings: read-only file system"
        );
        assert!(sink.records().is_empty());
        assert_eq!(ingest.cursor("sim:a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn technical_alarms_are_edge_triggered() {
        let sink = MemorySink::new();
        let t = TechnicalAlarms::new(Ingest::new(sink.clone()));
        assert!(
            t.raise(
                "ble:1",
                TechnicalKind::LowBattery,
                Severity::Minor,
                "battery 9 %"
            )
            .await
            .unwrap()
        );
        assert!(
            !t.raise(
                "ble:1",
                TechnicalKind::LowBattery,
                Severity::Minor,
                "battery 8 %"
            )
            .await
            .unwrap()
        );
        assert!(
            t.raise(
                "ble:2",
                TechnicalKind::LowBattery,
                Severity::Minor,
                "battery 7 %"
            )
            .await
            .unwrap()
        );
        assert!(
            t.clear("ble:1", TechnicalKind::LowBattery, "battery replaced")
                .await
                .unwrap()
        );
        assert!(
            !t.clear("ble:1", TechnicalKind::LowBattery, "again")
                .await
                .unwrap()
        );
        let stored = sink.technical_alarms();
        assert_eq!(stored.len(), 3);
        let states: Vec<_> = stored
            .iter()
            .map(|a| (a.source.as_str(), a.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("ble:1", AlarmState::Raised),
                ("ble:2", AlarmState::Raised),
                ("ble:1", AlarmState::Cleared)
            ]
        );
    }

    /// A raise that was not stored is forgotten, so the next raise tries again.
    #[tokio::test]
    async fn a_raise_not_stored_is_tried_again() {
        let sink = MemorySink::new();
        let t = TechnicalAlarms::new(Ingest::new(sink.clone()));
        sink.fail_transiently();
        assert!(
            t.raise("ble:1", TechnicalKind::LowBattery, Severity::Minor, "low")
                .await
                .is_err()
        );
        sink.recover();
        assert!(
            t.raise("ble:1", TechnicalKind::LowBattery, Severity::Minor, "low")
                .await
                .unwrap()
        );
        assert_eq!(sink.technical_alarms().len(), 1);
    }

    /// Wait until the sink has seen `n` write requests: proof that a submission is being
    /// retried, decided by events, not by how fast this machine is.
    async fn until_attempts(sink: &MemorySink, n: u64) {
        while sink.attempts() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transient_failure_is_retried_until_it_commits() {
        let sink = MemorySink::new();
        let (_stop_tx, stop) = watch::channel(false);
        let ingest = Ingest::new(sink.clone()).retrying_until(stop);
        let plain = Ingest::new(sink.clone());
        sink.fail_transiently();
        let retried = tokio::spawn(async move {
            ingest
                .submit(vec![one_reading(1)], Some(("sim:a".into(), 1)))
                .await
        });
        // Without retrying, the caller gets the transient error (unchanged behaviour) …
        let failed = plain.submit(vec![one_reading(2)], None).await;
        assert!(failed.unwrap_err().is_transient());
        // … with it, the submission waits (tried again, storing nothing), and commits once
        // storage is back. Two tries of the retried one plus the plain one.
        until_attempts(&sink, 3).await;
        assert!(
            !retried.is_finished(),
            "it gave up while storage was failing"
        );
        assert!(sink.records().is_empty());
        sink.recover();
        retried.await.unwrap().unwrap();
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.committed_cursor("sim:a"), Some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_submission_gives_up_when_hearth_stops() {
        let sink = MemorySink::new();
        let (stop_tx, stop) = watch::channel(false);
        let ingest = Ingest::new(sink.clone()).retrying_until(stop);
        // Storage fails until the end: if the submission returns at all, it gave up because
        // hearth stopped, not because storage came back.
        sink.fail_transiently();
        let submission =
            tokio::spawn(async move { ingest.submit(vec![one_reading(1)], None).await });
        until_attempts(&sink, 1).await;
        stop_tx.send(true).unwrap();
        let err = submission.await.unwrap().unwrap_err();
        assert!(err.is_transient());
        assert!(sink.records().is_empty());
    }

    /// Only transient failures are waited out; one that retrying cannot mend returns at once.
    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let sink = MemorySink::new();
        let (_stop_tx, stop) = watch::channel(false);
        let ingest = Ingest::new(sink.clone()).retrying_until(stop);
        sink.fail_for_good("database is corrupt");
        let e = ingest
            .dead_letter("sim", b"?".to_vec(), "bad".into())
            .await
            .unwrap_err();
        assert!(!e.is_transient());
        assert_eq!(sink.attempts(), 1);
    }
}
