//! # hearth-uplink-scaip
//!
//! Safety alarms to the response centre (REQUIREMENTS A1, A2, B3–B5, S1, S3, S6).
//!
//! - [`xml`]: the SCAIP body (`<mrq>`/`<mrs>`), strict out, lenient in.
//! - [`AlarmProtocol`]: the seam every alarm protocol plugs into — send a request, get the
//!   centre's typed [`CentreAnswer`] (handled / hold / not treated / busy / error + reason,
//!   the voice instruction, a new heartbeat interval). SCAIP over SIP, SCAIP over HTTPS and a
//!   later CLC/TS 50134-9 transport implement it side by side (B5); the session logic never
//!   sees a transport.
//! - [`mapping`]: our alarms and technical alarms → SCAIP codes (`dty`, `dco`, `stc`, `lco`),
//!   per device from configuration (the role comes from config, never from the payload).
//! - [`session`]: one event across the receivers in order — resend on no answer, hold
//!   polling with a budget, `mty=RE` when a receiver stays silent, the next receiver on
//!   silence, not-treated or busy (SS 91100 §4; S6).
//! - [`ScaipUplink`]: the [`hearth_uplink::Uplink`] the route sender drives; every alarm in a
//!   batch runs its own session concurrently, and an alarm no receiver handled stays in the
//!   outbox (`Retry`), never dropped.
//!
//! ## Invariants
//! - Only `snu`=0 settles an alarm as delivered; a SIP 200, a hold, a busy or a malformed
//!   answer never does. Test: `session::tests::only_snu_0_is_handled`.
//! - A resend carries the same `ref`, also after a restart (the ref is derived from the
//!   record id). Test: `mapping::tests::the_ref_is_derived_from_the_record_id`.
//! - A receiver that stays silent is given up after `answer_timeout`, with `mty=RE`, and the
//!   next receiver is tried at once. Test: `session::tests::silence_resets_and_moves_on`.
#![forbid(unsafe_code)]

pub mod heartbeat;
pub mod mapping;
pub mod session;
mod uplink;
pub mod xml;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use mapping::{DeviceProfile, Mapping, TechnicalCodes};
pub use session::{Attempt, AttemptResult, Receiver, SessionOutcome, SessionPolicy};
pub use uplink::{AlarmEvent, AlarmObserver, ScaipUplink};
pub use xml::{MessageType, Mrq, Mrs, Ref, Snu, XmlError};

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the centre wants done with voice after it handled an alarm (SS 91100 §5; the voice
/// issue acts on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceInstruction {
    /// `mre`: 1 duplex, 2 microphone only, 3 speaker only.
    pub mode: u8,
    /// `cre`: who calls whom.
    pub call: CallMode,
}

/// `cre`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallMode {
    /// 1–60: the centre calls back; answer its call automatically for this long.
    AnswerFor(Duration),
    /// 61 (the default): call the predefined receiver.
    CallPredefined,
    /// 62: call this number (`tnu`).
    CallNumber(String),
}

/// The centre's verdict, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `snu`=0: the event is handled — the only answer that settles an alarm.
    Handled,
    /// `snu`=4: hold; resend the same request later.
    Hold,
    /// `snu`=5: not treated; try the next receiver.
    NotTreated,
    /// `snu`=6: busy; try the next receiver.
    Busy,
    /// Any other `snu`: the centre found fault with the message (1 too long, 2 invalid format,
    /// 3 wrong data, 7 missing tag, 10 no ref) or itself (99).
    Error(u16),
}

impl Verdict {
    /// Stable name for logs and the event log.
    pub fn name(self) -> String {
        match self {
            Verdict::Handled => "handled".into(),
            Verdict::Hold => "hold".into(),
            Verdict::NotTreated => "not_treated".into(),
            Verdict::Busy => "busy".into(),
            Verdict::Error(n) => format!("error_{n}"),
        }
    }
}

