//! One event across the receivers in order (SS 91100 §4, REQUIREMENTS S1/S6).
//!
//! Per receiver: send; no answer → resend the same `ref` every `resend_every` until
//! `answer_timeout`; hold (`snu`=4) → resend after `hold_interval` (5–20 s, jittered) while
//! the hold budget lasts; not treated / busy (`snu`=5/6) or a centre error → the next receiver
//! at once; silence past `answer_timeout` or an exhausted hold budget → a reset (`mty=RE`,
//! same `ref`, not waited for) and the next receiver. The event is handled only on `snu`=0.

use std::sync::Arc;
use std::time::Duration;

use hearth_model::Timestamp;
use tokio::time::Instant;

use crate::xml::{MessageType, Mrq};
use crate::{AlarmProtocol, CentreAnswer, ProtocolError, Verdict};

/// One receiver of a route: the primary first, then the alternatives.
#[derive(Clone)]
pub struct Receiver {
    /// Its name in configuration (`arc-primary`).
    pub name: String,
    /// How to reach it.
    pub protocol: Arc<dyn AlarmProtocol>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("protocol", &self.protocol.describe())
            .finish()
    }
}

/// The timing of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// How long a receiver may stay silent before the next one is tried (S6). Default 10 s.
    pub answer_timeout: Duration,
    /// Resend the same request this often while no answer came. Default 4 s.
    pub resend_every: Duration,
    /// After a hold, resend after this long (jittered ±25 %, kept within 5–20 s). Default 10 s.
    pub hold_interval: Duration,
    /// How long a receiver may keep an event on hold (SS: 3–30 min). Default 3 min.
    pub hold_budget: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            answer_timeout: Duration::from_secs(10),
            resend_every: Duration::from_secs(4),
            hold_interval: Duration::from_secs(10),
            hold_budget: Duration::from_secs(180),
        }
    }
}

/// What one request to one receiver gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The centre's verdict.
    Answer(Verdict),
    /// No verdict: silence, unreachable, refused or a malformed answer.
    Failed(ProtocolError),
    /// A reset was sent (no verdict is awaited).
    ResetSent,
}

/// One request to one receiver, for the event log (S3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's name.
    pub receiver: String,
    /// Its index in the route's order (0 = primary).
    pub receiver_index: usize,
    /// `ME`, `IN`, `RE` …
    pub message_type: MessageType,
    /// When it was sent.
    pub at: Timestamp,
    /// What came of it.
    pub result: AttemptResult,
    /// The centre's text (`ste`), if any.
    pub reason: Option<String>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutcome {
    /// A receiver answered `snu`=0.
    Handled {
        /// Which (index in the route's order).
        receiver_index: usize,
        /// Its answer (voice instruction, heartbeat interval).
        answer: CentreAnswer,
    },
    /// No receiver handled it; the alarm stays in the outbox and is tried again.
    Exhausted,
}

/// Why a receiver is left.
enum Leave {
    /// Silence or an exhausted hold: reset, then the next receiver.
    WithReset,
    /// The receiver ended the ref itself (not treated, busy, an error): the next receiver.
    Plainly,
}

/// Run one event through the receivers in order. `log` sees every attempt as it happens.
pub async fn run(
    receivers: &[Receiver],
    request: &Mrq,
    policy: SessionPolicy,
    log: &(dyn Fn(&Attempt) + Send + Sync),
) -> SessionOutcome {
    for (index, receiver) in receivers.iter().enumerate() {
        match try_receiver(index, receiver, request, policy, log).await {
            Ok(answer) => {
                return SessionOutcome::Handled {
                    receiver_index: index,
                    answer,
                };
            }
            Err(Leave::WithReset) => send_reset(index, receiver, request, log),
            Err(Leave::Plainly) => {}
        }
    }
    SessionOutcome::Exhausted
}

