//! The receiver's SCAIP-over-SIP response centre driven by hearth's real unit side
//! (`hearth_uplink_net::ScaipSip`, on `hearth-sip`) through the SCAIP session
//! (`hearth_uplink_scaip::session::run`), over UDP, TCP and TLS (mutual, with the test kit's
//! PKI) on loopback: the registrar's Digest challenge, the `<mrq>` MESSAGE, the `<mrs>` in a
//! separate MESSAGE back over the unit's registration (or in the `200`), the scripted faults,
//! and the store (one event per `ref`, repeats counted). Timing is short (answer timeout 3 s,
//! resend every 1 s) and never asserted; the hold tests take ≥ 5 s (the session's hold pause).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_receiver::*;
use hearth_sip::{SipSettings, TlsFiles, Transport};
use hearth_test_kit::pki::pki;
use hearth_uplink_net::ScaipSip;
use hearth_uplink_scaip::session::{self, Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{AlarmProtocol, Mrq, ProtocolError, Ref, SessionPolicy, Verdict};

const USER: &str = "unit17";
const PASSWORD: &str = "correct horse";
const DOMAIN: &str = "arc.test";
const CENTRE_URI: &str = "sip:centre@arc.test";
const ACCOUNT: &str = "123456";

/// Hang guard of one session or exchange (never a timing assertion).
const GUARD: Duration = Duration::from_secs(90);

async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

fn policy() -> SessionPolicy {
    SessionPolicy {
        answer_timeout: Duration::from_secs(3),
        resend_every: Duration::from_secs(1),
        // The session keeps a hold pause within 5–20 s whatever this says.
        hold_interval: Duration::from_secs(5),
        hold_budget: Duration::from_secs(60),
    }
}

struct Centre {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    store: PathBuf,
    transport: Transport,
    rx: Option<RunningReceiver>,
}

fn sip_transport(t: Transport) -> SipTransport {
    match t {
        Transport::Udp => SipTransport::Udp,
        Transport::Tcp => SipTransport::Tcp,
        Transport::Tls => SipTransport::Tls,
    }
}

impl Centre {
    /// A receiver with only the SCAIP-over-SIP centre (user `USER`), with these faults.
    async fn start(transport: Transport, faults: ScaipFaults) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        std::fs::create_dir(&pki_dir).unwrap();
        let store = dir.path().join("recv.db");
        let mut cfg = ReceiverConfig::new(&store);
        cfg.fhir = None;
        cfg.mllp = None;
        if transport == Transport::Tls {
            pki(&pki_dir);
            // Mutual TLS: the unit shows the test kit's client certificate.
            cfg.tls = Some(ServerTls {
                cert: pki_dir.join("server.pem"),
                key: pki_dir.join("server.key"),
                client_ca: Some(pki_dir.join("ca.pem")),
            });
        }
        cfg.scaip_sip = Some(ScaipSipEndpoint {
            faults,
            ..ScaipSipEndpoint::loopback(sip_transport(transport), USER, PASSWORD)
        });
        let rx = start(cfg).await.unwrap();
        Self {
            _dir: dir,
            pki: pki_dir,
            store,
            transport,
            rx: Some(rx),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.rx.as_ref().unwrap().scaip_sip_addr().unwrap()
    }

    fn settings(&self, password: &str) -> SipSettings {
        let mut s = SipSettings::new(
            self.transport,
            self.addr().to_string(),
            DOMAIN,
            USER,
            password,
        );
        s.transaction_timeout = Duration::from_secs(8);
        if self.transport == Transport::Tls {
            let p = |f: &str| Some(self.pki.join(f));
            s.tls = Some(TlsFiles {
                ca_file: p("ca.pem"),
                client_cert: p("client.pem"),
                client_key: p("client.key"),
            });
        }
        s
    }

    /// The unit side, not yet registered.
    fn unit(&self) -> Arc<ScaipSip> {
        Arc::new(ScaipSip::new(self.settings(PASSWORD), CENTRE_URI))
    }

    /// The unit side, registered, as the session's receiver `name`.
    async fn receiver(&self, name: &str) -> (Receiver, Arc<ScaipSip>) {
        let sip = self.unit();
        guarded(sip.connect()).await.unwrap();
        (
            Receiver {
                name: name.into(),
                protocol: sip.clone(),
            },
            sip,
        )
    }

    fn summary(&self) -> ScaipSummary {
        summary(&self.store).unwrap().scaip
    }

    fn requests(&self) -> Vec<ScaipRequest> {
        scaip_requests(&self.store).unwrap()
    }

    async fn stop(mut self) -> Self {
        if let Some(rx) = self.rx.take() {
            guarded(rx.shutdown()).await;
        }
        self
    }
}

fn alarm(reference: &str) -> Mrq {
    Mrq {
        reference: Some(Ref::new(reference).unwrap()),
        caller_id: ACCOUNT.into(),
        device_type: 5,
        status: Some(9),
        ..Mrq::default()
    }
}

async fn run(receivers: &[Receiver], request: &Mrq) -> (SessionOutcome, Vec<Attempt>) {
    let log = Mutex::new(Vec::new());
    let outcome = guarded(session::run(receivers, request, policy(), &|a| {
        log.lock().unwrap().push(a.clone())
    }))
    .await;
    (outcome, log.into_inner().unwrap())
}

fn handled_by(outcome: &SessionOutcome) -> Option<usize> {
    match outcome {
        SessionOutcome::Handled {
            receiver_index,
            answer,
        } if answer.verdict == Verdict::Handled => Some(*receiver_index),
        _ => None,
    }
}

fn verdicts(log: &[Attempt]) -> Vec<Verdict> {
    log.iter()
        .filter_map(|a| match a.result {
            AttemptResult::Answer(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// Each scenario over UDP, TCP and TLS.
macro_rules! over_all_transports {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn udp() {
                super::$scenario(Transport::Udp).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tcp() {
                super::$scenario(Transport::Tcp).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tls() {
                super::$scenario(Transport::Tls).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------

/// REGISTER (challenged), MESSAGE `<mrq>`, 200, the centre's MESSAGE `<mrs>` snu=0: handled,
/// stored once.
async fn handled_once(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::default()).await;
    let (primary, sip) = centre.receiver("arc-primary").await;
    let (outcome, log) = run(&[primary], &alarm("Once01")).await;
    assert_eq!(handled_by(&outcome), Some(0), "{outcome:?} {log:?}");
    assert_eq!(verdicts(&log), vec![Verdict::Handled], "{log:?}");
    let counters = sip.counters();
    assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 0);
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!((s.events, s.repeats, s.requests), (1, 0, 1), "{s:?}");
    let r = centre.requests();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].reference.as_deref(), Some("Once01"));
    assert_eq!(r[0].caller_id.as_deref(), Some(ACCOUNT));
    assert_eq!(r[0].message_type.as_deref(), Some("ME"));
    assert_eq!(r[0].device_type, Some(5));
    assert_eq!(r[0].status_code, Some(9));
    assert_eq!((r[0].http_status, r[0].snu), (200, Some(0)));
}
over_all_transports!(handled_once);

/// Hold (snu=4) once, then the resend with the same ref is handled: one event, one repeat.
async fn hold_then_ok(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::first(1, ScaipFault::Hold)).await;
    let (primary, _sip) = centre.receiver("arc-primary").await;
    let (outcome, log) = run(&[primary], &alarm("HoldMe01")).await;
    assert_eq!(handled_by(&outcome), Some(0), "{outcome:?} {log:?}");
    assert_eq!(
        verdicts(&log),
        vec![Verdict::Hold, Verdict::Handled],
        "{log:?}"
    );
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!((s.events, s.repeats), (1, 1), "{s:?}");
    assert_eq!(s.faults.get("hold"), Some(&1), "{s:?}");
    let snus: Vec<_> = centre.requests().iter().map(|r| r.snu).collect();
    assert_eq!(snus, vec![Some(4), Some(0)]);
}
over_all_transports!(hold_then_ok);

/// Busy (snu=6) from the primary: the alternative handles it, no reset at the primary.
async fn busy_goes_to_the_next_receiver(transport: Transport) {
    let busy = Centre::start(transport, ScaipFaults::always(ScaipFault::Busy)).await;
    let ok = Centre::start(transport, ScaipFaults::default()).await;
    let (primary, _a) = busy.receiver("arc-primary").await;
    let (alternative, _b) = ok.receiver("arc-alternative").await;
    let (outcome, log) = run(&[primary, alternative], &alarm("BusyArc01")).await;
    assert_eq!(handled_by(&outcome), Some(1), "{outcome:?} {log:?}");
    assert!(
        log.iter()
            .any(|a| a.receiver_index == 0 && a.result == AttemptResult::Answer(Verdict::Busy)),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|a| a.result == AttemptResult::ResetSent),
        "{log:?}"
    );
    let busy = busy.stop().await;
    let s = busy.summary();
    assert_eq!((s.events, s.requests), (1, 1), "{s:?}");
    assert_eq!(s.faults.get("busy"), Some(&1), "{s:?}");
    let ok = ok.stop().await;
    assert_eq!(ok.summary().events, 1);
}
over_all_transports!(busy_goes_to_the_next_receiver);

/// An `<mrs>` for another ref is not taken (counted unmatched); the resend is handled.
async fn wrong_ref_then_ok(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::first(1, ScaipFault::WrongRef)).await;
    let (primary, sip) = centre.receiver("arc-primary").await;
    let (outcome, log) = run(&[primary], &alarm("RightRef01")).await;
    assert_eq!(handled_by(&outcome), Some(0), "{outcome:?} {log:?}");
    match &outcome {
        SessionOutcome::Handled { answer, .. } => {
            assert_eq!(answer.reference.as_str(), "RightRef01")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            log.first(),
            Some(Attempt {
                result: AttemptResult::Failed(ProtocolError::NoAnswer(_)),
                ..
            })
        ),
        "{log:?}"
    );
    let counters = sip.counters();
    assert_eq!(counters.unmatched.load(Ordering::Relaxed), 1);
    assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!(s.events, 1, "{s:?}");
    assert!(s.repeats >= 1, "{s:?}");
    assert_eq!(s.faults.get("wrong_ref"), Some(&1), "{s:?}");
}
over_all_transports!(wrong_ref_then_ok);

/// A cut `<mrs>` is counted malformed, never a verdict; the resend is handled.
async fn malformed_then_ok(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::first(1, ScaipFault::Malformed)).await;
    let (primary, sip) = centre.receiver("arc-primary").await;
    let (outcome, log) = run(&[primary], &alarm("Garbled01")).await;
    assert_eq!(handled_by(&outcome), Some(0), "{outcome:?} {log:?}");
    assert_eq!(verdicts(&log), vec![Verdict::Handled], "{log:?}");
    let counters = sip.counters();
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!(s.events, 1, "{s:?}");
    assert_eq!(s.faults.get("malformed"), Some(&1), "{s:?}");
}
over_all_transports!(malformed_then_ok);

/// A centre that answers with the `<mrs>` in the 200's body.
async fn mrs_in_200(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::always(ScaipFault::MrsIn200)).await;
    let (primary, sip) = centre.receiver("arc-primary").await;
    let (outcome, log) = run(&[primary], &alarm("InTheBody01")).await;
    assert_eq!(handled_by(&outcome), Some(0), "{outcome:?} {log:?}");
    let counters = sip.counters();
    assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
    assert_eq!(counters.unmatched.load(Ordering::Relaxed), 0);
    let centre = centre.stop().await;
    let r = centre.requests();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].fault.as_deref(), Some("mrs_in_200"));
    assert_eq!(r[0].snu, Some(0));
}
over_all_transports!(mrs_in_200);

