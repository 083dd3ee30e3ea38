//! SCAIP over SIP (SS 91100; hearth is the local unit controller): `<mrq>` in a SIP MESSAGE to
//! the centre, the centre's `<mrs>` in a separate MESSAGE to our registered contact, matched
//! by `ref` (an `<mrs>` in the 200's body is accepted too). A SIP 200 alone is never an
//! acknowledgement.
//!
//! One [`ScaipSip`] per receiver, shared by the route's connections: one registration, one
//! inbound stream, many alarms waiting for their answers at once. The registration runs in a
//! task of its own, so an exchange that stops waiting never cuts it short.
//!
//! Tested against SIPp as the centre: `tests/scaip_sip.rs` (scenarios in `tests/sipp/`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_sip::{InboundMessage, SipAgent, SipError, SipSettings};
use hearth_uplink_scaip::xml::{self, Mrs, Ref};
use hearth_uplink_scaip::{AlarmProtocol, BoxFuture, CentreAnswer, Mrq, ProtocolError};
use tokio::sync::{mpsc, oneshot, watch};

use hearth_uplink_scaip::xml::CONTENT_TYPE as SCAIP_CONTENT_TYPE;

/// What came back from the centre: `<mrs>` answers in separate MESSAGEs and in 200 bodies (for
/// tests and status).
#[derive(Debug, Default)]
pub struct InboundCounters {
    /// `<mrs>` answers matched to a waiting request.
    pub matched: AtomicU64,
    /// `<mrs>` answers for a `ref` nobody waits for (late, duplicated, or wrong).
    pub unmatched: AtomicU64,
    /// Bodies that are not a SCAIP message we can read.
    pub malformed: AtomicU64,
}

type Waiters = Arc<Mutex<HashMap<Ref, Vec<oneshot::Sender<Mrs>>>>>;

/// The result of a registration, shared by everyone waiting for it.
type Started = Option<Result<Arc<SipAgent>, ProtocolError>>;

/// The agent: running, being started (registering), or neither.
#[derive(Default)]
struct AgentState {
    running: Option<Arc<SipAgent>>,
    /// A registration in progress; its task publishes the result here.
    starting: Option<watch::Receiver<Started>>,
}

/// SCAIP over SIP to one receiver.
pub struct ScaipSip {
    settings: SipSettings,
    to: String,
    agent: Arc<Mutex<AgentState>>,
    waiters: Waiters,
    counters: Arc<InboundCounters>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ScaipSip {
    /// A receiver at `to` (the centre's SIP URI), reached with `settings`. Nothing is started
    /// until the first message: the agent registers then, and again after it failed.
    pub fn new(settings: SipSettings, to: impl Into<String>) -> Self {
        Self {
            settings,
            to: to.into(),
            agent: Arc::new(Mutex::new(AgentState::default())),
            waiters: Arc::new(Mutex::new(HashMap::new())),
            counters: Arc::new(InboundCounters::default()),
        }
    }

    /// Start and register now (the daemon does this at start-up so the first alarm does not
    /// wait for a registration; a failure here is retried on the next message).
    pub async fn connect(&self) -> Result<(), ProtocolError> {
        self.agent().await.map(|_| ())
    }

    /// What the inbound side counted.
    pub fn counters(&self) -> Arc<InboundCounters> {
        Arc::clone(&self.counters)
    }

    /// The running agent, started (and registered) if there is none.
    ///
    /// The registration runs in its own task, shared by every caller while it lasts: an
    /// exchange that stops waiting (its resend timer is shorter than a slow registrar) must not
    /// cut the registration short, or no exchange would ever get to send; and callers that come
    /// meanwhile wait for the same registration instead of starting another.
    async fn agent(&self) -> Result<Arc<SipAgent>, ProtocolError> {
        let mut started = {
            let mut state = lock(&self.agent);
            if let Some(agent) = state.running.as_ref() {
                return Ok(Arc::clone(agent));
            }
            match state.starting.as_ref() {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    state.starting = Some(rx.clone());
                    tokio::spawn(register(
                        self.settings.clone(),
                        Arc::clone(&self.agent),
                        Arc::clone(&self.waiters),
                        Arc::clone(&self.counters),
                        tx,
                    ));
                    rx
                }
            }
        };
        let outcome = started
            .wait_for(Option::is_some)
            .await
            .map(|done| done.clone());
        match outcome {
            Ok(Some(result)) => result,
            _ => {
                // The registration task ended without a result (it panicked): let the next
                // message start another.
                let mut state = lock(&self.agent);
                if state
                    .starting
                    .as_ref()
                    .is_some_and(|rx| rx.same_channel(&started))
                {
                    state.starting = None;
                }
                Err(ProtocolError::Unavailable(
                    "the SIP registration ended without a result".into(),
                ))
            }
        }
    }

