//! # hearth-receiver
//!
//! The reference central-side receiver: what hearth's tests, demos and installers use as "the
//! central hub". Operator documentation: `RECEIVER.md`.
//!
//! - **FHIR endpoint** (`POST /`, `/fhir`, `/fhir/`): FHIR R4 transaction (or batch) Bundles with
//!   conditional-create semantics (`request.ifNoneExist`): a known identifier is answered
//!   `200 OK` and counted as a duplicate, a new one is stored and answered `201 Created`.
//! - **MLLP endpoint**: HL7 v2 ORU^R01 (IHE PCD-01) messages in MLLP frames; every OBX row is
//!   stored keyed by its OBX-21 observation instance id (or control id + OBX-4), the message is
//!   acknowledged with MSA `AA` (`CA` in enhanced mode) or rejected with `AR` and an ERR segment.
//! - **OAuth2 token endpoint** (`POST /oauth2/token` on the FHIR listener, when
//!   [`ReceiverConfig::oauth2`] is set): client credentials with a `private_key_jwt` assertion
//!   (RFC 7523) of one registered client; FHIR requests then need one of its access tokens.
//! - **SCAIP endpoint** (`POST /scaip`, when [`ReceiverConfig::scaip`] is set): a response
//!   centre for SCAIP over HTTPS (`docs/protocols/scaip-https.md`): `<mrq>` in, `<mrs>` out
//!   (`snu`=0 by default), each event stored once by `cid` + `ref` (a repeat is answered again
//!   and counted as a repeat), every request logged ([`scaip_requests`]), scripted faults
//!   ([`ScaipFaults`]: hang, hold N times then OK, busy, not treated, wrong ref, malformed, 401).
//! - **SCAIP-over-SIP centre** (when [`ReceiverConfig::scaip_sip`] is set): a registrar (Digest
//!   MD5) and MESSAGE UAS over UDP, TCP or TLS (SS 91100): `<mrq>` in a MESSAGE, `200` at once,
//!   the `<mrs>` in a separate MESSAGE to the unit's registration (over its own connection),
//!   with the HTTPS centre's decisions, store and faults plus a 401 loop and `<mrs>` in the `200`.
//! - **TLS** on all (rustls + ring, TLS 1.2/1.3), optionally requiring client certificates.
//! - **Store**: one SQLite file ([`summary`] reads it).
//! - **Faults** ([`Faults`]): error answers, latency, down windows, garbage, resets — seeded.
//!
//! ## Invariants
//! - A resend is never stored twice: rows are keyed by (format, key) and a known key only raises
//!   its copy count. Tests: `tests/receiver.rs` `fhir_conditional_create_then_resend_is_200`,
//!   `mllp_message_is_acked_and_a_resend_is_a_duplicate`.
//! - Faults are deterministic for a given seed and sequential requests. Tests:
//!   `faults::tests::rates_split_and_are_deterministic`,
//!   `tests/receiver.rs` `error_rate_half_gives_about_half_503`.
//! - No panics on input: arbitrary bytes on either port give an error answer or a closed
//!   connection, and the receiver keeps serving. Test: `tests/receiver.rs`
//!   `garbage_input_never_panics_and_the_receiver_keeps_serving`.
#![forbid(unsafe_code)]

mod faults;
mod fhir;
mod mllp;
mod oauth;
mod scaip;
mod scaip_sip;
mod store;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use faults::{Faults, SCAIP_HANG, ScaipFault, ScaipFaults};
pub use oauth::{DEFAULT_TOKEN_LIFE, OAuth2Issuer, TOKEN_PATH};
pub use scaip::ScaipEndpoint;
pub use scaip_sip::{REALM as SIP_REALM, ScaipSipEndpoint, SipTransport};
pub use store::{
    FHIR, FormatSummary, MLLP, OBSERVATION, SCAIP, ScaipRequest, ScaipSummary, Summary,
    scaip_requests, summary,
};
pub use tls::{ServerTls, server_config};

use faults::Injector;
use store::Store;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an endpoint listens.
#[derive(Debug)]
pub enum Listen {
    /// Bind this address (port 0: any free port; [`RunningReceiver`] tells which).
    Addr(SocketAddr),
    /// Use a listener the caller bound already (e.g. handed over by systemd or a test).
    Listener(std::net::TcpListener),
}

