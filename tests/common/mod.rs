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
        r#"{gateway}
[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "loopback"
batch_size = 500
{extra}"#,
        gateway = gateway_toml(data_dir, mqtt_port)
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

/// The `[gateway]` (data in `data_dir`, Oslo time) and `[mqtt]` (the broker on `mqtt_port`)
/// tables every daemon config starts with.
pub fn gateway_toml(data_dir: &Path, mqtt_port: u16) -> String {
    format!(
        r#"
[gateway]
data_dir = "{data}"
time_zone = "Europe/Oslo"

[mqtt]
port = {mqtt_port}
"#,
        data = data_dir.display()
    )
}

/// An alarm route `centre` for every category to SCAIP (account 4711, resend every 1 s, no
/// heartbeat), an answer due within `answer_timeout`, to `receivers` (TOML of
/// `[[route.scaip.receiver]]` tables) in order.
pub fn scaip_route_toml(answer_timeout: &str, receivers: &str) -> String {
    format!(
        r#"
[[route]]
name = "centre"
categories = ["health", "welfare", "administrative"]
uplink = "scaip"
[route.retry]
initial = "200ms"
max = "1s"
[route.scaip]
account = "4711"
answer_timeout = "{answer_timeout}"
resend_every = "1s"
heartbeat = "0s"
{receivers}"#
    )
}

/// The bearer token hearth's SCAIP-over-HTTPS response centre wants.
pub const CENTRE_TOKEN: &str = "centre-token-1";

/// A temporary home with the test kit's PKI under `pki/`.
pub fn pki_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    hearth_test_kit::pki::pki(&pki);
    dir
}

/// A response centre: hearth's receiver with only its SCAIP-over-HTTPS endpoint, mutual TLS
/// with the PKI in `pki`, the bearer `CENTRE_TOKEN`, storing in `store`, with `faults`.
pub fn scaip_https_centre(
    rt: &tokio::runtime::Runtime,
    pki: &Path,
    store: &Path,
    faults: hearth_receiver::ScaipFaults,
) -> hearth_receiver::RunningReceiver {
    let mut cfg = hearth_receiver::ReceiverConfig::new(store);
    cfg.fhir = None;
    cfg.mllp = None;
    cfg.tls = Some(hearth_receiver::ServerTls {
        cert: pki.join("server.pem"),
        key: pki.join("server.key"),
        client_ca: Some(pki.join("ca.pem")),
    });
    let mut endpoint = hearth_receiver::ScaipEndpoint::loopback();
    endpoint.bearer = Some(CENTRE_TOKEN.into());
    endpoint.faults = faults;
    cfg.scaip = Some(endpoint);
    rt.block_on(hearth_receiver::start(cfg)).unwrap()
}

/// `[[route.scaip.receiver]]` `name` for the HTTPS `centre`: the PKI in `pki`, the token in
/// the file `token`.
pub fn scaip_https_receiver_toml(
    name: &str,
    centre: &hearth_receiver::RunningReceiver,
    pki: &Path,
    token: &Path,
) -> String {
    format!(
        r#"
[[route.scaip.receiver]]
name = "{name}"
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
