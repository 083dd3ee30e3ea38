//! The SCAIP-over-SIP response centre (SS 91100 as an alarm receiving centre does it): a
//! registrar and a MESSAGE UAS on rsipstack, over UDP, TCP or TLS.
//!
//! - **REGISTER** is challenged with Digest MD5 (`qop=auth`, realm [`REALM`]) for one of the
//!   configured users; a wrong response, or a user not configured, is answered `403`. The
//!   binding remembers the unit's Contact and the connection the REGISTER came over (the UDP
//!   socket and the unit's source address, or the TCP/TLS connection), so requests to the unit
//!   go back the way it came in: the unit is behind NAT in real life.
//! - **MESSAGE** with an `application/scaip+xml` `<mrq>` from a registered unit is answered
//!   `200` at once; the `<mrs>` follows in a separate MESSAGE to the unit's binding. What the
//!   `<mrs>` says (and whether one is sent) is the HTTPS centre's decision, shared
//!   ([`crate::scaip::Scaip::decide`]): each event stored once by `cid` + `ref`, every request
//!   logged, the same scripted faults. A MESSAGE from a unit that is not registered is `403`.
//! - SIP-only faults: [`ScaipFault::Unauthorized`] answers every REGISTER and MESSAGE `401`
//!   with a fresh challenge (a 401 loop), [`ScaipFault::MrsIn200`] puts the `<mrs>` in the
//!   `200`. [`ScaipFault::Hang`] answers `200` and never sends an `<mrs>`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_uplink_scaip::Mrq;
use hearth_uplink_scaip::xml::{BODY_MAX, CONTENT_TYPE as SCAIP_XML};
use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode, Uri, typed};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::faults::{Fault, ScaipFault, ScaipFaults};
use crate::scaip::{Over, Reply, Scaip};
use crate::{HANDSHAKE_TIMEOUT, ReceiverError, SCAIP, count};

/// The Digest realm of the registrar's challenges.
pub const REALM: &str = "hearth-receiver";

/// The longest registration granted (a unit asking for more gets this).
const MAX_EXPIRES: u32 = 3600;

/// How long the centre waits for the unit's final answer to its `<mrs>` MESSAGE.
const MRS_TIMEOUT: Duration = Duration::from_secs(32);

/// The SIP transport of the SCAIP-over-SIP centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipTransport {
    /// One UDP socket.
    #[default]
    Udp,
    /// TCP: units connect, the centre's MESSAGEs go back over their connections.
    Tcp,
    /// TLS over TCP with the receiver's certificate ([`ReceiverConfig::tls`](crate::ReceiverConfig::tls)).
    Tls,
}

impl SipTransport {
    /// `udp`, `tcp` or `tls` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(SipTransport::Udp),
            "tcp" => Ok(SipTransport::Tcp),
            "tls" => Ok(SipTransport::Tls),
            _ => Err(format!("{s:?}: expected udp, tcp or tls")),
        }
    }

    fn rsip(self) -> rsipstack::sip::Transport {
        match self {
            SipTransport::Udp => rsipstack::sip::Transport::Udp,
            SipTransport::Tcp => rsipstack::sip::Transport::Tcp,
            SipTransport::Tls => rsipstack::sip::Transport::Tls,
        }
    }
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        })
    }
}

/// The SCAIP-over-SIP centre's settings ([`ReceiverConfig::scaip_sip`](crate::ReceiverConfig::scaip_sip)).
#[derive(Clone, PartialEq, Eq)]
pub struct ScaipSipEndpoint {
    /// Where it listens (port 0: any free port; [`RunningReceiver::scaip_sip_addr`](crate::RunningReceiver::scaip_sip_addr)).
    pub listen: SocketAddr,
    /// UDP, TCP or TLS (TLS needs [`ReceiverConfig::tls`](crate::ReceiverConfig::tls)).
    pub transport: SipTransport,
    /// The accounts the registrar knows: Digest username and password.
    pub users: Vec<(String, String)>,
    /// Scripted faults (those of the HTTPS centre, plus `401` loop and `<mrs>` in the `200`).
    pub faults: ScaipFaults,
}

impl fmt::Debug for ScaipSipEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("ScaipSipEndpoint")
            .field("listen", &self.listen)
            .field("transport", &self.transport)
            .field("users", &users)
            .field("faults", &self.faults)
            .finish()
    }
}

impl ScaipSipEndpoint {
    /// Loopback, any free port, this transport, one user, no faults.
    pub fn loopback(
        transport: SipTransport,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            transport,
            users: vec![(user.into(), password.into())],
            faults: ScaipFaults::default(),
        }
    }
}

