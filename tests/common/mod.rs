//! Helpers shared by the black-box tests: start the built binary with a config, wait for a log
//! line, stop it with SIGTERM, a config with one loopback route, an outbox filled before the
//! daemon starts, and the reference receiver's runtime and tally.
#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_model::{Category, DeviceId, Mdc, PersonRef, Reading, Record, Timestamp, Ucum, Value};
use hearth_outbox::{Outbox, OutboxOptions, RetryPolicy, RouteSpec};

/// Start `hearth run --config config`, appending its log (RUST_LOG=info) to `log`.
pub fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Wait (at most 20 s) until `log` contains `needle`.
pub fn wait_for_log(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start hearth and wait until its MQTT source is connected and subscribed.
pub fn start_connected(config: &Path, log: &Path) -> Child {
    let child = start(config, log);
    wait_for_log(log, "MQTT connected");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Wait until the outbox in `data_dir` holds no record (everything delivered), at most `secs`
/// seconds; the failure names the daemon's log.
pub fn wait_drained(data_dir: &Path, log: &Path, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = hearth_outbox::stats(&data_dir.join("outbox.db")).unwrap();
        if s.records() == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} records still queued after {secs} s; log {}",
            s.records(),
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM (through `kill`: the tests forbid unsafe code), then wait for the exit.
pub fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
}

/// A config with `data_dir`, the broker on `mqtt_port`, one loopback route `hub` for every
/// category, and `extra` (sources) appended.
pub fn hub_config(data_dir: &Path, mqtt_port: u16, extra: &str) -> String {
    format!(
        r#"
[gateway]
data_dir = "{data}"
time_zone = "Europe/Oslo"

[mqtt]
port = {mqtt_port}

[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "loopback"
batch_size = 500
{extra}"#,
        data = data_dir.display()
    )
}

/// Fills a new outbox at `path` as an older build did (ids not yet scoped to a box): routes
/// named `routes` (health, default retry, `readings_only` as given), and `count` health readings
/// about `person`, reading `i` being `measure(i)` (device, code, value, unit) with sequence
/// number `i`, device time `i` seconds after Unix ms 1 760 000 000 000, received now; committed
/// 1000 to a batch.
pub fn prefill_outbox(
    path: &Path,
    routes: &[&str],
    readings_only: bool,
    person: &str,
    count: u64,
    measure: impl Fn(u64) -> (DeviceId, Mdc, Value, &'static str),
) {
    let routes = routes
        .iter()
        .map(|n| RouteSpec {
            name: (*n).into(),
            categories: vec![Category::Health],
            retry: RetryPolicy::default(),
            readings_only,
            alarms_only: false,
        })
        .collect();
    let (mut ob, _) = Outbox::open(OutboxOptions::new(path, routes)).unwrap();
    let now = Timestamp::now();
    let mut next = 0u64;
    while next < count {
        let end = count.min(next + 1000);
        let mut b = ob.batch().unwrap();
        for i in next..end {
            let (device, mdc, value, unit) = measure(i);
            let r = Reading::builder(device, mdc, value)
                .unit(Ucum::new(unit))
                .device_time(Timestamp::from_unix_millis(
                    1_760_000_000_000 + i as i64 * 1000,
                ))
                .sequence(i)
                .person(PersonRef::new(person))
                .category(Category::Health)
                .build(now);
            b.append(&Record::Reading(r), now).unwrap();
        }
        b.commit().unwrap();
        next = end;
    }
}

/// A multi-threaded runtime on two workers, for the reference receiver.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The receiver stored `observations` in each format (FHIR and PCD-01), none of them twice.
pub fn assert_each_format_stored(s: &hearth_receiver::Summary, observations: u64) {
    assert_eq!(s.fhir.observations, observations, "{s}");
    assert_eq!(s.mllp.observations, observations, "{s}");
    assert_eq!(s.fhir.created_twice, 0, "{s}");
    assert_eq!(s.mllp.created_twice, 0, "{s}");
}

/// Writes `text` as `hearth.toml` in `dir`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("hearth.toml");
    std::fs::write(&path, text).unwrap();
    path
}
