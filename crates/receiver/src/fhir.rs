//! The FHIR endpoint: transaction/batch Bundles with conditional create.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::faults::{Fault, Injector};
use crate::oauth::{Issuer, TOKEN_PATH};
use crate::store::{FHIR, Item, Stored};
use crate::{Io, SharedStore, count, with_store};

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;
const FHIR_JSON: &str = "application/fhir+json; fhirVersion=4.0";

/// The connection is closed without an answer (down window, injected reset).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

pub(crate) struct Fhir {
    pub(crate) store: SharedStore,
    pub(crate) injector: Injector,
    pub(crate) bearer: Option<String>,
    pub(crate) oauth: Option<Issuer>,
}

type Resp = Response<Full<Bytes>>;

static ANON: AtomicU64 = AtomicU64::new(0);

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn fhir_json(status: StatusCode, v: &Value) -> Resp {
    respond(status, FHIR_JSON, v.to_string().into_bytes())
}

/// An OperationOutcome with one issue.
pub(crate) fn outcome(code: &str, diagnostics: &str, expression: Option<String>) -> Value {
    let mut issue = json!({ "severity": "error", "code": code, "diagnostics": diagnostics });
    if let (Some(e), Some(obj)) = (expression, issue.as_object_mut()) {
        obj.insert("expression".into(), json!([e]));
    }
    json!({ "resourceType": "OperationOutcome", "issue": [issue] })
}

fn refuse(status: StatusCode, code: &str, diagnostics: &str, expression: Option<String>) -> Resp {
    fhir_json(status, &outcome(code, diagnostics, expression))
}

/// Percent-decoding of an `ifNoneExist` query (`%2B` → `+`); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One entry of the request, checked.
#[derive(Debug)]
enum Entry {
    /// A resource to store.
    Store {
        kind: String,
        key: String,
        conditional: bool,
        body: String,
    },
    /// Refused on its own (`400 Bad Request` in its response).
    Refuse(String),
}

fn check_entry(i: usize, e: &Value) -> Entry {
    let Some(obj) = e.as_object() else {
        return Entry::Refuse(format!("Bundle.entry[{i}] is not an object"));
    };
    let Some(resource) = obj.get("resource").and_then(Value::as_object) else {
        return Entry::Refuse(format!(
            "Bundle.entry[{i}].resource is missing or not a JSON object"
        ));
    };
    let Some(kind) = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
    else {
        return Entry::Refuse(format!(
            "Bundle.entry[{i}].resource has no valid resourceType"
        ));
    };
    let request = obj.get("request").and_then(Value::as_object);
    let if_none_exist = request
        .and_then(|r| r.get("ifNoneExist"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let (key, conditional) = match (if_none_exist, obj.get("fullUrl").and_then(Value::as_str)) {
        (Some(q), _) => (format!("{kind}?{}", percent_decode(q)), true),
        (None, Some(url)) if !url.is_empty() => (url.to_owned(), false),
        _ => (
            format!(
                "anonymous:{}:{}",
                crate::store::now_ms(),
                ANON.fetch_add(1, Ordering::Relaxed)
            ),
            false,
        ),
    };
    match serde_json::to_string(resource) {
        Ok(body) => Entry::Store {
            kind: kind.to_owned(),
            key,
            conditional,
            body,
        },
        Err(e) => Entry::Refuse(format!(
            "Bundle.entry[{i}].resource cannot be written back as JSON: {e}"
        )),
    }
}

/// Check the Bundle as a whole: its type and entries, or the problem for a `400`.
/// Why a request is refused as a whole: the diagnostics and the FHIRPath of the element.
type Problem = (String, Option<String>);

fn check_bundle(body: &[u8]) -> Result<(&'static str, Vec<Entry>), Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| (format!("the request body is not JSON: {e}"), None))?;
    let Some(obj) = v.as_object() else {
        return Err(("the request body is not a JSON object".into(), None));
    };
    match obj.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {}
        Some(other) => {
            return Err((
                format!(
                    "expected a Bundle, got resourceType {:?}",
                    other.chars().take(64).collect::<String>()
                ),
                Some("Bundle.resourceType".into()),
            ));
        }
        None => {
            return Err((
                "the request has no resourceType; expected a transaction Bundle".into(),
                Some("Bundle.resourceType".into()),
            ));
        }
    }
    let response_type = match obj.get("type").and_then(Value::as_str) {
        Some("transaction") => "transaction-response",
        Some("batch") => "batch-response",
        other => {
            return Err((
                format!(
                    "Bundle.type must be \"transaction\" or \"batch\", got {:?}",
                    other.map(|s| s.chars().take(64).collect::<String>())
                ),
                Some("Bundle.type".into()),
            ));
        }
    };
    let entries = match obj.get("entry") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, e)| check_entry(i, e))
            .collect(),
        Some(_) => {
            return Err((
                "Bundle.entry is not an array".into(),
                Some("Bundle.entry".into()),
            ));
        }
    };
    Ok((response_type, entries))
}

