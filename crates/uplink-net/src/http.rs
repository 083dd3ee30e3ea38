//! A minimal HTTP/1.1 client over one keep-alive connection (hyper's connection API over
//! [`crate::net`]), plus URL and `Retry-After` parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;

use crate::net::Dialer;

/// Largest response body read (a transaction-response of a big batch stays far below).
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// Longest `Retry-After` honoured; a larger value is cut to this (a typo on the server must not
/// stop a route for days).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A parsed `http(s)://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Starts with `/`, no trailing `/` unless it is the root.
    pub path: String,
    /// `host[:port]` for the Host header.
    pub authority: String,
}

pub(crate) fn parse_url(url: &str) -> Result<Target, String> {
    let bad = |why: &str| format!("{url:?} is not a usable URL: {why}");
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad("it must start with https:// (or http:// for tests)"));
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains(['?', '#']) {
        return Err(bad("a base URL has no query or fragment"));
    }
    if authority.is_empty() || authority.contains('@') {
        return Err(bad(
            "no host, or user info in the URL (put credentials in `auth`)",
        ));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| bad("unclosed [ in the host"))?;
        let host = &v6[..end];
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| bad("bad port"))?,
        };
        (host.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
            None => (authority.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    Ok(Target {
        https,
        host,
        port,
        path,
        authority: authority.to_owned(),
    })
}

/// An HTTP response, body read in full.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let v = self
            .headers
            .get(hyper::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        parse_retry_after(v, SystemTime::now())
    }
}

/// Why a request got no response; the connection has been dropped.
#[derive(Debug)]
pub(crate) enum HttpError {
    Timeout(String),
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout(m) | HttpError::Failed(m) => f.write_str(m),
        }
    }
}

/// One keep-alive HTTP/1.1 connection to one server, reopened when it breaks.
pub(crate) struct HttpClient {
    dialer: Dialer,
    authority: String,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
    opened: u64,
}

impl HttpClient {
    pub(crate) fn new(dialer: Dialer, authority: String, timeout: Duration) -> Self {
        Self {
            dialer,
            authority,
            timeout,
            conn: None,
            opened: 0,
        }
    }

    /// Connections opened so far (tests, logs).
    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Drop the connection (the next request opens a new one).
    pub(crate) fn reset(&mut self) {
        self.conn = None;
    }

    async fn open(&mut self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let stream = self
            .dialer
            .connect(self.timeout)
            .await
            .map_err(HttpError::Failed)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::Failed(format!("HTTP handshake failed: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
        self.opened += 1;
        Ok(sender)
    }

    /// POST `body` to `path` with `headers`, within the timeout. A request on a reused
    /// connection that the server had closed meanwhile is sent once more on a new one (every
    /// request hearth sends is safe to repeat: conditional creates, token requests).
    pub(crate) async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Response, HttpError> {
        let timeout = self.timeout;
        self.post_within(path, headers, body, timeout, MAX_BODY)
            .await
    }

    /// [`post`](Self::post) with its own wait for the answer (connecting still takes at most
    /// the client's timeout) and its own largest answer body.
    pub(crate) async fn post_within(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        answer_timeout: Duration,
        max_body: usize,
    ) -> Result<Response, HttpError> {
        for attempt in 0..2 {
            let (mut sender, reused) = match self.conn.take() {
                Some(s) if !s.is_closed() => (s, true),
                _ => (self.open().await?, false),
            };
            let mut req = hyper::Request::post(path).header(hyper::header::HOST, &self.authority);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            let req = req
                .body(Full::new(body.clone()))
                .map_err(|e| HttpError::Failed(format!("cannot build the request: {e}")))?;
            let exchange = async {
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let (parts, body) = resp.into_parts();
                Ok::<_, hyper::Error>((parts, body))
            };
            let (parts, body) = match tokio::time::timeout(answer_timeout, exchange).await {
                Err(_) => {
                    return Err(HttpError::Timeout(format!(
                        "no answer from {} within {} ms",
                        self.dialer.describe(),
                        answer_timeout.as_millis()
                    )));
                }
                Ok(Err(e)) if reused && attempt == 0 => {
                    tracing::debug!(error = %e, "kept-alive connection was closed; reconnecting");
                    continue;
                }
                Ok(Err(e)) => {
                    return Err(HttpError::Failed(format!(
                        "request to {} failed: {e}",
                        self.dialer.describe()
                    )));
                }
                Ok(Ok(x)) => x,
            };
            let collected =
                tokio::time::timeout(answer_timeout, Limited::new(body, max_body).collect()).await;
            let body = match collected {
                Err(_) => {
                    return Err(HttpError::Timeout(format!(
                        "the answer of {} did not finish within {} ms",
                        self.dialer.describe(),
                        answer_timeout.as_millis()
                    )));
                }
                Ok(Err(e)) => {
                    return Err(HttpError::Failed(format!(
                        "reading the answer of {} failed: {e}",
                        self.dialer.describe()
                    )));
                }
                Ok(Ok(b)) => b.to_bytes(),
            };
            let close = parts
                .headers
                .get(hyper::header::CONNECTION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if !close {
                self.conn = Some(sender);
            }
            return Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            });
        }
        Err(HttpError::Failed(format!(
            "{} closed the connection twice in a row",
            self.dialer.describe()
        )))
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`),
/// capped at [`MAX_RETRY_AFTER`]. A date in the past is zero; anything unreadable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = value.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let secs = (at - now).max(0) as u64;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// IMF-fixdate → seconds since 1970.
fn parse_http_date(s: &str) -> Option<i64> {
    let rest = s.split_once(", ").map_or(s, |(_, r)| r);
    let mut it = rest.split_ascii_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Percent-encoding for `application/x-www-form-urlencoded` values.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://fhir.example.org/r4/").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (true, "fhir.example.org", 443, "/r4")
        );
        let t = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.port, t.path.as_str(), t.authority.as_str()),
            (8080, "/", "127.0.0.1:8080")
        );
        let t = parse_url("https://[::1]:9443/fhir").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9443));
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@h/",
            "https://h:x/",
            "https://h/p?q=1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("a b+c/d:e"), "a%20b%2Bc%2Fd%3Ae");
    }
}
