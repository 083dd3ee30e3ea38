//! Test kit: a PKI from the `openssl` CLI, records claimed from a real outbox, TLS acceptors,
//! a tiny HTTP/1.1 server and a tiny MLLP server on loopback sockets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hearth_model::{
    Alarm, AlarmKind, AlarmState, Category, DeviceId, Mdc, PersonRef, Reading, Record, Timestamp,
    Ucum, Value,
};
use hearth_tls::TlsFiles;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use hearth_test_kit::pki::openssl;

/// CA, server (localhost, 127.0.0.1) and client certificates; the client key's public key as
/// PKCS#1 DER (`client.pub.der`) for JWT checks; a P-256 key `ec.key` with its raw point.
pub fn pki(dir: &Path) {
    hearth_test_kit::pki::pki(dir);

    openssl(
        dir,
        &[
            "rsa",
            "-in",
            "client.key",
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            "client.pub.der",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "ec.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "ec.pub.der",
        ],
    );
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        pki(dir.path());
        Self { dir }
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    /// Client files with the client certificate (mutual TLS).
    pub fn client_files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: Some(self.path("ca.pem")),
            client_cert: Some(self.path("client.pem")),
            client_key: Some(self.path("client.key")),
        }
    }
    /// Server side; `require_client_cert` = mutual TLS.
    pub fn acceptor(&self, require_client_cert: bool) -> TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(self.path("server.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(self.path("server.key")).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        TlsAcceptor::from(Arc::new(builder.with_single_cert(certs, key).unwrap()))
    }
}

pub use hearth_test_kit::claimed;

pub fn device(n: u32) -> DeviceId {
    DeviceId::new("ble", &format!("0a1b2c0001d4e5{n:02x}")).unwrap()
}

/// A body temperature reading of device `dev`, number `seq`, for `person`.
pub fn temp(dev: u32, seq: u64, person: Option<&str>) -> Record {
    let mut b = Reading::builder(
        device(dev),
        Mdc(150364),
        Value::numeric_with_decimals(36.5, 1),
    )
    .unit(Ucum::new("Cel"))
    .device_time(Timestamp::from_unix_millis(
        1_741_935_909_000 + seq as i64 * 1000,
    ))
    .sequence(seq);
    if let Some(p) = person {
        b = b.person(PersonRef::new(p));
    }
    Record::Reading(b.build(Timestamp::from_unix_millis(1_741_935_911_000)))
}

/// A reading the FHIR encoder refuses (numeric without a unit).
pub fn no_unit(seq: u64) -> Record {
    Record::Reading(
        Reading::builder(device(9), Mdc(150364), Value::numeric(36.6))
            .device_time(Timestamp::from_unix_millis(1_741_935_909_000))
            .sequence(seq)
            .build(Timestamp::from_unix_millis(1_741_935_911_000)),
    )
}

pub fn alarm() -> Record {
    let t = Timestamp::from_unix_millis(1_741_935_909_000);
    Record::Alarm(Alarm::new(
        device(7),
        AlarmKind::Fall,
        AlarmState::Raised,
        t,
        t,
        Category::Health,
        None,
        Some(1),
    ))
}

// ---------------------------------------------------------------------------------------------
// Tiny HTTP/1.1 server.

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub enum Reply {
    /// Raw response bytes; the connection stays open.
    Raw(Vec<u8>),
    /// Raw response bytes, then close the connection.
    RawThenClose(Vec<u8>),
    /// Never answer.
    Hang,
}

pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

pub fn fhir_json(status: u16, v: &serde_json::Value) -> Reply {
    Reply::Raw(response(
        status,
        &[("content-type", "application/fhir+json")],
        v.to_string().as_bytes(),
    ))
}

pub type Handler = Arc<dyn Fn(&HttpRequest) -> Reply + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<HttpRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Option<HttpRequest> {
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    buf.drain(..head_end + 4);
    while buf.len() < len {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    Some(HttpRequest {
        method,
        path,
        headers,
        body,
    })
}

pub async fn http_server(tls: Option<TlsAcceptor>, handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (c2, r2) = (connections.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (tls, handler, conns, reqs) =
                (tls.clone(), handler.clone(), c2.clone(), r2.clone());
            tokio::spawn(async move {
                let mut s: Box<dyn Io> = match tls {
                    Some(a) => match a.accept(tcp).await {
                        Ok(t) => Box::new(t),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                while let Some(req) = read_request(&mut s, &mut buf).await {
                    reqs.lock().unwrap().push(req.clone());
                    match handler(&req) {
                        Reply::Raw(b) => {
                            if s.write_all(&b).await.is_err() {
                                return;
                            }
                            let _ = s.flush().await;
                        }
                        Reply::RawThenClose(b) => {
                            let _ = s.write_all(&b).await;
                            let _ = s.flush().await;
                            let _ = s.shutdown().await;
                            return;
                        }
                        Reply::Hang => {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        connections,
        requests,
        task,
    }
}

/// The `ifNoneExist` of each entry of a transaction request, and whether it is an Observation.
pub fn entries(bundle: &serde_json::Value) -> Vec<(bool, String)> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["request"]["url"] == "Observation",
                e["request"]["ifNoneExist"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// A transaction-response answering each entry with `status(entry index, is observation, ifNoneExist)`.
pub fn transaction_response(
    req: &HttpRequest,
    status: impl Fn(usize, bool, &str) -> (String, Option<serde_json::Value>),
) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = entries(&req.json())
        .iter()
        .enumerate()
        .map(|(i, (obs, ine))| {
            let (s, outcome) = status(i, *obs, ine);
            let mut r = serde_json::json!({"status": s});
            if let Some(o) = outcome {
                r["outcome"] = o;
            }
            serde_json::json!({"response": r})
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})
}

pub fn all_created(req: &HttpRequest) -> Reply {
    fhir_json(
        200,
        &transaction_response(req, |_, _, _| ("201 Created".into(), None)),
    )
}

/// Base64url decoding (JWT checks).
pub fn b64url_decode(s: &str) -> Vec<u8> {
    hearth_tls::base64url::decode(s).expect("base64url")
}

pub fn form_decode(s: &str) -> Vec<(String, String)> {
    let dec = |v: &str| {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}
