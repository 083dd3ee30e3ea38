//! One outgoing connection: TCP, optionally TLS with hearth's one client setup
//! ([`hearth_tls::client_config`]).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A byte stream, plain or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream.
pub(crate) type Stream = Box<dyn Io>;

/// Where to connect and how.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub host: String,
    pub port: u16,
    /// `Some` = TLS with this config and server name.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Dialer {
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
        server_name: &str,
    ) -> Result<Self, String> {
        let tls = match tls {
            None => None,
            Some(cfg) => {
                let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
                    format!("{server_name:?} is not a valid TLS server name (DNS name or IP address): {e}")
                })?;
                Some((TlsConnector::from(cfg), name))
            }
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "tcp" };
        format!("{scheme}://{}:{}", display_host(&self.host), self.port)
    }

    /// Connect (and handshake) within `timeout`.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Stream, String> {
        let fut = async {
            let host = self.host.trim_start_matches('[').trim_end_matches(']');
            let tcp = TcpStream::connect((host, self.port))
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", self.describe()))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => Ok(Box::new(tcp) as Stream),
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                        format!(
                            "TLS handshake with {} failed: {e}; check the CA file, the server's \
                             certificate name and, for mutual TLS, the client certificate",
                            self.describe()
                        )
                    })?;
                    Ok(Box::new(tls) as Stream)
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| {
            format!(
                "connecting to {} took longer than {} ms",
                self.describe(),
                timeout.as_millis()
            )
        })?
    }
}

fn display_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