async fn try_receiver(
    index: usize,
    receiver: &Receiver,
    request: &Mrq,
    policy: SessionPolicy,
    log: &(dyn Fn(&Attempt) + Send + Sync),
) -> Result<CentreAnswer, Leave> {
    let started = Instant::now();
    let mut deadline = started + policy.answer_timeout;
    let mut hold_started: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Leave::WithReset);
        }
        let wait = policy.resend_every.min(deadline - now);
        let at = Timestamp::now();
        let result = receiver.protocol.exchange(request, wait).await;
        let record = |result: AttemptResult, reason: Option<String>| {
            log(&Attempt {
                receiver: receiver.name.clone(),
                receiver_index: index,
                message_type: request.message_type,
                at,
                result,
                reason,
            })
        };
        match result {
            Ok(answer) => {
                record(AttemptResult::Answer(answer.verdict), answer.reason.clone());
                match answer.verdict {
                    Verdict::Handled => return Ok(answer),
                    Verdict::Hold => {
                        let first = *hold_started.get_or_insert_with(Instant::now);
                        let pause = jittered(policy.hold_interval);
                        if Instant::now() + pause > first + policy.hold_budget {
                            return Err(Leave::WithReset);
                        }
                        tokio::time::sleep(pause).await;
                        // A receiver that holds is alive: it gets its full time again.
                        deadline = Instant::now() + policy.answer_timeout;
                    }
                    Verdict::NotTreated | Verdict::Busy | Verdict::Error(_) => {
                        return Err(Leave::Plainly);
                    }
                }
            }
            Err(e @ ProtocolError::NoAnswer(_)) | Err(e @ ProtocolError::Malformed(_)) => {
                // Silence or garbage: resend the same ref until the receiver's time is up.
                record(AttemptResult::Failed(e.clone()), None);
                if matches!(e, ProtocolError::Malformed(_)) {
                    let rest = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(policy.resend_every.min(rest)).await;
                }
            }
            Err(e) => {
                // Unreachable or refusing us: waiting will not help this alarm; move on now.
                record(AttemptResult::Failed(e), None);
                return Err(Leave::Plainly);
            }
        }
    }
}

/// `mty=RE` with the same `ref`, sent without waiting so the next receiver is tried at once.
fn send_reset(
    index: usize,
    receiver: &Receiver,
    request: &Mrq,
    log: &(dyn Fn(&Attempt) + Send + Sync),
) {
    let mut reset = request.clone();
    reset.message_type = MessageType::Reset;
    log(&Attempt {
        receiver: receiver.name.clone(),
        receiver_index: index,
        message_type: MessageType::Reset,
        at: Timestamp::now(),
        result: AttemptResult::ResetSent,
        reason: None,
    });
    let protocol = Arc::clone(&receiver.protocol);
    let name = receiver.name.clone();
    tokio::spawn(async move {
        if let Err(e) = protocol.notify(&reset).await {
            tracing::debug!(receiver = %name, error = %e, "reset not delivered");
        }
    });
}

