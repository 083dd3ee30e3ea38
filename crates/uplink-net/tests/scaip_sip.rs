//! SCAIP over SIP (`ScaipSip`) driven through the SCAIP session (`hearth_uplink_scaip::session`)
//! against SIPp (Debian `sip-tester`) playing the alarm receiving centre: an implementation
//! nobody here wrote registers us (Digest checked by SIPp's `<verifyauth>`), checks every
//! `<mrq>` we send (Content-Type, `ref`, `cid`, `dty`) and answers as the scenarios in
//! `tests/sipp/*.xml` say — OK in a separate MESSAGE, OK in the 200, hold, busy, silence,
//! garbage, another ref.
//!
//! SIPp logs each MESSAGE it got (`call`, `ref`, `mty`) with `<log>`; the tests read those lines
//! to check resends (same `ref`) and the reset (`mty=RE`). The number of MESSAGEs depends on
//! timing, so SIPp is ended with SIGUSR1 once the session is over and its exit status must
//! still say every call passed. Timing is short (answer timeout 3 s, resend every 1 s) and never
//! asserted; the hold test takes ≥ 5 s (the session keeps hold polls within 5–20 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(unused_imports)]
mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_sip::{SipSettings, Transport};
use hearth_test_kit::sipp::{Sipp, SippExit, SippTransport};
use hearth_uplink_net::ScaipSip;
use hearth_uplink_scaip::session::{self, Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{MessageType, Mrq, ProtocolError, Ref, SessionPolicy, Verdict};

const USER: &str = "unit17";
const AUTH_USER: &str = "unit17-auth";
const PASSWORD: &str = "correct horse";
const DOMAIN: &str = "arc.test";
const CENTRE: &str = "sip:arc@arc.test";
const ACCOUNT: &str = "123456";

/// The short timing of these tests (within what `SessionPolicy` allows).
fn policy() -> SessionPolicy {
    SessionPolicy {
        answer_timeout: Duration::from_secs(3),
        resend_every: Duration::from_secs(1),
        // The session keeps a hold pause within 5–20 s whatever this says.
        hold_interval: Duration::from_secs(5),
        hold_budget: Duration::from_secs(60),
    }
}

/// Hang guard of one session (never a timing assertion).
const SESSION_GUARD: Duration = Duration::from_secs(90);

/// SIPp with `tests/sipp/<scenario>` as the centre, until the test ends it.
fn centre(scenario: &str, transport: Transport) -> Sipp {
    let mode = match transport {
        Transport::Udp => SippTransport::Udp,
        Transport::Tcp => SippTransport::Tcp,
        Transport::Tls => panic!("this SIPp build has no TLS"),
    };
    Sipp::builder(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario),
    )
    .transport(mode)
    .key("auth_user", AUTH_USER)
    .key("auth_pass", PASSWORD)
    .key("target_user", USER)
    .timeout(Duration::from_secs(120))
    .start()
}

fn settings(transport: Transport, registrar: String) -> SipSettings {
    let mut s = SipSettings::new(transport, registrar, DOMAIN, USER, PASSWORD);
    s.auth_user = Some(AUTH_USER.into());
    s.transaction_timeout = Duration::from_secs(8);
    s
}

/// A `ScaipSip` to `sipp`, registered (SIPp may still be opening its socket, so an unreachable
/// centre is retried for a few seconds), as the session's receiver `name`.
async fn receiver(name: &str, sipp: &Sipp, transport: Transport) -> (Receiver, Arc<ScaipSip>) {
    let sip = Arc::new(ScaipSip::new(settings(transport, sipp.address()), CENTRE));
    let mut last = None;
    for _ in 0..40 {
        match sip.connect().await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e @ ProtocolError::Unavailable(_)) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("registration failed: {e}\n{}", sipp.logs()),
        }
    }
    assert!(
        last.is_none(),
        "could not reach sipp: {last:?}\n{}",
        sipp.logs()
    );
    let r = Receiver {
        name: name.into(),
        protocol: sip.clone(),
    };
    (r, sip)
}

