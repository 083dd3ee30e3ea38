//! The agent: endpoint, connection to the centre, registration loop, MESSAGE out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Auth, Header, Method, Param, Scheme, Uri, param::Tag, typed};
use rsipstack::transaction::endpoint::{
    Endpoint, EndpointOption, MessageInspector, TransportEventInspector,
};
use rsipstack::transaction::make_tag;
use rsipstack::transport::connection::TransportEvent;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{info, warn};

use crate::client::{LocalMarker, transact};
use crate::inbound::{self, InboundMessage};
use crate::{SipError, SipSettings, Transport};

/// The registration as the background task last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// The registrar accepted our contact for this long (the task refreshes at 3/4 of it).
    Registered {
        /// The lifetime the registrar granted.
        expires: Duration,
    },
    /// The last attempt failed; the task tries again with backoff (1 s doubling up to
    /// `max_retry_backoff`).
    Failed {
        /// The error, as [`SipError`]'s message.
        reason: String,
        /// Whether waiting can help (network, server) or a setting must change (credentials).
        transient: bool,
    },
}

/// The centre's final answer to a MESSAGE. A SIP 2xx only says the message arrived; the SCAIP
/// answer usually comes in a separate inbound MESSAGE, some centres put it in `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAnswer {
    /// The SIP status, 200..=699.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The answer's Content-Type, if it has a body.
    pub content_type: Option<String>,
    /// The answer's body (often empty).
    pub body: Vec<u8>,
}

impl MessageAnswer {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The current stream connection (TCP/TLS) to the centre, and the signal that it was lost.
#[derive(Default)]
struct Link {
    current: std::sync::Mutex<Option<SipConnection>>,
    lost: Notify,
}

impl Link {
    fn get(&self) -> Option<SipConnection> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, conn: Option<SipConnection>) -> Option<SipConnection> {
        std::mem::replace(
            &mut *self.current.lock().unwrap_or_else(|p| p.into_inner()),
            conn,
        )
    }
}

fn same_connection(a: &SipConnection, b: &SipConnection) -> bool {
    a.get_addr() == b.get_addr() && a.get_remote_addr() == b.get_remote_addr()
}

/// Tells the registration loop when the centre closes our connection.
struct LinkWatch(Arc<Link>);

#[async_trait::async_trait]
impl TransportEventInspector for LinkWatch {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Closed(closed) = &event {
            let mut current = self.0.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| same_connection(c, closed)) {
                *current = None;
                drop(current);
                warn!(remote = ?closed.get_remote_addr(), "SIP connection to the centre closed; registering again");
                self.0.lost.notify_one();
            }
        }
        Some(event)
    }
}

struct Inner {
    settings: SipSettings,
    endpoint: Endpoint,
    cancel: CancellationToken,
    /// Where every request goes: the outbound proxy or the registrar, resolved.
    target: SipAddr,
    target_socket: SocketAddr,
    /// The TLS server name (and the `host` of `target` as configured).
    server_name: String,
    local_ip: IpAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    link: Arc<Link>,
    credential: Credential,
    refused: Arc<AtomicU64>,
    register_call_id: rsipstack::sip::CallId,
    register_tag: Tag,
    register_cseq: AtomicU32,
}

/// A SIP user agent registered at one centre. Dropping it stops the endpoint and the background
/// tasks (the registration then simply expires at the registrar).
pub struct SipAgent {
    inner: Arc<Inner>,
    state: watch::Receiver<RegistrationState>,
}

