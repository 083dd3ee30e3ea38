//! The drivers' `Ingest` against the real outbox: the `hearth-driver-api` invariants (its
//! `tests::submit_returns_after_commit`, `tests::technical_alarms_are_edge_triggered`,
//! `tests::a_transient_failure_is_retried_until_it_commits`) hold when `OutboxWriter` is the
//! `RecordSink`, with SQLite's own failures. They live here because the outbox depends on the
//! API (ADR 0009); the API's unit tests use its in-memory sink.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may fail loudly

use hearth_driver_api::{AppendOutcome, Ingest, JournalEntry, TechnicalAlarms};
use hearth_model::{
    Category, Device, DeviceId, DeviceRegistry, Mdc, Reading, Record, Severity, TechnicalKind,
    Timestamp, Value,
};
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};
use tokio::sync::watch;

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

fn one_reading(seq: u32) -> Record {
    Record::Reading(
        Reading::builder(
            DeviceId::new("sim", "a").unwrap(),
            Mdc(1),
            Value::numeric(1.0),
        )
        .sequence(seq.into())
        .build(Timestamp::now()),
    )
}

/// Issue 6 (b): facts a driver reports are committed to the outbox and reach the shared
/// registry the uplinks read; a repeat that tells nothing new writes nothing.
#[tokio::test]
async fn device_facts_through_ingest_reach_the_device_table_once() {
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
async fn ingest_submit_returns_after_the_outbox_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::new(writer(dir.path()));
    let receipt = ingest
        .submit(vec![one_reading(1)], Some(("sim:a".into(), 1)))
        .await
        .unwrap();
    assert_eq!(receipt.outcomes, vec![AppendOutcome::Stored]);
    // A second, independent connection sees it: it is committed, not just queued.
    let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
    assert_eq!(s.records(), 1);
    assert_eq!(s.cursors.get("sim:a"), Some(&1));
    // The outbox's outcomes arrive as the API's.
    let again = ingest.submit(vec![one_reading(1)], None).await.unwrap();
    assert_eq!(again.outcomes, vec![AppendOutcome::Duplicate]);
}

#[tokio::test]
async fn journal_entries_and_cursors_round_trip_through_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::new(writer(dir.path()));
    let journal = JournalEntry {
        source: "mqtt:z".into(),
        seq: 7,
        entries: vec![1, 2, 3],
        keep_from: 0,
    };
    ingest
        .submit_with_journal(
            vec![one_reading(1)],
            vec![("mqtt:z:seq".into(), 7), ("mqtt:z:state".into(), 1)],
            Some(journal),
        )
        .await
        .unwrap();
    assert_eq!(
        ingest.journal("mqtt:z").await.unwrap(),
        vec![(7, vec![1, 2, 3])]
    );
    assert_eq!(ingest.cursor("mqtt:z:seq").await.unwrap(), Some(7));
    assert_eq!(ingest.cursors("mqtt:z:").await.unwrap().len(), 2);
    ingest
        .dead_letter("mqtt:z", b"{".to_vec(), "EOF while parsing".into())
        .await
        .unwrap();
    let s = hearth_outbox::stats(&dir.path().join("o.db")).unwrap();
    assert_eq!(s.records(), 1);
}

#[tokio::test]
async fn technical_alarms_through_the_outbox_are_stored_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let t = TechnicalAlarms::new(Ingest::new(writer(dir.path())));
    let low = |m: &'static str| {
        let t = t.clone();
        async move {
            t.raise("ble:1", TechnicalKind::LowBattery, Severity::Minor, m)
                .await
                .unwrap()
        }
    };
    assert!(low("battery 9 %").await);
    assert!(!low("battery 8 %").await);
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
async fn a_busy_outbox_is_waited_out_by_a_retrying_ingest() {
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
    // Without retrying, the caller gets SQLite's busy error as a transient IngestError …
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
async fn a_retrying_ingest_on_a_busy_outbox_gives_up_when_hearth_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let ingest = Ingest::new(writer(dir.path())).retrying_until(stop);
    // The lock is held until the submission has returned: if it returns at all, it gave up
    // because hearth stopped, not because the lock went.
    let (release, lock) = hold_write_lock(dir.path().join("o.db"));
    let submission = tokio::spawn(async move { ingest.submit(vec![one_reading(1)], None).await });
    stop_tx.send(true).unwrap();
    let err = submission.await.unwrap().unwrap_err();
    assert!(err.is_transient());
    release.send(()).unwrap();
    lock.join().unwrap();
}