impl Fhir {
    pub(crate) async fn serve(self: Arc<Self>, io: Box<dyn Io>) {
        crate::serve_http1(io, "FHIR", move |req| {
            let me = self.clone();
            async move { me.handle(req).await }
        })
        .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Resp, Dropped> {
        if let Some(issuer) = &self.oauth {
            if req.uri().path() == TOKEN_PATH {
                // Injected faults are about delivering FHIR; a token endpoint failing at random
                // would only blur what a test of them shows. Not a FHIR request either, so not
                // counted in `requests`.
                return Ok(issuer.serve(req, &self.store).await);
            }
        }
        if self.injector.is_down(Instant::now()) {
            count(&self.store, FHIR, vec![("requests", 1), ("fault:down", 1)]).await;
            return Err(Dropped);
        }
        let fault = self.injector.draw();
        if fault == Fault::Error {
            count(&self.store, FHIR, vec![("requests", 1), ("fault:error", 1)]).await;
            self.delay().await;
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "injected fault: service unavailable, try again later",
                None,
            );
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                HeaderValue::from_static("keep-alive"),
            );
            return Ok(r);
        }
        let mut counters: Vec<(&'static str, u64)> = vec![("requests", 1)];
        if let Some(c) = fault.counter() {
            counters.push((c, 1));
        }
        let answer = self.process(req, &mut counters).await;
        let answer = match answer {
            Ok(r) => r,
            Err(r) => {
                counters.push(("rejected", 1));
                count(&self.store, FHIR, counters).await;
                r
            }
        };
        self.delay().await;
        match fault {
            Fault::Reset => Err(Dropped),
            Fault::Garbage => Ok(self.garbage()),
            Fault::None | Fault::Error => Ok(answer),
        }
    }

    /// The `401` for a request without an acceptable bearer token, if one is required.
    fn unauthorised(&self, req: &Request<Incoming>) -> Option<Resp> {
        if self.bearer.is_none() && self.oauth.is_none() {
            return None;
        }
        // RFC 7235: the scheme name is case-insensitive.
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let accepted = presented.is_some_and(|t| {
            self.bearer.as_deref() == Some(t)
                || self.oauth.as_ref().is_some_and(|o| o.token_valid(t))
        });
        if accepted {
            return None;
        }
        let (diagnostics, challenge) = match (&self.oauth, presented) {
            (None, _) => ("missing or wrong bearer token", "Bearer"),
            // RFC 6750 §3.1: no error code when the request carried no credentials at all.
            (Some(_), None) => (
                "missing bearer token; get an access token from the token endpoint /oauth2/token",
                "Bearer",
            ),
            (Some(_), Some(_)) => (
                "unknown or expired access token; get a new one from the token endpoint \
                 /oauth2/token",
                "Bearer error=\"invalid_token\"",
            ),
        };
        let mut r = refuse(StatusCode::UNAUTHORIZED, "login", diagnostics, None);
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        Some(r)
    }