impl Drop for SipAgent {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

/// `host:port` (or `host`, `[v6]:port`) into host and port.
fn host_port(s: &str, default_port: u16, key: &str) -> Result<(String, u16), SipError> {
    let s = s.trim();
    let bad = || {
        SipError::Settings(format!(
            "{key} = {s:?} is not host:port; give e.g. centre.example.net:5060 or 192.0.2.10:5061"
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip.to_string(), default_port));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Err(bad()),
        None => Ok((s.to_owned(), default_port)),
    }
}

async fn resolve(what: &'static str, host: &str, port: u16) -> Result<SocketAddr, SipError> {
    let err = |reason: String| SipError::Resolve {
        what,
        target: format!("{host}:{port}"),
        reason,
    };
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| err(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| err("no address returned".into()))
}

/// The local address the system routes to `target` from (no packet is sent).
fn route_to(target: SocketAddr) -> Result<IpAddr, SipError> {
    let any: IpAddr = if target.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let probe = std::net::UdpSocket::bind((any, 0))
        .and_then(|s| s.connect(target).map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(local) => Ok(local.ip()),
        Err(e) => Err(SipError::Transport {
            transport: "ip".into(),
            peer: target.to_string(),
            reason: format!(
                "no local address routes to it ({e}); check the network or set local_bind"
            ),
        }),
    }
}

fn aor_uri(user: &str, host: &str) -> Result<Uri, SipError> {
    let text = format!("sip:{user}@{host}");
    Uri::try_from(text.as_str()).map_err(|e| SipError::InvalidUri {
        uri: text,
        reason: e.to_string(),
    })
}

fn refresh_after(granted: Duration) -> Duration {
    (granted * 3 / 4).max(Duration::from_secs(1))
}

fn jitter(d: Duration) -> Duration {
    // ±20 %, so many units do not retry in step after a centre outage.
    d.mul_f64(0.8 + 0.4 * fastrand::f64())
}

impl Inner {
    fn transport(&self) -> Transport {
        self.settings.transport
    }

    fn stream_error(&self, reason: String) -> SipError {
        SipError::Transport {
            transport: self.transport().to_string(),
            peer: format!("{} ({})", self.server_name, self.target_socket),
            reason,
        }
    }

