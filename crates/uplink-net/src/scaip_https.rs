//! SCAIP over HTTPS, the unit's side: one `<mrq>` per `POST <base>/scaip`, the centre's `<mrs>`
//! in the `200` answer. The protocol is specified openly in `docs/protocols/scaip-https.md`
//! (REQUIREMENTS B4); this is hearth's implementation of its "unit" role.
//!
//! What an answer becomes (the session in `hearth_uplink_scaip::session` acts on it):
//!
//! | centre's answer | [`exchange`](AlarmProtocol::exchange) |
//! |---|---|
//! | `200`, an `<mrs>` for the request's `ref` | `Ok(CentreAnswer)` (snu 0/4/5/6/error) |
//! | `200` with an `<mrs>` for another `ref`, not XML, no `ref`/`snu`, or another `2xx` | [`ProtocolError::Malformed`] |
//! | nothing within the wait (the session's, capped by `answer_timeout`) | [`ProtocolError::NoAnswer`] |
//! | no connection, TLS refused, `429`, `5xx`, other `3xx`/`4xx` | [`ProtocolError::Unavailable`] |
//! | `401`, `403` | [`ProtocolError::Refused`] |
//!
//! A `429` or `503` with `Retry-After` also keeps this receiver out for that long (at most
//! [`MAX_HOLD_OFF`]): requests in that window fail as `Unavailable` at once, without being sent,
//! so the session goes to the next receiver.
//!
//! Requests to one receiver run concurrently, each on its own kept-alive connection from a
//! small pool (an alarm on hold never waits behind another alarm's request). The bearer token
//! is never logged, and never shown by `Debug` or [`describe`](AlarmProtocol::describe).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_tls::TlsFiles;
use hearth_uplink_scaip::{AlarmProtocol, BoxFuture, CentreAnswer, Mrq, Mrs, ProtocolError};
use hyper::body::Bytes;

use crate::SetupError;
use crate::http::{HttpClient, HttpError, Response, Target, parse_url};
use crate::net::Dialer;

use hearth_uplink_scaip::xml::CONTENT_TYPE as SCAIP_CONTENT_TYPE;
/// The endpoint's path below the base URL.
pub const SCAIP_PATH: &str = "/scaip";
/// The longest `Retry-After` honoured: an alarm must not be kept from a receiver for long by a
/// server's setting (the session goes to the next receiver meanwhile).
pub const MAX_HOLD_OFF: Duration = Duration::from_secs(60);
/// Connections kept open per receiver when idle.
const IDLE_CONNECTIONS: usize = 4;
/// The configuration table named in setup errors.
const TABLE: &str = "scaip_https";

/// Settings of one SCAIP-over-HTTPS receiver (one response centre).
#[derive(Clone)]
pub struct ScaipHttpsSettings {
    /// The centre's base URL, `https://host[:port][/path]`; requests go to `<url>/scaip` (a URL
    /// that already ends in `/scaip` is used as it is). `http://` only for loopback hosts
    /// (tests).
    pub url: String,
    /// `Authorization: Bearer <token>` on every request; `None` when the centre authenticates
    /// the unit by its client certificate (mutual TLS, `tls.client_cert`). Never logged.
    pub token: Option<String>,
    /// The operator's CA (or the system store) and, for mutual TLS, the client certificate.
    pub tls: TlsFiles,
    /// Longest wait for TCP + TLS set-up; a centre not reached in time is `Unavailable`.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request (the session's own wait is shorter when
    /// it asks for less); no answer in time is `NoAnswer`.
    pub answer_timeout: Duration,
}

impl std::fmt::Debug for ScaipHttpsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaipHttpsSettings")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("answer_timeout", &self.answer_timeout)
            .finish()
    }
}

impl ScaipHttpsSettings {
    /// Settings with 5 s to connect and 10 s for an answer, no token, the system CA store.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            tls: TlsFiles::default(),
            connect_timeout: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(10),
        }
    }
}

