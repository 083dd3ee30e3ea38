//! What `tests/scaip_sip.rs` and `tests/scaip_sip_tls.rs` share: the unit's account at SIPp's
//! centre, the short session timing, SIPp playing `tests/sipp/<scenario>`, the unit's
//! `SipSettings`, a registered `ScaipSip` receiver, one guarded session run, and what SIPp logged
//! of each MESSAGE it got.
#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_sip::{SipSettings, Transport};
use hearth_test_kit::sipp::{Sipp, SippExit, SippTransport};
use hearth_uplink_net::ScaipSip;
use hearth_uplink_scaip::session::{self, Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{Mrq, ProtocolError, Ref, SessionPolicy, Verdict};

pub const USER: &str = "unit17";
pub const AUTH_USER: &str = "unit17-auth";
pub const PASSWORD: &str = "correct horse";
pub const DOMAIN: &str = "arc.test";
pub const CENTRE: &str = "sip:arc@arc.test";
pub const ACCOUNT: &str = "123456";

/// The short timing of these tests (within what `SessionPolicy` allows).
pub fn policy() -> SessionPolicy {
    SessionPolicy {
        answer_timeout: Duration::from_secs(3),
        resend_every: Duration::from_secs(1),
        // The session keeps a hold pause within 5–20 s whatever this says.
        hold_interval: Duration::from_secs(5),
        hold_budget: Duration::from_secs(60),
    }
}

/// Hang guard of one session (never a timing assertion).
pub const SESSION_GUARD: Duration = Duration::from_secs(90);

/// SIPp with `tests/sipp/<scenario>` as the centre over `transport`, until the test ends it.
pub fn sipp(scenario: &str, transport: SippTransport) -> Sipp {
    Sipp::builder(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario),
    )
    .transport(transport)
    .key("auth_user", AUTH_USER)
    .key("auth_pass", PASSWORD)
    .key("target_user", USER)
    .timeout(Duration::from_secs(120))
    .start()
}

/// The unit's settings towards `registrar` over `transport` (no TLS files).
pub fn settings(transport: Transport, registrar: String) -> SipSettings {
    let mut s = SipSettings::new(transport, registrar, DOMAIN, USER, PASSWORD);
    s.auth_user = Some(AUTH_USER.into());
    s.transaction_timeout = Duration::from_secs(8);
    s
}

/// `sip` as the session's receiver `name`, not registered beforehand.
pub fn as_receiver(name: &str, sip: &Arc<ScaipSip>) -> Receiver {
    Receiver {
        name: name.into(),
        protocol: sip.clone(),
    }
}

/// A `ScaipSip` with `settings`, registered (SIPp may still be opening its socket, so an
/// unreachable centre is retried for a few seconds; failing, the message says `unreachable` and
/// `logs()`), as the session's receiver `name`.
pub async fn registered(
    name: &str,
    settings: SipSettings,
    unreachable: &str,
    logs: impl Fn() -> String,
) -> (Receiver, Arc<ScaipSip>) {
    let sip = Arc::new(ScaipSip::new(settings, CENTRE));
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
            Err(e) => panic!("registration failed: {e}\n{}", logs()),
        }
    }
    assert!(last.is_none(), "{unreachable}: {last:?}\n{}", logs());
    (as_receiver(name, &sip), sip)
}

pub fn request(reference: &str) -> Mrq {
    Mrq {
        reference: Some(Ref::new(reference).unwrap()),
        caller_id: ACCOUNT.into(),
        device_type: 5,
        status: Some(9),
        ..Mrq::default()
    }
}

/// Run one event through `receivers`; returns the outcome and every attempt logged.
pub async fn run(receivers: &[Receiver], request: &Mrq) -> (SessionOutcome, Vec<Attempt>) {
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
pub struct Seen {
    pub call: u32,
    pub reference: String,
    pub cid: String,
    pub dty: String,
    /// Empty when the body had no `<mty>` (ME).
    pub mty: String,
}

pub fn seen(lines: &[String]) -> Vec<Seen> {
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

/// Every MESSAGE SIPp saw carried `reference`, our account and the device type.
pub fn all_for(seen: &[Seen], reference: &str, exit: &SippExit) {
    assert!(!seen.is_empty(), "sipp saw no MESSAGE\n{}", exit.logs);
    for s in seen {
        assert_eq!(s.reference, reference, "{seen:?}");
        assert_eq!(s.cid, ACCOUNT, "{seen:?}");
        assert_eq!(s.dty, "0005", "{seen:?}");
    }
}

pub fn handled_by(outcome: &SessionOutcome) -> Option<usize> {
    match outcome {
        SessionOutcome::Handled {
            receiver_index,
            answer,
        } if answer.verdict == Verdict::Handled => Some(*receiver_index),
        _ => None,
    }
}

/// The verdicts of the session's answers, in order.
pub fn verdicts(log: &[Attempt]) -> Vec<Verdict> {
    log.iter()
        .filter_map(|a| match a.result {
            AttemptResult::Answer(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// The session's last attempt got the `Handled` verdict.
pub fn last_handled(log: &[Attempt]) -> bool {
    matches!(
        log.last(),
        Some(Attempt {
            result: AttemptResult::Answer(Verdict::Handled),
            ..
        })
    )
}

/// The primary (receiver 0) answered busy, which ends the ref there: no reset was sent.
pub fn assert_busy_at_the_primary_without_a_reset(log: &[Attempt]) {
    assert!(
        log.iter()
            .any(|a| a.receiver_index == 0 && a.result == AttemptResult::Answer(Verdict::Busy)),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|a| a.result == AttemptResult::ResetSent),
        "{log:?}"
    );
}

/// A receiver's inbound counters at one moment (right after the session).
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub matched: u64,
    pub malformed: u64,
    pub unmatched: u64,
}

impl Counts {
    pub fn of(sip: &ScaipSip) -> Counts {
        let c = sip.counters();
        Counts {
            matched: c.matched.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            unmatched: c.unmatched.load(Ordering::Relaxed),
        }
    }
}