/// A final answer: status, extra headers, body.
type Answer = (StatusCode, Vec<Header>, Option<Vec<u8>>);

/// Where a registered unit is reached.
#[derive(Clone)]
struct Binding {
    /// The unit's Contact (the Request-URI of MESSAGEs to it).
    contact: Uri,
    /// Its address of record (the To of MESSAGEs to it).
    aor: Uri,
    /// The connection the REGISTER came over (the UDP socket, or the TCP/TLS connection).
    connection: SipConnection,
    /// The address it came from.
    target: SipAddr,
    until: Instant,
}

/// The running centre (shared by the request tasks).
pub(crate) struct SipCentre {
    scaip: Arc<Scaip>,
    endpoint: EndpointInnerRef,
    /// Our address in Via headers.
    local: SipAddr,
    users: HashMap<String, String>,
    bindings: Mutex<HashMap<String, Binding>>,
    /// Nonces handed out (the latest 1024).
    nonces: Mutex<VecDeque<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bind_err(addr: SocketAddr, source: std::io::Error) -> ReceiverError {
    ReceiverError::Bind {
        what: "SCAIP over SIP",
        addr: addr.to_string(),
        source,
    }
}

/// Start the centre: bind, serve until `stop`. Returns the bound address and the task.
pub(crate) async fn start(
    cfg: ScaipSipEndpoint,
    tls: Option<TlsAcceptor>,
    scaip: Arc<Scaip>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ReceiverError> {
    let cancel = rsipstack::platform::CancellationToken::new();
    let layer = TransportLayer::new(cancel.clone());
    // Units keep their connection open for the centre's requests: never time it out.
    layer.set_stream_idle_timeout(Duration::ZERO);
    let tls = match (cfg.transport, tls) {
        (SipTransport::Tls, None) => {
            return Err(ReceiverError::Tls(
                "SCAIP over SIP with transport tls needs the receiver's certificate and key \
                 (--tls-cert, --tls-key)"
                    .into(),
            ));
        }
        (SipTransport::Tls, Some(t)) => Some(t),
        _ => None,
    };
    let (local_addr, listener) = match cfg.transport {
        SipTransport::Udp => {
            let udp =
                UdpConnection::create_connection(cfg.listen, None, Some(cancel.child_token()))
                    .await
                    .map_err(|e| bind_err(cfg.listen, std::io::Error::other(e.to_string())))?;
            let addr = udp
                .get_addr()
                .get_socketaddr()
                .map_err(|e| bind_err(cfg.listen, std::io::Error::other(e.to_string())))?;
            layer.add_transport(udp.into());
            (addr, None)
        }
        SipTransport::Tcp | SipTransport::Tls => {
            let l = tokio::net::TcpListener::bind(cfg.listen)
                .await
                .map_err(|e| bind_err(cfg.listen, e))?;
            let addr = l.local_addr().map_err(|e| bind_err(cfg.listen, e))?;
            (addr, Some(l))
        }
    };
    let local = SipAddr {
        r#type: Some(cfg.transport.rsip()),
        addr: local_addr.into(),
    };
    let endpoint = EndpointBuilder::new()
        .with_user_agent(&format!("hearth-receiver/{}", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(layer)
        .with_cancel_token(cancel.clone())
        .with_option(EndpointOption {
            t1x64: MRS_TIMEOUT,
            ..EndpointOption::default()
        })
        .with_allows(vec![Method::Register, Method::Message, Method::Options])
        .build();
    let mut incoming = endpoint
        .incoming_transactions()
        .map_err(|e| ReceiverError::Internal(format!("SIP endpoint: {e}")))?;
    let centre = Arc::new(SipCentre {
        scaip,
        endpoint: endpoint.inner.clone(),
        local: local.clone(),
        users: cfg.users.into_iter().collect(),
        bindings: Mutex::new(HashMap::new()),
        nonces: Mutex::new(VecDeque::new()),
    });
    let serving = endpoint.inner.clone();
    let task = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            if let Err(e) = serving.serve().await {
                tracing::warn!(error = %e, "SCAIP over SIP: the endpoint stopped");
            }
        });
        if let Some(listener) = listener {
            tasks.spawn(accept_loop(
                listener,
                tls,
                local.clone(),
                endpoint.inner.clone(),
                cancel.clone(),
            ));
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                tx = incoming.recv() => match tx {
                    Some(tx) => {
                        let centre = centre.clone();
                        tasks.spawn(async move { centre.handle(tx).await });
                    }
                    None => break,
                },
            }
            while tasks.try_join_next().is_some() {}
        }
        cancel.cancel();
        tasks.shutdown().await;
        drop(endpoint);
    });
    Ok((local_addr, task))
}

