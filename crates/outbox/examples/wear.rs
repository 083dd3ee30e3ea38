//! Storage wear: bytes this process caused to be written to the device per stored reading
//! (`/proc/self/io` `write_bytes`), through the outbox writer (with its checkpoint thread, as
//! the daemon runs it), against raw `rusqlite` inserting the same rows with the same pragmas
//! and the same commits, measured in the same run. An SD card wears out by what is written.
//!
//! `cargo run --release -p hearth-outbox --example wear -- DIR [N]` (`./scripts/bench` runs it)

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use hearth_model::*;
use hearth_outbox::*;
use rusqlite::params;

type Error = Box<dyn std::error::Error>;

/// The writer's handle is async; its work happens on its own thread.
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

/// Bytes this process (all its threads) caused to be sent to the storage layer so far.
fn write_bytes() -> Result<u64, Error> {
    let io = std::fs::read_to_string("/proc/self/io")?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .ok_or("no write_bytes in /proc/self/io")?
        .trim()
        .parse()
        .map_err(Into::into)
}

fn readings(n: u64) -> Result<Vec<Record>, Error> {
    let dev = DeviceId::new("ble", "0011223344556677")?;
    let now = Timestamp::now();
    Ok((0..n)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    dev.clone(),
                    Mdc(150021),
                    Value::numeric_with_decimals(120.0 + (i % 40) as f64, 0),
                )
                .unit(Ucum::new("mm[Hg]"))
                .device_time(Timestamp::from_unix_millis(
                    1_700_000_000_000 + i as i64 * 1000,
                ))
                .sequence(i)
                .build(now),
            )
        })
        .collect())
}

/// Through the writer thread, `batch` readings per commit, then stop it (its last checkpoint
/// included).
fn outbox(dir: &Path, records: &[Record], batch: usize) -> Result<u64, Error> {
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let mut opts = OutboxOptions::new(dir.join("outbox.db"), vec![route]);
    opts.max_rows = 10_000_000;
    opts.max_bytes = 8 << 30;
    let before = write_bytes()?;
    let (ob, _) = Outbox::open(opts)?;
    let (writer, handle) = OutboxWriter::spawn(ob, 1024)?;
    for chunk in records.chunks(batch) {
        block_on(writer.append(chunk.to_vec(), None))?;
    }
    drop(writer);
    handle.join().map_err(|_| "the outbox writer panicked")?;
    // The checkpoint thread ends within its tick once the writer is gone.
    std::thread::sleep(Duration::from_millis(700));
    Ok(write_bytes()? - before)
}

/// The same item rows (id, lane, category, time, size, payload) into a plain table with the
/// same pragmas (WAL, synchronous=FULL) and the same commits.
fn raw(dir: &Path, records: &[Record], batch: usize) -> Result<u64, Error> {
    // The outbox's encoding is private: an equally sized JSON (as `benches/outbox.rs`).
    let rows: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Reading(x) => Some((r.id(), x)),
            _ => None,
        })
        .map(|(id, x)| {
            let json = format!(
                r#"{{"v":1,"t":"reading","dev":"{}","mdc":{},"val":{{"n":[{},0]}},"unit":"mm[Hg]","dt":{},"rx":{},"seq":{},"cat":0}}"#,
                x.device,
                x.mdc,
                x.value.as_f64().unwrap_or(0.0),
                x.device_time.map_or(0, |t| t.unix_millis()),
                x.received_at.unix_millis(),
                x.sequence.unwrap_or(0)
            );
            (id.as_bytes().to_vec(), json.into_bytes())
        })
        .collect();
    let before = write_bytes()?;
    let mut conn = rusqlite::Connection::open(dir.join("raw.db"))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE item (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, lane INTEGER NOT NULL,
           category INTEGER NOT NULL, received_ms INTEGER NOT NULL, bytes INTEGER NOT NULL,
           payload BLOB NOT NULL);",
    )?;
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction()?;
        {
            let mut s = tx.prepare_cached(
                "INSERT INTO item (id, lane, category, received_ms, bytes, payload)
                 VALUES (?1, 2, 0, ?2, ?3, ?4)",
            )?;
            for (id, p) in chunk {
                s.execute(params![id, 1_700_000_000_000i64, p.len() as i64, p])?;
            }
        }
        tx.commit()?;
    }
    drop(conn);
    Ok(write_bytes()? - before)
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: wear DIR [N]")?);
    let n: u64 = match args.next() {
        Some(n) => n.parse()?,
        None => 20_000,
    };
    // One reading per commit (a home: readings arrive one at a time) and 100 per commit.
    for (batch, n) in [(1usize, n / 10), (100, n)] {
        let records = readings(n)?;
        let run = dir.join(format!("batch-{batch}"));
        std::fs::create_dir_all(&run)?;
        let ours = outbox(&run, &records, batch)?;
        let base = raw(&run, &records, batch)?;
        let per = |b: u64| b as f64 / n as f64;
        println!(
            "{:<44} {:>9.0} B/reading   baseline raw rusqlite insert {:>9.0} B/reading   ratio {:5.2}   ({n} readings)",
            format!("bytes written per stored reading, {batch}/commit"),
            per(ours),
            per(base),
            per(ours) / per(base).max(1.0)
        );
    }
    Ok(())
}