    /// Forget a broken agent so the next message starts a new one (unless another message has
    /// already replaced it).
    fn drop_agent(&self, broken: &Arc<SipAgent>) {
        let mut state = lock(&self.agent);
        if state
            .running
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(a, broken))
        {
            state.running = None;
        }
        drop(state);
        broken.shutdown();
    }

    fn wait_for(&self, reference: &Ref) -> oneshot::Receiver<Mrs> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.entry(reference.clone()).or_default().push(tx);
        }
        rx
    }

    fn forget(&self, reference: &Ref) {
        if let Ok(mut w) = self.waiters.lock() {
            if let Some(list) = w.get_mut(reference) {
                list.retain(|tx| !tx.is_closed());
                if list.is_empty() {
                    w.remove(reference);
                }
            }
        }
    }

    /// Send the request; `Ok(Some(mrs))` when the 200 carried the answer.
    async fn send(&self, request: &Mrq) -> Result<Option<Mrs>, ProtocolError> {
        let body = request
            .to_xml()
            .map_err(|e| ProtocolError::Unavailable(format!("cannot build the request: {e}")))?;
        let agent = self.agent().await?;
        let answer = match agent
            .send_message(&self.to, SCAIP_CONTENT_TYPE, body.as_bytes())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                if !matches!(e, SipError::Timeout { .. }) {
                    self.drop_agent(&agent);
                }
                return Err(protocol_error(e));
            }
        };
        match answer.status {
            200..=299 => Ok(in_body(&answer.body, request, &self.counters)),
            401 | 403 | 407 => Err(ProtocolError::Refused(format!(
                "SIP {} {}",
                answer.status, answer.reason
            ))),
            status => Err(ProtocolError::Unavailable(format!(
                "SIP {status} {}",
                answer.reason
            ))),
        }
    }
}

/// Start the agent (register) and publish the result to everyone waiting in `done`.
async fn register(
    settings: SipSettings,
    state: Arc<Mutex<AgentState>>,
    waiters: Waiters,
    counters: Arc<InboundCounters>,
    done: watch::Sender<Started>,
) {
    let result = match SipAgent::start(settings).await {
        Ok((agent, inbound)) => {
            tokio::spawn(route_answers(inbound, waiters, counters));
            Ok(Arc::new(agent))
        }
        Err(e) => Err(protocol_error(e)),
    };
    {
        let mut state = lock(&state);
        state.starting = None;
        if let Ok(agent) = &result {
            state.running = Some(Arc::clone(agent));
        }
    }
    done.send_replace(Some(result));
}

/// An `<mrs>` for this request in a 200's body (centres built that way), if there is one. An
/// `<mrs>` there that cannot be read, or is for another `ref`, is counted as an inbound one is.
fn in_body(body: &[u8], request: &Mrq, counters: &InboundCounters) -> Option<Mrs> {
    if body.is_empty() || xml::root_of(body) != Some("mrs") {
        return None;
    }
    match Mrs::parse(body) {
        Ok(m) if Some(&m.reference) == request.reference.as_ref() => {
            counters.matched.fetch_add(1, Ordering::Relaxed);
            Some(m)
        }
        Ok(m) => {
            counters.unmatched.fetch_add(1, Ordering::Relaxed);
            tracing::info!(reference = %m.reference, snu = m.status.code(),
                "the centre's 200 carried an answer for another ref; ignored");
            None
        }
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e,
                "the centre's 200 carried a SCAIP answer hearth cannot read; waiting for a readable one");
            None
        }
    }
}

