//! SCAIP over SIP (SS 91100; hearth is the local unit controller): `<mrq>` in a SIP MESSAGE to
//! the centre, the centre's `<mrs>` in a separate MESSAGE to our registered contact, matched
//! by `ref` (an `<mrs>` in the 200's body is accepted too). A SIP 200 alone is never an
//! acknowledgement.
//!
//! One [`ScaipSip`] per receiver, shared by the route's connections: one registration, one
//! inbound stream, many alarms waiting for their answers at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_sip::{InboundMessage, SipAgent, SipError, SipSettings};
use hearth_uplink_scaip::xml::{self, Mrs, Ref};
use hearth_uplink_scaip::{AlarmProtocol, BoxFuture, CentreAnswer, Mrq, ProtocolError};
use tokio::sync::{mpsc, oneshot};

use hearth_uplink_scaip::xml::CONTENT_TYPE as SCAIP_CONTENT_TYPE;

/// What the inbound side saw that was not an answer we waited for (for tests and status).
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

/// SCAIP over SIP to one receiver.
pub struct ScaipSip {
    settings: SipSettings,
    to: String,
    agent: tokio::sync::Mutex<Option<Arc<SipAgent>>>,
    waiters: Waiters,
    counters: Arc<InboundCounters>,
}

impl ScaipSip {
    /// A receiver at `to` (the centre's SIP URI), reached with `settings`. Nothing is started
    /// until the first message: the agent registers then, and again after it failed.
    pub fn new(settings: SipSettings, to: impl Into<String>) -> Self {
        Self {
            settings,
            to: to.into(),
            agent: tokio::sync::Mutex::new(None),
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
    async fn agent(&self) -> Result<Arc<SipAgent>, ProtocolError> {
        let mut guard = self.agent.lock().await;
        if let Some(agent) = guard.as_ref() {
            return Ok(Arc::clone(agent));
        }
        let (agent, inbound) = SipAgent::start(self.settings.clone())
            .await
            .map_err(protocol_error)?;
        let agent = Arc::new(agent);
        tokio::spawn(route_answers(
            inbound,
            Arc::clone(&self.waiters),
            Arc::clone(&self.counters),
        ));
        *guard = Some(Arc::clone(&agent));
        Ok(agent)
    }

    /// Forget a broken agent so the next message starts a new one.
    async fn drop_agent(&self) {
        if let Some(agent) = self.agent.lock().await.take() {
            agent.shutdown();
        }
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
                    self.drop_agent().await;
                }
                return Err(protocol_error(e));
            }
        };
        match answer.status {
            200..=299 => Ok(in_body(&answer.body, request)),
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

/// An `<mrs>` for this request in a 200's body (centres built that way), if there is one.
fn in_body(body: &[u8], request: &Mrq) -> Option<Mrs> {
    if body.is_empty() || xml::root_of(body) != Some("mrs") {
        return None;
    }
    Mrs::parse(body)
        .ok()
        .filter(|m| Some(&m.reference) == request.reference.as_ref())
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
