//! TLS server setup: rustls with the *ring* provider, TLS 1.2 or 1.3, optional client
//! certificates (mTLS) verified against the operator's CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::ReceiverError;

/// The receiver's TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Server certificate chain (leaf first).
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs (mutual TLS);
    /// connections without one fail the handshake.
    pub client_ca: Option<PathBuf>,
}

fn tls_err(what: &str, path: &Path, why: impl std::fmt::Display) -> ReceiverError {
    ReceiverError::Tls(format!("{what} {}: {why}", path.display()))
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ReceiverError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_err(
                what,
                path,
                format!("cannot read PEM certificates ({e}); the file must exist and be readable"),
            )
        })?;
    if certs.is_empty() {
        return Err(tls_err(what, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Build the rustls server configuration for `tls`.
pub fn server_config(tls: &ServerTls) -> Result<Arc<rustls::ServerConfig>, ReceiverError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("server certificate", &tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        tls_err(
            "server key",
            &tls.key,
            format!("cannot read a PEM private key ({e})"),
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ReceiverError::Tls(format!("TLS setup: {e}")))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certificates("client CA", ca)?);
            if added == 0 {
                return Err(tls_err("client CA", ca, "holds no usable CA certificate"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_err("client CA", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        tls_err(
            "server certificate",
            &tls.cert,
            format!("does not fit its key: {e}"),
        )
    })?;
    Ok(Arc::new(config))
}
