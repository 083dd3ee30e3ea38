//! The write-ahead log stays bounded (issue 6: 10 MB after 400 records, 40–87 MB in runs of
//! 2,000–3,000 records, 38 MB with an empty outbox).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::*;
use hearth_model::*;
use hearth_outbox::*;

/// The smallest executor: the writer's handle is async, its work happens on its own thread.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len())
}

fn readings(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| reading(i, Category::Health, 0))
        .collect()
}

#[test]
fn the_wal_stays_bounded_under_load_and_is_truncated_once_the_writer_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let ob = open(&path, vec![route("hub", &[Category::Health])]);
    let (writer, handle) = OutboxWriter::spawn(ob, 1024).unwrap();
    // A burst of large commits, then the same records delivered: many WAL frames.
    let mut peak = 0;
    for k in 0..40 {
        block_on(writer.append(readings(k * 500, 500), None)).unwrap();
        peak = peak.max(wal_bytes(&path));
    }
    let hub = writer.route("hub").unwrap();
    loop {
        let claimed = block_on(writer.claim(hub, 1000)).unwrap();
        if claimed.is_empty() {
            break;
        }
        let answers = claimed
            .iter()
            .map(|c| (c.ticket, Outcome::Delivered))
            .collect();
        block_on(writer.settle(hub, answers)).unwrap();
        peak = peak.max(wal_bytes(&path));
    }
    // Under a load without pauses: twice the limit, plus what the writer adds while the
    // checkpointer's copy holds the checkpoint lock (about 9 MB here; 30 MB before the bound).
    assert!(
        peak <= 4 * WAL_LIMIT_BYTES,
        "WAL reached {peak} bytes under load, limit {WAL_LIMIT_BYTES}"
    );
    // Idle: the checkpointer notices within two of its ticks.
    let t = Instant::now();
    while wal_bytes(&path) > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let idle = wal_bytes(&path);
    eprintln!("WAL after the burst {peak} bytes, idle {idle} bytes");
    assert!(
        idle <= WAL_LIMIT_BYTES,
        "idle WAL is {idle} bytes, limit {WAL_LIMIT_BYTES}"
    );
    drop(writer);
    handle.join().unwrap();
}

#[test]
fn after_a_checkpoint_the_next_commit_cuts_the_wal_to_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let mut ob = open(&path, vec![route("hub", &[Category::Health])]);
    // 30 commits of 1,000 readings, without a checkpoint in between: the WAL grows.
    for k in 0..30 {
        ob.append_all(&readings(k * 1000, 1000), at(0)).unwrap();
    }
    let grown = wal_bytes(&path);
    assert!(grown > WAL_LIMIT_BYTES, "the test needs a big WAL: {grown}");
    // A checkpoint on another connection (as the checkpointer thread does), then N commits.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        .unwrap();
    for k in 30..40 {
        ob.append_all(&readings(k * 1000, 10), at(0)).unwrap();
    }
    let after = wal_bytes(&path);
    eprintln!("WAL grown to {grown} bytes, {after} bytes after a checkpoint and 10 commits");
    assert!(
        after <= WAL_LIMIT_BYTES,
        "WAL is {after} bytes after a checkpoint, limit {WAL_LIMIT_BYTES}"
    );
}

#[test]
fn the_cap_keeps_room_for_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OutboxOptions::new(
        dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    opts.max_bytes = 1 << 20;
    assert_eq!(opts.wal_reserve(), (1 << 20) / 8);
    let (mut ob, _) = Outbox::open(opts).unwrap();
    for k in 0..20 {
        ob.append_all(&readings(k * 1000, 1000), at(0)).unwrap();
    }
    let payload = ob.payload_bytes();
    assert!(
        payload <= (1 << 20) - (1 << 20) / 8,
        "records and dead letters get the cap less the WAL's share: {payload}"
    );
    assert!(payload > (1 << 20) / 2, "{payload}");
}

/// `OutboxWriter::stored` answers with the number of records held (the daemon's shutdown
/// drain waits on it); it used to be queued with the writes and never answered.
#[test]
fn the_writer_tells_how_many_records_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let ob = open(
        &dir.path().join("o.db"),
        vec![route("hub", &[Category::Health])],
    );
    let (writer, handle) = OutboxWriter::spawn(ob, 1024).unwrap();
    assert_eq!(block_on(writer.stored()).unwrap(), 0);
    block_on(writer.append(readings(0, 7), None)).unwrap();
    assert_eq!(block_on(writer.stored()).unwrap(), 7);
    drop(writer);
    handle.join().unwrap();
}