/// The centre's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentreAnswer {
    /// The `ref` it answers.
    pub reference: Ref,
    /// What it decided.
    pub verdict: Verdict,
    /// `ste`, if given (the centre's words; kept for the event log, never health data).
    pub reason: Option<String>,
    /// `mre`/`cre`/`tnu`, when the centre asks for voice.
    pub voice: Option<VoiceInstruction>,
    /// `hbi`: the heartbeat interval the centre wants.
    pub heartbeat: Option<Duration>,
}

impl From<Mrs> for CentreAnswer {
    fn from(m: Mrs) -> Self {
        let verdict = match m.status {
            Snu::Ok => Verdict::Handled,
            Snu::Hold => Verdict::Hold,
            Snu::NotTreated => Verdict::NotTreated,
            Snu::Busy => Verdict::Busy,
            Snu::Error(n) => Verdict::Error(n),
        };
        let voice = match m.voice_mode {
            Some(mode @ 1..=3) => Some(VoiceInstruction {
                mode,
                call: match m.call_mode {
                    Some(n @ 1..=60) => CallMode::AnswerFor(Duration::from_secs(u64::from(n) * 60)),
                    Some(62) => m
                        .transfer_number
                        .clone()
                        .map_or(CallMode::CallPredefined, CallMode::CallNumber),
                    _ => CallMode::CallPredefined,
                },
            }),
            _ => None,
        };
        Self {
            reference: m.reference,
            verdict,
            reason: m.status_text,
            voice,
            heartbeat: m
                .heartbeat_minutes
                .map(|n| Duration::from_secs(u64::from(n) * 60)),
        }
    }
}

/// Why an exchange with a receiver failed (no verdict came).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The request went out but no answer for its `ref` came in time.
    #[error("no answer from the centre within {0:?}")]
    NoAnswer(Duration),
    /// The request could not be sent (not registered, connection refused, TLS, a SIP or HTTP
    /// error status): the receiver is unreachable now.
    #[error("centre unreachable: {0}")]
    Unavailable(String),
    /// The receiver refuses us (401/403 after authenticating): wrong credentials or account.
    #[error("centre refuses this unit: {0} (check the account and credentials in the route)")]
    Refused(String),
    /// An answer came but could not be understood.
    #[error("malformed answer from the centre: {0}")]
    Malformed(String),
}

/// One alarm protocol over one transport to one receiver (B5): SCAIP over SIP, SCAIP over
/// HTTPS, later CLC/TS 50134-9.
pub trait AlarmProtocol: Send + Sync {
    /// For logs and the event log: `scaip+sip sips:centre@arc.example`.
    fn describe(&self) -> String;

    /// Send `request` and wait at most `wait` for the centre's answer to its `ref` (in the
    /// transport's reply or in a separate message, whichever the protocol uses).
    fn exchange<'a>(
        &'a self,
        request: &'a Mrq,
        wait: Duration,
    ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>>;

    /// Send `request` without waiting for the centre's verdict (a reset, `mty=RE`): `Ok` once
    /// the transport took it.
    fn notify<'a>(&'a self, request: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn voice_instructions_are_read_from_mre_and_cre() {
        let mut m = Mrs::new(Ref::new("r1").unwrap(), Snu::Ok);
        m.voice_mode = Some(1);
        m.call_mode = Some(5);
        let a = CentreAnswer::from(m.clone());
        assert_eq!(a.verdict, Verdict::Handled);
        assert_eq!(
            a.voice,
            Some(VoiceInstruction {
                mode: 1,
                call: CallMode::AnswerFor(Duration::from_secs(300))
            })
        );
        m.call_mode = Some(62);
        m.transfer_number = Some("+4799999999".into());
        assert_eq!(
            CentreAnswer::from(m.clone()).voice.unwrap().call,
            CallMode::CallNumber("+4799999999".into())
        );
        m.voice_mode = Some(0);
        assert_eq!(CentreAnswer::from(m).voice, None);
    }
}
