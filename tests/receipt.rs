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
use std::time::Duration;

use common::{runtime, start_connected, stop, wait_for_log};
use hearth_receiver::{ReceiverConfig, RunningReceiver, ScaipEndpoint, ScaipFault, ScaipFaults};
use hearth_test_kit::mosquitto::Mosquitto;
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

const TOKEN: &str = "centre-token-1";

/// A response centre: hearth's receiver with only its SCAIP-over-HTTPS endpoint, mutual TLS.
fn https_centre(
    rt: &tokio::runtime::Runtime,
    pki: &Path,
    store: &Path,
    faults: ScaipFaults,
) -> RunningReceiver {
    let mut cfg = ReceiverConfig::new(store);
    cfg.fhir = None;
    cfg.mllp = None;
    cfg.tls = Some(hearth_receiver::ServerTls {
        cert: pki.join("server.pem"),
        key: pki.join("server.key"),
        client_ca: Some(pki.join("ca.pem")),
    });
    let mut endpoint = ScaipEndpoint::loopback();
    endpoint.bearer = Some(TOKEN.into());
    endpoint.faults = faults;
    cfg.scaip = Some(endpoint);
    rt.block_on(hearth_receiver::start(cfg)).unwrap()
}

/// `[[route.scaip.receiver]]` for the HTTPS centre, with its PKI under `dir/pki`.
fn https_receiver(dir: &Path, centre: &RunningReceiver) -> String {
    let pki = dir.join("pki");
    let token = dir.join("centre.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    format!(
        r#"
[[route.scaip.receiver]]
name = "arc"
protocol = "https"
url = "https://localhost:{port}/scaip"
token_file = "{token}"
[route.scaip.receiver.tls]
ca_file = "{pki}/ca.pem"
client_cert = "{pki}/client.pem"
client_key = "{pki}/client.key"
"#,
        port = centre.scaip_addr().unwrap().port(),
        token = token.display(),
        pki = pki.display(),
    )
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

/// A temporary home with its test PKI.
fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    hearth_test_kit::pki::pki(&pki);
    dir
}

/// A daemon config: the broker, a zigbee2mqtt source whose SOS button belongs to Patient/7,
/// an alarm route to `receivers`, and `[receipt]` with a siren and a light (Patient/7 gets
/// `very_high` for 3 s).
fn config(dir: &Path, mqtt_port: u16, receivers: &str) -> PathBuf {
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

[[receipt.indicator]]
kind = "light"
device = "hall/lamp"

[[receipt.person]]
person = "Patient/7"
strength = "very_high"
duration = "3s"

[[route]]
name = "centre"
categories = ["health", "welfare", "administrative"]
uplink = "scaip"
[route.retry]
initial = "200ms"
max = "1s"
[route.scaip]
account = "4711"
heartbeat = "0s"
answer_timeout = "2s"
resend_every = "1s"
{receivers}
[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
category = "welfare"

[[source.zigbee2mqtt.device]]
name = "sos button"
person = "Patient/7"
"#,
        data = dir.join("data").display(),
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

/// The next message on `sub` as (topic, JSON payload); the failure names the daemon's log.
fn next(sub: &hearth_test_kit::mosquitto::Subscription, log: &Path) -> (String, serde_json::Value) {
    let (topic, text) = sub
        .next(DEADLINE)
        .unwrap_or_else(|| panic!("no receipt signal; log {}", log.display()));
    (topic, payload(&text))
}

#[test]
fn an_sos_press_handled_by_the_https_centre_gives_the_confirmed_signal_at_the_persons_strength() {
    let rt = runtime();
    let dir = home();
    let store = dir.path().join("centre.db");
    let arc = https_centre(&rt, &dir.path().join("pki"), &store, ScaipFaults::default());
    let broker = Mosquitto::start();
    let receivers = https_receiver(dir.path(), &arc);
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config(dir.path(), broker.port(), &receivers), &log);
    let signals = broker.subscribe("zigbee2mqtt/hall/+/set");

    press_sos(&broker);

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
    let dir = home();
    let store = dir.path().join("centre.db");
    // Busy (snu=6) for the first request of the alarm, then handled.
    let faults = ScaipFaults {
        fault: Some(ScaipFault::Busy),
        times: Some(1),
    };
    let arc = https_centre(&rt, &dir.path().join("pki"), &store, faults);
    let broker = Mosquitto::start();
    let receivers = https_receiver(dir.path(), &arc);
    let log = dir.path().join("hearth.log");
    let child = start_connected(&config(dir.path(), broker.port(), &receivers), &log);
    let siren = broker.subscribe("zigbee2mqtt/hall/siren/set");

    press_sos(&broker);

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
    let broker = Mosquitto::start();
    let centre = sip_centre("centre.xml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hearth.log");
    let receivers = sip_receiver(dir.path(), centre.port());
    let child = start_connected(&config(dir.path(), broker.port(), &receivers), &log);
    let siren = broker.subscribe("zigbee2mqtt/hall/siren/set");

    press_sos(&broker);

    let (topic, p) = next(&siren, &log);
    assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
    assert_eq!(p["warning"]["mode"], "emergency", "{p}");
    assert_eq!(p["warning"]["level"], "very_high", "{p}");
    wait_for_log(&log, "alarm handled by the response centre");
    stop(child);
}

#[test]
fn a_sip_centre_that_never_answers_gives_the_failing_signal_without_sound() {
    let broker = Mosquitto::start();
    let centre = sip_centre("silent_centre.xml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hearth.log");
    let receivers = sip_receiver(dir.path(), centre.port());
    let child = start_connected(&config(dir.path(), broker.port(), &receivers), &log);
    let siren = broker.subscribe("zigbee2mqtt/hall/siren/set");

    press_sos(&broker);

    let (_, p) = next(&siren, &log);
    assert_eq!(p["warning"]["mode"], "stop", "{p}");
    assert_eq!(p["warning"]["strobe"], true, "{p}");
    stop(child);
}
