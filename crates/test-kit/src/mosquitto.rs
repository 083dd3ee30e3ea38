//! A real mosquitto broker on a free loopback port, for black-box tests (DESIGN testing
//! strategy: "real mosquitto"). `scripts/setup` (run by `scripts/test`) installs Debian's
//! `mosquitto` and `mosquitto-clients`; a missing binary fails the test with what to install,
//! never skips it.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A running broker; killed when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Start a broker with settings fit for hearth (persistent sessions keep any number of
    /// queued QoS 1 messages; up to 1000 in flight per client). Panics with what to install if
    /// mosquitto is missing.
    pub fn start() -> Mosquitto {
        Self::start_with("")
    }

    /// As [`Mosquitto::start`], with extra mosquitto.conf lines.
    pub fn start_with(extra: &str) -> Mosquitto {
        let extra = extra.to_owned();
        Self::start_config(move |port| {
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages 1000\nmax_queued_messages 0\nlog_dest stderr\n\
                 log_type error\nlog_type warning\n{extra}\n"
            )
        })
    }

    /// A broker with the whole mosquitto.conf from `conf(port)`; it must open a plain listener
    /// on 127.0.0.1:`port` (used for the readiness check and [`Mosquitto::publish`]).
    pub fn start_config(conf: impl FnOnce(u16) -> String) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: install Debian's mosquitto and mosquitto-clients \
             (./scripts/setup does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf_path = dir.path().join("mosquitto.conf");
        let text = conf(port);
        let conf = conf_path;
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log file");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = child;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default();
                panic!(
                    "mosquitto did not listen on 127.0.0.1:{port}{}; its log:\n{log}",
                    if exited {
                        " (it exited)"
                    } else {
                        " within 10 s"
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, port, dir }
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    /// Publish each of `payloads` to `topic` with `mosquitto_pub -l` (one message per line, in
    /// order) at QoS `qos`; waits until the client has sent them all (QoS 1: PUBACKed).
    pub fn publish_lines(&self, topic: &str, payloads: &[String], qos: u8) {
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-q", &qos.to_string(), "-l"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub (install mosquitto-clients)");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for p in payloads {
                assert!(!p.contains('\n'), "one message per line");
                writeln!(stdin, "{p}").expect("write to mosquitto_pub");
            }
        }
        let status = child.wait().expect("mosquitto_pub ran");
        assert!(status.success(), "mosquitto_pub failed: {status}");
    }

    /// Create the persistent session (clean session off) of MQTT client `client_id` with QoS 1
    /// subscriptions to `filters`, as a client that connected once and went away: every QoS 1
    /// message published from now on is queued for it, in order, until a client connects with
    /// that id and clean session off (hearth's MQTT sources do). Returns once the broker
    /// acknowledged the subscriptions (`mosquitto_sub -c -E`).
    pub fn create_session(&self, client_id: &str, filters: &[String]) {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-i", client_id, "-c", "-q", "1", "-E"]);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let status = cmd
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_sub (install mosquitto-clients)");
        assert!(status.success(), "mosquitto_sub failed: {status}");
    }

    /// Publish one message (`-r` when `retain`).
    pub fn publish(&self, topic: &str, payload: &str, qos: u8, retain: bool) {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-q", &qos.to_string(), "-m", payload]);
        if retain {
            cmd.arg("-r");
        }
        let status = cmd
            .status()
            .expect("mosquitto_pub (install mosquitto-clients)");
        assert!(status.success(), "mosquitto_pub failed: {status}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}
