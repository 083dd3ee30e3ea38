//! Helpers shared by the black-box tests: start the built binary with a config, wait for a log
//! line, stop it with SIGTERM, and a config with one loopback route.
#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