    /// The connection requests go over: none for UDP (the listener), else the current TCP/TLS
    /// connection, opened now if there is none.
    async fn connection(&self) -> Result<Option<SipConnection>, SipError> {
        if !self.transport().is_stream() {
            return Ok(None);
        }
        if let Some(conn) = self.link.get() {
            return Ok(Some(conn));
        }
        let local = match self.settings.local_bind {
            Some(bind) => bind,
            None => SocketAddr::new(self.local_ip, 0),
        };
        let socket = if self.target_socket.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| self.stream_error(format!("cannot create a TCP socket: {e}")))?;
        socket
            .set_reuseaddr(true)
            .and_then(|()| socket.bind(local))
            .map_err(|e| {
                self.stream_error(format!(
                    "cannot bind {local}: {e}; local_bind must be an address of this machine"
                ))
            })?;
        let stream = tokio::time::timeout(
            self.settings.transaction_timeout,
            socket.connect(self.target_socket),
        )
        .await
        .map_err(|_| {
            self.stream_error(format!(
                "no TCP connection within {:?}; the centre is down or a firewall drops it",
                self.settings.transaction_timeout
            ))
        })?
        .map_err(|e| self.stream_error(format!("TCP connect failed: {e}")))?;
        let local_addr = stream
            .local_addr()
            .map_err(|e| self.stream_error(format!("no local address: {e}")))?;
        let token = Some(self.cancel.child_token());
        let conn = match (&self.tls, self.transport()) {
            (Some(config), Transport::Tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.server_name.clone())
                    .map_err(|e| {
                        SipError::Settings(format!(
                            "sip.tls_server_name: {:?} is not a DNS name or IP address: {e}",
                            self.server_name
                        ))
                    })?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| {
                        self.stream_error(format!(
                            "TLS handshake failed: {e}; check sip.tls.ca_file (the CA that signed \
                             the centre's certificate), the server name and the client certificate"
                        ))
                    })?;
                SipConnection::Tls(
                    TlsConnection::from_client_stream(tls, self.target.clone(), token)
                        .await
                        .map_err(|e| self.stream_error(format!("TLS setup: {e}")))?,
                )
            }
            _ => {
                let local = SipAddr {
                    r#type: Some(rsipstack::sip::Transport::Tcp),
                    addr: local_addr.into(),
                };
                SipConnection::Tcp(
                    TcpConnection::from_stream(stream, local, token)
                        .map_err(|e| self.stream_error(format!("TCP setup: {e}")))?,
                )
            }
        };
        info!(local = %local_addr, remote = %self.target_socket, transport = %self.transport(), "SIP connection to the centre open");
        self.endpoint
            .inner
            .transport_layer
            .add_connection(conn.clone());
        self.link.set(Some(conn.clone()));
        Ok(Some(conn))
    }

    /// Forgets the current stream connection and closes it, so the next request opens a new one.
    fn drop_connection(&self) {
        if let Some(conn) = self.link.set(None) {
            self.endpoint.inner.transport_layer.remove_connection(&conn);
        }
    }

    fn via(&self, conn: Option<&SipConnection>) -> Result<typed::Via, SipError> {
        self.endpoint
            .inner
            .get_via(conn.map(|c| c.get_addr().clone()), None)
            .map_err(|e| SipError::stack("building the Via header", e))
    }

    fn credential(&self) -> &Credential {
        &self.credential
    }

    async fn register_once(&self, expires: u32) -> Result<Duration, SipError> {
        let conn = self.connection().await?;
        let via = self.via(conn.as_ref())?;
        let mut contact_params = vec![];
        if self.transport().is_stream() {
            contact_params.push(Param::Transport(self.transport().rsip()));
        }
        let contact = typed::Contact {
            display_name: None,
            uri: Uri {
                scheme: Some(Scheme::Sip),
                auth: Some(Auth {
                    user: self.settings.user.clone(),
                    password: None,
                }),
                host_with_port: via.uri.host_with_port.clone(),
                params: contact_params,
                headers: vec![],
            },
            params: vec![],
        };
        let aor = aor_uri(&self.settings.user, &self.settings.domain)?;
        let ruri_text = format!("sip:{}", self.settings.domain);
        let ruri = Uri::try_from(ruri_text.as_str()).map_err(|e| SipError::InvalidUri {
            uri: ruri_text.clone(),
            reason: e.to_string(),
        })?;
        let from = typed::From {
            display_name: None,
            uri: aor.clone(),
            params: vec![],
        }
        .with_tag(self.register_tag.clone());
        let to = typed::To {
            display_name: None,
            uri: aor,
            params: vec![],
        };
        let seq = self.register_cseq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut request = self.endpoint.inner.make_request(
            Method::Register,
            ruri,
            via,
            from,
            to,
            seq,
            Some(self.register_call_id.clone()),
        );
        request.headers.push(contact.clone().into());
        request
            .headers
            .push(rsipstack::sip::Expires::from(expires).into());
        request
            .headers
            .push(Header::Allow(rsipstack::sip::Allow::new(
                "MESSAGE, OPTIONS",
            )));
        let outcome = transact(
            &self.endpoint.inner,
            request,
            conn,
            &self.target,
            self.credential(),
            self.settings.transaction_timeout,
        )
        .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                if matches!(e, SipError::Transport { .. } | SipError::Timeout { .. }) {
                    self.drop_connection();
                }
                return Err(e);
            }
        };
        self.register_cseq
            .fetch_max(outcome.cseq, Ordering::Relaxed);
        let resp = outcome.response;
        let status = resp.status_code.code();
        if (200..300).contains(&status) {
            let ours: Vec<u32> = resp
                .typed_contact_headers()
                .unwrap_or_default()
                .iter()
                .filter(|c| {
                    c.uri.user() == contact.uri.user()
                        && c.uri.host_with_port == contact.uri.host_with_port
                })
                .filter_map(|c| c.expires())
                .collect();
            let granted = ours.into_iter().min().or_else(|| {
                resp.expires_header()
                    .and_then(|h| h.value().trim().parse::<u32>().ok())
            });
            return Ok(Duration::from_secs(u64::from(granted.unwrap_or(expires))));
        }
        if status == 423 && expires != 0 {
            let min = resp
                .min_expires_header()
                .and_then(|h| h.value().trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > expires) {
                info!(
                    min,
                    "registrar wants a longer registration (423); asking for it"
                );
                return Box::pin(self.register_once(min)).await;
            }
        }
        let hint = match status {
            403 => "; the registrar does not let this account register: check user and domain",
            404 => "; the registrar does not know this user: check user and domain",
            423 => "; the registrar wants a longer register_expires",
            _ => "",
        };
        Err(SipError::RegistrationRefused {
            target: self.target.to_string(),
            status,
            reason: resp.reason_phrase().unwrap_or_default().to_owned(),
            hint: hint.to_owned(),
        })
    }

    fn requested_expires(&self) -> u32 {
        u32::try_from(self.settings.register_expires.as_secs()).unwrap_or(u32::MAX)
    }
}