fn request(reference: &str) -> Mrq {
    Mrq {
        reference: Some(Ref::new(reference).unwrap()),
        caller_id: ACCOUNT.into(),
        device_type: 5,
        status: Some(9),
        ..Mrq::default()
    }
}

/// Run one event through `receivers`; returns the outcome and every attempt logged.
async fn run(receivers: &[Receiver], request: &Mrq) -> (SessionOutcome, Vec<Attempt>) {
    let log = Mutex::new(Vec::new());
    let outcome = tokio::time::timeout(
        SESSION_GUARD,
        session::run(receivers, request, policy(), &|a| {
            log.lock().unwrap().push(a.clone())
        }),
    )
    .await
    .expect("the session did not end");
    (outcome, log.into_inner().unwrap())
}

/// One MESSAGE SIPp got, from its `<log>` line `mrq call=N ref=R cid=C dty=D mty=M`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    call: u32,
    reference: String,
    cid: String,
    dty: String,
    /// Empty when the body had no `<mty>` (ME).
    mty: String,
}

fn seen(lines: &[String]) -> Vec<Seen> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("mrq call=")?..];
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap_or("")
                    .to_owned()
            };
            Some(Seen {
                call: field("call").parse().ok()?,
                reference: field("ref"),
                cid: field("cid"),
                dty: field("dty"),
                mty: field("mty"),
            })
        })
        .collect()
}

/// End SIPp (SIGUSR1), assert every call of its scenario passed, and return what it saw.
async fn finish(sipp: Sipp) -> (SippExit, Vec<Seen>) {
    let exit = sipp.finish().await;
    exit.assert_passed();
    let seen = seen(&exit.log_lines);
    (exit, seen)
}

