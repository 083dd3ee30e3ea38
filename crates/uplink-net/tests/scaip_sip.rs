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
mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_sip::Transport;
use hearth_test_kit::sipp::{Sipp, SippExit, SippTransport};
use hearth_uplink_net::ScaipSip;
use hearth_uplink_scaip::session::{Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{MessageType, ProtocolError, Verdict};
use support::{
    ACCOUNT, Counts, SESSION_GUARD, Seen, all_for, as_receiver,
    assert_busy_at_the_primary_without_a_reset, handled_by, last_handled, policy, registered,
    request, run, seen, settings, verdicts,
};

/// SIPp with `tests/sipp/<scenario>` as the centre, until the test ends it.
fn centre(scenario: &str, transport: Transport) -> Sipp {
    let mode = match transport {
        Transport::Udp => SippTransport::Udp,
        Transport::Tcp => SippTransport::Tcp,
        Transport::Tls => panic!("this SIPp build has no TLS"),
    };
    support::sipp(scenario, mode)
}

/// A `ScaipSip` to `sipp`, registered (SIPp may still be opening its socket, so an unreachable
/// centre is retried for a few seconds), as the session's receiver `name`.
async fn receiver(name: &str, sipp: &Sipp, transport: Transport) -> (Receiver, Arc<ScaipSip>) {
    registered(
        name,
        settings(transport, sipp.address()),
        "could not reach sipp",
        || sipp.logs(),
    )
    .await
}

/// End SIPp (SIGUSR1), assert every call of its scenario passed, and return what it saw.
async fn finish(sipp: Sipp) -> (SippExit, Vec<Seen>) {
    let exit = sipp.finish().await;
    exit.assert_passed();
    let seen = seen(&exit.log_lines);
    (exit, seen)
}

/// The session's receivers, in order.
const RECEIVERS: [&str; 2] = ["arc-primary", "arc-alternative"];

/// One event through a session whose receiver `i` is SIPp playing `centres[i]`.
struct Scenario {
    centres: &'static [&'static str],
    reference: &'static str,
    /// The receiver that handles the event.
    handled_by: usize,
    /// Register every receiver before the session (else its first exchange does).
    register: bool,
    /// Wait until the primary's SIPp has the detached reset (`mty=RE`) before ending it.
    await_reset: bool,
}

/// What a scenario's session and its centres saw.
struct Saw {
    outcome: SessionOutcome,
    log: Vec<Attempt>,
    /// Each receiver's counters right after the session.
    counts: Vec<Counts>,
    /// Each receiver's `ScaipSip`, to read its counters once the centres are done.
    sips: Vec<Arc<ScaipSip>>,
    /// Each centre's exit (every call passed) and the MESSAGEs it saw, which all carried the
    /// scenario's ref, our account and the device type.
    centres: Vec<(SippExit, Vec<Seen>)>,
}

impl Scenario {
    /// `centres` as the receivers, registered beforehand; the primary handles `reference`.
    const fn new(centres: &'static [&'static str], reference: &'static str) -> Self {
        Scenario {
            centres,
            reference,
            handled_by: 0,
            register: true,
            await_reset: false,
        }
    }

    /// Start the centres over `transport`, run the session (asserting who handled the event),
    /// end the centres and return what was seen.
    async fn run(self, transport: Transport) -> Saw {
        let sipps: Vec<Sipp> = self
            .centres
            .iter()
            .map(|scenario| centre(scenario, transport))
            .collect();
        let mut receivers = Vec::new();
        let mut sips = Vec::new();
        for (sipp, name) in sipps.iter().zip(RECEIVERS) {
            let (r, sip) = if self.register {
                receiver(name, sipp, transport).await
            } else {
                let sip = Arc::new(ScaipSip::new(
                    settings(transport, sipp.address()),
                    support::CENTRE,
                ));
                (as_receiver(name, &sip), sip)
            };
            receivers.push(r);
            sips.push(sip);
        }
        let (outcome, log) = run(&receivers, &request(self.reference)).await;
        assert_eq!(
            handled_by(&outcome),
            Some(self.handled_by),
            "{outcome:?}\n{log:?}\n{}",
            sipps.iter().map(Sipp::logs).collect::<Vec<_>>().join("\n")
        );
        let counts = sips.iter().map(|sip| Counts::of(sip)).collect();
        if self.await_reset {
            // The reset is sent detached, so wait until SIPp has it.
            let got_reset = sipps[0]
                .wait_for_log(Duration::from_secs(20), |l| l.contains("mty=RE"))
                .await;
            assert!(got_reset, "no mty=RE reached sipp\n{}", sipps[0].logs());
        }
        let mut centres = Vec::new();
        for sipp in sipps {
            let (exit, seen) = finish(sipp).await;
            all_for(&seen, self.reference, &exit);
            centres.push((exit, seen));
        }
        Saw {
            outcome,
            log,
            counts,
            sips,
            centres,
        }
    }
}

