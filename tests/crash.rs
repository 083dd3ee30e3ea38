//! Crash test (issue 1, DESIGN invariants 1, 2, 7): kill -9 the daemon at random moments while
//! readings flow in and drain out, 20 times; then let it finish and check that every reading
//! the source committed reached every route exactly once as a new record (0 lost), and that
//! nothing was produced twice. Resends after a kill are counted: the receiver deduplicates them
//! by the deterministic record id, as FHIR conditional create does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::start;

const DEVICES: u64 = 8;
const ALARM_EVERY: u64 = 10;
const TRIALS: usize = 20;

fn received(path: &Path) -> (BTreeMap<String, (u64, i64, i64)>, u64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut per_source = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT source, count(*), min(seq), max(seq) FROM received WHERE kind = 'reading' GROUP BY source")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?),
            ))
        })
        .unwrap();
    for row in rows {
        let (k, v) = row.unwrap();
        per_source.insert(k, v);
    }
    let alarms: i64 = conn
        .query_row(
            "SELECT count(*) FROM received WHERE kind = 'alarm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let resent: i64 = conn
        .query_row(
            "SELECT coalesce(sum(copies - 1), 0) FROM received",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (per_source, alarms as u64, resent as u64)
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_creates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "crash-test"
data_dir = "{data}"

[outbox]
group_commit_max = 512

[retry]
initial = "50ms"
max = "500ms"

[supervisor]
shutdown_grace = "20s"

[[route]]
name = "hub"
categories = ["health"]
uplink = "loopback"
batch_size = 64

[[route]]
name = "mirror"
categories = ["health"]
uplink = "loopback"
batch_size = 200

[[source]]
name = "sim"
kind = "simulated"
[source.simulated]
devices = {DEVICES}
interval = "2ms"
alarm_every = {ALARM_EVERY}
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("hearth.log");
    let seed = std::env::var("HEARTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("crash test seed {seed} (set HEARTH_CRASH_SEED to repeat)");

    for trial in 0..TRIALS {
        let mut child = start(&config, &log);
        std::thread::sleep(Duration::from_millis(rng.u64(60..400)));
        child.kill().unwrap(); // SIGKILL: no shutdown code runs
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "trial {trial}: the daemon was killed, not stopped"
        );
    }

    // A last run that is allowed to finish: wait until the outbox is empty, then SIGTERM.
    let mut child = start(&config, &log);
    let outbox = data.join("outbox.db");
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful stop exits 0; log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let stats = hearth_outbox::stats(&outbox).unwrap();
    assert_eq!(
        stats.records(),
        0,
        "the shutdown drain delivered everything (took {:?})",
        t.elapsed()
    );

    let rounds = *stats
        .cursors
        .get("sim:sim")
        .expect("the source committed rounds") as u64;
    assert!(
        rounds > 50,
        "readings flowed during the trials ({rounds} rounds)"
    );
    let expected_readings = rounds * DEVICES;
    let expected_alarms = rounds / ALARM_EVERY;
    assert_eq!(
        stats.counter("ingested") as u64,
        expected_readings + expected_alarms,
        "each round was stored once"
    );
    assert_eq!(
        stats.counter("duplicates"),
        0,
        "no round was produced twice"
    );

    for route in ["hub", "mirror"] {
        let (per_source, alarms, resent) = received(&data.join(format!("loopback-{route}.db")));
        assert_eq!(
            per_source.len() as u64,
            DEVICES,
            "route {route}: every device arrived"
        );
        for (source, (count, min, max)) in &per_source {
            assert_eq!(
                (*count, *min, *max),
                (rounds, 1, rounds as i64),
                "route {route}, {source}: every round exactly once"
            );
        }
        assert_eq!(
            alarms, expected_alarms,
            "route {route}: every alarm exactly once"
        );
        eprintln!(
            "route {route}: {} readings + {alarms} alarms received once each over {TRIALS} kill -9 trials; \
             {resent} transport-level resends after kills were deduplicated by record id",
            rounds * DEVICES
        );
    }
}
