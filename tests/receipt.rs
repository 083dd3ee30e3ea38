//! The receipt signal (A2), black box: a real mosquitto, the hearth binary with a zigbee2mqtt
//! source and an alarm route, and a response centre: hearth's own receiver in SCAIP-over-HTTPS
//! centre mode (mutual TLS, bearer token), and SIPp for SCAIP over SIP
//! (`crates/sip/tests/sipp/*.xml`). An SOS press published on the broker reaches the centre;
//! its `snu`=0 answer makes hearth publish the confirmed signal on the siren's
//! `zigbee2mqtt/<device>/set` topic, which `mosquitto_sub` sees. A centre that is busy or never
//! answers gives the failing signal (strobe only) first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use common::{
    CENTRE_TOKEN, gateway_toml, pki_home, runtime, scaip_https_centre, scaip_https_receiver_toml,
    scaip_route_toml, start_connected, stop, wait_for_log, write_config,
};
use hearth_receiver::{RunningReceiver, ScaipFault, ScaipFaults};
use hearth_test_kit::mosquitto::{Mosquitto, Subscription};
use hearth_test_kit::sipp::{Sipp, SippTransport};

const DEADLINE: Duration = Duration::from_secs(60);
const USER: &str = "unit17";
const PASSWORD: &str = "correct horse";

