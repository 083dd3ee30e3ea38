//! `hearth receiver`: the reference central-side receiver (FHIR transaction endpoint, MLLP
//! listener, SCAIP response centres over HTTPS and SIP) for tests, demos and installation
//! checks, and `hearth receiver summary`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hearth_receiver::{Faults, Listen, OAuth2Issuer, ReceiverConfig, ServerTls};

/// Options of `hearth receiver run`.
#[derive(Debug)]
pub struct RunOptions {
    /// SQLite file the receiver stores what it got in.
    pub store: PathBuf,
    /// FHIR listen address (`none` = off).
    pub fhir: Option<SocketAddr>,
    /// MLLP listen address (`none` = off).
    pub mllp: Option<SocketAddr>,
    /// Server certificate and key (PEM) for TLS on both endpoints.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Require `Authorization: Bearer <token>` on FHIR requests.
    pub bearer: Option<String>,
    /// Serve an OAuth2 token endpoint for this client (id, PEM public key) and require its
    /// access tokens on FHIR requests.
    pub oauth2_client: Option<(String, PathBuf)>,
    /// Life of the access tokens issued (default 300 s).
    pub token_life: Option<Duration>,
    /// Scope the token requests must ask for.
    pub oauth2_scope: Option<String>,
    /// Fault injection.
    pub faults: Faults,
    /// The SCAIP-over-HTTPS response centre, if asked for.
    pub scaip: Option<hearth_receiver::ScaipEndpoint>,
    /// The SCAIP-over-SIP response centre, if asked for.
    pub scaip_sip: Option<hearth_receiver::ScaipSipEndpoint>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// Parses `FROM+LENGTH` (e.g. `10s+30s`): the receiver is down from FROM for LENGTH.
pub fn parse_down(s: &str) -> Result<(Duration, Duration), String> {
    let (a, b) = s
        .split_once('+')
        .ok_or_else(|| format!("{s:?}: write FROM+LENGTH, e.g. 10s+30s"))?;
    let d = |x: &str| humantime::parse_duration(x).map_err(|e| format!("{x:?}: {e}"));
    Ok((d(a)?, d(b)?))
}

/// Parses `ID=PUBLIC_KEY_PEM` of `--oauth2-client`.
pub fn parse_oauth2_client(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((id, key)) if !id.trim().is_empty() && !key.is_empty() => {
            Ok((id.trim().to_owned(), PathBuf::from(key)))
        }
        _ => Err(format!(
            "{s:?}: write CLIENT_ID=PUBLIC_KEY_PEM, e.g. hearth-gateway=/etc/hearth/client.pub.pem"
        )),
    }
}

/// Parses `USER:PASSWORD` of `--scaip-sip-user` (the password may contain `:`).
pub fn parse_sip_user(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((user, password))
            if !user.is_empty() && !password.is_empty() && !user.contains(['@', ';', ' ', '"']) =>
        {
            Ok((user.to_owned(), password.to_owned()))
        }
        _ => Err(
            "write USER:PASSWORD (the Digest username, no @ ; or spaces, and a password), \
             e.g. unit17:secret"
                .to_owned(),
        ),
    }
}

/// Run until Ctrl-C/SIGTERM or `duration`; print the addresses, then the summary.
pub fn run(mut o: RunOptions) -> anyhow::Result<()> {
    let scaip = o.scaip.take();
    let scaip_sip = o.scaip_sip.take();
    if scaip_sip.as_ref().is_some_and(|s| s.users.is_empty()) {
        anyhow::bail!(
            "--scaip-sip needs at least one --scaip-sip-user USER:PASSWORD (the registrar refuses \
             everybody else)"
        );
    }
    if scaip_sip
        .as_ref()
        .is_some_and(|s| s.transport == hearth_receiver::SipTransport::Tls)
        && o.tls.is_none()
    {
        anyhow::bail!("--scaip-sip-transport tls needs --tls-cert and --tls-key");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = o.store.clone();
    rt.block_on(async move {
        let mut cfg = ReceiverConfig::new(o.store.clone());
        cfg.fhir = o.fhir.map(Listen::from);
        cfg.mllp = o.mllp.map(Listen::from);
        cfg.tls = o.tls.clone().map(|(cert, key)| ServerTls {
            cert,
            key,
            client_ca: o.client_ca.clone(),
        });
        cfg.faults = o.faults.clone();
        cfg.scaip = scaip;
        let sip_transport = scaip_sip.as_ref().map(|s| s.transport);
        cfg.scaip_sip = scaip_sip;
        cfg.require_bearer = o.bearer.clone();
        cfg.oauth2 = o.oauth2_client.clone().map(|(client_id, public_key)| {
            let mut issuer = OAuth2Issuer::new(client_id, public_key);
            if let Some(life) = o.token_life {
                issuer.token_life = life;
            }
            issuer.scope = o.oauth2_scope.clone();
            issuer
        });
        let running = hearth_receiver::start(cfg)
            .await
            .context("cannot start the receiver")?;
        let scheme = if o.tls.is_some() { "https" } else { "http" };
        if let Some(a) = running.fhir_addr() {
            outln!("FHIR   {scheme}://{a}/fhir  (transaction Bundles)");
            if let Some((client, _)) = &o.oauth2_client {
                outln!(
                    "OAuth2 {scheme}://{a}{}  (client credentials, private_key_jwt; client {client})",
                    hearth_receiver::TOKEN_PATH
                );
            }
        }
        if let Some(a) = running.mllp_addr() {
            outln!(
                "MLLP   {a}{}  (HL7 v2 ORU^R01, IHE PCD-01)",
                if o.tls.is_some() { " over TLS" } else { "" }
            );
        }
        if let Some(a) = running.scaip_addr() {
            outln!("SCAIP  {scheme}://{a}/scaip  (SCAIP over HTTPS, response centre)");
        }
        if let (Some(a), Some(t)) = (running.scaip_sip_addr(), sip_transport) {
            outln!("SCAIP  sip:{a};transport={t}  (SCAIP over SIP, response centre)");
        }
        outln!("store  {}", o.store.display());
        let signal = hearth_runtime::shutdown_signal()?;
        match o.duration {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    _ = signal => {}
                }
            }
            None => {
                signal.await;
            }
        }
        running.shutdown().await;
        anyhow::Ok(())
    })?;
    summary(&store)
}

/// Print what a receiver store holds.
pub fn summary(store: &Path) -> anyhow::Result<()> {
    let s = hearth_receiver::summary(store)
        .with_context(|| format!("cannot read the receiver store {}", store.display()))?;
    out!("{s}");
    Ok(())
}