async fn registration_loop(
    inner: Arc<Inner>,
    state: watch::Sender<RegistrationState>,
    first: Duration,
) {
    let mut wait = refresh_after(first);
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = inner.link.lost.notified() => {
                state.send_replace(RegistrationState::Failed {
                    reason: "the connection to the centre was lost; registering again".into(),
                    transient: true,
                });
            }
        }
        match inner.register_once(inner.requested_expires()).await {
            Ok(granted) => {
                info!(expires = ?granted, "SIP registration refreshed");
                state.send_replace(RegistrationState::Registered { expires: granted });
                backoff = Duration::from_secs(1);
                wait = refresh_after(granted);
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "SIP registration failed");
                state.send_replace(RegistrationState::Failed {
                    reason: e.to_string(),
                    transient: e.is_transient(),
                });
                wait = jitter(backoff);
                backoff =
                    (backoff * 2).min(inner.settings.max_retry_backoff.max(Duration::from_secs(1)));
            }
        }
    }
}

fn validate(s: &SipSettings) -> Result<(), SipError> {
    let bad = |key: &str, what: &str| Err(SipError::Settings(format!("{key}: {what}")));
    if s.user.trim().is_empty() || s.user.contains(['@', ':', ' ', ';']) {
        return bad(
            "sip.user",
            "must be the user part of the AOR (no @, :, ; or spaces)",
        );
    }
    if s.domain.trim().is_empty() || s.domain.contains(['@', ' ', ';']) {
        return bad(
            "sip.domain",
            "must be the SIP domain, e.g. centre.example.net",
        );
    }
    if s.password.is_empty() {
        return bad(
            "sip.password",
            "is empty; the centre requires Digest authentication",
        );
    }
    if s.tls.is_some() && s.transport != Transport::Tls {
        return bad(
            "sip.tls",
            "is set but sip.transport is not tls; remove one of them",
        );
    }
    if s.inbound_capacity == 0 {
        return bad("sip.inbound_capacity", "must be at least 1");
    }
    if s.transaction_timeout < Duration::from_millis(100) {
        return bad(
            "sip.transaction_timeout",
            "must be at least 100 ms (RFC 3261: 32 s)",
        );
    }
    Ok(())
}

