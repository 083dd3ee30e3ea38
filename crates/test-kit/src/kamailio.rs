//! Kamailio (Debian `kamailio` + `kamailio-tls-modules`, `/usr/sbin/kamailio`) as a **TLS front**
//! before a SIPp centre ([`crate::sipp`]): Debian's SIPp has no TLS, so a unit under test speaks
//! SIP over TLS to Kamailio, and Kamailio relays to SIPp over loopback UDP (or TCP).
//!
//! [`Kamailio::tls_front`] writes a minimal `kamailio.cfg` and `tls.cfg` into a throw-away
//! directory and runs Kamailio in the foreground (`-DD -E`, its runtime directory, pid file and
//! working directory in that directory, 32 MB shared / 8 MB private memory), listening on
//! `tls:127.0.0.1:<free port>` with the server certificate of the test PKI
//! ([`crate::pki::pki`]: `server.pem`/`server.key`, `ca.pem` to check client certificates) and on
//! `udp:` (or `tcp:`) `127.0.0.1:<free port>` towards SIPp. It returns once the TLS port takes
//! connections. Kamailio is stopped (SIGTERM, then SIGKILL to its process group) when the
//! [`Kamailio`] is dropped; its log (stderr) is in [`Kamailio::log`].
//!
//! What the front does (transaction-stateful, `tm`):
//! - every request from the TLS side (the unit: REGISTER, MESSAGE) is relayed to SIPp as it is
//!   (`force_rport`, `t_relay`); SIPp does the Digest challenge and `<verifyauth>`;
//! - when SIPp answers a relayed REGISTER 200, the front remembers the unit's TLS connection
//!   (source address and port) under the To user (an `htable`, in memory);
//! - every request from SIPp (the centre's `<mrs>` MESSAGE, to `sip:<user>@<the front>`) goes to
//!   the unit registered under the Request-URI's user, over that unit's existing TLS connection
//!   (`set_forward_no_connect`: never a new connection to the unit, which does not listen);
//!   a user nobody registered is answered 404.
//!
//! Each front serves one SIPp; two centres are two fronts.
//!
//! Kamailio missing fails the test naming the Debian packages (`kamailio kamailio-tls-modules`);
//! it never skips.

use std::fs::File;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::{SippTransport, free_port};

/// Where Debian puts Kamailio.
pub const KAMAILIO: &str = "/usr/sbin/kamailio";

/// Where Debian puts Kamailio's modules (`tls.so` comes with `kamailio-tls-modules`).
pub const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

/// Panics naming the Debian packages unless `binary` and the TLS module in `modules` exist.
fn check_installed(binary: &Path, modules: &Path) {
    assert!(
        binary.is_file(),
        "{} is missing: these tests need Kamailio as a TLS front, the Debian packages \
         kamailio kamailio-tls-modules (sudo apt-get install kamailio kamailio-tls-modules)",
        binary.display()
    );
    assert!(
        modules.join("tls.so").is_file(),
        "{}/tls.so is missing: install the Debian packages kamailio kamailio-tls-modules \
         (sudo apt-get install kamailio kamailio-tls-modules)",
        modules.display()
    );
}

/// How to start a TLS front; from [`Kamailio::tls_front`].
#[derive(Debug, Clone)]
pub struct KamailioBuilder {
    pki: PathBuf,
    upstream_port: u16,
    upstream: SippTransport,
    require_client_certificate: bool,
}

impl KamailioBuilder {
    /// Require a client certificate signed by the PKI's CA (`ca.pem`); without one the TLS
    /// handshake is refused. Default: not required (but checked if one is presented).
    pub fn require_client_certificate(mut self, required: bool) -> Self {
        self.require_client_certificate = required;
        self
    }