/// One response centre reached with SCAIP over HTTPS.
pub struct ScaipHttps {
    /// `https://host:port/path/scaip`, for logs (no credentials: the URL may not carry any).
    endpoint: String,
    target: Target,
    dialer: Dialer,
    authorization: Option<String>,
    connect_timeout: Duration,
    answer_timeout: Duration,
    idle: Mutex<Vec<HttpClient>>,
    /// No request before this (a `Retry-After`).
    hold_off: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ScaipHttps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaipHttps")
            .field("endpoint", &self.endpoint)
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl ScaipHttps {
    /// Check the settings and set up TLS; connects on the first request.
    pub fn new(settings: ScaipHttpsSettings) -> Result<Self, SetupError> {
        let address = |message: String| SetupError::Address {
            key: format!("{TABLE}.url"),
            message,
        };
        let mut target = parse_url(&settings.url).map_err(address)?;
        if !target.https && !is_loopback(&target.host) {
            return Err(address(format!(
                "{:?}: SCAIP over HTTPS needs an https:// URL (http:// is accepted only for a \
                 loopback host, in tests): alarms must not travel unencrypted",
                settings.url
            )));
        }
        if !target.path.ends_with(SCAIP_PATH) {
            target.path = format!("{}{SCAIP_PATH}", target.path.trim_end_matches('/'));
        }
        let tls = if target.https {
            let mut cfg = crate::tls_config(&settings.tls, TABLE)?;
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(cfg))
        } else {
            None
        };
        let dialer = Dialer::new(&target.host, target.port, tls, &target.host).map_err(address)?;
        let authorization = match settings.token {
            None => None,
            Some(t) => {
                if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(SetupError::Auth {
                        key: format!("{TABLE}.token"),
                        message: "the bearer token is empty or contains white space".into(),
                    });
                }
                Some(format!("Bearer {t}"))
            }
        };
        if settings.connect_timeout.is_zero() || settings.answer_timeout.is_zero() {
            return Err(SetupError::Address {
                key: format!("{TABLE}.timeout"),
                message: "the connect and answer timeouts must be longer than zero".into(),
            });
        }
        let scheme = if target.https { "https" } else { "http" };
        Ok(Self {
            endpoint: format!("{scheme}://{}{}", target.authority, target.path),
            target,
            dialer,
            authorization,
            connect_timeout: settings.connect_timeout,
            answer_timeout: settings.answer_timeout,
            idle: Mutex::new(Vec::new()),
            hold_off: Mutex::new(None),
        })
    }

    /// The URL requests are POSTed to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// POST one request; the HTTP answer, or why none came.
    async fn post(&self, request: &Mrq, wait: Duration) -> Result<Response, ProtocolError> {
        let hold_off = *lock(&self.hold_off);
        if let Some(until) = hold_off {
            let now = Instant::now();
            if now < until {
                return Err(ProtocolError::Unavailable(format!(
                    "{} asked for a pause (Retry-After); {} s left",
                    self.endpoint,
                    (until - now).as_secs().max(1)
                )));
            }
        }
        let body = request.to_xml().map_err(|e| {
            ProtocolError::Unavailable(format!(
                "the request cannot be sent to {}: {e}",
                self.endpoint
            ))
        })?;
        let mut headers = vec![
            ("content-type", SCAIP_CONTENT_TYPE.to_owned()),
            ("accept", SCAIP_CONTENT_TYPE.to_owned()),
        ];
        if let Some(a) = &self.authorization {
            headers.push(("authorization", a.clone()));
        }
        let pooled = lock(&self.idle).pop();
        let mut client = pooled.unwrap_or_else(|| {
            HttpClient::new(
                self.dialer.clone(),
                self.target.authority.clone(),
                self.connect_timeout,
            )
        });
        let wait = wait.min(self.answer_timeout);
        let sent = client
            .post_within(
                &self.target.path,
                &headers,
                Bytes::from(body),
                wait,
                hearth_uplink_scaip::xml::BODY_MAX,
            )
            .await;
        match sent {
            Ok(resp) => {
                let mut idle = lock(&self.idle);
                if idle.len() < IDLE_CONNECTIONS {
                    idle.push(client);
                }
                drop(idle);
                self.check_status(&resp)?;
                Ok(resp)
            }
            // The client dropped its connection; so do we.
            Err(HttpError::Timeout(m)) => {
                tracing::debug!(endpoint = %self.endpoint, error = %m, "SCAIP over HTTPS: no answer in time");
                Err(ProtocolError::NoAnswer(wait))
            }
            Err(HttpError::Failed(m)) => Err(ProtocolError::Unavailable(m)),
        }
    }

    /// Everything but a `2xx` is an error; a `Retry-After` on `429`/`503` starts a pause.
    fn check_status(&self, resp: &Response) -> Result<(), ProtocolError> {
        let status = resp.status;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let endpoint = &self.endpoint;
        match status {
            401 | 403 => Err(ProtocolError::Refused(format!(
                "{endpoint} answered HTTP {status}; check the receiver's bearer token or the \
                 unit's client certificate and its account at the centre"
            ))),
            429 | 503 => {
                let pause = resp.retry_after().map(|d| d.min(MAX_HOLD_OFF));
                if let Some(p) = pause {
                    *lock(&self.hold_off) = Some(Instant::now() + p);
                }
                Err(ProtocolError::Unavailable(format!(
                    "{endpoint} answered HTTP {status} (overloaded){}",
                    pause.map_or(String::new(), |p| format!(
                        "; not asked again for {} s",
                        p.as_secs()
                    ))
                )))
            }
            413 => Err(ProtocolError::Unavailable(format!(
                "{endpoint} answered HTTP 413: the request is larger than the centre accepts"
            ))),
            415 => Err(ProtocolError::Unavailable(format!(
                "{endpoint} answered HTTP 415: the centre does not take {SCAIP_CONTENT_TYPE}"
            ))),
            300..=399 => Err(ProtocolError::Unavailable(format!(
                "{endpoint} answered HTTP {status}: redirects are not followed; configure the \
                 centre's final URL"
            ))),
            _ => Err(ProtocolError::Unavailable(format!(
                "{endpoint} answered HTTP {status}"
            ))),
        }
    }
}

