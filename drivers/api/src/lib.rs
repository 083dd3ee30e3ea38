//! # hearth-driver-api
//!
//! What a source of readings (a "driver": BLE health devices, zigbee2mqtt, a vendor's device)
//! implements, and what it gets to work with:
//!
//! - [`Driver`]: a long-running task that turns device input into typed [`hearth_model::Record`]s.
//! - [`Ingest`]: the one way into the outbox. [`Ingest::submit`] returns only after the records
//!   (and the driver's cursor) are durably committed, so a driver acknowledges its device or
//!   broker *after* `submit` returns and never before (DESIGN invariant 1).
//! - [`TechnicalAlarms`]: raise and clear technical alarms (A7: low battery, device offline …);
//!   edge-triggered, so repeating a condition does not flood the operator.
//!
//! A driver knows its own wire format and nothing of the outbox schema, the routes or the
//! uplinks. It never panics on input: malformed input goes to [`Ingest::dead_letter`] with the
//! parser's error (invariant 6).
//!
//! ## Invariants
//! - `submit` resolves `Ok` only after the commit. Test: `tests::submit_returns_after_commit`.
//! - A technical alarm is stored once per state change. Test:
//!   `tests::technical_alarms_are_edge_triggered`.
//! - With [`Ingest::retrying_until`], a transient storage failure (disk full, busy) does not end
//!   the driver: the submission waits and is retried every [`RETRY_EVERY`] until it commits or
//!   hearth stops; nothing is acknowledged meanwhile. Test:
//!   `tests::a_transient_failure_is_retried_until_it_commits`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_model::{
    AlarmState, Device, DeviceId, DeviceRegistry, Record, Severity, TechnicalAlarm, TechnicalKind,
    Timestamp,
};
use hearth_outbox::{AppendOutcome, OutboxWriter, WriterError};
use tokio::sync::watch;

/// A boxed future, as drivers return from [`Driver::run`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a driver stopped. The supervisor restarts it with backoff unless it is fatal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Storing failed (disk full, database error); the driver should not acknowledge anything.
    #[error("cannot store readings: {0}")]
    Ingest(#[from] WriterError),
    /// The driver's device link or transport failed (it will be restarted).
    #[error("{0}")]
    Link(String),
    /// The driver's configuration cannot work; restarting will not help.
    #[error("driver configuration: {0}")]
    Config(String),
}

/// What a committed submission did with each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// One outcome per submitted record, in order.
    pub outcomes: Vec<AppendOutcome>,
}

/// How often a submission that failed transiently (disk full, busy) is tried again.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

/// The ingest handle: the only way into the outbox.
#[derive(Clone, Debug)]
pub struct Ingest {
    writer: OutboxWriter,
    /// When set, transient failures are retried until this turns true (hearth stops).
    retry_until: Option<watch::Receiver<bool>>,
    /// Whether storage is failing transiently right now (logged once per change).
    waiting: Arc<AtomicBool>,
    /// The device facts this handle updates (shared with the uplinks by the daemon).
    devices: DeviceRegistry,
}

