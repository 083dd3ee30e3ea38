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

/// Runs openssl in `dir`; panics with its stderr.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (install the openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test PKI in `dir`: `ca.pem`, `server.pem`/`server.key` for localhost and 127.0.0.1, and
/// `client.pem`/`client.key` (the gateway's client certificate), all signed by the CA.
pub fn pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hearth test CA",
        ],
    );
    for (name, ext) in [
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN=hearth-{name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}