/// Accept TCP (and TLS) connections and hand them to the transport layer.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    local: SipAddr,
    endpoint: EndpointInnerRef,
    cancel: rsipstack::platform::CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "SCAIP over SIP: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let token = Some(cancel.child_token());
        let conn = match &tls {
            None => match TcpConnection::from_stream(stream, local.clone(), token) {
                Ok(c) => SipConnection::Tcp(c),
                Err(e) => {
                    tracing::info!(%peer, error = %e, "SCAIP over SIP: TCP setup failed");
                    continue;
                }
            },
            Some(acceptor) => {
                // The handshake in its own task, so a slow client cannot hold up the others.
                let acceptor = acceptor.clone();
                let local = local.clone();
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "SCAIP over SIP: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "SCAIP over SIP: TLS handshake timed out");
                            return;
                        }
                    };
                    let remote = SipAddr {
                        r#type: Some(rsipstack::sip::Transport::Tls),
                        addr: peer.into(),
                    };
                    match TlsConnection::from_server_stream(tls, local, remote, token).await {
                        Ok(c) => endpoint
                            .transport_layer
                            .add_connection(SipConnection::Tls(c)),
                        Err(e) => {
                            tracing::info!(%peer, error = %e, "SCAIP over SIP: TLS setup failed")
                        }
                    }
                });
                continue;
            }
        };
        endpoint.transport_layer.add_connection(conn);
    }
}

fn header_value(req: &Request, pick: fn(&Header) -> Option<String>) -> Option<String> {
    req.headers.iter().find_map(pick)
}

fn content_type(req: &Request) -> String {
    header_value(req, |h| match h {
        Header::ContentType(ct) => Some(ct.value().to_owned()),
        _ => None,
    })
    .unwrap_or_default()
    .split(';')
    .next()
    .unwrap_or("")
    .trim()
    .to_ascii_lowercase()
}

/// The user part of a From or To header's URI.
fn user_of(uri: Result<Uri, rsipstack::sip::Error>) -> Option<String> {
    uri.ok().and_then(|u| u.user().map(str::to_owned))
}

impl SipCentre {
    async fn handle(self: Arc<Self>, mut tx: Transaction) {
        let method = tx.original.method;
        let mut then = None;
        let (status, headers, body) = match method {
            Method::Register => self.register(&tx).await,
            Method::Message => match self.message(&tx).await {
                Some((answer, mrs)) => {
                    then = mrs;
                    answer
                }
                // No answer at all (a fault): the unit's transaction times out.
                None => return,
            },
            Method::Options => (StatusCode::OK, vec![allow()], None),
            Method::Ack => return,
            _ => (StatusCode::MethodNotAllowed, vec![allow()], None),
        };
        if let Err(e) = tx.reply_with(status.clone(), headers, body).await {
            tracing::warn!(error = %e, %status, %method, "SCAIP over SIP: cannot answer");
        }
        // Done with the request (its retransmissions now get the 200 again from the stack);
        // the <mrs> goes in its own MESSAGE, after the 200.
        drop(tx);
        if let Some((sender, body)) = then {
            sender.send(body).await;
        }
    }

    fn challenge(&self, stale: bool) -> Header {
        let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        {
            let mut nonces = lock(&self.nonces);
            nonces.push_back(nonce.clone());
            while nonces.len() > 1024 {
                nonces.pop_front();
            }
        }
        let stale = if stale { ", stale=true" } else { "" };
        Header::WwwAuthenticate(rsipstack::sip::WwwAuthenticate::new(format!(
            "Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}"
        )))
    }

