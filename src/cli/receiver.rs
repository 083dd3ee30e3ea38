//! `hearth receiver`: the reference central-side receiver (FHIR transaction endpoint and MLLP
//! listener) for tests, demos and installation checks, and `hearth receiver summary`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hearth_receiver::{Faults, Listen, ReceiverConfig, ServerTls};

/// Options of `hearth receiver run`.
#[derive(Debug, Clone)]
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
    /// Fault injection.
    pub faults: Faults,
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

/// Run until Ctrl-C/SIGTERM or `duration`; print the addresses, then the summary.
pub fn run(o: RunOptions) -> anyhow::Result<()> {
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
        cfg.require_bearer = o.bearer.clone();
        let running = hearth_receiver::start(cfg)
            .await
            .context("cannot start the receiver")?;
        let scheme = if o.tls.is_some() { "https" } else { "http" };
        if let Some(a) = running.fhir_addr() {
            outln!("FHIR   {scheme}://{a}/fhir  (transaction Bundles)");
        }
        if let Some(a) = running.mllp_addr() {
            outln!(
                "MLLP   {a}{}  (HL7 v2 ORU^R01, IHE PCD-01)",
                if o.tls.is_some() { " over TLS" } else { "" }
            );
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
