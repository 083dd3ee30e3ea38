//! SCAIP over SIP over **TLS** (`ScaipSip` with `Transport::Tls`) through the SCAIP session
//! (`hearth_uplink_scaip::session`), against SIPp as the alarm receiving centre behind Kamailio
//! as its TLS front (`hearth_test_kit::kamailio`; Debian's SIPp has no TLS):
//!
//! unit ──TLS (test CA, client certificate)──▶ Kamailio ──UDP/TCP loopback──▶ SIPp
//! unit ◀──the same TLS connection── Kamailio ◀── SIPp's `<mrs>` MESSAGE to the unit's contact
//!
//! SIPp plays the same scenarios as `tests/scaip_sip.rs` (`tests/sipp/*.xml`): it challenges
//! the REGISTER and checks it with `<verifyauth>`, checks each `<mrq>` and answers. The centre's
//! `<mrs>` MESSAGE goes to Kamailio (the MESSAGE came from there), which relays it to the unit
//! over the unit's TLS connection — the unit does not listen, so nothing else could reach it.
//! A unit that does not trust the front's CA, or that has no client certificate when the front
//! requires one, gets no connection: `ProtocolError::Unavailable`, and the session moves on.
//!
//! SIPp is ended with SIGUSR1 once the session is over and its exit status must still say
//! every call passed. Timing is short and never asserted (hang guards only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use hearth_sip::{SipSettings, TlsFiles, Transport};
use hearth_test_kit::kamailio::Kamailio;
use hearth_test_kit::sipp::{Sipp, SippExit, SippTransport};
use hearth_uplink_net::ScaipSip;
use hearth_uplink_scaip::session::{Attempt, AttemptResult, Receiver};
use hearth_uplink_scaip::{MessageType, ProtocolError, Verdict};
use support::{
    Counts, SESSION_GUARD, Seen, all_for, as_receiver, assert_busy_at_the_primary_without_a_reset,
    handled_by, last_handled, registered, request, run, seen, verdicts,
};

/// The test PKI (CA, Kamailio's server certificate for 127.0.0.1, the unit's client certificate).
fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    hearth_test_kit::pki::pki(dir.path());
    dir
}

/// SIPp playing `tests/sipp/<scenario>` behind a Kamailio TLS front.
struct Centre {
    // Dropped first: the front stops before the centre.
    front: Kamailio,
    sipp: Sipp,
}

impl Centre {
    fn start(scenario: &str, upstream: SippTransport, pki: &Path, require_cert: bool) -> Centre {
        let sipp = support::sipp(scenario, upstream);
        let front = Kamailio::tls_front(pki, sipp.port(), sipp.transport())
            .require_client_certificate(require_cert)
            .start();
        Centre { front, sipp }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.sipp.logs(), self.front.log())
    }

    /// End SIPp (SIGUSR1), assert every call of its scenario passed, return what it saw.
    async fn finish(self) -> (SippExit, Vec<Seen>, Kamailio) {
        let Centre { front, sipp } = self;
        let exit = sipp.finish().await;
        assert!(
            exit.status.success(),
            "sipp failed ({}); the scenario did not pass.\n{}\n{}",
            exit.status,
            exit.logs,
            front.log()
        );
        let seen = seen(&exit.log_lines);
        (exit, seen, front)
    }
}

/// The unit's TLS files: the test CA, and the client certificate if `client_cert`.
fn tls_files(pki: &Path, client_cert: bool) -> TlsFiles {
    TlsFiles {
        ca_file: Some(pki.join("ca.pem")),
        client_cert: client_cert.then(|| pki.join("client.pem")),
        client_key: client_cert.then(|| pki.join("client.key")),
    }
}

fn settings(front: &Kamailio, tls: TlsFiles) -> SipSettings {
    let mut s = support::settings(Transport::Tls, front.address());
    s.tls = Some(tls);
    s
}

/// A `ScaipSip` over TLS to `centre`'s front with the test CA and client certificate,
/// registered (SIPp may still be opening its socket, so an unreachable centre is retried for a
/// few seconds), as the session's receiver `name`.
async fn receiver(name: &str, centre: &Centre, pki: &Path) -> (Receiver, Arc<ScaipSip>) {
    registered(
        name,
        settings(&centre.front, tls_files(pki, true)),
        "could not register through the TLS front",
        || centre.logs(),
    )
    .await
}

/// The front relayed SIPp's `<mrs>` MESSAGE to the unit over its TLS connection (its log line
/// for that; the unit's counters say it got there).
fn relayed_back_over_tls(front: &Kamailio) -> Vec<String> {
    front.log_lines_with("front: MESSAGE for unit17 to the unit at sip:127.0.0.1:")
}

