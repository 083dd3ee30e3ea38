//! Safety alarms end to end (issue 15): a real mosquitto, the hearth binary with a zigbee2mqtt
//! source and an alarm route (`uplink = "scaip"`), and hearth's reference receiver as the
//! response centre over SCAIP-over-HTTPS with mutual TLS and a bearer token. An SOS press
//! reaches the centre once, is logged (`hearth alarms log`), a busy primary hands over to the
//! alternative, and a kill -9 while the centre holds the request on the line ends, after the
//! restart, with the same ref handled once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    CENTRE_TOKEN, gateway_toml, pki_home, runtime, scaip_https_centre, scaip_https_receiver_toml,
    scaip_route_toml, start_connected, stop, wait_drained,
};
use hearth_receiver::{ScaipFault, ScaipFaults};
use hearth_test_kit::mosquitto::Mosquitto;

const BRIDGE_DEVICES: &str = r#"[
 {"ieee_address":"0x00158d0001a2b3c4","friendly_name":"hall/button","type":"EndDevice","network_address":11041,"supported":true,"definition":{"model":"SBTZB-110","vendor":"Frient","description":"Smart button","exposes":[]}}
]"#;

/// hearth with a zigbee2mqtt source whose `hall/button` is an SOS button, and an alarm route
/// to `receivers` (TOML of `[[route.scaip.receiver]]` tables) in order.
fn config(data: &Path, mqtt_port: u16, receivers: &str) -> String {
    format!(
        r#"{gateway}{route}
[[route.scaip.device]]
id = "zigbee:00158d0001a2b3c4"
type = 4
component = 2
location = 21
text = "Hall button"

[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
category = "health"
[source.zigbee2mqtt]
[[source.zigbee2mqtt.rule]]
property = "action"
emit = "alarm"
type = "emergency"
device = "hall/button"
when = ["single"]
momentary = true
"#,
        gateway = gateway_toml(data, mqtt_port),
        route = scaip_route_toml("3s", receivers),
    )
}

struct Home {
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    log: PathBuf,
    pki: PathBuf,
    token: PathBuf,
}

fn home() -> Home {
    let dir = pki_home();
    let pki = dir.path().join("pki");
    let token = dir.path().join("centre.token");
    std::fs::write(&token, format!("{CENTRE_TOKEN}\n")).unwrap();
    Home {
        data: dir.path().join("data"),
        config: dir.path().join("hearth.toml"),
        log: dir.path().join("hearth.log"),
        pki,
        token,
        _dir: dir,
    }
}

fn press(broker: &Mosquitto) {
    broker.publish(
        "zigbee2mqtt/hall/button",
        r#"{"action":"single","battery":100}"#,
        1,
        false,
    );
}

/// Wait (at most `secs`) until the centre's store satisfies `done`.
fn wait_centre(
    store: &Path,
    secs: u64,
    what: &str,
    done: impl Fn(&[hearth_receiver::ScaipRequest]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let requests = hearth_receiver::scaip_requests(store).unwrap_or_default();
        if done(&requests) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the centre got {requests:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alarms_log(data: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["alarms", "log", "--json", "--limit", "0", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn an_sos_press_reaches_the_centre_once_and_is_logged() {
    let rt = runtime();
    let h = home();
    let store = h.data.with_file_name("centre.db");
    let arc = scaip_https_centre(&rt, &h.pki, &store, ScaipFaults::default());
    let broker = Mosquitto::start();
    broker.publish("zigbee2mqtt/bridge/devices", BRIDGE_DEVICES, 1, true);
    let receivers = scaip_https_receiver_toml("arc", &arc, &h.pki, &h.token);
    std::fs::write(&h.config, config(&h.data, broker.port(), &receivers)).unwrap();
    let child = start_connected(&h.config, &h.log);

    press(&broker);
    wait_centre(&store, 30, "one alarm", |r| {
        r.iter().any(|x| x.snu == Some(0))
    });
    wait_drained(&h.data, &h.log, 30);
    stop(child);

    let requests = hearth_receiver::scaip_requests(&store).unwrap();
    let alarm: Vec<_> = requests
        .iter()
        .filter(|r| r.message_type.as_deref() != Some("PI"))
        .collect();
    assert_eq!(alarm.len(), 1, "{requests:#?}");
    let a = alarm[0];
    assert_eq!(a.caller_id.as_deref(), Some("4711"));
    assert_eq!(
        a.device_type,
        Some(4),
        "the role from [[route.scaip.device]]"
    );
    assert_eq!(a.status_code, Some(10), "a manual alarm");
    assert_eq!(a.reference.as_ref().map(String::len), Some(16));

    let log = alarms_log(&h.data);
    let events: Vec<&str> = log.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        events.contains(&"attempt") && events.contains(&"handled"),
        "{log:#?}"
    );
    let handled = log.iter().find(|e| e["event"] == "handled").unwrap();
    assert_eq!(handled["receiver"], "arc");
    assert_eq!(handled["reference"].as_str(), a.reference.as_deref());
    assert_eq!(handled["detail"]["kind"], "emergency");
    rt.block_on(arc.shutdown());
}

#[test]
fn a_busy_primary_hands_the_alarm_to_the_alternative() {
    let rt = runtime();
    let h = home();
    let primary_store = h.data.with_file_name("primary.db");
    let alternative_store = h.data.with_file_name("alternative.db");
    let primary = scaip_https_centre(
        &rt,
        &h.pki,
        &primary_store,
        ScaipFaults::always(ScaipFault::Busy),
    );
    let alternative = scaip_https_centre(&rt, &h.pki, &alternative_store, ScaipFaults::default());
    let broker = Mosquitto::start();
    broker.publish("zigbee2mqtt/bridge/devices", BRIDGE_DEVICES, 1, true);
    let receivers = scaip_https_receiver_toml("primary", &primary, &h.pki, &h.token)
        + &scaip_https_receiver_toml("alternative", &alternative, &h.pki, &h.token);
    std::fs::write(&h.config, config(&h.data, broker.port(), &receivers)).unwrap();
    let child = start_connected(&h.config, &h.log);

    press(&broker);
    wait_centre(&alternative_store, 30, "handled by the alternative", |r| {
        r.iter().any(|x| x.snu == Some(0))
    });
    wait_drained(&h.data, &h.log, 30);
    stop(child);
    let at_primary = hearth_receiver::scaip_requests(&primary_store).unwrap();
    assert!(
        at_primary.iter().all(|r| r.snu == Some(6)),
        "{at_primary:#?}"
    );
    let log = alarms_log(&h.data);
    let order: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["receiver"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let busy = order
        .iter()
        .position(|(e, r)| e == "attempt" && r == "primary")
        .unwrap();
    let handled = order
        .iter()
        .position(|(e, r)| e == "handled" && r == "alternative")
        .unwrap();
    assert!(busy < handled, "{order:?}");
    rt.block_on(primary.shutdown());
    rt.block_on(alternative.shutdown());
}

/// Kill -9 while the centre keeps the alarm's request on the line: after the restart the alarm
/// is sent again with the same ref, the centre counts a repeat, not a second event, and the
/// outbox settles it once.
#[test]
fn kill_9_during_an_alarm_delivers_it_after_the_restart_once_with_the_same_ref() {
    let rt = runtime();
    let h = home();
    let store = h.data.with_file_name("centre.db");
    let arc = scaip_https_centre(&rt, &h.pki, &store, ScaipFaults::first(1, ScaipFault::Hang));
    let broker = Mosquitto::start();
    broker.publish("zigbee2mqtt/bridge/devices", BRIDGE_DEVICES, 1, true);
    let receivers = scaip_https_receiver_toml("arc", &arc, &h.pki, &h.token);
    // A long answer timeout: the first request hangs until the kill.
    let text = config(&h.data, broker.port(), &receivers)
        .replace("answer_timeout = \"3s\"", "answer_timeout = \"60s\"")
        .replace("resend_every = \"1s\"", "resend_every = \"60s\"");
    std::fs::write(&h.config, text).unwrap();
    let mut child = start_connected(&h.config, &h.log);

    press(&broker);
    wait_centre(&store, 30, "the first request on the line", |r| {
        !r.is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let child = start_connected(&h.config, &h.log);
    wait_centre(&store, 60, "handled after the restart", |r| {
        r.iter().any(|x| x.snu == Some(0))
    });
    wait_drained(&h.data, &h.log, 30);
    stop(child);

    let requests = hearth_receiver::scaip_requests(&store).unwrap();
    let refs: std::collections::BTreeSet<_> = requests
        .iter()
        .filter_map(|r| r.reference.clone())
        .collect();
    assert_eq!(refs.len(), 1, "one event, one ref: {requests:#?}");
    assert!(requests.iter().skip(1).all(|r| r.repeat), "{requests:#?}");
    let summary = hearth_receiver::summary(&store).unwrap();
    assert_eq!(summary.scaip.events, 1, "{summary}");
    let handled = alarms_log(&h.data)
        .into_iter()
        .filter(|e| e["event"] == "handled")
        .count();
    assert_eq!(handled, 1);
    rt.block_on(arc.shutdown());
}
