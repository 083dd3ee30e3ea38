//! TLS client setup shared by every connection hearth opens (the MQTT broker now; the FHIR,
//! PCD-01 and SCAIP receivers with issue 4): rustls with the *ring* provider, TLS 1.2 or 1.3
//! only, the operator's CA file or the system trust store, and a client certificate for mutual
//! TLS (B10/B11: enterprise certificates). One place builds them, so no connection can skip
//! verification or fall back to an older protocol.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Debian's (and most distributions') system trust store, used when no CA file is configured.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The PEM files of one TLS client; `what` names the config table in errors (e.g. `mqtt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates that sign the server's certificate; `None` = [`SYSTEM_CA_BUNDLE`].
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mutual TLS (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<PathBuf>,
}

/// Why a TLS client cannot be set up; the message names the config key and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsError {
    /// Dotted config key, e.g. `mqtt.ca_file`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn err(key: String, message: String) -> TlsError {
    TlsError { key, message }
}

fn certificates(path: &Path, key: String) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            err(
                key.clone(),
                format!(
                    "cannot read PEM certificates from {}: {e}; the file must exist, be readable \
                     by the hearth user and hold PEM certificates",
                    path.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// A rustls client configuration for `files`; `table` is the config table for error messages.
pub fn client_config(files: &TlsFiles, table: &str) -> Result<rustls::ClientConfig, TlsError> {
    let ca_key = format!("{table}.ca_file");
    let ca_path = files
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates(&ca_path, ca_key.clone())?);
    if added == 0 {
        return Err(err(
            ca_key,
            format!(
                "{} holds no usable CA certificate; name the PEM file of the CA that signed the \
                 server's certificate",
                ca_path.display()
            ),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err(table.to_owned(), format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, format!("{table}.client_cert"))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                err(
                    format!("{table}.client_key"),
                    format!("cannot read a PEM private key from {}: {e}", key.display()),
                )
            })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                err(
                    format!("{table}.client_cert"),
                    format!("the client certificate and key do not fit together: {e}"),
                )
            })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(err(
            format!("{table}.client_cert"),
            "client_cert and client_key go together; set both or neither".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_names_its_key_and_path() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let e = client_config(&files, "mqtt").unwrap_err();
        assert_eq!(e.key, "mqtt.ca_file");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let files = TlsFiles {
            ca_file: Some(path),
            ..TlsFiles::default()
        };
        let e = client_config(&files, "route.hub.tls").unwrap_err();
        assert_eq!(e.key, "route.hub.tls.ca_file");
        assert!(e.message.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn the_system_trust_store_is_the_default() {
        if !Path::new(SYSTEM_CA_BUNDLE).exists() {
            eprintln!("SKIPPED: {SYSTEM_CA_BUNDLE} is missing (ca-certificates is not installed)");
            return;
        }
        assert!(client_config(&TlsFiles::default(), "mqtt").is_ok());
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let files = TlsFiles {
            ca_file: Some(SYSTEM_CA_BUNDLE.into()),
            client_cert: Some("c.pem".into()),
            client_key: None,
        };
        let e = client_config(&files, "mqtt");
        assert!(e.is_err());
    }
}
