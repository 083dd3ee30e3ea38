//! SIPp (Debian `sip-tester`, `/usr/bin/sipp`) as a SIP peer in black-box tests: an
//! implementation nobody here wrote plays the alarm centre from an XML scenario.
//!
//! [`Sipp::builder`] takes the scenario file; the builder sets the transport, the number of
//! calls (`-m`), `-key`s and the hang guard (`-timeout`, with `-timeout_error`), then
//! [`SippBuilder::start`] runs `sipp` as a child on a free loopback port, in a throw-away
//! directory that collects its logs (`-trace_err`, `-trace_msg`, `-trace_logs`,
//! `-trace_screen`, stdout and stderr). The child is killed when the [`Sipp`] is dropped.
//!
//! Ending a run:
//! - [`Sipp::assert_passed`] waits for SIPp to end (after its `-m` calls) and asserts exit
//!   status 0 (every call passed its scenario), showing the logs if not;
//! - [`Sipp::wait`] waits and returns how it ended, for a test that expects a failure;
//! - [`Sipp::finish`] asks SIPp to stop now (SIGUSR1: no new calls, the current ones end) and
//!   returns how it ended — for scenarios whose number of calls is not known in advance (an
//!   alarm resent while the centre is silent).
//!
//! `<log message="…"/>` actions in a scenario go to [`Sipp::log_lines`] (`-trace_logs`): the
//! way a test checks what SIPp saw (a `ref` across calls, an `mty`).
//!
//! SIPp missing fails the test naming the Debian package (`sip-tester`); it never skips.
//! Debian's build has no TLS: put a TLS front before it ([`crate::kamailio`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The transport SIPp serves (one socket: `-t u1` / `-t t1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`.
    Udp,
    /// `-t t1`.
    Tcp,
}

/// The `sipp` on `PATH`; panics naming the Debian package `sip-tester` if there is none.
pub fn sipp_binary() -> PathBuf {
    sipp_on(std::env::var_os("PATH").as_deref())
}

/// `sipp` in one of `paths` (a `PATH` value).
fn sipp_on(paths: Option<&std::ffi::OsStr>) -> PathBuf {
    let on_path = paths.and_then(|paths| {
        std::env::split_paths(paths)
            .map(|p| p.join("sipp"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) => p,
        None => panic!(
            "sipp is not installed: these tests need SIPp, the Debian package sip-tester \
             (scripts/setup installs it: sudo apt-get install sip-tester)"
        ),
    }
}

/// A loopback port free at this moment (for TCP: free for both UDP and TCP).
pub fn free_port(transport: SippTransport) -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if transport == SippTransport::Udp
            || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// How to start SIPp; from [`Sipp::builder`].
#[derive(Debug, Clone)]
pub struct SippBuilder {
    scenario: PathBuf,
    transport: SippTransport,
    calls: Option<u32>,
    keys: Vec<(String, String)>,
    timeout: Duration,
}

impl SippBuilder {
    /// UDP (the default) or TCP.
    pub fn transport(mut self, transport: SippTransport) -> Self {
        self.transport = transport;
        self
    }

    /// SIPp ends after this many calls (`-m`; one call per Call-ID). Without it, SIPp runs
    /// until [`Sipp::finish`] or the hang guard.
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = Some(calls);
        self
    }

    /// A `-key name value` for the scenario (`[name]` in it).
    pub fn key(mut self, name: &str, value: &str) -> Self {
        self.keys.push((name.into(), value.into()));
        self
    }

    /// The hang guard: SIPp gives up (and fails) after this long. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Start SIPp on a free loopback port. Panics if sipp or the scenario is missing.
    pub fn start(self) -> Sipp {
        let binary = sipp_binary();
        let dir = tempfile::tempdir().unwrap();
        let name = self
            .scenario
            .file_name()
            .unwrap_or_else(|| panic!("scenario {} has no file name", self.scenario.display()))
            .to_string_lossy()
            .into_owned();
        std::fs::copy(&self.scenario, dir.path().join(&name)).unwrap_or_else(|e| {
            panic!("cannot copy the scenario {}: {e}", self.scenario.display())
        });
        let port = free_port(self.transport);
        let mode = match self.transport {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        };
        let mut cmd = Command::new(binary);
        cmd.current_dir(dir.path())
            .args(["-sf", &name, "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-t", mode]);
        if let Some(calls) = self.calls {
            cmd.arg("-m").arg(calls.to_string());
        }
        cmd.arg("-timeout")
            .arg(format!("{}ms", self.timeout.as_millis().max(1)))
            .args([
                "-timeout_error",
                "-nostdin",
                "-trace_err",
                "-trace_msg",
                "-trace_logs",
                "-trace_screen",
            ]);
        for (k, v) in &self.keys {
            cmd.arg("-key").arg(k).arg(v);
        }
        let stdout = File::create(dir.path().join("stdout.log")).unwrap();
        let stderr = File::create(dir.path().join("stderr.log")).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sipp (Debian package sip-tester): {e}"));
        Sipp {
            child,
            dir,
            port,
            scenario: name,
            transport: self.transport,
            hang_guard: self.timeout + Duration::from_secs(15),
        }
    }
}

/// A running SIPp; killed when dropped.
#[derive(Debug)]
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    scenario: String,
    transport: SippTransport,
    hang_guard: Duration,
}

