//! The SCAIP endpoint: a response centre for SCAIP over HTTPS (`docs/protocols/scaip-https.md`).
//!
//! `POST /scaip` (or any path ending in `/scaip`) with `Content-Type: application/scaip+xml` and
//! one `<mrq>`; the answer is `200` with an `<mrs>` for the same `ref`. Each event is stored once
//! by `cid` + `ref` (a repeat raises its copy count and is answered again); every request is
//! logged in `scaip_requests`. Scripted faults: [`ScaipFaults`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hearth_uplink_scaip::xml::BODY_MAX;
use hearth_uplink_scaip::{MessageType, Mrq, Mrs, Ref, Snu};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::faults::{Fault, Injector, SCAIP_HANG, ScaipFault, ScaipFaults};
use crate::fhir::Dropped;
use crate::store::{Item, SCAIP, ScaipRequest};
use crate::{Io, SharedStore, count, with_store};

use hearth_uplink_scaip::xml::CONTENT_TYPE as SCAIP_XML;

/// The SCAIP endpoint's settings ([`ReceiverConfig::scaip`](crate::ReceiverConfig::scaip)).
#[derive(Debug)]
pub struct ScaipEndpoint {
    /// Where it listens (TLS and client certificates: [`ReceiverConfig::tls`](crate::ReceiverConfig::tls)).
    pub listen: crate::Listen,
    /// Require `Authorization: Bearer <this>`; other requests get `401`.
    pub bearer: Option<String>,
    /// The heartbeat interval (minutes, `hbi`) handed out to heartbeats that offer `hbo`.
    pub heartbeat_minutes: Option<u16>,
    /// Scripted faults.
    pub faults: ScaipFaults,
}

impl ScaipEndpoint {
    /// Loopback, any free port, no token, no faults.
    pub fn loopback() -> Self {
        Self {
            listen: crate::Listen::loopback(),
            bearer: None,
            heartbeat_minutes: None,
            faults: ScaipFaults::default(),
        }
    }
}

pub(crate) struct Scaip {
    pub(crate) store: SharedStore,
    pub(crate) injector: Injector,
    pub(crate) bearer: Option<String>,
    pub(crate) heartbeat_minutes: Option<u16>,
    pub(crate) faults: ScaipFaults,
    /// Requests per event (`cid:ref`) in this run, for faults on the first N of them.
    seen: Mutex<HashMap<String, u32>>,
    /// Requests overall, for [`ScaipFault::Unauthorized`].
    requests: Mutex<u32>,
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if status == StatusCode::OK {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(SCAIP_XML));
    }
    r
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A request refused before it was read: the status and why (for the log, not the answer).
struct Refusal {
    status: StatusCode,
    fault: Option<&'static str>,
}

impl Scaip {
    pub(crate) fn new(
        bearer: Option<String>,
        heartbeat_minutes: Option<u16>,
        faults: ScaipFaults,
        store: SharedStore,
        injector: Injector,
    ) -> Self {
        Self {
            store,
            injector,
            bearer,
            heartbeat_minutes,
            faults,
            seen: Mutex::new(HashMap::new()),
            requests: Mutex::new(0),
        }
    }