/// What one session through TLS fronts saw.
struct Saw {
    log: Vec<Attempt>,
    /// Each receiver's counters right after the session.
    counts: Vec<Counts>,
    /// Each centre's exit (every call passed), the MESSAGEs it saw (all carrying the ref, our
    /// account and the device type) and its front.
    centres: Vec<(SippExit, Vec<Seen>, Kamailio)>,
    /// The test PKI, kept while the fronts live.
    _pki: tempfile::TempDir,
}

/// One event `reference` through receivers over TLS (the test CA, the client certificate),
/// registered beforehand: receiver `i` is SIPp playing `centres[i]` (on `upstream`) behind its
/// own front, which requires the certificate. Asserts that receiver `handler` handled it,
/// ends the centres and returns what was seen.
async fn session(
    centres: &[&str],
    upstream: SippTransport,
    reference: &str,
    handler: usize,
) -> Saw {
    let pki = pki();
    let started: Vec<Centre> = centres
        .iter()
        .map(|scenario| Centre::start(scenario, upstream, pki.path(), true))
        .collect();
    let mut receivers = Vec::new();
    let mut sips = Vec::new();
    for (centre, name) in started.iter().zip(["arc-primary", "arc-alternative"]) {
        let (r, sip) = receiver(name, centre, pki.path()).await;
        receivers.push(r);
        sips.push(sip);
    }
    let (outcome, log) = run(&receivers, &request(reference)).await;
    assert_eq!(
        handled_by(&outcome),
        Some(handler),
        "{outcome:?}\n{log:?}\n{}",
        started
            .iter()
            .map(Centre::logs)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let counts = sips.iter().map(|sip| Counts::of(sip)).collect();
    let mut seen_by = Vec::new();
    for centre in started {
        let (exit, seen, front) = centre.finish().await;
        all_for(&seen, reference, &exit);
        seen_by.push((exit, seen, front));
    }
    Saw {
        log,
        counts,
        centres: seen_by,
        _pki: pki,
    }
}

// ---------------------------------------------------------------------------------------------
// OK: REGISTER (401 challenge, verifyauth) and MESSAGE <mrq> over TLS; SIPp's <mrs> MESSAGE
// comes back through Kamailio over the same TLS connection and handles the alarm.

async fn handled_by_the_centres_message_over_tls(upstream: SippTransport) {
    let saw = session(&["ok.xml"], upstream, "TlsOk01", 0).await;
    let log = &saw.log;
    assert!(last_handled(log), "{log:?}");
    // ok.xml never answers in the 200: the <mrs> the unit matched came in SIPp's MESSAGE.
    assert!(saw.counts[0].matched >= 1);
    assert_eq!(saw.counts[0].malformed, 0);
    let (_, seen, front) = &saw.centres[0];
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
    assert!(!relayed_back_over_tls(front).is_empty(), "{}", front.log());
    assert!(
        front
            .log_lines_with("front: unit17 registered over tls:127.0.0.1:")
            .len()
            == 1,
        "one registration over one TLS connection\n{}",
        front.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_over_tls_the_centres_mrs_comes_back_over_the_units_tls_connection_sipp_on_udp() {
    handled_by_the_centres_message_over_tls(SippTransport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_over_tls_the_centres_mrs_comes_back_over_the_units_tls_connection_sipp_on_tcp() {
    handled_by_the_centres_message_over_tls(SippTransport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// A centre that puts the <mrs> in the 200's body, over TLS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mrs_in_the_200_body_handles_the_alarm_over_tls() {
    let saw = session(&["mrs_in_200.xml"], SippTransport::Udp, "TlsBody01", 0).await;
    assert_eq!(saw.counts[0].matched, 1);
    let (_, _, front) = &saw.centres[0];
    assert!(
        relayed_back_over_tls(front).is_empty(),
        "no MESSAGE from this centre\n{}",
        front.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Hold (snu=4) over TLS, then the resend with the same ref is handled: two <mrs> MESSAGEs from
// the centre back over the one TLS connection, a hold pause (≥ 5 s) apart.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_over_tls_then_the_resend_with_the_same_ref_is_handled() {
    let saw = session(&["hold.xml"], SippTransport::Udp, "TlsHold01", 0).await;
    let log = &saw.log;
    assert_eq!(
        verdicts(log),
        vec![Verdict::Hold, Verdict::Handled],
        "{log:?}"
    );
    let (_, seen, front) = &saw.centres[0];
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        relayed_back_over_tls(front).len() >= 2,
        "both <mrs> came back over TLS\n{}",
        front.log()
    );
    assert_eq!(
        front
            .log_lines_with("front: unit17 registered over tls:")
            .len(),
        1,
        "one TLS connection for the whole session\n{}",
        front.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Busy (snu=6) from the primary over TLS: the alternative (a second SIPp behind a second front)
// handles it over TLS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_primary_over_tls_the_alternative_handles_it_over_tls() {
    let saw = session(&["busy.xml", "ok.xml"], SippTransport::Udp, "TlsBusy01", 1).await;
    // The busy <mrs> also came back over TLS: it is a verdict, not a timeout.
    assert_busy_at_the_primary_without_a_reset(&saw.log);
    for (_, _, front) in &saw.centres {
        assert!(!relayed_back_over_tls(front).is_empty(), "{}", front.log());
    }
}

// ---------------------------------------------------------------------------------------------
// Refused TLS: the unit gets no connection (Unavailable) and the session moves on to the next
// receiver — here a correctly set-up unit to the same front.

/// A receiver over TLS to `centre` with `tls`, not registered beforehand.
fn unregistered(name: &str, centre: &Centre, tls: TlsFiles) -> (Receiver, Arc<ScaipSip>) {
    let sip = Arc::new(ScaipSip::new(settings(&centre.front, tls), support::CENTRE));
    (as_receiver(name, &sip), sip)
}

async fn refused_then_the_next_receiver(
    bad: impl Fn(&Path) -> TlsFiles,
    require_cert: bool,
    refusal: fn(&ProtocolError) -> bool,
    reference: &str,
) -> Kamailio {
    let pki = pki();
    let centre = Centre::start("ok.xml", SippTransport::Udp, pki.path(), require_cert);
    let (refused, refused_sip) = unregistered("arc-refused", &centre, bad(pki.path()));
    let connect = tokio::time::timeout(SESSION_GUARD, refused_sip.connect())
        .await
        .expect("connect did not end");
    assert!(
        connect.as_ref().is_err_and(refusal),
        "{connect:?}\n{}",
        centre.logs()
    );
    let (good, _sip) = receiver("arc-good", &centre, pki.path()).await;
    let (outcome, log) = run(&[refused, good], &request(reference)).await;
    assert_eq!(
        handled_by(&outcome),
        Some(1),
        "{outcome:?}\n{log:?}\n{}",
        centre.logs()
    );
    // Receiver 0 never got a connection: every attempt there failed that way, none was
    // answered (after NoAnswer the session sends a detached reset, which cannot get there
    // either: SIPp sees no mty=RE below).
    let at_0: Vec<&Attempt> = log.iter().filter(|a| a.receiver_index == 0).collect();
    assert!(
        at_0.iter()
            .any(|a| matches!(&a.result, AttemptResult::Failed(e) if refusal(e))),
        "{log:?}"
    );
    assert!(
        at_0.iter().all(|a| match &a.result {
            AttemptResult::Failed(e) => refusal(e),
            AttemptResult::ResetSent => a.message_type == MessageType::Reset,
            _ => false,
        }),
        "{log:?}"
    );
    // SIPp saw only the good unit: one registration, the MESSAGEs of the session.
    let (exit, seen, front) = centre.finish().await;
    all_for(&seen, reference, &exit);
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
    assert_eq!(
        front
            .log_lines_with("front: unit17 registered over tls:")
            .len(),
        1,
        "{}",
        front.log()
    );
    front
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_without_the_ca_is_refused_tls_unavailable_and_the_session_moves_on() {
    // No CA file: the system trust store, which does not know the test CA. The unit refuses the
    // front's certificate in the handshake.
    refused_then_the_next_receiver(
        |_| TlsFiles::default(),
        false,
        |e| matches!(e, ProtocolError::Unavailable(m) if m.contains("TLS handshake failed")),
        "TlsNoCa01",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_without_a_client_certificate_is_refused_where_one_is_required() {
    // The right CA but no client certificate, to a front that requires one. Over TLS 1.3 the
    // client's side of the handshake completes before the server checks the certificate, so the
    // unit learns of the refusal only when Kamailio closes the connection; the pending REGISTER
    // then ends by Timer F (NoAnswer) rather than as Unavailable (see docs/alarms.md).
    let front = refused_then_the_next_receiver(
        |pki| tls_files(pki, false),
        true,
        |e| {
            matches!(
                e,
                ProtocolError::Unavailable(_) | ProtocolError::NoAnswer(_)
            )
        },
        "TlsNoCert01",
    )
    .await;
    assert!(
        !front
            .log_lines_with("peer did not return a certificate")
            .is_empty(),
        "the front refused for another reason\n{}",
        front.log()
    );
}

#[test]
fn the_log_lines_of_the_scenarios_are_read() {
    let lines = vec![
        "2026-01-01\t00:00:00.000000\t1.0: mrq call=2 ref=Ab1 cid=123456 dty=0005 mty=".into(),
        "mrq call=3 ref=Ab1 cid=123456 dty=0005 mty=RE".into(),
    ];
    let s = seen(&lines);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].mty, "RE");
}