    /// Start Kamailio; panics (with its log) if it is missing or does not listen within 10 s.
    pub fn start(self) -> Kamailio {
        check_installed(Path::new(KAMAILIO), Path::new(MODULES));
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let tls_port = free_port(SippTransport::Tcp);
        let side_port = loop {
            let p = free_port(SippTransport::Tcp);
            if p != tls_port {
                break p;
            }
        };
        std::fs::write(dir.path().join("tls.cfg"), tls_cfg(&self)).unwrap();
        std::fs::write(
            dir.path().join("kamailio.cfg"),
            kamailio_cfg(&self, tls_port, side_port, &dir.path().join("tls.cfg")),
        )
        .unwrap();
        let log = File::create(dir.path().join("kamailio.log")).unwrap();
        let mut cmd = Command::new(KAMAILIO);
        cmd.current_dir(dir.path())
            .arg("-f")
            .arg(dir.path().join("kamailio.cfg"))
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-w")
            .arg(&run)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            // Its own process group, so its children are stopped with it.
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {KAMAILIO} (Debian packages kamailio kamailio-tls-modules): {e}")
        });
        let mut front = Kamailio {
            child,
            dir,
            tls_port,
            side_port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, tls_port)).is_err() {
            let exited = matches!(front.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                panic!(
                    "kamailio did not listen on tls:127.0.0.1:{tls_port}{}; its log:\n{}",
                    if exited {
                        " (it exited)"
                    } else {
                        " within 10 s"
                    },
                    front.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        front
    }
}

fn tls_cfg(b: &KamailioBuilder) -> String {
    let yes_no = |v: bool| if v { "yes" } else { "no" };
    format!(
        "[server:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = {verify}\n\
         require_certificate = {verify}\n\
         private_key = {pki}/server.key\n\
         certificate = {pki}/server.pem\n\
         ca_list = {pki}/ca.pem\n\
         \n\
         [client:default]\n\
         verify_certificate = no\n\
         require_certificate = no\n",
        verify = yes_no(b.require_client_certificate),
        pki = b.pki.display(),
    )
}

fn kamailio_cfg(b: &KamailioBuilder, tls_port: u16, side_port: u16, tls_cfg: &Path) -> String {
    let proto = match b.upstream {
        SippTransport::Udp => "udp",
        SippTransport::Tcp => "tcp",
    };
    let upstream = b.upstream_port;
    let tls_cfg = tls_cfg.display();
    format!(
        r#"#!KAMAILIO
# A TLS front for a SIPp centre, written by hearth_test_kit::kamailio.
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
enable_tls=yes
# The unit's TLS connection must outlive a test (the centre answers over it).
tcp_connection_lifetime=600
listen=tls:127.0.0.1:{tls_port}
listen={proto}:127.0.0.1:{side_port}

loadpath "{MODULES}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "tls.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "htable.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "siputils.so"

modparam("tls", "config", "{tls_cfg}")
# user -> the unit's TLS connection (source address:port), set when SIPp accepts its REGISTER.
modparam("htable", "htable", "units=>size=4;")

request_route {{
    xlog("L_INFO", "front: $rm $ru from $proto:$si:$sp\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if ($proto == "tls") {{
        # From a unit: to the centre.
        force_rport();
        if (is_method("REGISTER")) {{
            $avp(unit) = $si + ":" + $sp;
            t_on_reply("REGISTERED");
        }}
        $du = "sip:127.0.0.1:{upstream};transport={proto}";
        if (!t_relay()) {{
            sl_reply_error();
        }}
        exit;
    }}
    # From the centre: to the unit, over the TLS connection it registered on.
    if ($sht(units=>$rU) == $null) {{
        xlog("L_WARN", "front: nobody registered as $rU\n");
        sl_send_reply("404", "Not registered through this front");
        exit;
    }}
    $du = "sip:" + $sht(units=>$rU) + ";transport=tls";
    set_forward_no_connect();
    xlog("L_INFO", "front: $rm for $rU to the unit at $du\n");
    if (!t_relay()) {{
        xlog("L_WARN", "front: cannot relay $rm to $du (no TLS connection from the unit)\n");
        sl_reply_error();
    }}
    exit;
}}

onreply_route[REGISTERED] {{
    if ($rs == 200) {{
        $sht(units=>$tU) = $avp(unit);
        xlog("L_INFO", "front: $tU registered over tls:$avp(unit)\n");
    }}
}}
"#
    )
}

/// A running Kamailio TLS front; stopped when dropped.
#[derive(Debug)]
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    tls_port: u16,
    side_port: u16,
}

impl Kamailio {
    /// A TLS front for the SIPp centre on `127.0.0.1:upstream_port` (`upstream`: the transport
    /// SIPp serves), with the server certificate of the PKI in `pki` (made by
    /// [`crate::pki::pki`]).
    pub fn tls_front(
        pki: impl AsRef<Path>,
        upstream_port: u16,
        upstream: SippTransport,
    ) -> KamailioBuilder {
        KamailioBuilder {
            pki: pki.as_ref().to_owned(),
            upstream_port,
            upstream,
            require_client_certificate: false,
        }
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.tls_port
    }

    /// `127.0.0.1:port` of the TLS side, to use as registrar.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// The port on 127.0.0.1 Kamailio talks to SIPp from.
    pub fn side_port(&self) -> u16 {
        self.side_port
    }

    /// Everything Kamailio logged so far, after its configuration files.
    pub fn log(&self) -> String {
        let read = |name: &str| {
            String::from_utf8_lossy(&std::fs::read(self.dir.path().join(name)).unwrap_or_default())
                .into_owned()
        };
        format!(
            "==== kamailio.cfg\n{}\n==== tls.cfg\n{}\n==== kamailio.log\n{}",
            read("kamailio.cfg"),
            read("tls.cfg"),
            read("kamailio.log")
        )
    }

    /// The lines of its log that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let text = std::fs::read(self.dir.path().join("kamailio.log")).unwrap_or_default();
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        if matches!(self.child.try_wait(), Ok(None)) {
            // The main process stops its children on SIGTERM.
            signal("-TERM", &pid);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left of its process group (the group id is its pid).
        signal("-KILL", &format!("-{pid}"));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "kamailio kamailio-tls-modules")]
    fn a_missing_kamailio_fails_naming_the_debian_packages() {
        let empty = tempfile::tempdir().unwrap();
        check_installed(&empty.path().join("kamailio"), empty.path());
    }

    #[test]
    #[should_panic(expected = "kamailio kamailio-tls-modules")]
    fn a_missing_tls_module_fails_naming_the_debian_packages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kamailio"), "").unwrap();
        check_installed(&dir.path().join("kamailio"), dir.path());
    }

    #[test]
    fn the_config_relays_to_sipp_and_back_over_tls() {
        let b =
            Kamailio::tls_front("/pki", 5070, SippTransport::Tcp).require_client_certificate(true);
        let cfg = kamailio_cfg(&b, 5061, 5062, Path::new("/x/tls.cfg"));
        assert!(cfg.contains("listen=tls:127.0.0.1:5061"), "{cfg}");
        assert!(cfg.contains("listen=tcp:127.0.0.1:5062"), "{cfg}");
        assert!(
            cfg.contains("$du = \"sip:127.0.0.1:5070;transport=tcp\";"),
            "{cfg}"
        );
        assert!(cfg.contains("set_forward_no_connect();"), "{cfg}");
        let tls = tls_cfg(&b);
        assert!(tls.contains("require_certificate = yes"), "{tls}");
        assert!(tls.contains("certificate = /pki/server.pem"), "{tls}");
    }
}