impl Listen {
    /// `127.0.0.1:0`: loopback, any free port.
    pub fn loopback() -> Self {
        Listen::Addr(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }
}

impl From<SocketAddr> for Listen {
    fn from(a: SocketAddr) -> Self {
        Listen::Addr(a)
    }
}

impl From<std::net::TcpListener> for Listen {
    fn from(l: std::net::TcpListener) -> Self {
        Listen::Listener(l)
    }
}

/// What to start.
#[derive(Debug)]
pub struct ReceiverConfig {
    /// The FHIR endpoint; `None`: not started.
    pub fhir: Option<Listen>,
    /// The MLLP (PCD-01) endpoint; `None`: not started.
    pub mllp: Option<Listen>,
    /// The SCAIP-over-HTTPS endpoint (a response centre); `None` (the default): not started.
    pub scaip: Option<ScaipEndpoint>,
    /// The SCAIP-over-SIP response centre (registrar and MESSAGE UAS, UDP/TCP/TLS; TLS with
    /// [`tls`](Self::tls)); `None` (the default): not started.
    pub scaip_sip: Option<ScaipSipEndpoint>,
    /// TLS for all endpoints; `None`: plain TCP.
    pub tls: Option<ServerTls>,
    /// The SQLite file (created if missing; reused, and added to, if present).
    pub store: PathBuf,
    /// Faults to inject (default: none).
    pub faults: Faults,
    /// FHIR only: require `Authorization: Bearer <this>`; other requests get `401`.
    pub require_bearer: Option<String>,
    /// FHIR only: serve an OAuth2 token endpoint ([`TOKEN_PATH`]) for this client and require
    /// one of its unexpired access tokens (or [`require_bearer`](Self::require_bearer)'s token
    /// when both are set).
    pub oauth2: Option<OAuth2Issuer>,
}

impl ReceiverConfig {
    /// Both endpoints on loopback with free ports, plain TCP, no faults.
    pub fn new(store: impl Into<PathBuf>) -> Self {
        Self {
            fhir: Some(Listen::loopback()),
            mllp: Some(Listen::loopback()),
            scaip: None,
            scaip_sip: None,
            tls: None,
            store: store.into(),
            faults: Faults::default(),
            require_bearer: None,
            oauth2: None,
        }
    }
}

/// Why the receiver cannot start (or a store cannot be read).
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A listen address could not be bound.
    #[error(
        "cannot listen for {what} on {addr}: {source}; choose a free port or stop what uses it"
    )]
    Bind {
        /// `FHIR`, `MLLP`, `SCAIP` or `SCAIP over SIP`.
        what: &'static str,
        /// The address asked for ("injected listener" for [`Listen::Listener`]).
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TLS files are unusable; the message names the file and the problem.
    #[error("TLS: {0}")]
    Tls(String),
    /// The OAuth2 client's settings or public key are unusable; the message names the file
    /// and the problem.
    #[error("OAuth2: {0}")]
    OAuth2(String),
    /// The SQLite store failed.
    #[error("store {path}: {source}; check that the file is writable and not corrupt")]
    Store {
        /// The SQLite file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// An internal task failed (a bug; the message says where).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A connection after the (optional) TLS handshake.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub(crate) type BoxFuture = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
type Handler = Arc<dyn Fn(Box<dyn Io>) -> BoxFuture + Send + Sync>;

pub(crate) type SharedStore = Arc<Mutex<Store>>;

/// Run `f` on the store in a blocking task.
pub(crate) async fn with_store<T, F>(store: &SharedStore, f: F) -> Result<T, ReceiverError>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, ReceiverError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = match store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    })
    .await
    .map_err(|e| ReceiverError::Internal(format!("store task: {e}")))?
}