/// The `<mrs>` of a `200` answer, checked against the request's `ref`.
fn answer_of(request: &Mrq, resp: &Response) -> Result<CentreAnswer, ProtocolError> {
    if resp.status != 200 {
        return Err(ProtocolError::Malformed(format!(
            "HTTP {} instead of 200 with an <mrs>",
            resp.status
        )));
    }
    let mrs = Mrs::parse(&resp.body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match &request.reference {
        Some(ours) if *ours == mrs.reference => Ok(CentreAnswer::from(mrs)),
        Some(ours) => Err(ProtocolError::Malformed(format!(
            "the answer is for ref {}, the request was ref {ours}",
            mrs.reference
        ))),
        None => Err(ProtocolError::Malformed("the request had no ref".into())),
    }
}

impl AlarmProtocol for ScaipHttps {
    fn describe(&self) -> String {
        format!("scaip+https {}", self.endpoint)
    }

    fn exchange<'a>(
        &'a self,
        request: &'a Mrq,
        wait: Duration,
    ) -> BoxFuture<'a, Result<CentreAnswer, ProtocolError>> {
        Box::pin(async move {
            let resp = self.post(request, wait).await?;
            answer_of(request, &resp)
        })
    }

    fn notify<'a>(&'a self, request: &'a Mrq) -> BoxFuture<'a, Result<(), ProtocolError>> {
        Box::pin(async move {
            self.post(request, self.answer_timeout).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_need_https_except_on_loopback() {
        for ok in [
            "https://arc.example/api",
            "https://arc.example/api/scaip",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9/x",
        ] {
            let s = ScaipHttpsSettings {
                tls: TlsFiles {
                    ca_file: Some("/dev/null".into()),
                    ..TlsFiles::default()
                },
                ..ScaipHttpsSettings::new(ok)
            };
            match ScaipHttps::new(s) {
                Ok(u) => assert!(u.endpoint().ends_with("/scaip"), "{ok}"),
                // https needs a usable CA file; the URL itself was accepted.
                Err(SetupError::Tls(_)) => assert!(ok.starts_with("https")),
                Err(e) => panic!("{ok}: {e}"),
            }
        }
        for bad in ["http://arc.example/api", "ftp://x", "https://u:p@h/"] {
            assert!(
                matches!(
                    ScaipHttps::new(ScaipHttpsSettings::new(bad)),
                    Err(SetupError::Address { .. })
                ),
                "{bad}"
            );
        }
        let u = ScaipHttps::new(ScaipHttpsSettings::new("http://127.0.0.1:1/a/scaip/")).unwrap();
        assert_eq!(u.endpoint(), "http://127.0.0.1:1/a/scaip");
    }

    #[test]
    fn the_token_is_checked_and_never_shown() {
        let mut s = ScaipHttpsSettings::new("http://127.0.0.1:1");
        s.token = Some("s3cr3t-token".into());
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let u = ScaipHttps::new(s.clone()).unwrap();
        assert!(!format!("{u:?}").contains("s3cr3t"));
        assert!(!u.describe().contains("s3cr3t"));
        s.token = Some("two words".into());
        assert!(matches!(ScaipHttps::new(s), Err(SetupError::Auth { .. })));
    }
}