/// SIPp playing the centre from `crates/sip/tests/sipp/<scenario>` over TCP on loopback,
/// listening when this returns; killed when dropped.
fn sip_centre(scenario: &str) -> Sipp {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/sip/tests/sipp")
        .join(scenario);
    let sipp = Sipp::builder(path)
        .transport(SippTransport::Tcp)
        .calls(2)
        .key("auth_user", USER)
        .key("auth_pass", PASSWORD)
        .key("target_user", USER)
        .timeout(Duration::from_secs(90))
        .start();
    let deadline = std::time::Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(("127.0.0.1", sipp.port())).is_err() {
        assert!(std::time::Instant::now() < deadline, "sipp did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    sipp
}

/// `[[route.scaip.receiver]]` for the HTTPS centre, with its PKI under `dir/pki`.
fn https_receiver(dir: &Path, centre: &RunningReceiver) -> String {
    let token = dir.join("centre.token");
    std::fs::write(&token, format!("{CENTRE_TOKEN}\n")).unwrap();
    scaip_https_receiver_toml("arc", centre, &dir.join("pki"), &token)
}

/// `[[route.scaip.receiver]]` for SIPp on `port` (SIP over TCP on loopback).
fn sip_receiver(dir: &Path, port: u16) -> String {
    let password = dir.join("arc.password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    format!(
        r#"
[[route.scaip.receiver]]
name = "arc"
protocol = "sip"
to = "sip:arc@arc.test"
registrar = "127.0.0.1:{port}"
transport = "tcp"
user = "{USER}"
domain = "arc.test"
password_file = "{password}"
"#,
        password = password.display(),
    )
}

/// A daemon config: the broker, a zigbee2mqtt source whose SOS button belongs to Patient/7,
/// an alarm route to `receivers`, and `[receipt]` with a siren and a light (Patient/7 gets
/// `very_high` for 3 s).
fn config(dir: &Path, mqtt_port: u16, receivers: &str) -> PathBuf {
    let text = format!(
        r#"{gateway}
[receipt]
strength = "low"
duration = "10s"

[[receipt.indicator]]
kind = "siren"
device = "hall/siren"

[[receipt.indicator]]
kind = "light"
device = "hall/lamp"

[[receipt.person]]
person = "Patient/7"
strength = "very_high"
duration = "3s"
{route}
[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
category = "welfare"

[[source.zigbee2mqtt.device]]
name = "sos button"
person = "Patient/7"
"#,
        gateway = gateway_toml(&dir.join("data"), mqtt_port),
        route = scaip_route_toml("2s", receivers),
    );
    write_config(dir, &text)
}

fn press_sos(broker: &Mosquitto) {
    broker.publish(
        "zigbee2mqtt/sos button",
        r#"{"action":"emergency","battery":95,"linkquality":120}"#,
        1,
        false,
    );
}

/// hearth with `receivers` (config and log in `dir`) connected to `broker`, and `topic`
/// subscribed; then the SOS press. Returns the daemon, the subscription and the daemon's log.
fn press_sos_with(
    dir: &Path,
    broker: &Mosquitto,
    receivers: &str,
    topic: &str,
) -> (Child, Subscription, PathBuf) {
    let log = dir.join("hearth.log");
    let child = start_connected(&config(dir, broker.port(), receivers), &log);
    let signals = broker.subscribe(topic);
    press_sos(broker);
    (child, signals, log)
}

/// SIPp playing `scenario` as the centre, hearth to it over SIP and the SOS press; `check` gets
/// the siren's subscription and the daemon's log, then hearth is stopped.
fn sos_over_sip(scenario: &str, check: impl FnOnce(&Subscription, &Path)) {
    let broker = Mosquitto::start();
    let centre = sip_centre(scenario);
    let dir = tempfile::tempdir().unwrap();
    let receivers = sip_receiver(dir.path(), centre.port());
    let (child, siren, log) = press_sos_with(
        dir.path(),
        &broker,
        &receivers,
        "zigbee2mqtt/hall/siren/set",
    );
    check(&siren, &log);
    stop(child);
}

fn payload(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The next message on `sub` as (topic, JSON payload); the failure names the daemon's log.
fn next(sub: &Subscription, log: &Path) -> (String, serde_json::Value) {
    let (topic, text) = sub
        .next(DEADLINE)
        .unwrap_or_else(|| panic!("no receipt signal; log {}", log.display()));
    (topic, payload(&text))
}

#[test]
fn an_sos_press_handled_by_the_https_centre_gives_the_confirmed_signal_at_the_persons_strength() {
    let rt = runtime();
    let dir = pki_home();
    let store = dir.path().join("centre.db");
    let arc = scaip_https_centre(&rt, &dir.path().join("pki"), &store, ScaipFaults::default());
    let broker = Mosquitto::start();
    let receivers = https_receiver(dir.path(), &arc);
    let (child, signals, log) =
        press_sos_with(dir.path(), &broker, &receivers, "zigbee2mqtt/hall/+/set");

    // One confirmed signal per indicator, in configuration order.
    let (topic, siren) = next(&signals, &log);
    assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
    assert_eq!(siren["warning"]["mode"], "emergency", "{siren}");
    assert_eq!(siren["warning"]["level"], "very_high", "{siren}");
    assert_eq!(siren["warning"]["duration"], 3, "{siren}");
    let (topic, light) = next(&signals, &log);
    assert_eq!(topic, "zigbee2mqtt/hall/lamp/set");
    assert_eq!(light["state"], "ON", "{light}");
    assert_eq!(light["color"]["hex"], "#00FF00", "{light}");
    assert_eq!(light["brightness"], 254, "{light}");
    // Then the light goes off after the duration.
    let (topic, off) = next(&signals, &log);
    assert_eq!(topic, "zigbee2mqtt/hall/lamp/set");
    assert_eq!(off["state"], "OFF", "{off}");

    let requests = hearth_receiver::scaip_requests(&store).unwrap();
    assert!(requests.iter().any(|r| r.snu == Some(0)), "{requests:#?}");
    wait_for_log(&log, "receipt signal");
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Patient/7"), "the log names the person");
}

#[test]
fn a_busy_centre_gives_the_failing_signal_then_the_confirmed_one() {
    let rt = runtime();
    let dir = pki_home();
    let store = dir.path().join("centre.db");
    // Busy (snu=6) for the first request of the alarm, then handled.
    let faults = ScaipFaults {
        fault: Some(ScaipFault::Busy),
        times: Some(1),
    };
    let arc = scaip_https_centre(&rt, &dir.path().join("pki"), &store, faults);
    let broker = Mosquitto::start();
    let receivers = https_receiver(dir.path(), &arc);
    let (child, siren, log) = press_sos_with(
        dir.path(),
        &broker,
        &receivers,
        "zigbee2mqtt/hall/siren/set",
    );

    let (_, failing) = next(&siren, &log);
    assert_eq!(failing["warning"]["mode"], "stop", "strobe only: {failing}");
    assert_eq!(failing["warning"]["strobe"], true, "{failing}");
    let (_, confirmed) = next(&siren, &log);
    assert_eq!(confirmed["warning"]["mode"], "emergency", "{confirmed}");
    assert_eq!(confirmed["warning"]["level"], "very_high", "{confirmed}");
    stop(child);
}

#[test]
fn an_sos_press_handled_over_sip_gives_the_confirmed_signal() {
    sos_over_sip("centre.xml", |siren, log| {
        let (topic, p) = next(siren, log);
        assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
        assert_eq!(p["warning"]["mode"], "emergency", "{p}");
        assert_eq!(p["warning"]["level"], "very_high", "{p}");
        wait_for_log(log, "alarm handled by the response centre");
    });
}

#[test]
fn a_sip_centre_that_never_answers_gives_the_failing_signal_without_sound() {
    sos_over_sip("silent_centre.xml", |siren, log| {
        let (_, p) = next(siren, log);
        assert_eq!(p["warning"]["mode"], "stop", "{p}");
        assert_eq!(p["warning"]["strobe"], true, "{p}");
    });
}