/// Add counters, logging (not failing) on error.
pub(crate) async fn count(
    store: &SharedStore,
    format: &'static str,
    counters: Vec<(&'static str, u64)>,
) {
    if let Err(e) = with_store(store, move |s| s.count(format, &counters)).await {
        tracing::warn!(error = %e, "receiver: counting failed");
    }
}

/// A started receiver.
#[derive(Debug)]
pub struct RunningReceiver {
    fhir_addr: Option<SocketAddr>,
    mllp_addr: Option<SocketAddr>,
    scaip_addr: Option<SocketAddr>,
    scaip_sip_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningReceiver {
    /// The FHIR endpoint's address (with the port chosen for port 0).
    pub fn fhir_addr(&self) -> Option<SocketAddr> {
        self.fhir_addr
    }

    /// The MLLP endpoint's address.
    pub fn mllp_addr(&self) -> Option<SocketAddr> {
        self.mllp_addr
    }

    /// The SCAIP endpoint's address.
    pub fn scaip_addr(&self) -> Option<SocketAddr> {
        self.scaip_addr
    }

    /// The SCAIP-over-SIP centre's address (UDP socket or TCP/TLS listener).
    pub fn scaip_sip_addr(&self) -> Option<SocketAddr> {
        self.scaip_sip_addr
    }

    /// Stop listening, close every connection and wait for the tasks to end. What was
    /// committed to the store stays.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "receiver: endpoint task failed");
            }
        }
    }
}

fn bind(listen: Listen, what: &'static str) -> Result<tokio::net::TcpListener, ReceiverError> {
    let (std_listener, addr) = match listen {
        Listen::Addr(a) => (std::net::TcpListener::bind(a), a.to_string()),
        Listen::Listener(l) => (Ok(l), "injected listener".to_owned()),
    };
    let bind_err = |source| ReceiverError::Bind {
        what,
        addr: addr.clone(),
        source,
    };
    let l = std_listener.map_err(bind_err)?;
    l.set_nonblocking(true).map_err(bind_err)?;
    tokio::net::TcpListener::from_std(l).map_err(bind_err)
}

/// Start the endpoints the configuration names. Must be called inside a tokio runtime.
pub async fn start(cfg: ReceiverConfig) -> Result<RunningReceiver, ReceiverError> {
    let started = Instant::now();
    let store_path = cfg.store.clone();
    let store: SharedStore = Arc::new(Mutex::new(
        tokio::task::spawn_blocking(move || Store::open(&store_path))
            .await
            .map_err(|e| ReceiverError::Internal(format!("opening the store: {e}")))??,
    ));
    let acceptor = match &cfg.tls {
        Some(t) => Some(TlsAcceptor::from(server_config(t)?)),
        None => None,
    };
    let issuer = match &cfg.oauth2 {
        Some(o) => Some(oauth::Issuer::new(o, cfg.tls.is_some())?),
        None => None,
    };
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut fhir_addr = None;
    let mut mllp_addr = None;
    if let Some(listen) = cfg.fhir {
        let endpoint = Arc::new(fhir::Fhir {
            store: store.clone(),
            injector: Injector::new(cfg.faults.clone(), started, 1),
            bearer: cfg.require_bearer.clone(),
            oauth: issuer,
        });
        let (addr, task) =
            spawn_endpoint(endpoint, listen, "FHIR", FHIR, &acceptor, &store, &stop)?;
        fhir_addr = Some(addr);
        tasks.push(task);
    }
    if let Some(listen) = cfg.mllp {
        let endpoint = Arc::new(mllp::Mllp::new(
            store.clone(),
            Injector::new(cfg.faults.clone(), started, 2),
        ));
        let (addr, task) =
            spawn_endpoint(endpoint, listen, "MLLP", MLLP, &acceptor, &store, &stop)?;
        mllp_addr = Some(addr);
        tasks.push(task);
    }
    let mut scaip_addr = None;
    if let Some(ScaipEndpoint {
        listen,
        bearer,
        heartbeat_minutes,
        faults,
    }) = cfg.scaip
    {
        let endpoint = Arc::new(scaip::Scaip::new(
            bearer,
            heartbeat_minutes,
            faults,
            store.clone(),
            Injector::new(cfg.faults.clone(), started, 3),
        ));
        let (addr, task) =
            spawn_endpoint(endpoint, listen, "SCAIP", SCAIP, &acceptor, &store, &stop)?;
        scaip_addr = Some(addr);
        tasks.push(task);
    }
    let mut scaip_sip_addr = None;
    if let Some(sip) = cfg.scaip_sip {
        // The HTTPS centre's decisions, store and request log; its own event counts.
        let core = Arc::new(scaip::Scaip::new(
            None,
            None,
            sip.faults,
            store.clone(),
            Injector::new(cfg.faults.clone(), started, 4),
        ));
        let (addr, task) = scaip_sip::start(sip, acceptor, core, stop.subscribe()).await?;
        scaip_sip_addr = Some(addr);
        tasks.push(task);
    }
    tracing::info!(
        ?fhir_addr,
        ?mllp_addr,
        ?scaip_addr,
        ?scaip_sip_addr,
        "receiver started"
    );
    Ok(RunningReceiver {
        fhir_addr,
        mllp_addr,
        scaip_addr,
        scaip_sip_addr,
        stop,
        tasks,
    })
}