impl SipAgent {
    /// Starts the endpoint, opens the connection (TCP/TLS) and registers. Returns once the
    /// registrar accepted the registration; if the first attempt fails, the agent is stopped and
    /// the error returned ([`SipError::is_transient`] tells whether to try again later). After
    /// that, a background task refreshes the registration at 3/4 of its lifetime and registers
    /// again with backoff after a failure or a lost connection; see [`SipAgent::registration`].
    ///
    /// Inbound MESSAGEs addressed to our AOR arrive on the returned receiver.
    pub async fn start(
        settings: SipSettings,
    ) -> Result<(SipAgent, mpsc::Receiver<InboundMessage>), SipError> {
        validate(&settings)?;
        let default_port = match settings.transport {
            Transport::Tls => 5061,
            _ => 5060,
        };
        let (what, key, configured) = match &settings.outbound_proxy {
            Some(proxy) => ("outbound proxy", "sip.outbound_proxy", proxy.as_str()),
            None => ("registrar", "sip.registrar", settings.registrar.as_str()),
        };
        // The registrar must parse even when an outbound proxy carries the traffic.
        host_port(&settings.registrar, default_port, "sip.registrar")?;
        let (host, port) = host_port(configured, default_port, key)?;
        let target_socket = resolve(what, &host, port).await?;
        let target = SipAddr {
            r#type: Some(settings.transport.rsip()),
            addr: target_socket.into(),
        };
        let local_ip = match settings.local_bind {
            Some(bind) => bind.ip(),
            None => route_to(target_socket)?,
        };
        let tls = match settings.transport {
            Transport::Tls => {
                let files = settings.tls.clone().unwrap_or_default();
                let config = hearth_tls::client_config(&files, "sip.tls")
                    .map_err(|e| SipError::Settings(e.to_string()))?;
                Some(Arc::new(config))
            }
            _ => None,
        };

        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.clone());
        // The centre sends its answers over our connection whenever it likes: keep it open.
        transport_layer.set_stream_idle_timeout(Duration::ZERO);
        if settings.transport == Transport::Udp {
            let bind = settings
                .local_bind
                .unwrap_or_else(|| SocketAddr::new(local_ip, 0));
            let udp = UdpConnection::create_connection(bind, None, Some(cancel.child_token()))
                .await
                .map_err(|e| SipError::Transport {
                    transport: "udp".into(),
                    peer: bind.to_string(),
                    reason: format!(
                        "cannot bind the local UDP socket: {e}; local_bind must be an address of \
                         this machine with a free port"
                    ),
                })?;
            info!(local = %udp.get_addr(), "SIP UDP socket bound");
            transport_layer.add_transport(udp.into());
        }
        let link = Arc::new(Link::default());
        let option = EndpointOption {
            t1x64: settings.transaction_timeout,
            ..EndpointOption::default()
        };
        let marker: Box<dyn MessageInspector> = Box::new(LocalMarker);
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&settings.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.clone())
            .with_option(option)
            .with_allows(vec![Method::Message, Method::Options])
            .with_inspector(marker)
            .with_transport_inspector(Box::new(LinkWatch(link.clone())))
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::stack("starting the endpoint", e))?;
        let serving = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serving.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let (deliver, inbound_rx) = mpsc::channel(settings.inbound_capacity);
        let refused = Arc::new(AtomicU64::new(0));
        tokio::spawn(inbound::serve(
            incoming,
            settings.user.clone(),
            deliver,
            refused.clone(),
        ));

        let credential = Credential {
            username: settings.user.clone(),
            password: settings.password.clone(),
            realm: None,
            auth_username: settings.auth_user.clone(),
        };
        let register_call_id = rsipstack::transaction::make_call_id(None, Default::default());
        let inner = Arc::new(Inner {
            server_name: settings.tls_server_name.clone().unwrap_or(host),
            settings,
            endpoint,
            cancel,
            target,
            target_socket,
            local_ip,
            tls,
            link,
            credential,
            refused,
            register_call_id,
            register_tag: make_tag(),
            register_cseq: AtomicU32::new(0),
        });
        let granted = match inner.register_once(inner.requested_expires()).await {
            Ok(granted) => granted,
            Err(e) => {
                inner.cancel.cancel();
                return Err(e);
            }
        };
        info!(aor = %inner.settings.aor(), expires = ?granted, "SIP registered");
        let (state_tx, state) = watch::channel(RegistrationState::Registered { expires: granted });
        tokio::spawn(registration_loop(inner.clone(), state_tx, granted));
        Ok((SipAgent { inner, state }, inbound_rx))
    }

    /// Sends a MESSAGE (RFC 3428) to `to` (a SIP URI) through the registrar or outbound proxy,
    /// answering one Digest challenge. Any final answer is returned, 2xx or not; no answer within
    /// Timer F is [`SipError::Timeout`].
    pub async fn send_message(
        &self,
        to: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<MessageAnswer, SipError> {
        let inner = &self.inner;
        if inner.cancel.is_cancelled() {
            return Err(SipError::ShutDown);
        }
        let uri = Uri::try_from(to).map_err(|e| SipError::InvalidUri {
            uri: to.to_owned(),
            reason: e.to_string(),
        })?;
        if content_type.trim().is_empty() || content_type.contains(['\r', '\n']) {
            return Err(SipError::Settings(format!(
                "content type {content_type:?} is not a MIME type such as application/scaip+xml"
            )));
        }
        let conn = inner.connection().await?;
        let via = inner.via(conn.as_ref())?;
        let from = typed::From {
            display_name: None,
            uri: aor_uri(&inner.settings.user, &inner.settings.domain)?,
            params: vec![],
        }
        .with_tag(make_tag());
        let to_header = typed::To {
            display_name: None,
            uri: uri.clone(),
            params: vec![],
        };
        let mut request =
            inner
                .endpoint
                .inner
                .make_request(Method::Message, uri, via, from, to_header, 1, None);
        request
            .headers
            .push(rsipstack::sip::ContentType::new(content_type.trim()).into());
        request.body = body.to_vec();
        let outcome = transact(
            &inner.endpoint.inner,
            request,
            conn,
            &inner.target,
            inner.credential(),
            inner.settings.transaction_timeout,
        )
        .await;
        let resp = match outcome {
            Ok(o) => o.response,
            Err(e) => {
                if inner.transport().is_stream()
                    && matches!(e, SipError::Transport { .. } | SipError::Timeout { .. })
                {
                    // A silent connection: open a new one and bind our contact to it.
                    inner.drop_connection();
                    inner.link.lost.notify_one();
                }
                return Err(e);
            }
        };
        let content_type = resp.headers.iter().find_map(|h| match h {
            Header::ContentType(ct) => Some(ct.value().trim().to_owned()),
            _ => None,
        });
        Ok(MessageAnswer {
            status: resp.status_code.code(),
            reason: resp.reason_phrase().unwrap_or_default().to_owned(),
            content_type,
            body: resp.body,
        })
    }

    /// The registration state, updated by the background task.
    pub fn registration(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// How many inbound MESSAGEs were refused because they were not addressed to our AOR.
    pub fn refused_messages(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Our address of record, `sip:user@domain`.
    pub fn aor(&self) -> String {
        self.inner.settings.aor()
    }

    /// The local address of our contact (the UDP socket, or the current TCP/TLS connection's).
    pub fn local_addr(&self) -> Option<String> {
        match self.inner.link.get() {
            Some(conn) => Some(conn.get_addr().addr.to_string()),
            None => self
                .inner
                .endpoint
                .get_addrs()
                .first()
                .map(|a| a.addr.to_string()),
        }
    }

    /// Stops the endpoint and the background tasks (also done on drop).
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_names_addresses_and_default_ports() {
        let hp = |s| host_port(s, 5060, "k");
        assert_eq!(
            hp("centre.example.net:5070").unwrap(),
            ("centre.example.net".into(), 5070)
        );
        assert_eq!(
            hp("centre.example.net").unwrap(),
            ("centre.example.net".into(), 5060)
        );
        assert_eq!(hp("192.0.2.1:5061").unwrap(), ("192.0.2.1".into(), 5061));
        assert_eq!(
            hp("[2001:db8::1]:5062").unwrap(),
            ("2001:db8::1".into(), 5062)
        );
        assert_eq!(hp("2001:db8::1").unwrap(), ("2001:db8::1".into(), 5060));
        assert!(hp("").is_err());
        assert!(hp("host:port").is_err());
    }

    #[test]
    fn refreshes_come_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2700)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(0)),
            Duration::from_secs(1)
        );
        let j = jitter(Duration::from_secs(10));
        assert!(
            j >= Duration::from_secs(8) && j <= Duration::from_secs(12),
            "{j:?}"
        );
    }

    #[test]
    fn settings_are_checked_before_anything_starts() {
        let mut s = SipSettings::new(Transport::Udp, "127.0.0.1:5060", "d", "unit", "pw");
        assert!(validate(&s).is_ok());
        s.user = "a@b".into();
        assert!(validate(&s).is_err());
        s.user = "unit".into();
        s.tls = Some(hearth_tls::TlsFiles::default());
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("sip.tls"), "{e}");
    }
}