/// A 401 loop: every REGISTER and MESSAGE challenged again. The unit gives up with a
/// credentials error (`Refused`), and the session moves on to the alternative.
async fn unauthorized_loop_moves_on(transport: Transport) {
    let refusing = Centre::start(transport, ScaipFaults::always(ScaipFault::Unauthorized)).await;
    let ok = Centre::start(transport, ScaipFaults::default()).await;
    // Registering there fails for good: the credentials error is surfaced.
    let probe = refusing.unit();
    let err = guarded(probe.connect()).await.unwrap_err();
    match &err {
        ProtocolError::Refused(text) => assert!(text.contains("credentials"), "{text}"),
        other => panic!("{other:?}"),
    }
    let primary = Receiver {
        name: "arc-primary".into(),
        protocol: refusing.unit(),
    };
    let (alternative, _b) = ok.receiver("arc-alternative").await;
    let (outcome, log) = run(&[primary, alternative], &alarm("Refused01")).await;
    assert_eq!(handled_by(&outcome), Some(1), "{outcome:?} {log:?}");
    assert!(
        log.iter().any(|a| a.receiver_index == 0
            && matches!(a.result, AttemptResult::Failed(ProtocolError::Refused(_)))),
        "{log:?}"
    );
    let refusing = refusing.stop().await;
    let s = refusing.summary();
    assert_eq!(s.events, 0, "nothing is stored behind a 401: {s:?}");
    let ok = ok.stop().await;
    assert_eq!(ok.summary().events, 1);
}
over_all_transports!(unauthorized_loop_moves_on);