/// Serve one HTTP/1.1 connection with `handle` (the FHIR and SCAIP-over-HTTPS endpoints): a
/// request whose answer is `Dropped` closes the connection without one (a fault).
pub(crate) async fn serve_http1<H, F>(io: Box<dyn Io>, what: &'static str, handle: H)
where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Send + 'static,
    F: Future<
            Output = Result<
                hyper::Response<http_body_util::Full<hyper::body::Bytes>>,
                fhir::Dropped,
            >,
        > + Send
        + 'static,
{
    let svc = hyper::service::service_fn(handle);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    if let Err(e) = builder
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .await
    {
        tracing::debug!(error = %e, endpoint = what, "connection ended");
    }
}

type DownCheck = Arc<dyn Fn(Instant) -> bool + Send + Sync>;

/// An endpoint served on a TCP (+TLS) listener: how it serves a connection, and its fault
/// injector (whose down windows refuse connections).
trait Endpoint: Send + Sync + 'static {
    fn serve_connection(self: Arc<Self>, io: Box<dyn Io>) -> BoxFuture;
    fn injector(&self) -> &Injector;
}

impl Endpoint for fhir::Fhir {
    fn serve_connection(self: Arc<Self>, io: Box<dyn Io>) -> BoxFuture {
        Box::pin(self.serve(io))
    }
    fn injector(&self) -> &Injector {
        &self.injector
    }
}

impl Endpoint for mllp::Mllp {
    fn serve_connection(self: Arc<Self>, io: Box<dyn Io>) -> BoxFuture {
        Box::pin(self.serve(io))
    }
    fn injector(&self) -> &Injector {
        &self.injector
    }
}

impl Endpoint for scaip::Scaip {
    fn serve_connection(self: Arc<Self>, io: Box<dyn Io>) -> BoxFuture {
        Box::pin(self.serve(io))
    }
    fn injector(&self) -> &Injector {
        &self.injector
    }
}

/// Bind `listen` and accept connections for `endpoint` until `stop`: the address bound and the
/// accept task.
fn spawn_endpoint<E: Endpoint>(
    endpoint: Arc<E>,
    listen: Listen,
    what: &'static str,
    format: &'static str,
    acceptor: &Option<TlsAcceptor>,
    store: &SharedStore,
    stop: &watch::Sender<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ReceiverError> {
    let listener = bind(listen, what)?;
    let addr = local_addr(&listener, what)?;
    let handler: Handler = {
        let endpoint = endpoint.clone();
        Arc::new(move |io| endpoint.clone().serve_connection(io))
    };
    let down: DownCheck = Arc::new(move |t| endpoint.injector().is_down(t));
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor.clone(),
        handler,
        down,
        store.clone(),
        format,
        stop.subscribe(),
    ));
    Ok((addr, task))
}

fn local_addr(
    l: &tokio::net::TcpListener,
    what: &'static str,
) -> Result<SocketAddr, ReceiverError> {
    l.local_addr().map_err(|source| ReceiverError::Bind {
        what,
        addr: "local address".into(),
        source,
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    handler: Handler,
    down: DownCheck,
    store: SharedStore,
    format: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => r,
        };
        while conns.try_join_next().is_some() {}
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, format, "receiver: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if down(Instant::now()) {
            // Zero linger: the peer sees a reset, as from a host that is down.
            let _ = tcp.set_zero_linger();
            drop(tcp);
            let store = store.clone();
            conns.spawn(
                async move { count(&store, format, vec![("fault:down_connection", 1)]).await },
            );
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let handler = handler.clone();
        conns.spawn(async move {
            let io: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => Box::new(s),
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, format, "receiver: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, format, "receiver: TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            handler(io).await;
        });
    }
    conns.shutdown().await;
}