fn protocol_error(e: SipError) -> ProtocolError {
    match e {
        SipError::Timeout { .. } => ProtocolError::NoAnswer(Duration::ZERO),
        // The centre refuses our credentials or account: a setting must change.
        e @ (SipError::Credentials { .. }
        | SipError::UnsupportedChallenge { .. }
        | SipError::RegistrationRefused { .. })
            if !e.is_transient() =>
        {
            ProtocolError::Refused(e.to_string())
        }
        e => ProtocolError::Unavailable(e.to_string()),
    }
}

/// Hand each inbound `<mrs>` to whoever waits for its `ref`.
async fn route_answers(
    mut inbound: mpsc::Receiver<InboundMessage>,
    waiters: Waiters,
    counters: Arc<InboundCounters>,
) {
    while let Some(message) = inbound.recv().await {
        let mrs = match Mrs::parse(&message.body) {
            Ok(m) => m,
            Err(e) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(from = %message.from, error = %e,
                    "the centre sent a SCAIP message hearth cannot read; the alarm is resent until a readable answer comes");
                continue;
            }
        };
        let waiting = waiters
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&mrs.reference));
        match waiting {
            Some(list) if !list.is_empty() => {
                counters.matched.fetch_add(1, Ordering::Relaxed);
                for tx in list {
                    let _ = tx.send(mrs.clone());
                }
            }
            _ => {
                counters.unmatched.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reference = %mrs.reference, snu = mrs.status.code(),
                    "an answer for a ref no alarm waits for (late, repeated or wrong); ignored");
            }
        }
    }
}

impl AlarmProtocol for ScaipSip {
    fn describe(&self) -> String {
        format!("scaip+sip {} via {}", self.to, self.settings.registrar)
    }

    fn exchange<'a>(
        &'a self,
        request: &'a Mrq,
        wait: Duration,
    ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>> {
        Box::pin(async move {
            let Some(reference) = request.reference.clone() else {
                return Err(ProtocolError::Unavailable("request without ref".into()));
            };
            // Listen before sending: the answer may overtake the 200.
            let answer = self.wait_for(&reference);
            let outcome = tokio::time::timeout(wait, async {
                if let Some(mrs) = self.send(request).await? {
                    return Ok(CentreAnswer::from(mrs));
                }
                answer
                    .await
                    .map(CentreAnswer::from)
                    .map_err(|_| ProtocolError::Unavailable("answer channel closed".into()))
            })
            .await;
            self.forget(&reference);
            match outcome {
                Ok(Err(ProtocolError::NoAnswer(_))) | Err(_) => Err(ProtocolError::NoAnswer(wait)),
                Ok(result) => result,
            }
        })
    }

    fn notify<'a>(&'a self, request: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>> {
        Box::pin(async move { self.send(request).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(reference: &str) -> Mrq {
        Mrq {
            reference: Some(Ref::new(reference).unwrap()),
            caller_id: "123456".into(),
            device_type: 5,
            ..Mrq::default()
        }
    }

    #[test]
    fn an_answer_in_the_200_body_is_taken_only_for_our_ref_and_counted() {
        let counters = InboundCounters::default();
        let ours = request("Ab12");
        let got = in_body(
            b"<mrs><ref>Ab12</ref><snu>0</snu></mrs>\r\n",
            &ours,
            &counters,
        );
        assert_eq!(got.map(|m| m.status), Some(xml::Snu::Ok));
        assert!(in_body(b"<mrs><ref>Other</ref><snu>0</snu></mrs>", &ours, &counters).is_none());
        assert!(in_body(b"<mrs><ref>Ab12</ref><snu>ok</snu></mrs>", &ours, &counters).is_none());
        // Not an answer at all: an empty 200, or a body that is not an <mrs>.
        assert!(in_body(b"", &ours, &counters).is_none());
        assert!(in_body(b"OK", &ours, &counters).is_none());
        assert_eq!(counters.matched.load(Ordering::Relaxed), 1);
        assert_eq!(counters.unmatched.load(Ordering::Relaxed), 1);
        assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    }
}
