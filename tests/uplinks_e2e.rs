//! End to end through both uplinks (issue 4): 10 000 readings in the outbox, the daemon
//! delivering them as FHIR transaction Bundles and as PCD-01 messages over mutual TLS to the
//! reference receiver, which injects faults (503/AE, resets, garbage answers) and is down for
//! 30 s. The receiver must end with exactly 10 000 unique observations per format and nothing
//! created twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::time::Duration;

use common::{
    assert_each_format_stored, prefill_outbox, runtime, start, stop, wait_drained, write_config,
};
use hearth_model::{DeviceId, Mdc, Value};
use hearth_test_kit::pki::pki;

const READINGS: u64 = 10_000;

/// Four kinds of reading in turn (temperature, weight, SpO2, pulse), from eight devices.
fn prefill(path: &std::path::Path) {
    let kinds = [
        (150_364u32, "Cel", 36.0, 1u8),
        (188_736, "kg", 70.0, 1),
        (150_456, "%", 95.0, 0),
        (149_530, "/min", 60.0, 0),
    ];
    prefill_outbox(
        path,
        &["fhir", "pcd01"],
        false,
        "Patient/e2e-1",
        READINGS,
        |i| {
            let (mdc, unit, base, decimals) = kinds[(i % 4) as usize];
            let device = DeviceId::new("ble", &format!("00112233445566{:02x}", i % 8)).unwrap();
            let value = base + (i % 10) as f64 / if decimals == 1 { 10.0 } else { 1.0 };
            let value = Value::numeric_with_decimals(value, decimals);
            (device, Mdc(mdc), value, unit)
        },
    );
}

#[test]
fn ten_thousand_readings_reach_both_formats_once_through_faults_and_a_30_s_outage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    prefill(&data.join("outbox.db"));

    let rt = runtime();
    let store = d.join("receiver.db");
    let mut cfg = hearth_receiver::ReceiverConfig::new(&store);
    cfg.tls = Some(hearth_receiver::ServerTls {
        cert: d.join("server.pem"),
        key: d.join("server.key"),
        client_ca: Some(d.join("ca.pem")),
    });
    cfg.faults = hearth_receiver::Faults {
        error_rate: 0.10,
        reset_rate: 0.05,
        garbage_rate: 0.03,
        latency: Duration::ZERO,
        down: vec![(Duration::from_secs(2), Duration::from_secs(30))],
        seed: 7,
    };
    let receiver = rt.block_on(hearth_receiver::start(cfg)).unwrap();
    let (fhir, mllp) = (receiver.fhir_addr().unwrap(), receiver.mllp_addr().unwrap());

    let tls = format!(
        "[route.tls]\nca_file = \"{ca}\"\nclient_cert = \"{c}\"\nclient_key = \"{k}\"\n",
        ca = d.join("ca.pem").display(),
        c = d.join("client.pem").display(),
        k = d.join("client.key").display()
    );
    let config = write_config(
        d,
        &format!(
            r#"
[gateway]
id = "e2e-gateway"
data_dir = "{data}"

[retry]
initial = "200ms"
max = "2s"

[[route]]
name = "fhir"
categories = ["health"]
uplink = "fhir"
batch_size = 200
[route.fhir]
url = "https://localhost:{fport}/fhir"
timeout = "5s"
{tls}
[[route]]
name = "pcd01"
categories = ["health"]
uplink = "pcd01"
batch_size = 200
[route.pcd01]
host = "localhost"
port = {mport}
timeout = "5s"
{tls}"#,
            data = data.display(),
            fport = fhir.port(),
            mport = mllp.port(),
        ),
    );
    let log = d.join("hearth.log");
    let child = start(&config, &log);
    wait_drained(&data, &log, 240);
    stop(child);
    rt.block_on(receiver.shutdown());

    let s = hearth_receiver::summary(&store).unwrap();
    eprintln!("{s}");
    assert_each_format_stored(&s, READINGS);
    assert!(
        s.fhir.faults_injected() > 0 && s.mllp.faults_injected() > 0,
        "{s}"
    );
    let outbox = hearth_outbox::stats(&data.join("outbox.db")).unwrap();
    assert_eq!(
        outbox.counter("delivered:fhir"),
        READINGS as i64,
        "{:?}",
        outbox.counters
    );
    assert_eq!(
        outbox.counter("delivered:pcd01"),
        READINGS as i64,
        "{:?}",
        outbox.counters
    );
}

/// Issue 6: what the daemon writes in a PCD-01 message comes from the box and the route: MSH-3
/// carries the gateway's EUI-64, a reading without a person is about `[route.pcd01] patient`
/// (PID-3 a CX with its assigning authority), and `ack_mode`, `processing_id` and
/// `universal_service` reach MSH-15/16, MSH-11 and OBR-4.
#[test]
fn issue_6_a_pcd01_message_names_the_gateway_the_route_patient_and_the_configured_header() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[gateway]
data_dir = "{data}"
eui64 = "02-1A-2B-3C-4D-5E-6F-70"

[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "pcd01"
[route.pcd01]
host = "127.0.0.1"
port = {port}
tls = false
patient = "urn:oid:2.16.578.1.12.4.1.4.1|13116900216"
ack_mode = "application"
processing_id = "T"
universal_service = "182777000^monitoring of patient^SCT"

[[source]]
name = "sim"
kind = "simulated"
[source.simulated]
devices = 1
interval = "100ms"
"#,
            data = dir.path().display()
        ),
    );
    let log = dir.path().join("log");
    let child = start(&config, &log);
    listener.set_nonblocking(false).unwrap();
    let (mut tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut d = hearth_uplink_pcd01::Deframer::default();
    let mut buf = [0u8; 8192];
    let frame = loop {
        if let Some(f) = d.next_frame() {
            break String::from_utf8(f.unwrap()).unwrap();
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "hearth closed the connection");
        d.push(&buf[..n]);
    };
    let seg = |name: &str| -> Vec<String> {
        frame
            .split('\r')
            .find(|s| s.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {frame}"))
            .split('|')
            .map(str::to_owned)
            .collect()
    };
    let msh = seg("MSH");
    let cid = msh[9].clone();
    let ack =
        format!("MSH|^~\\&|R||HEARTH||20250101000000+0000||ACK^R01^ACK|A1|T|2.6\rMSA|AA|{cid}\r");
    let _ = tcp.write_all(&hearth_uplink_pcd01::mllp::frame_bytes(ack.as_bytes()));
    stop(child);
    assert_eq!(msh[2], "HEARTH^021A2B3C4D5E6F70^EUI-64", "{frame}");
    assert_eq!(
        (msh[10].as_str(), msh[14].as_str(), msh[15].as_str()),
        ("T", "NE", "AL")
    );
    assert_eq!(
        seg("PID")[3],
        "13116900216^^^FNR&2.16.578.1.12.4.1.4.1&ISO^NNNOR"
    );
    assert_eq!(seg("OBR")[4], "182777000^monitoring of patient^SCT");
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("13116900216"),
        "the patient id is never logged"
    );
}