    pub(crate) async fn serve(self: Arc<Self>, io: Box<dyn Io>) {
        crate::serve_http1(io, "SCAIP", move |req| {
            let me = self.clone();
            async move { me.handle(req).await }
        })
        .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Resp, Dropped> {
        if self.injector.is_down(Instant::now()) {
            count(&self.store, SCAIP, vec![("requests", 1), ("fault:down", 1)]).await;
            return Err(Dropped);
        }
        let fault = self.injector.draw();
        if fault == Fault::Error {
            count(
                &self.store,
                SCAIP,
                vec![("requests", 1), ("fault:error", 1)],
            )
            .await;
            self.delay().await;
            let mut r = respond(StatusCode::SERVICE_UNAVAILABLE, Vec::new());
            r.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(r);
        }
        let body = match self.read(req).await {
            Ok(b) => b,
            Err(refusal) => {
                let mut r = respond(refusal.status, Vec::new());
                if refusal.status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        hyper::header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer"),
                    );
                }
                self.log_refused(refusal).await;
                return Ok(r);
            }
        };
        let mrq = match Mrq::parse(&body) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, "SCAIP: request refused (400)");
                self.log_refused(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    fault: None,
                })
                .await;
                return Ok(respond(StatusCode::BAD_REQUEST, Vec::new()));
            }
        };
        let answer = self.answer(&mrq, &body, fault).await;
        self.delay().await;
        answer
    }

    /// Check path, method, credentials, media type and size; the body.
    async fn read(&self, req: Request<Incoming>) -> Result<Bytes, Refusal> {
        let refuse = |status| Refusal {
            status,
            fault: None,
        };
        let path = req.uri().path().trim_end_matches('/');
        if !path.ends_with("/scaip") {
            return Err(refuse(StatusCode::NOT_FOUND));
        }
        if req.method() != Method::POST {
            return Err(refuse(StatusCode::METHOD_NOT_ALLOWED));
        }
        if self.unauthorized_now() {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                fault: Some(ScaipFault::Unauthorized.name()),
            });
        }
        if let Some(expected) = &self.bearer {
            let presented = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if presented != Some(expected.as_str()) {
                return Err(refuse(StatusCode::UNAUTHORIZED));
            }
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if content_type != SCAIP_XML {
            return Err(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        match Limited::new(req.into_body(), BODY_MAX - 1).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(refuse(StatusCode::PAYLOAD_TOO_LARGE))
            }
            Err(_) => Err(refuse(StatusCode::BAD_REQUEST)),
        }
    }

    async fn log_refused(&self, refusal: Refusal) {
        self.log_refusal(refusal.status.as_u16(), refusal.fault)
            .await;
    }

    /// Log a request refused before its `<mrq>` was read (HTTP or SIP `status`).
    pub(crate) async fn log_refusal(&self, status: u16, fault: Option<&'static str>) {
        let refusal = (status, fault);
        let mut counters = vec![("requests", 1), ("rejected", 1)];
        if let Some(f) = refusal.1 {
            counters.push((fault_counter(f), 1));
        }
        let request = ScaipRequest {
            at_ms: crate::store::now_ms(),
            http_status: refusal.0,
            fault: refusal.1.map(str::to_owned),
            ..ScaipRequest::default()
        };
        if let Err(e) =
            with_store(&self.store, move |s| s.put_scaip(None, &request, &counters)).await
        {
            tracing::warn!(error = %e, "SCAIP: logging a refused request failed");
        }
    }

    /// Store the event (once), log the request, answer it over HTTPS.
    async fn answer(&self, mrq: &Mrq, body: &[u8], fault: Fault) -> Result<Resp, Dropped> {
        match self.decide(mrq, body, fault, Over::Https).await.reply {
            Reply::Drop => Err(Dropped),
            Reply::Hang => {
                tokio::time::sleep(SCAIP_HANG).await;
                Err(Dropped)
            }
            Reply::Answer(b) => Ok(respond(StatusCode::OK, b)),
            Reply::NoRef => Ok(respond(StatusCode::BAD_REQUEST, Vec::new())),
            Reply::StoreFailed => Ok(respond(StatusCode::INTERNAL_SERVER_ERROR, Vec::new())),
        }
    }

    /// Whether this request is refused by [`ScaipFault::Unauthorized`] (which counts requests
    /// overall, before their bodies are read). Shared by HTTPS (`401` + `Bearer`) and SIP
    /// (`401` + a fresh Digest challenge, every time: a 401 loop).
    pub(crate) fn unauthorized_now(&self) -> bool {
        if self.faults.fault != Some(ScaipFault::Unauthorized) {
            return false;
        }
        let n = {
            let mut r = lock(&self.requests);
            *r = r.saturating_add(1);
            *r
        };
        self.faults.for_request(n).is_some()
    }

    /// The centre's decision on one readable `<mrq>`, whatever carries it (HTTPS or SIP): count
    /// the request of its event, apply the scripted fault (what `snu`, which body), store the
    /// event once by `cid` + `ref` (a repeat raises its copy count) and log the request.
    pub(crate) async fn decide(
        &self,
        mrq: &Mrq,
        body: &[u8],
        fault: Fault,
        over: Over,
    ) -> Decision {
        let Some(reference) = mrq.reference.clone() else {
            return Decision {
                reply: Reply::NoRef,
                scripted: None,
            };
        };
        let key = format!("{}:{reference}", mrq.caller_id);
        let n = {
            let mut seen = lock(&self.seen);
            let n = seen.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let scripted = match mrq.message_type {
            // A reset is always answered (a test sees it recorded); 401 was handled before.
            MessageType::Reset => None,
            _ => self.faults.for_request(n).filter(|f| match f {
                ScaipFault::Unauthorized => false,
                // Where the <mrs> goes is a SIP matter; over HTTPS it is always in the answer.
                ScaipFault::MrsIn200 => over == Over::Sip,
                _ => true,
            }),
        };
        let mut mrs = Mrs::new(reference.clone(), Snu::Ok);
        match scripted {
            Some(ScaipFault::Hold) => mrs.status = Snu::Hold,
            Some(ScaipFault::Busy) => mrs.status = Snu::Busy,
            Some(ScaipFault::NotTreated) => mrs.status = Snu::NotTreated,
            Some(ScaipFault::Snu(s)) => mrs.status = Snu::from_code(s),
            _ => {}
        }
        if mrq.message_type == MessageType::Heartbeat && mrq.heartbeat_offer {
            mrs.heartbeat_minutes = self.heartbeat_minutes;
        }
        let answered = match (scripted, fault) {
            (Some(ScaipFault::Hang), _) | (_, Fault::Reset) => None,
            _ => Some(mrs.status.code()),
        };
        let mut counters: Vec<(&'static str, u64)> = vec![("requests", 1)];
        if mrq.message_type == MessageType::Reset {
            counters.push(("resets", 1));
        }
        if let Some(f) = scripted {
            counters.push((fault_counter(f.name()), 1));
        }
        if let Some(c) = fault.counter() {
            counters.push((c, 1));
        }
        let fault_name = scripted
            .map(ScaipFault::name)
            .or_else(|| fault.counter().and_then(|c| c.strip_prefix("fault:")));
        let request = ScaipRequest {
            reference: Some(reference.to_string()),
            caller_id: Some(mrq.caller_id.clone()),
            message_type: Some(mrq.message_type.code().to_owned()),
            device_type: Some(mrq.device_type),
            status_code: mrq.status,
            at_ms: crate::store::now_ms(),
            http_status: if answered.is_some() { 200 } else { 0 },
            snu: answered,
            repeat: false,
            fault: fault_name.map(str::to_owned),
        };
        let kind = mrq.message_type.code();
        let text = String::from_utf8_lossy(body).into_owned();
        let stored = with_store(&self.store, move |s| {
            let item = Item {
                key,
                kind,
                body: text,
            };
            s.put_scaip(Some(&item), &request, &counters)
        })
        .await;
        if let Err(e) = stored {
            // The event is not safe with us: no `<mrs>`, so the unit resends or moves on.
            tracing::warn!(error = %e, "SCAIP: storing the event failed; answering 500");
            return Decision {
                reply: Reply::StoreFailed,
                scripted,
            };
        }
        let reply = match (scripted, fault) {
            (_, Fault::Reset) => Reply::Drop,
            (Some(ScaipFault::Hang), _) => Reply::Hang,
            (_, Fault::Garbage) => Reply::Answer(self.injector.bytes(24)),
            (Some(ScaipFault::WrongRef), _) => {
                let other = if reference.as_str() == "wrongref0" {
                    "wrongref1"
                } else {
                    "wrongref0"
                };
                let mut wrong = mrs.clone();
                match Ref::new(other) {
                    Ok(r) => {
                        wrong.reference = r;
                        Reply::Answer(wrong.to_xml().into_bytes())
                    }
                    Err(_) => Reply::Drop,
                }
            }
            (Some(ScaipFault::Malformed), _) => {
                let xml = mrs.to_xml();
                Reply::Answer(xml.trim_end_matches("</mrs>").as_bytes().to_vec())
            }
            _ => Reply::Answer(mrs.to_xml().into_bytes()),
        };
        Decision { reply, scripted }
    }

    pub(crate) async fn delay(&self) {
        let d = self.injector.latency();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// What carries the SCAIP request (for the faults that only mean something on one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Https,
    Sip,
}

/// What to answer to one readable `<mrq>` ([`Scaip::decide`]).
#[derive(Debug)]
pub(crate) enum Reply {
    /// No answer at all, as if it was lost (stored all the same).
    Drop,
    /// [`ScaipFault::Hang`]: no SCAIP answer (HTTPS holds the request, SIP stays silent).
    Hang,
    /// Answer with this body: an `<mrs>`, or the scripted wrong, cut or garbage one.
    Answer(Vec<u8>),
    /// The `<mrq>` has no `ref`: a bad request.
    NoRef,
    /// The store failed: a server error, no `<mrs>`.
    StoreFailed,
}

/// [`Scaip::decide`]'s answer and the scripted fault that shaped it.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) reply: Reply,
    pub(crate) scripted: Option<ScaipFault>,
}

fn fault_counter(name: &str) -> &'static str {
    match name {
        "hang" => "fault:hang",
        "hold" => "fault:hold",
        "busy" => "fault:busy",
        "not_treated" => "fault:not_treated",
        "snu" => "fault:snu",
        "wrong_ref" => "fault:wrong_ref",
        "malformed" => "fault:malformed",
        "unauthorized" => "fault:unauthorized",
        "mrs_in_200" => "fault:mrs_in_200",
        _ => "fault:other",
    }
}
