#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly
//! Outbox throughput figures, each printed with a baseline measured in the same run.
//!
//! Run: `cargo bench -p hearth-outbox --bench outbox` (or `./scripts/bench` for all figures).
//! Optional: `HEARTH_BENCH_N=500000` to change the number of readings.

use std::time::Instant;

use hearth_model::*;
use hearth_outbox::*;
use rusqlite::params;

const BATCH: usize = 1000;

fn readings(n: usize, now: Timestamp) -> Vec<Record> {
    let dev = DeviceId::new("ble", "0011223344556677").unwrap();
    (0..n)
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
                .sequence(i as u64)
                .build(now),
            )
        })
        .collect()
}

fn line(name: &str, value: f64, unit: &str, baseline_name: &str, baseline: f64, goal: &str) {
    println!(
        "{name:<44} {value:>12.0} {unit:<10} baseline {baseline_name} {baseline:>12.0} {unit:<10} ratio {:>5.2}  goal {goal}",
        value / baseline
    );
}

/// The raw baseline: the same item rows (id, lane, category, time, size, payload), batched
/// the same way, into a plain table with the same pragmas (WAL, synchronous=FULL).
fn raw_baseline(dir: &std::path::Path, payloads: &[(Vec<u8>, Vec<u8>)]) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE item (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, lane INTEGER NOT NULL,
           category INTEGER NOT NULL, received_ms INTEGER NOT NULL, bytes INTEGER NOT NULL,
           payload BLOB NOT NULL);",
    )
    .unwrap();
    let mut conn = conn;
    let t = Instant::now();
    for chunk in payloads.chunks(BATCH) {
        let tx = conn.transaction().unwrap();
        {
            let mut s = tx
                .prepare_cached("INSERT INTO item (id, lane, category, received_ms, bytes, payload) VALUES (?1, 2, 0, ?2, ?3, ?4)")
                .unwrap();
            for (id, p) in chunk {
                s.execute(params![id, 1_700_000_000_000i64, p.len() as i64, p])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    payloads.len() as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("HEARTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let recs = readings(n, now);
    println!(
        "outbox benchmark: {n} blood-pressure readings, batches of {BATCH}, WAL + synchronous=FULL, one route"
    );

    // Baseline payloads: the outbox's own encoding would be private, so use an equally sized JSON.
    let payloads: Vec<(Vec<u8>, Vec<u8>)> = recs
        .iter()
        .map(|r| {
            let Record::Reading(x) = r else { unreachable!() };
            let json = format!(
                r#"{{"v":1,"t":"reading","dev":"{}","mdc":{},"val":{{"n":[{},0]}},"unit":"mm[Hg]","dt":{},"rx":{},"seq":{},"cat":0}}"#,
                x.device, x.mdc, x.value.as_f64().unwrap_or(0.0), x.device_time.map_or(0, |t| t.unix_millis()), now.unix_millis(), x.sequence.unwrap_or(0)
            );
            (r.id().as_bytes().to_vec(), json.into_bytes())
        })
        .collect();
    let raw = raw_baseline(dir.path(), &payloads);

    let route = RouteSpec {
        name: "hub".into(),
        categories: vec![Category::Health],
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let mut opts = OutboxOptions::new(dir.path().join("outbox.db"), vec![route]);
    opts.max_rows = 10_000_000;
    opts.max_bytes = 10 << 30;
    let (mut ob, _) = Outbox::open(opts).unwrap();
    let t = Instant::now();
    for chunk in recs.chunks(BATCH) {
        let mut b = ob.batch().unwrap();
        for r in chunk {
            b.append(r, now).unwrap();
        }
        b.commit().unwrap();
    }
    let ingest = n as f64 / t.elapsed().as_secs_f64();
    line(
        "durable ingest (typed readings → outbox)",
        ingest,
        "rec/s",
        "raw rusqlite insert",
        raw,
        "≥ 50000 rec/s and ratio ≥ 0.50",
    );

    let hub = ob.route("hub").unwrap();
    // Drain as the route sender does: one transaction claims a batch (marks it in flight), the
    // receiver answers, a second transaction settles it (delete delivery, delete record).
    let t_all = Instant::now();
    let mut settle_secs = 0.0;
    let mut drained = 0;
    loop {
        let mut b = ob.batch().unwrap();
        let c = b.claim(hub, BATCH, now).unwrap();
        b.commit().unwrap();
        if c.is_empty() {
            break;
        }
        drained += c.len();
        let answers: Vec<_> = c.iter().map(|c| (c.ticket, Outcome::Delivered)).collect();
        let t = Instant::now();
        let mut b = ob.batch().unwrap();
        b.settle(hub, &answers, now).unwrap();
        b.commit().unwrap();
        settle_secs += t.elapsed().as_secs_f64();
    }
    let all = drained as f64 / t_all.elapsed().as_secs_f64();
    assert_eq!(drained, n);
    line(
        "drain bookkeeping (mark delivered + delete)",
        drained as f64 / settle_secs,
        "rec/s",
        "raw rusqlite insert",
        raw,
        "≥ 50000 rec/s",
    );
    line(
        "full drain cycle (claim + decode + settle)",
        all,
        "rec/s",
        "raw rusqlite insert",
        raw,
        "(for information)",
    );
}