    /// REGISTER: challenge, check, bind.
    async fn register(&self, tx: &Transaction) -> Answer {
        let req = &tx.original;
        if self.scaip.unauthorized_now() {
            tracing::info!("SCAIP over SIP: REGISTER answered 401 (fault unauthorized)");
            return (StatusCode::Unauthorized, vec![self.challenge(false)], None);
        }
        let Some(raw) = header_value(req, |h| match h {
            Header::Authorization(a) => Some(a.value().to_owned()),
            _ => None,
        }) else {
            return (StatusCode::Unauthorized, vec![self.challenge(false)], None);
        };
        let Ok(auth) = typed::Authorization::parse(&raw) else {
            return (StatusCode::BadRequest, vec![], None);
        };
        if !lock(&self.nonces).iter().any(|n| *n == auth.nonce) {
            // Not ours, or too old: a fresh nonce, and the unit may answer it at once.
            return (StatusCode::Unauthorized, vec![self.challenge(true)], None);
        }
        let verified = auth.realm == REALM
            && self
                .users
                .get(&auth.username)
                .is_some_and(|password| verify_digest(&auth, password, &Method::Register, &raw));
        if !verified {
            tracing::info!(user = %auth.username, "SCAIP over SIP: REGISTER with wrong credentials; 403");
            return (StatusCode::Forbidden, vec![], None);
        }
        let Ok(to) = req.to_header().and_then(|t| t.uri()) else {
            return (StatusCode::BadRequest, vec![], None);
        };
        let Some(user) = to.user().map(str::to_owned) else {
            return (StatusCode::BadRequest, vec![], None);
        };
        let contacts = req.typed_contact_headers().unwrap_or_default();
        let Some(contact) = contacts.first() else {
            // A query: nothing to bind.
            return (StatusCode::OK, vec![], None);
        };
        let asked = contact
            .expires()
            .or_else(|| {
                req.expires_header()
                    .and_then(|h| h.value().trim().parse::<u32>().ok())
            })
            .unwrap_or(MAX_EXPIRES);
        let expires = asked.min(MAX_EXPIRES);
        let (Some(connection), Some(target)) = (
            tx.connection.clone(),
            tx.connection
                .as_ref()
                .and_then(|c| c.get_remote_addr().cloned()),
        ) else {
            return (StatusCode::ServerInternalError, vec![], None);
        };
        {
            let mut bindings = lock(&self.bindings);
            if expires == 0 {
                bindings.remove(&user);
            } else {
                bindings.insert(
                    user.clone(),
                    Binding {
                        contact: contact.uri.clone(),
                        aor: to.clone(),
                        connection,
                        target: target.clone(),
                        until: Instant::now() + Duration::from_secs(u64::from(expires)),
                    },
                );
            }
        }
        tracing::info!(%user, contact = %contact.uri, via = %target, expires, "SCAIP over SIP: registered");
        let contact_header = Header::Contact(rsipstack::sip::Contact::new(format!(
            "<{}>;expires={expires}",
            contact.uri
        )));
        let expires_header = Header::Expires(rsipstack::sip::Expires::new(expires.to_string()));
        (StatusCode::OK, vec![contact_header, expires_header], None)
    }

    /// MESSAGE: the SCAIP request. The answer, and the `<mrs>` MESSAGE to send after it;
    /// `None`: no answer at all.
    async fn message(&self, tx: &Transaction) -> Option<(Answer, Option<(MrsSender, Vec<u8>)>)> {
        let req = &tx.original;
        let scaip = &self.scaip;
        if scaip.injector.is_down(Instant::now()) {
            count(
                &scaip.store,
                SCAIP,
                vec![("requests", 1), ("fault:down", 1)],
            )
            .await;
            return None;
        }
        if scaip.unauthorized_now() {
            scaip
                .log_refusal(401, Some(ScaipFault::Unauthorized.name()))
                .await;
            return Some((
                (StatusCode::Unauthorized, vec![self.challenge(false)], None),
                None,
            ));
        }
        let refuse = |status: StatusCode| Some(((status, vec![], None), None));
        let user = user_of(req.from_header().and_then(|f| f.uri()));
        let binding = user.as_ref().and_then(|u| {
            let mut bindings = lock(&self.bindings);
            match bindings.get(u) {
                Some(b) if b.until > Instant::now() => Some(b.clone()),
                Some(_) => {
                    bindings.remove(u);
                    None
                }
                None => None,
            }
        });
        let Some(binding) = binding else {
            tracing::info!(
                ?user,
                "SCAIP over SIP: MESSAGE from a unit that is not registered; 403"
            );
            scaip.log_refusal(403, None).await;
            return refuse(StatusCode::Forbidden);
        };
        if content_type(req) != SCAIP_XML {
            scaip.log_refusal(415, None).await;
            return refuse(StatusCode::UnsupportedMediaType);
        }
        if req.body.is_empty() || req.body.len() >= BODY_MAX {
            scaip.log_refusal(400, None).await;
            return refuse(StatusCode::BadRequest);
        }
        let mrq = match Mrq::parse(&req.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, "SCAIP over SIP: request refused (400)");
                scaip.log_refusal(400, None).await;
                return refuse(StatusCode::BadRequest);
            }
        };
        let fault = scaip.injector.draw();
        if fault == Fault::Error {
            count(
                &scaip.store,
                SCAIP,
                vec![("requests", 1), ("fault:error", 1)],
            )
            .await;
            scaip.delay().await;
            let retry = Header::RetryAfter(rsipstack::sip::RetryAfter::new("1"));
            return Some(((StatusCode::ServiceUnavailable, vec![retry], None), None));
        }
        let decision = scaip.decide(&mrq, &req.body, fault, Over::Sip).await;
        match decision.reply {
            Reply::Drop => None,
            Reply::Hang => refuse(StatusCode::OK),
            Reply::NoRef => refuse(StatusCode::BadRequest),
            Reply::StoreFailed => refuse(StatusCode::ServerInternalError),
            Reply::Answer(body) if decision.scripted == Some(ScaipFault::MrsIn200) => {
                scaip.delay().await;
                let ct = Header::ContentType(rsipstack::sip::ContentType::new(SCAIP_XML));
                Some(((StatusCode::OK, vec![ct], Some(body)), None))
            }
            Reply::Answer(body) => {
                let sender = MrsSender {
                    endpoint: self.endpoint.clone(),
                    local: self.local.clone(),
                    binding,
                    latency: scaip.injector.latency(),
                };
                Some(((StatusCode::OK, vec![], None), Some((sender, body))))
            }
        }
    }
}

