//! External drivers over a real mosquitto (issue 3): a vendor's message becomes records with
//! ids derived from its own message id, a re-sent message is not stored twice, and a message
//! that breaks the contract gets an error reply on the driver's error topic and is kept in the
//! dead-letter table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hub_config, start_connected, stop};
use hearth_test_kit::mosquitto::Mosquitto;

const THERMO: &str = r#"{"v":1,"id":"0d8f7c1e-6a4b-4f7e-9a61-3f4b1c2d5e6f","device":{"id":"TH-0042","manufacturer":"Acme","model":"RoomTherm 2"},"category":"welfare","readings":[{"mdc":8519694,"value":21.5,"unit":"Cel","time":"2024-05-01T12:00:00+02:00"}]}"#;
const BED: &str = r#"{"v":1,"id":"bed-77-evt-1552","device":{"id":"BED-77","model":"NightPad"},"category":"welfare","alarms":[{"type":"no_bed_return","state":"raised","time":"2024-05-02T02:14:00+02:00","sequence":1552}]}"#;
/// A typo'd key: the contract refuses unknown keys.
const TYPO: &str = r#"{"v":1,"id":"m-3","device":{"id":"TH-0042"},"readings":[{"mdc":8519694,"valeu":21.5,"unit":"Cel","time":"2024-05-01T12:00:00+02:00"}]}"#;

fn rows(path: &Path) -> Vec<(String, String, String, i64)> {
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, kind, source, copies FROM received ORDER BY first_ms, id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn vendor_messages_are_stored_once_and_bad_ones_are_answered() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("hearth.toml");
    let sources = "[[source]]\nname = \"vendors\"\nkind = \"external\"\ncategory = \"welfare\"\n\
                   [source.external]\ndrivers = [\"acme\"]\n";
    std::fs::write(&config, hub_config(&data, broker.port(), sources)).unwrap();
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config, &log);

    // The vendor listens for its errors.
    let errors = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args([
            "-t",
            "hearth/v1/driver/+/error",
            "-v",
            "-C",
            "2",
            "-W",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let send = |driver: &str, payload: &str| {
        broker.publish(&format!("hearth/v1/driver/{driver}/in"), payload, 1, false);
    };
    send("acme", THERMO);
    send("acme", BED);
    send("acme", THERMO); // re-sent: same id, nothing new
    send("acme", TYPO);
    send("rogue", THERMO); // not on the allow-list

    let out = errors.wait_with_output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout).to_string();
    let receiver = data.join("loopback-hub.db");
    let deadline = Instant::now() + Duration::from_secs(20);
    let records = |p: &Path| rows(p).into_iter().filter(|r| r.1 != "technical").count();
    while records(&receiver) < 2 {
        assert!(Instant::now() < deadline, "got {:?}", rows(&receiver));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(800));
    stop(child);

    let all = rows(&receiver);
    // The malformed and refused messages are dead letters, so the outbox may also have raised
    // its `dead_letters` technical alarm (issue 13); nothing else may have arrived.
    let (technical, got): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|r| r.1 == "technical");
    assert!(
        technical.iter().all(|r| r.2 == "outbox"),
        "only the outbox's own technical alarm: {all:?}"
    );
    assert_eq!(
        got.len(),
        2,
        "one reading and one alarm, the re-send is not new: {all:?}"
    );
    assert!(got.iter().any(|r| r.1 == "reading"), "{got:?}");
    assert!(got.iter().any(|r| r.1 == "alarm"), "{got:?}");
    // The re-sent message carried the same id: the outbox (if it still held the first copy) or
    // the receiver (which had it already) recognised it; either way it is one resource.
    let reading = got.iter().find(|r| r.1 == "reading").unwrap();
    assert_eq!(reading.2, "ext:acme:TH-0042");
    let stats = hearth_outbox::stats(&data.join("outbox.db")).unwrap();
    assert_eq!(
        reading.3 - 1 + stats.counter("duplicates"),
        1,
        "the re-send was seen as such once: {got:?} {:?}",
        stats.counters
    );
    assert_eq!(
        stats.counter("malformed:vendors"),
        2,
        "{:?}",
        stats.counters
    );

    // Both bad messages were answered on the sender's error topic, naming what is wrong.
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines.len(), 2, "{replies}");
    let (topic, body) = lines[0].split_once(' ').unwrap();
    assert_eq!(topic, "hearth/v1/driver/acme/error");
    let reply: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(reply["id"], "m-3");
    assert!(
        reply["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/readings/0"),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap().contains("valeu"),
        "{reply}"
    );
    let (topic, body) = lines[1].split_once(' ').unwrap();
    assert_eq!(topic, "hearth/v1/driver/rogue/error");
    assert!(body.contains("not allowed"), "{body}");
}

#[test]
fn the_example_driver_delivers_its_readings_through_hearth() {
    let python = std::env::var("HEARTH_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let has_paho = Command::new(&python)
        .args(["-c", "import paho.mqtt.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_paho {
        assert!(
            std::env::var_os("HEARTH_REQUIRE_JSONSCHEMA").is_none(),
            "{python} lacks paho-mqtt (Debian: python3-paho-mqtt), and CI requires it"
        );
        eprintln!("SKIPPED: {python} lacks paho-mqtt; install python3-paho-mqtt to run this test");
        return;
    }
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("hearth.toml");
    let sources = "[[source]]\nname = \"vendors\"\nkind = \"external\"\ncategory = \"welfare\"\n";
    std::fs::write(&config, hub_config(&data, broker.port(), sources)).unwrap();
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config, &log);
    let out = Command::new(&python)
        .arg("drivers/examples/external-thermometer/thermometer.py")
        .args(["--host", "127.0.0.1", "--port", &broker.port().to_string()])
        .args(["--count", "7", "--interval", "0.05", "--linger", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the example driver failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let receiver = data.join("loopback-hub.db");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows(&receiver).len() < 7 {
        assert!(Instant::now() < deadline, "got {:?}", rows(&receiver));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    let got = rows(&receiver);
    assert_eq!(got.len(), 7, "{got:?}");
    assert!(
        got.iter()
            .all(|r| r.1 == "reading" && r.2.starts_with("ext:example_thermo:")),
        "{got:?}"
    );
}