/// `$udp` and `$tcp`: the test `$scenario` over UDP and over TCP.
macro_rules! over_udp_and_tcp {
    ($scenario:ident: $udp:ident, $tcp:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $udp() {
            $scenario(Transport::Udp).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $tcp() {
            $scenario(Transport::Tcp).await;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// OK: REGISTER with a 401 challenge, MESSAGE <mrq>, 200, the centre's MESSAGE <mrs> snu=0.

async fn handled_by_the_centres_message(transport: Transport) {
    let saw = Scenario::new(&["ok.xml"], "OkCentre01")
        .run(transport)
        .await;
    let log = &saw.log;
    assert!(last_handled(log), "{log:?}");
    assert!(saw.counts[0].matched >= 1);
    assert_eq!(saw.counts[0].malformed, 0);
    let seen = &saw.centres[0].1;
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

over_udp_and_tcp!(handled_by_the_centres_message:
    ok_the_centres_mrs_message_handles_the_alarm_over_udp,
    ok_the_centres_mrs_message_handles_the_alarm_over_tcp);

// ---------------------------------------------------------------------------------------------
// A centre that puts the <mrs> in the 200's body.

async fn handled_by_the_200_body(transport: Transport) {
    let saw = Scenario::new(&["mrs_in_200.xml"], "InTheBody01")
        .run(transport)
        .await;
    assert_eq!(saw.counts[0].matched, 1);
    assert_eq!(saw.counts[0].malformed, 0);
}

over_udp_and_tcp!(handled_by_the_200_body:
    an_mrs_in_the_200_body_handles_the_alarm_over_udp,
    an_mrs_in_the_200_body_handles_the_alarm_over_tcp);

// ---------------------------------------------------------------------------------------------
// Hold (snu=4), then the resend with the same ref is handled.

async fn hold_then_ok(transport: Transport) {
    let saw = Scenario::new(&["hold.xml"], "HoldMe01")
        .run(transport)
        .await;
    let log = &saw.log;
    assert_eq!(
        verdicts(log),
        vec![Verdict::Hold, Verdict::Handled],
        "{log:?}"
    );
    // The request and its resend after the hold: two calls, one ref.
    let seen = &saw.centres[0].1;
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen[0].call, 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

over_udp_and_tcp!(hold_then_ok:
    hold_then_the_resend_with_the_same_ref_is_handled_over_udp,
    hold_then_the_resend_with_the_same_ref_is_handled_over_tcp);

// ---------------------------------------------------------------------------------------------
// Busy (snu=6) from the primary: the alternative (a second SIPp) handles it.

async fn busy_goes_to_the_alternative(transport: Transport) {
    let saw = Scenario {
        handled_by: 1,
        ..Scenario::new(&["busy.xml", "ok.xml"], "BusyArc01")
    }
    .run(transport)
    .await;
    // Busy ends the ref at the primary: no reset is sent there.
    assert_busy_at_the_primary_without_a_reset(&saw.log);
    let seen = &saw.centres[0].1;
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

over_udp_and_tcp!(busy_goes_to_the_alternative:
    busy_primary_the_alternative_handles_it_over_udp,
    busy_primary_the_alternative_handles_it_over_tcp);

// ---------------------------------------------------------------------------------------------
// No answer: 200 but never an <mrs>. Resends with the same ref, then mty=RE, then the
// alternative.

async fn silence_resends_resets_and_moves_on(transport: Transport) {
    let saw = Scenario {
        handled_by: 1,
        await_reset: true,
        ..Scenario::new(&["silent.xml", "ok.xml"], "Silence01")
    }
    .run(transport)
    .await;
    let log = &saw.log;
    assert!(
        log.iter().any(|a| a.receiver_index == 0
            && a.result == AttemptResult::ResetSent
            && a.message_type == MessageType::Reset),
        "{log:?}"
    );
    let seen = &saw.centres[0].1;
    let events = seen.iter().filter(|s| s.mty.is_empty()).count();
    assert!(events >= 2, "resent while silent: {seen:?}");
    assert_eq!(seen.iter().filter(|s| s.mty == "RE").count(), 1, "{seen:?}");
    // The reset comes after every request.
    assert_eq!(seen.last().map(|s| s.mty.as_str()), Some("RE"), "{seen:?}");
    let seen = &saw.centres[1].1;
    assert!(seen.iter().all(|s| s.mty.is_empty()), "{seen:?}");
}

over_udp_and_tcp!(silence_resends_resets_and_moves_on:
    no_answer_resends_the_same_ref_then_resets_and_the_alternative_handles_it_over_udp,
    no_answer_resends_the_same_ref_then_resets_and_the_alternative_handles_it_over_tcp);

// ---------------------------------------------------------------------------------------------
// Malformed answers: counted, never a verdict; the resend gets a good one.

async fn malformed_then_ok(transport: Transport) {
    let saw = Scenario::new(&["malformed.xml"], "Garbled01")
        .run(transport)
        .await;
    // `<snu>ok</snu>` and `<mrs><ref>x`.
    assert_eq!(saw.counts[0].malformed, 2);
    let seen = &saw.centres[0].1;
    assert!(seen.len() >= 2, "the request was resent: {seen:?}");
}

over_udp_and_tcp!(malformed_then_ok:
    malformed_answers_are_counted_and_the_resend_is_handled_over_udp,
    malformed_answers_are_counted_and_the_resend_is_handled_over_tcp);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_malformed_answers_reset_after_the_answer_timeout_and_move_on() {
    let saw = Scenario {
        handled_by: 1,
        await_reset: true,
        ..Scenario::new(&["garbage.xml", "ok.xml"], "Garbage01")
    }
    .run(Transport::Udp)
    .await;
    let log = &saw.log;
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
    // SIPp answers the reset with garbage too; count after it is done.
    let seen = &saw.centres[0].1;
    let counters = saw.sips[0].counters();
    assert!(counters.malformed.load(Ordering::Relaxed) >= 2, "{seen:?}");
    assert_eq!(counters.matched.load(Ordering::Relaxed), 0);
}

// ---------------------------------------------------------------------------------------------
// Another ref: not handled by it (counted unmatched); the resend gets the right one.

async fn wrong_ref_then_ok(transport: Transport) {
    let saw = Scenario::new(&["wrong_ref.xml"], "RightRef01")
        .run(transport)
        .await;
    match &saw.outcome {
        SessionOutcome::Handled { answer, .. } => {
            assert_eq!(answer.reference.as_str(), "RightRef01")
        }
        other => panic!("{other:?}"),
    }
    // The first exchange got no verdict (the answer was for another ref).
    let log = &saw.log;
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
    assert_eq!(saw.counts[0].unmatched, 1);
    assert_eq!(saw.counts[0].matched, 1);
    let seen = &saw.centres[0].1;
    assert!(seen.len() >= 2, "the request was resent: {seen:?}");
}

over_udp_and_tcp!(wrong_ref_then_ok:
    an_answer_for_another_ref_is_not_taken_and_the_resend_is_handled_over_udp,
    an_answer_for_another_ref_is_not_taken_and_the_resend_is_handled_over_tcp);

// ---------------------------------------------------------------------------------------------
// A registration started by the first alarm outlives that exchange's wait.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_registration_started_by_an_alarm_is_not_cut_off_by_the_resend_timer() {
    // UDP, so nothing needs SIPp to be listening before the first REGISTER (it is retransmitted).
    // Not registered beforehand: the alarm's first exchange starts the registration, which takes
    // longer (1.5 s) than that exchange may wait (resend_every, 1 s).
    let saw = Scenario {
        register: false,
        ..Scenario::new(&["slow_registrar.xml"], "SlowReg01")
    }
    .run(Transport::Udp)
    .await;
    let (exit, seen) = &saw.centres[0];
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
            AlarmEvent::Handled { record: r, alarm: Some(_), reference: x, receiver, answer, .. }
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