/// One `<mrs>` MESSAGE to a registered unit.
struct MrsSender {
    endpoint: EndpointInnerRef,
    local: SipAddr,
    binding: Binding,
    latency: Duration,
}

impl MrsSender {
    async fn send(self, body: Vec<u8>) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let b = &self.binding;
        if let Err(e) = self.transact(body).await {
            tracing::warn!(contact = %b.contact, via = %b.target, error = %e,
                "SCAIP over SIP: the <mrs> MESSAGE to the unit failed");
        }
    }

    async fn transact(&self, body: Vec<u8>) -> Result<(), String> {
        let b = &self.binding;
        let via = self
            .endpoint
            .get_via(Some(self.local.clone()), None)
            .map_err(|e| e.to_string())?;
        let host = b.aor.host_with_port.host.to_string();
        let from_text = format!("sip:centre@{host}");
        let from_uri = Uri::try_from(from_text.as_str()).map_err(|e| e.to_string())?;
        let from = typed::From {
            display_name: None,
            uri: from_uri,
            params: vec![],
        }
        .with_tag(make_tag());
        let to = typed::To {
            display_name: None,
            uri: b.aor.clone(),
            params: vec![],
        };
        let mut request =
            self.endpoint
                .make_request(Method::Message, b.contact.clone(), via, from, to, 1, None);
        request
            .headers
            .push(rsipstack::sip::ContentType::new(SCAIP_XML).into());
        request.body = body;
        let key = TransactionKey::from_request(&request, TransactionRole::Client)
            .map_err(|e| e.to_string())?;
        let mut tx = Transaction::new_client(
            key,
            request,
            self.endpoint.clone(),
            Some(b.connection.clone()),
        );
        tx.destination = Some(b.target.clone());
        tx.send().await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(MRS_TIMEOUT + Duration::from_secs(2), async {
            while let Some(msg) = tx.receive().await {
                if let rsipstack::sip::SipMessage::Response(r) = msg {
                    if r.status_code.code() >= 200 {
                        return Some(r.status_code.code());
                    }
                }
            }
            None
        })
        .await;
        match answer {
            Ok(Some(s)) if (200..300).contains(&s) => {
                tracing::debug!(contact = %b.contact, "SCAIP over SIP: <mrs> delivered");
                Ok(())
            }
            Ok(Some(s)) => Err(format!("the unit answered {s}")),
            Ok(None) => Err("the transaction ended without an answer".into()),
            Err(_) => Err("no answer from the unit".into()),
        }
    }
}

fn allow() -> Header {
    Header::Allow(rsipstack::sip::Allow::new("REGISTER, MESSAGE, OPTIONS"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn transports_parse_and_show() {
        for t in [SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls] {
            assert_eq!(SipTransport::parse(&t.to_string()).unwrap(), t);
        }
        assert_eq!(SipTransport::parse(" TLS ").unwrap(), SipTransport::Tls);
        assert!(SipTransport::parse("sctp").is_err());
    }

    #[test]
    fn debug_never_shows_passwords() {
        let e = ScaipSipEndpoint::loopback(SipTransport::Udp, "unit", "hunter2");
        let shown = format!("{e:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("unit"), "{shown}");
    }
}