/// The same ref sent twice is one event and a repeat, answered both times.
async fn a_resend_is_a_repeat(transport: Transport) {
    let centre = Centre::start(transport, ScaipFaults::default()).await;
    let (_, sip) = centre.receiver("arc-primary").await;
    for _ in 0..2 {
        let a = guarded(sip.exchange(&alarm("Again01"), Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(a.verdict, Verdict::Handled);
        assert_eq!(a.reference.as_str(), "Again01");
    }
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!((s.events, s.repeats, s.requests), (1, 1, 2), "{s:?}");
    let repeats: Vec<bool> = centre.requests().iter().map(|r| r.repeat).collect();
    assert_eq!(repeats, vec![false, true]);
}
over_all_transports!(a_resend_is_a_repeat);

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_with_403() {
    let centre = Centre::start(Transport::Udp, ScaipFaults::default()).await;
    let unit = ScaipSip::new(centre.settings("wrong horse"), CENTRE_URI);
    let err = guarded(unit.connect()).await.unwrap_err();
    match &err {
        ProtocolError::Refused(text) => assert!(text.contains("403"), "{text}"),
        other => panic!("{other:?}"),
    }
    let centre = centre.stop().await;
    assert_eq!(centre.summary().events, 0);
}

/// A MESSAGE from a unit that never registered: 403, logged, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_an_unregistered_unit_is_refused_with_403() {
    let centre = Centre::start(Transport::Udp, ScaipFaults::default()).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let body = "<mrq><ref>Stranger1</ref><cid>123456</cid><dty>0005</dty></mrq>";
    let request = format!(
        "MESSAGE sip:centre@arc.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-stranger1;rport\r\n\
         From: <sip:stranger@arc.test>;tag=s1\r\nTo: <sip:centre@arc.test>\r\n\
         Call-ID: stranger-1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n\
         Content-Type: application/scaip+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket
        .send_to(request.as_bytes(), centre.addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = guarded(socket.recv_from(&mut buf)).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("SIP/2.0 403"), "{answer}");
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!((s.events, s.rejected), (0, 1), "{s:?}");
    assert_eq!(centre.requests()[0].http_status, 403);
}