/// `base` ±25 %, kept within the 5–20 s the standard allows between hold polls.
fn jittered(base: Duration) -> Duration {
    let factor = 0.75 + fastrand::f64() * 0.5;
    base.mul_f64(factor)
        .clamp(Duration::from_secs(5), Duration::from_secs(20))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::BoxFuture;
    use crate::xml::Ref;

    /// A receiver that plays a script of answers and records what it got.
    struct Scripted {
        name: &'static str,
        script: Mutex<VecDeque<Result<Verdict, ProtocolError>>>,
        got: Mutex<Vec<MessageType>>,
    }

    impl Scripted {
        fn new(name: &'static str, script: Vec<Result<Verdict, ProtocolError>>) -> Arc<Self> {
            Arc::new(Self {
                name,
                script: Mutex::new(script.into()),
                got: Mutex::new(Vec::new()),
            })
        }
    }

    impl AlarmProtocol for Scripted {
        fn describe(&self) -> String {
            self.name.into()
        }
        fn exchange<'a>(
            &'a self,
            request: &'a Mrq,
            wait: Duration,
        ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>> {
            Box::pin(async move {
                self.got.lock().unwrap().push(request.message_type);
                let next = self.script.lock().unwrap().pop_front();
                match next {
                    Some(Ok(verdict)) => Ok(CentreAnswer {
                        reference: request.reference.clone().unwrap(),
                        verdict,
                        reason: None,
                        voice: None,
                        heartbeat: None,
                    }),
                    Some(Err(ProtocolError::NoAnswer(_))) | None => {
                        tokio::time::sleep(wait).await;
                        Err(ProtocolError::NoAnswer(wait))
                    }
                    Some(Err(e)) => Err(e),
                }
            })
        }
        fn notify<'a>(&'a self, request: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>> {
            Box::pin(async move {
                self.got.lock().unwrap().push(request.message_type);
                Ok(())
            })
        }
    }

    fn request() -> Mrq {
        Mrq {
            reference: Some(Ref::new("abc").unwrap()),
            caller_id: "1".into(),
            device_type: 3,
            ..Mrq::default()
        }
    }

    fn receivers(list: &[Arc<Scripted>]) -> Vec<Receiver> {
        list.iter()
            .map(|s| Receiver {
                name: s.name.into(),
                protocol: s.clone(),
            })
            .collect()
    }

    async fn run_logged(rs: &[Receiver]) -> (SessionOutcome, Vec<Attempt>) {
        let log = Mutex::new(Vec::new());
        let out = run(rs, &request(), SessionPolicy::default(), &|a| {
            log.lock().unwrap().push(a.clone())
        })
        .await;
        // Let the detached resets run.
        tokio::task::yield_now().await;
        (out, log.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn only_snu_0_is_handled() {
        let a = Scripted::new("a", vec![Ok(Verdict::Error(2)), Ok(Verdict::Busy)]);
        let b = Scripted::new("b", vec![Ok(Verdict::NotTreated)]);
        let (out, log) = run_logged(&receivers(&[a, b])).await;
        assert_eq!(out, SessionOutcome::Exhausted);
        assert_eq!(
            log.len(),
            2,
            "an error and not-treated each end their receiver"
        );
        let c = Scripted::new("c", vec![Ok(Verdict::Handled)]);
        let (out, _) = run_logged(&receivers(&[c])).await;
        assert!(matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 0,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn hold_resends_the_same_request_until_ok() {
        let a = Scripted::new(
            "a",
            vec![Ok(Verdict::Hold), Ok(Verdict::Hold), Ok(Verdict::Handled)],
        );
        let started = Instant::now();
        let (out, _) = run_logged(&receivers(std::slice::from_ref(&a))).await;
        assert!(matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 0,
                ..
            }
        ));
        assert_eq!(a.got.lock().unwrap().len(), 3);
        // Virtual time: two holds of 5–20 s each.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited <= Duration::from_secs(40),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_resets_and_moves_on() {
        let a = Scripted::new("a", vec![]);
        let b = Scripted::new("b", vec![Ok(Verdict::Handled)]);
        let started = Instant::now();
        let (out, log) = run_logged(&receivers(&[a.clone(), b])).await;
        assert!(matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 1,
                ..
            }
        ));
        // Virtual time: the primary's 10 s, then the alternative at once.
        assert_eq!(started.elapsed(), SessionPolicy::default().answer_timeout);
        let got = a.got.lock().unwrap().clone();
        assert_eq!(got.last(), Some(&MessageType::Reset), "{got:?}");
        assert!(
            got[..got.len() - 1]
                .iter()
                .all(|t| *t == MessageType::Event)
        );
        assert!(got.len() >= 3, "resent while silent: {got:?}");
        assert!(log.iter().any(|a| a.result == AttemptResult::ResetSent));
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_hold_ends_with_a_reset_within_the_budget() {
        let a = Scripted::new("a", vec![Ok(Verdict::Hold); 100]);
        let started = Instant::now();
        let (out, _) = run_logged(&receivers(std::slice::from_ref(&a))).await;
        assert_eq!(out, SessionOutcome::Exhausted);
        assert!(started.elapsed() <= SessionPolicy::default().hold_budget);
        assert_eq!(a.got.lock().unwrap().last(), Some(&MessageType::Reset));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_receiver_is_passed_at_once() {
        let a = Scripted::new("a", vec![Err(ProtocolError::Unavailable("down".into()))]);
        let b = Scripted::new("b", vec![Ok(Verdict::Handled)]);
        let started = Instant::now();
        let (out, _) = run_logged(&receivers(&[a, b])).await;
        assert!(matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 1,
                ..
            }
        ));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