/// How a SIPp run ended.
#[derive(Debug)]
pub struct SippExit {
    /// Its exit status (0: every call passed; 1: a call failed; 99: no call processed).
    pub status: ExitStatus,
    /// Every log it wrote, one after the other, for assertion messages.
    pub logs: String,
    /// The lines of its `<log>` actions.
    pub log_lines: Vec<String>,
}

impl SippExit {
    /// Panic with the logs unless every call passed.
    pub fn assert_passed(&self) {
        assert!(
            self.status.success(),
            "sipp failed ({}); the scenario did not pass.\n{}",
            self.status,
            self.logs
        );
    }
}

impl Sipp {
    /// SIPp with `scenario` (a path to its XML file), UDP, no call limit, 30 s hang guard.
    pub fn builder(scenario: impl AsRef<Path>) -> SippBuilder {
        SippBuilder {
            scenario: scenario.as_ref().to_owned(),
            transport: SippTransport::Udp,
            calls: None,
            keys: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The port SIPp listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The transport it serves.
    pub fn transport(&self) -> SippTransport {
        self.transport
    }

    /// `127.0.0.1:port`, to use as registrar.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log SIPp wrote so far, each headed by its file name.
    pub fn logs(&self) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "log"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut out = String::new();
        for p in names {
            out.push_str(&format!("==== {}\n", p.display()));
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(&p).unwrap_or_default(),
            ));
        }
        out
    }

    /// The lines SIPp's `<log message="…"/>` actions wrote so far, in order.
    pub fn log_lines(&self) -> Vec<String> {
        let stem = self.scenario.trim_end_matches(".xml");
        let prefix = format!("{stem}_");
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with("_logs.log") {
                let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                    .into_owned();
                lines.extend(
                    text.lines()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
        }
        lines
    }

    /// Wait (at most `within`, polling `check` every 50 ms) until a `<log>` line satisfies
    /// `check`; returns whether one did. For what SIPp gets after the code under test is done
    /// (a detached reset).
    pub async fn wait_for_log(&self, within: Duration, check: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log_lines().iter().any(|l| check(l)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn exit(&self, status: ExitStatus) -> SippExit {
        SippExit {
            status,
            logs: self.logs(),
            log_lines: self.log_lines(),
        }
    }

    /// Wait for SIPp to end by itself (its `-m` calls done, or its hang guard); panics with
    /// its logs if it does not end a while after the hang guard.
    pub async fn wait(mut self) -> SippExit {
        match self.exit_within(self.hang_guard).await {
            Some(status) => self.exit(status),
            None => {
                let _ = self.child.kill();
                panic!("sipp did not finish; its logs:\n{}", self.logs());
            }
        }
    }

    /// Wait for SIPp to end by itself and assert that every call passed.
    pub async fn assert_passed(self) -> SippExit {
        let exit = self.wait().await;
        exit.assert_passed();
        exit
    }

    /// Ask SIPp to stop (SIGUSR1: it takes no new calls and ends when the current ones have),
    /// then wait for it as [`Sipp::wait`] does.
    pub async fn finish(self) -> SippExit {
        let sent = Command::new("kill")
            .arg("-USR1")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "cannot signal sipp ({sent:?}); its logs:\n{}",
            self.logs()
        );
        self.wait().await
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "the Debian package sip-tester")]
    fn a_missing_sipp_fails_naming_the_debian_package() {
        let empty = tempfile::tempdir().unwrap();
        sipp_on(Some(empty.path().as_os_str()));
    }

    #[test]
    fn sipp_is_found_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sipp"), "").unwrap();
        let paths = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(sipp_on(Some(&paths)), dir.path().join("sipp"));
    }
}