/// Every MESSAGE SIPp saw carried `reference`, our account and the device type.
fn all_for(seen: &[Seen], reference: &str, exit: &SippExit) {
    assert!(!seen.is_empty(), "sipp saw no MESSAGE\n{}", exit.logs);
    for s in seen {
        assert_eq!(s.reference, reference, "{seen:?}");
        assert_eq!(s.cid, ACCOUNT, "{seen:?}");
        assert_eq!(s.dty, "0005", "{seen:?}");
    }
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

// ---------------------------------------------------------------------------------------------
// OK: REGISTER with a 401 challenge, MESSAGE <mrq>, 200, the centre's MESSAGE <mrs> snu=0.

async fn handled_by_the_centres_message(transport: Transport) {
    let sipp = centre("ok.xml", transport);
    let (primary, sip) = receiver("arc-primary", &sipp, transport).await;
    let (outcome, log) = run(&[primary], &request("OkCentre01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{}",
        sipp.logs()
    );
    assert!(
        matches!(
            log.last(),
            Some(Attempt {
                result: AttemptResult::Answer(Verdict::Handled),
                ..
            })
        ),
        "{log:?}"
    );
    let counters = sip.counters();
    assert!(counters.matched.load(Ordering::Relaxed) >= 1);
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 0);
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "OkCentre01", &exit);
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_the_centres_mrs_message_handles_the_alarm_over_udp() {
    handled_by_the_centres_message(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_the_centres_mrs_message_handles_the_alarm_over_tcp() {
    handled_by_the_centres_message(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// A centre that puts the <mrs> in the 200's body.

async fn handled_by_the_200_body(transport: Transport) {
    let sipp = centre("mrs_in_200.xml", transport);
    let (primary, sip) = receiver("arc-primary", &sipp, transport).await;
    let (outcome, _) = run(&[primary], &request("InTheBody01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{}",
        sipp.logs()
    );
    let counters = sip.counters();
    assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 0);
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "InTheBody01", &exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mrs_in_the_200_body_handles_the_alarm_over_udp() {
    handled_by_the_200_body(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mrs_in_the_200_body_handles_the_alarm_over_tcp() {
    handled_by_the_200_body(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// Hold (snu=4), then the resend with the same ref is handled.

async fn hold_then_ok(transport: Transport) {
    let sipp = centre("hold.xml", transport);
    let (primary, _sip) = receiver("arc-primary", &sipp, transport).await;
    let (outcome, log) = run(&[primary], &request("HoldMe01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{}",
        sipp.logs()
    );
    let verdicts: Vec<Verdict> = log
        .iter()
        .filter_map(|a| match a.result {
            AttemptResult::Answer(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(verdicts, vec![Verdict::Hold, Verdict::Handled], "{log:?}");
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "HoldMe01", &exit);
    // The request and its resend after the hold: two calls, one ref.
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen[0].call, 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_then_the_resend_with_the_same_ref_is_handled_over_udp() {
    hold_then_ok(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_then_the_resend_with_the_same_ref_is_handled_over_tcp() {
    hold_then_ok(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// Busy (snu=6) from the primary: the alternative (a second SIPp) handles it.

async fn busy_goes_to_the_alternative(transport: Transport) {
    let busy = centre("busy.xml", transport);
    let ok = centre("ok.xml", transport);
    let (primary, _a) = receiver("arc-primary", &busy, transport).await;
    let (alternative, _b) = receiver("arc-alternative", &ok, transport).await;
    let (outcome, log) = run(&[primary, alternative], &request("BusyArc01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(1),
        "{outcome:?}\n{}\n{}",
        busy.logs(),
        ok.logs()
    );
    assert!(
        log.iter()
            .any(|a| a.receiver_index == 0 && a.result == AttemptResult::Answer(Verdict::Busy)),
        "{log:?}"
    );
    // Busy ends the ref at the primary: no reset is sent there.
    assert!(
        !log.iter().any(|a| a.result == AttemptResult::ResetSent),
        "{log:?}"
    );
    let (exit, seen) = finish(busy).await;
    all_for(&seen, "BusyArc01", &exit);
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
    let (exit, seen) = finish(ok).await;
    all_for(&seen, "BusyArc01", &exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_primary_the_alternative_handles_it_over_udp() {
    busy_goes_to_the_alternative(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_primary_the_alternative_handles_it_over_tcp() {
    busy_goes_to_the_alternative(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// No answer: 200 but never an <mrs>. Resends with the same ref, then mty=RE, then the
// alternative.

async fn silence_resends_resets_and_moves_on(transport: Transport) {
    let silent = centre("silent.xml", transport);
    let ok = centre("ok.xml", transport);
    let (primary, _a) = receiver("arc-primary", &silent, transport).await;
    let (alternative, _b) = receiver("arc-alternative", &ok, transport).await;
    let (outcome, log) = run(&[primary, alternative], &request("Silence01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(1),
        "{outcome:?}\n{}",
        silent.logs()
    );
    assert!(
        log.iter().any(|a| a.receiver_index == 0
            && a.result == AttemptResult::ResetSent
            && a.message_type == MessageType::Reset),
        "{log:?}"
    );
    // The reset is sent detached, so wait until SIPp has it.
    let got_reset = silent
        .wait_for_log(Duration::from_secs(20), |l| l.contains("mty=RE"))
        .await;
    assert!(got_reset, "no mty=RE reached sipp\n{}", silent.logs());
    let (exit, seen) = finish(silent).await;
    all_for(&seen, "Silence01", &exit);
    let events = seen.iter().filter(|s| s.mty.is_empty()).count();
    assert!(events >= 2, "resent while silent: {seen:?}");
    assert_eq!(seen.iter().filter(|s| s.mty == "RE").count(), 1, "{seen:?}");
    // The reset comes after every request.
    assert_eq!(seen.last().map(|s| s.mty.as_str()), Some("RE"), "{seen:?}");
    let (exit, seen) = finish(ok).await;
    all_for(&seen, "Silence01", &exit);
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_resends_the_same_ref_then_resets_and_the_alternative_handles_it_over_udp() {
    silence_resends_resets_and_moves_on(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_resends_the_same_ref_then_resets_and_the_alternative_handles_it_over_tcp() {
    silence_resends_resets_and_moves_on(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// Malformed answers: counted, never a verdict; the resend gets a good one.

async fn malformed_then_ok(transport: Transport) {
    let sipp = centre("malformed.xml", transport);
    let (primary, sip) = receiver("arc-primary", &sipp, transport).await;
    let (outcome, _) = run(&[primary], &request("Garbled01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{}",
        sipp.logs()
    );
    let counters = sip.counters();
    // `<snu>ok</snu>` and `<mrs><ref>x`.
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 2);
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "Garbled01", &exit);
    assert!(seen.len() >= 2, "the request was resent: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_counted_and_the_resend_is_handled_over_udp() {
    malformed_then_ok(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_counted_and_the_resend_is_handled_over_tcp() {
    malformed_then_ok(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_malformed_answers_reset_after_the_answer_timeout_and_move_on() {
    let transport = Transport::Udp;
    let garbage = centre("garbage.xml", transport);
    let ok = centre("ok.xml", transport);
    let (primary, sip) = receiver("arc-primary", &garbage, transport).await;
    let (alternative, _b) = receiver("arc-alternative", &ok, transport).await;
    let (outcome, log) = run(&[primary, alternative], &request("Garbage01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(1),
        "{outcome:?}\n{}",
        garbage.logs()
    );
    assert!(
        !log.iter()
            .any(|a| a.receiver_index == 0 && matches!(a.result, AttemptResult::Answer(_))),
        "garbage is never a verdict: {log:?}"
    );
    assert!(
        log.iter()
            .any(|a| a.receiver_index == 0 && a.result == AttemptResult::ResetSent),
        "{log:?}"
    );
    assert!(
        garbage
            .wait_for_log(Duration::from_secs(20), |l| l.contains("mty=RE"))
            .await,
        "no mty=RE reached sipp\n{}",
        garbage.logs()
    );
    // SIPp answers the reset with garbage too; count after it is done.
    let (exit, seen) = finish(garbage).await;
    all_for(&seen, "Garbage01", &exit);
    assert!(
        sip.counters().malformed.load(Ordering::Relaxed) >= 2,
        "{seen:?}"
    );
    assert_eq!(sip.counters().matched.load(Ordering::Relaxed), 0);
    let (exit, seen) = finish(ok).await;
    all_for(&seen, "Garbage01", &exit);
}

// ---------------------------------------------------------------------------------------------
// Another ref: not handled by it (counted unmatched); the resend gets the right one.

async fn wrong_ref_then_ok(transport: Transport) {
    let sipp = centre("wrong_ref.xml", transport);
    let (primary, sip) = receiver("arc-primary", &sipp, transport).await;
    let (outcome, log) = run(&[primary], &request("RightRef01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{}",
        sipp.logs()
    );
    match &outcome {
        SessionOutcome::Handled { answer, .. } => {
            assert_eq!(answer.reference.as_str(), "RightRef01")
        }
        other => panic!("{other:?}"),
    }
    // The first exchange got no verdict (the answer was for another ref).
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
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "RightRef01", &exit);
    assert!(seen.len() >= 2, "the request was resent: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_ref_is_not_taken_and_the_resend_is_handled_over_udp() {
    wrong_ref_then_ok(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_ref_is_not_taken_and_the_resend_is_handled_over_tcp() {
    wrong_ref_then_ok(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// A registration started by the first alarm outlives that exchange's wait.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_registration_started_by_an_alarm_is_not_cut_off_by_the_resend_timer() {
    // UDP, so nothing needs SIPp to be listening before the first REGISTER (it is retransmitted).
    let transport = Transport::Udp;
    let sipp = centre("slow_registrar.xml", transport);
    // Not registered beforehand: the alarm's first exchange starts the registration, which takes
    // longer (1.5 s) than that exchange may wait (resend_every, 1 s).
    let sip = Arc::new(ScaipSip::new(settings(transport, sipp.address()), CENTRE));
    let primary = Receiver {
        name: "arc-primary".into(),
        protocol: sip.clone(),
    };
    let (outcome, log) = run(&[primary], &request("SlowReg01")).await;
    assert_eq!(
        handled_by(&outcome),
        Some(0),
        "{outcome:?}\n{log:?}\n{}",
        sipp.logs()
    );
    let (exit, seen) = finish(sipp).await;
    all_for(&seen, "SlowReg01", &exit);
    // One registration (call 1), not one per exchange.
    assert_eq!(seen[0].call, 2, "{seen:?}\n{}", exit.logs);
}

// ---------------------------------------------------------------------------------------------
// The whole alarm route: a real outbox, the route sender, ScaipUplink, ScaipSip, SIPp.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_the_outbox_is_delivered_by_the_route_sender_through_sipp() {
    use hearth_model::{Category, Timestamp};
    use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};
    use hearth_uplink::RouteSender;
    use hearth_uplink_scaip::{AlarmEvent, AlarmObserver, Mapping, ScaipUplink};

    let transport = Transport::Udp;
    let sipp = centre("ok.xml", transport);
    let (primary, _sip) = receiver("arc-primary", &sipp, transport).await;

    let dir = tempfile::tempdir().unwrap();
    let retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
        jitter: 0.0,
    };
    let route = RouteSpec {
        name: "alarms".into(),
        categories: Category::ALL.to_vec(),
        retry,
        readings_only: false,
        alarms_only: true,
    };
    let (mut outbox, _) =
        Outbox::open(OutboxOptions::new(dir.path().join("o.db"), vec![route])).unwrap();
    let record = common::alarm();
    outbox
        .append_all(std::slice::from_ref(&record), Timestamp::now())
        .unwrap();
    let (writer, _writer_thread) = OutboxWriter::spawn(outbox, 1000).unwrap();

    let events: Arc<Mutex<Vec<AlarmEvent>>> = Arc::default();
    let observer: AlarmObserver = {
        let events = events.clone();
        Arc::new(move |e: &AlarmEvent| events.lock().unwrap().push(e.clone()))
    };
    let uplink = ScaipUplink::new(vec![primary], Mapping::new(ACCOUNT), policy(), observer);
    let mut sender = RouteSender::new("alarms", writer.clone(), Box::new(uplink), 10, retry)
        .unwrap()
        .with_idle_poll(Duration::from_millis(50));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { sender.run(stop_rx, || {}).await });
    tokio::time::timeout(SESSION_GUARD, async {
        while writer.stats().await.unwrap().records() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the alarm was not delivered\n{}", sipp.logs()));
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    let reference = hearth_uplink_scaip::mapping::reference_for(&record.id());
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(e,
            AlarmEvent::Handled { record: r, alarm: Some(_), reference: x, receiver, answer }
                if *r == record.id() && *x == reference && receiver == "arc-primary"
                    && answer.verdict == Verdict::Handled)),
        "{events:?}"
    );
    let (exit, seen) = finish(sipp).await;
    // A fall: dty 0005 (fall detector), our account, the ref derived from the record id.
    all_for(&seen, reference.as_str(), &exit);
}

#[test]
fn the_log_lines_of_the_scenarios_are_read() {
    let lines = vec![
        "2026-01-01\t00:00:00.000000\t1.0: mrq call=2 ref=Ab1 cid=123456 dty=0005 mty=".into(),
        "mrq call=3 ref=Ab1 cid=123456 dty=0005 mty=RE".into(),
        "something else".into(),
    ];
    let s = seen(&lines);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].call, 2);
    assert_eq!(s[0].mty, "");
    assert_eq!(s[1].mty, "RE");
    assert_eq!(s[1].reference, "Ab1");
}