    async fn delay(&self) {
        let d = self.injector.latency();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    fn garbage(&self) -> Resp {
        if self.injector.coin() {
            respond(
                StatusCode::OK,
                "text/html",
                b"<html><body><h1>It works!</h1><p>(injected garbage)</p></body></html>".to_vec(),
            )
        } else {
            let n = 16 + usize::from(self.injector.bytes(1).first().copied().unwrap_or(0));
            respond(
                StatusCode::OK,
                "application/fhir+json",
                self.injector.bytes(n),
            )
        }
    }

    /// The answer to a request; `Err` for a request refused as a whole (counters not yet
    /// written). On `Ok` the counters were written with the stored rows.
    async fn process(
        &self,
        req: Request<Incoming>,
        counters: &mut Vec<(&'static str, u64)>,
    ) -> Result<Resp, Resp> {
        let path = req.uri().path();
        if !matches!(path, "/" | "/fhir" | "/fhir/") {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "not-found",
                "post transaction Bundles to /, /fhir or /fhir/",
                None,
            ));
        }
        if req.method() != Method::POST {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                "only POST of a transaction Bundle is supported",
                None,
            ));
        }
        if let Some(r) = self.unauthorised(&req) {
            return Err(r);
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            content_type.as_str(),
            "application/fhir+json" | "application/json" | "application/json+fhir"
        ) {
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "Content-Type must be application/fhir+json",
                None,
            ));
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let too_large = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                return Err(if too_large {
                    refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-costly",
                        &format!("request body larger than {MAX_BODY} bytes; send smaller batches"),
                        None,
                    )
                } else {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        "incomplete",
                        &format!("reading the request body failed: {e}"),
                        None,
                    )
                });
            }
        };
        let (response_type, mut entries) = check_bundle(&body)
            .map_err(|(why, expr)| refuse(StatusCode::BAD_REQUEST, "structure", &why, expr))?;
        let mut to_store = Vec::new();
        let mut meta = Vec::new();
        // The answer needs only kind and conditional; key and body move to the store.
        for e in &mut entries {
            if let Entry::Store {
                kind,
                key,
                conditional,
                body,
            } = e
            {
                to_store.push((std::mem::take(key), kind.clone(), std::mem::take(body)));
                meta.push(*conditional);
            }
        }
        let mut extra = counters.clone();
        let refused = entries
            .iter()
            .filter(|e| matches!(e, Entry::Refuse(_)))
            .count() as u64;
        if refused > 0 {
            extra.push(("rejected_entries", refused));
        }
        let source = format!("bundle:{}", crate::store::now_ms());
        let stored = with_store(&self.store, move |s| {
            let items: Vec<Item<'_>> = to_store
                .iter_mut()
                .map(|(key, kind, body)| Item {
                    key: std::mem::take(key),
                    kind: kind.as_str(),
                    body: std::mem::take(body),
                })
                .collect();
            let out = s.put(FHIR, &source, &items, &extra)?;
            let twice = out
                .iter()
                .zip(&meta)
                .filter(|(st, cond)| matches!(st, Stored::Existing(_)) && !**cond)
                .count() as u64;
            if twice > 0 {
                s.count(FHIR, &[("created_twice", twice)])?;
            }
            Ok(out)
        })
        .await;
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "FHIR: storing failed");
                return Err(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &format!("the receiver could not store the request: {e}"),
                    None,
                ));
            }
        };
        counters.clear();
        let mut stored = stored.into_iter();
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let response = match e {
                Entry::Refuse(why) => json!({
                    "status": "400 Bad Request",
                    "outcome": outcome("structure", why, Some(format!("Bundle.entry[{i}]"))),
                }),
                Entry::Store {
                    kind, conditional, ..
                } => match stored.next() {
                    Some(Stored::Created(id)) => created(kind, id),
                    Some(Stored::Existing(id)) if *conditional => json!({
                        "status": "200 OK",
                        "location": format!("{kind}/{id}/_history/1"),
                        "etag": "W/\"1\"",
                    }),
                    Some(Stored::Existing(id)) => created(kind, id),
                    None => json!({
                        "status": "500 Internal Server Error",
                        "outcome": outcome("exception", "entry lost by the receiver", None),
                    }),
                },
            };
            let mut m = Map::new();
            m.insert("response".into(), response);
            out.push(Value::Object(m));
        }
        let bundle = json!({
            "resourceType": "Bundle",
            "type": response_type,
            "entry": out,
        });
        Ok(fhir_json(StatusCode::OK, &bundle))
    }
}

fn created(kind: &str, id: i64) -> Value {
    json!({
        "status": "201 Created",
        "location": format!("{kind}/{id}/_history/1"),
        "etag": "W/\"1\"",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb%7C"), "a+b|");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }

    #[test]
    fn bundle_problems_are_named() {
        assert!(check_bundle(b"nope").unwrap_err().0.contains("not JSON"));
        assert!(
            check_bundle(br#"{"resourceType":"Patient"}"#)
                .unwrap_err()
                .0
                .contains("Patient")
        );
        assert!(
            check_bundle(br#"{"resourceType":"Bundle","type":"collection"}"#)
                .unwrap_err()
                .0
                .contains("Bundle.type")
        );
        let (t, e) = check_bundle(
            br#"{"resourceType":"Bundle","type":"transaction","entry":[1,{"resource":2}]}"#,
        )
        .unwrap();
        assert_eq!(t, "transaction-response");
        assert!(e.iter().all(|e| matches!(e, Entry::Refuse(_))));
    }
}
