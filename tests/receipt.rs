//! The receipt signal (A2), black box: a real mosquitto, the hearth binary with a zigbee2mqtt
//! source and an alarm route (SCAIP over SIP), and SIPp playing the response centre
//! (`crates/sip/tests/sipp/*.xml`). An SOS press published on the broker reaches the centre;
//! its `snu`=0 answer makes hearth publish the confirmed signal on the siren's
//! `zigbee2mqtt/<device>/set` topic, which `mosquitto_sub` sees. A centre that never answers
//! gives the failing signal (strobe only) instead.
//!
//! SCAIP over HTTPS with hearth's own receiver in centre mode is not in this build yet
//! (`crates/receiver` has no SCAIP module); SIPp is the centre here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{start_connected, stop, wait_for_log};
use hearth_test_kit::mosquitto::Mosquitto;

const DEADLINE: Duration = Duration::from_secs(60);
const USER: &str = "unit17";
const PASSWORD: &str = "correct horse";

/// SIPp as the centre on a free loopback TCP port; killed when dropped.
struct Centre {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Centre {
    fn start(scenario: &str) -> Centre {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/sip/tests/sipp")
            .join(scenario);
        std::fs::copy(&source, dir.path().join(scenario)).unwrap();
        let port = hearth_test_kit::mosquitto::free_port();
        let child = Command::new("sipp")
            .current_dir(dir.path())
            .args(["-sf", scenario, "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-t", "t1", "-m", "2", "-timeout", "90s", "-nostdin"])
            .args(["-key", "auth_user", USER, "-key", "auth_pass", PASSWORD])
            .args(["-key", "target_user", USER])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sipp (Debian package sip-tester): {e}"));
        // SIPp opens its socket shortly after it starts.
        let deadline = std::time::Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sipp did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Centre {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Centre {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon config: the broker, a zigbee2mqtt source whose SOS button belongs to Patient/7,
/// an alarm route to the centre at `centre_port`, and `[receipt]` with a siren (Patient/7 gets
/// `very_high` for 3 s).
fn config(dir: &Path, mqtt_port: u16, centre_port: u16) -> PathBuf {
    let password = dir.join("arc.password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let text = format!(
        r#"
[gateway]
data_dir = "{data}"
time_zone = "Europe/Oslo"

[mqtt]
port = {mqtt_port}

[receipt]
strength = "low"
duration = "10s"

[[receipt.indicator]]
kind = "siren"
device = "hall/siren"

[[receipt.person]]
person = "Patient/7"
strength = "very_high"
duration = "3s"

[[route]]
name = "centre"
categories = ["health", "welfare", "administrative"]
uplink = "scaip"

[route.scaip]
account = "123456"
heartbeat = "0s"
answer_timeout = "2s"
resend_every = "1s"

[[route.scaip.receiver]]
name = "arc"
protocol = "sip"
to = "sip:arc@arc.test"
registrar = "127.0.0.1:{centre_port}"
transport = "tcp"
user = "{USER}"
domain = "arc.test"
password_file = "{password}"

[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
category = "welfare"

[[source.zigbee2mqtt.device]]
name = "sos button"
person = "Patient/7"
"#,
        data = dir.join("data").display(),
        password = password.display(),
    );
    let path = dir.join("hearth.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn press_sos(broker: &Mosquitto) {
    broker.publish(
        "zigbee2mqtt/sos button",
        r#"{"action":"emergency","battery":95,"linkquality":120}"#,
        1,
        false,
    );
}

fn payload(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn an_sos_press_handled_by_the_centre_sounds_the_siren_at_the_persons_strength() {
    let broker = Mosquitto::start();
    let centre = Centre::start("centre.xml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config(dir.path(), broker.port(), centre.port), &log);
    let siren = broker.subscribe("zigbee2mqtt/hall/siren/set");

    press_sos(&broker);

    let (topic, text) = siren
        .next(DEADLINE)
        .unwrap_or_else(|| panic!("no receipt on the siren; log {}", log.display()));
    assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
    let p = payload(&text);
    assert_eq!(p["warning"]["mode"], "emergency", "{text}");
    assert_eq!(p["warning"]["level"], "very_high", "{text}");
    assert_eq!(p["warning"]["duration"], 3, "{text}");
    wait_for_log(&log, "alarm handled by the response centre");
    wait_for_log(&log, "receipt signal");
    stop(child);
    // The person never appears in the log.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Patient/7"), "the log names the person");
}

#[test]
fn a_centre_that_never_answers_gives_the_failing_signal_without_sound() {
    let broker = Mosquitto::start();
    let centre = Centre::start("silent_centre.xml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config(dir.path(), broker.port(), centre.port), &log);
    let siren = broker.subscribe("zigbee2mqtt/hall/siren/set");

    press_sos(&broker);

    let (_, text) = siren
        .next(DEADLINE)
        .unwrap_or_else(|| panic!("no failing signal on the siren; log {}", log.display()));
    let p = payload(&text);
    assert_eq!(p["warning"]["mode"], "stop", "{text}");
    assert_eq!(p["warning"]["strobe"], true, "{text}");
    stop(child);
}