impl Ingest {
    /// Wrap the outbox writer. Every error is returned to the caller at once.
    pub fn new(writer: OutboxWriter) -> Self {
        Self {
            writer,
            retry_until: None,
            waiting: Arc::new(AtomicBool::new(false)),
            devices: DeviceRegistry::new(),
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
    async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, WriterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WriterError>>,
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

    /// Wrap the outbox writer and keep `devices` up to date with the facts drivers report
    /// ([`Ingest::device_facts`]); the daemon shares the same registry with the uplinks.
    pub fn with_devices(writer: OutboxWriter, devices: DeviceRegistry) -> Self {
        Self {
            writer,
            retry_until: None,
            waiting: Arc::new(AtomicBool::new(false)),
            devices,
        }
    }

    /// Report what a device told about itself (manufacturer, model, serial, firmware, EUI-64,
    /// battery: BLE Device Information Service, zigbee2mqtt `bridge/devices`). Facts not told
    /// are kept from earlier reports. Stored durably (outbox table `device`) before the shared
    /// registry is updated; nothing is written when nothing new was told.
    pub async fn device_facts(&self, id: &DeviceId, mut facts: Device) -> Result<(), WriterError> {
        facts.id = Some(id.clone());
        let known = self.devices.get(id);
        let mut merged = known.clone().unwrap_or_default();
        merged.merge(facts.clone());
        if known.as_ref() == Some(&merged) {
            return Ok(());
        }
        self.writer.put_device(id.clone(), facts.clone()).await?;
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
    ) -> Result<Receipt, WriterError> {
        let committed = if self.retry_until.is_some() {
            self.retrying(|| self.writer.append(records.clone(), cursor.clone()))
                .await?
        } else {
            self.writer.append(records, cursor).await?
        };
        Ok(Receipt {
            outcomes: committed.outcomes,
        })
    }

    /// Store records durably together with several cursors (a driver's resume points and
    /// state) and optionally an entry of the driver's journal (small bookkeeping blobs kept per
    /// source, e.g. which messages a batch covered), all in one transaction.
    pub async fn submit_with_journal(
        &self,
        records: Vec<Record>,
        cursors: Vec<(String, i64)>,
        journal: Option<hearth_outbox::JournalEntry>,
    ) -> Result<Receipt, WriterError> {
        let committed = if self.retry_until.is_some() {
            self.retrying(|| {
                self.writer
                    .append_with_journal(records.clone(), cursors.clone(), journal.clone())
            })
            .await?
        } else {
            self.writer
                .append_with_journal(records, cursors, journal)
                .await?
        };
        Ok(Receipt {
            outcomes: committed.outcomes,
        })
    }

    /// The committed journal of `source`, oldest entry first.
    pub async fn journal(&self, source: &str) -> Result<Vec<(i64, Vec<u8>)>, WriterError> {
        self.writer.journal(source).await
    }

    /// Every committed cursor whose key starts with `prefix` (a driver's state at start-up).
    pub async fn cursors(&self, prefix: &str) -> Result<Vec<(String, i64)>, WriterError> {
        self.writer.cursors(prefix).await
    }

    /// The last committed cursor of this key (resume point after a restart).
    pub async fn cursor(&self, key: &str) -> Result<Option<i64>, WriterError> {
        self.writer.cursor(key).await
    }

    /// Keep input that could not be parsed, with the parser's error (invariant 6).
    pub async fn dead_letter(
        &self,
        source: &str,
        raw: Vec<u8>,
        error: String,
    ) -> Result<(), WriterError> {
        if self.retry_until.is_some() {
            self.retrying(|| {
                self.writer
                    .dead_letter_input(source, raw.clone(), error.clone())
            })
            .await
        } else {
            self.writer.dead_letter_input(source, raw, error).await
        }
    }
}

/// Everything a running driver may use.
#[derive(Clone, Debug)]
pub struct DriverContext {
    /// The way into the outbox.
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
    ) -> Result<bool, WriterError> {
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
    ) -> Result<bool, WriterError> {
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
    use hearth_model::Category;
    use hearth_outbox::{Outbox, OutboxOptions, RetryPolicy, RouteSpec};

    fn writer(dir: &std::path::Path) -> OutboxWriter {
        let route = RouteSpec {
            name: "ops".into(),
            categories: Category::ALL.to_vec(),
            retry: RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (ob, _) = Outbox::open(OutboxOptions::new(dir.join("o.db"), vec![route])).unwrap();
        OutboxWriter::spawn(ob, 100).unwrap().0
    }

    /// Issue 6 (b): facts a driver reports are committed to the outbox and reach the shared
    /// registry the uplinks read; a repeat that tells nothing new writes nothing.
    #[tokio::test]
    async fn issue_6_device_facts_are_stored_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let registry = DeviceRegistry::new();
        let ingest = Ingest::with_devices(w.clone(), registry.clone());
        let id = DeviceId::new("ble", "0011223344556677").unwrap();
        let facts = Device {
            manufacturer: Some("Acme".into()),
            model: Some("T-1".into()),
            ..Device::default()
        };
        ingest.device_facts(&id, facts.clone()).await.unwrap();
        let stored = w.devices().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].manufacturer.as_deref(), Some("Acme"));
        assert_eq!(registry.get(&id).unwrap().model.as_deref(), Some("T-1"));
        let before = w.transactions();
        ingest.device_facts(&id, facts).await.unwrap();
        assert_eq!(w.transactions(), before, "nothing new, nothing written");
    }

    #[tokio::test]
    async fn submit_returns_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let ingest = Ingest::new(writer(dir.path()));
        let r = hearth_model::Reading::builder(
            hearth_model::DeviceId::new("sim", "a").unwrap(),
            hearth_model::Mdc(1),
            hearth_model::Value::numeric(1.0),
        )
        .sequence(1)
        .build(Timestamp::now());
        ingest
            .submit(vec![Record::Reading(r)], Some(("sim:a".into(), 1)))
            .await
            .unwrap();
        // A second, independent connection sees it: it is committed, not just queued.
        let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
        assert_eq!(s.records(), 1);
        assert_eq!(s.cursors.get("sim:a"), Some(&1));
    }

    #[tokio::test]
    async fn technical_alarms_are_edge_triggered() {
        let dir = tempfile::tempdir().unwrap();
        let t = TechnicalAlarms::new(Ingest::new(writer(dir.path())));
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
        let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
        assert_eq!(s.lanes[1].records, 3);
    }

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

    /// Another connection holds the write lock until told to let go, so the writer's
    /// transactions fail transiently (SQLITE_BUSY after its busy timeout) for as long as the
    /// test wants — decided by events, not by how fast this machine is.
    fn hold_write_lock(
        path: std::path::PathBuf,
    ) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
            conn.execute_batch("COMMIT").unwrap();
        });
        held_rx.recv().unwrap();
        (release_tx, h)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transient_failure_is_retried_until_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let (_stop_tx, stop) = watch::channel(false);
        let ingest = Ingest::new(w.clone()).retrying_until(stop);
        let plain = Ingest::new(w);
        let (release, lock) = hold_write_lock(dir.path().join("o.db"));
        let retried = tokio::spawn(async move {
            ingest
                .submit(vec![one_reading(1)], Some(("sim:a".into(), 1)))
                .await
        });
        // Without retrying, the caller gets the transient error (unchanged behaviour) …
        let failed = plain.submit(vec![one_reading(2)], None).await;
        assert!(failed.unwrap_err().is_transient());
        // … with it, the submission waits, and commits once the lock is gone.
        assert!(!retried.is_finished(), "it gave up while storage was busy");
        release.send(()).unwrap();
        lock.join().unwrap();
        retried.await.unwrap().unwrap();
        let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
        assert_eq!(s.records(), 1);
        assert_eq!(s.cursors.get("sim:a"), Some(&1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_submission_gives_up_when_hearth_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let ingest = Ingest::new(writer(dir.path())).retrying_until(stop);
        // The lock is held until the submission has returned: if it returns at all, it gave up
        // because hearth stopped, not because the lock went.
        let (release, lock) = hold_write_lock(dir.path().join("o.db"));
        let submission =
            tokio::spawn(async move { ingest.submit(vec![one_reading(1)], None).await });
        stop_tx.send(true).unwrap();
        let err = submission.await.unwrap().unwrap_err();
        assert!(err.is_transient());
        release.send(()).unwrap();
        lock.join().unwrap();
    }
}
