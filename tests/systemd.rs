//! The daemon speaks sd_notify like a Type=notify service: READY=1 once started, WATCHDOG=1
//! while its critical tasks live, STATUS= lines, STOPPING=1 on SIGTERM, then exit 0. A Unix
//! datagram socket stands in for systemd's NOTIFY_SOCKET.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn notifies_ready_pings_the_watchdog_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\ndata_dir = \"{}\"\n[[route]]\nname = \"hub\"\ncategories = [\"health\", \"welfare\", \"administrative\"]\nuplink = \"loopback\"\n[[source]]\nname = \"sim\"\nkind = \"simulated\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut seen: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let t = Instant::now();
    let mut stopped = false;
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
        let pings = seen.iter().filter(|l| *l == "WATCHDOG=1").count();
        if !stopped && seen.iter().any(|l| l == "READY=1") && pings >= 3 {
            let ok = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(ok.success());
            stopped = true;
        }
        if stopped && seen.iter().any(|l| l == "STOPPING=1") {
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0 after SIGTERM; saw {seen:?}");
    let ready = seen
        .iter()
        .position(|l| l == "READY=1")
        .expect("READY=1 sent");
    let first_ping = seen
        .iter()
        .position(|l| l == "WATCHDOG=1")
        .expect("WATCHDOG=1 sent");
    assert!(
        ready < first_ping,
        "READY before the first watchdog ping: {seen:?}"
    );
    assert!(seen.iter().any(|l| l.starts_with("STATUS=")), "{seen:?}");
    assert!(seen.iter().any(|l| l == "STOPPING=1"), "{seen:?}");
}
