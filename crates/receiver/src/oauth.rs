//! OAuth2 token endpoint on the FHIR listener: the client credentials grant (RFC 6749 §4.4)
//! with a `private_key_jwt` client assertion (RFC 7523), for one registered client, as national
//! identity services (HelseID and the like) run it. It lets installers check a route with
//! `[route.fhir.auth] kind = "oauth2"` end to end; it is a test peer, not an identity service.
//!
//! Issued tokens are random, opaque and kept in memory only: a restarted receiver has forgotten
//! them, and the sender fetches a new one on the 401 (as it must after a real revocation).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, HeaderValue, PRAGMA};
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, UnparsedPublicKey};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::{self, PemObject};
use serde_json::{Value, json};

use hearth_tls::base64url;

use crate::store::FHIR;
use crate::{ReceiverError, SharedStore, count};

/// Where the token endpoint answers on the FHIR listener.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Life of an issued access token unless configured otherwise.
pub const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(300);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest assertion life (`exp - iat`) accepted: bounds how long a jti must be remembered.
const MAX_ASSERTION_LIFE: u64 = 300;
/// How far the client's clock may run ahead (`iat`, `nbf`).
const CLOCK_SKEW: u64 = 60;
/// A client credentials form is well under 4 KiB; anything near this is not one.
const MAX_FORM: usize = 64 << 10;
/// Claim values echoed in error descriptions are cut to this many characters.
const ECHO: usize = 120;

/// The one OAuth2 client the token endpoint knows (`ReceiverConfig::oauth2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Issuer {
    /// The client id: the assertion's `iss` and `sub`.
    pub client_id: String,
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of the client's RSA (≥ 2048 bit, `RS256`) or
    /// EC P-256 (`ES256`) key: `openssl pkey -in client.key -pubout -out client.pub.pem`.
    pub public_key: PathBuf,
    /// Life of an issued access token (`expires_in`), whole seconds, at least 1 s.
    pub token_life: Duration,
    /// If set, the token request's `scope` must contain this scope.
    pub scope: Option<String>,
}

impl OAuth2Issuer {
    /// A client with the default token life and no scope required.
    pub fn new(client_id: impl Into<String>, public_key: impl Into<PathBuf>) -> Self {
        Self {
            client_id: client_id.into(),
            public_key: public_key.into(),
            token_life: DEFAULT_TOKEN_LIFE,
            scope: None,
        }
    }
}

/// The registered public key, in the form ring verifies with.
#[derive(Debug)]
enum Key {
    /// PKCS#1 `RSAPublicKey` DER.
    Rs256(Vec<u8>),
    /// Uncompressed P-256 point (`04 || X || Y`).
    Es256(Vec<u8>),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Rs256(_) => "RS256",
            Key::Es256(_) => "ES256",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Key::Rs256(_) => "RSA",
            Key::Es256(_) => "EC P-256",
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Key::Rs256(k) => UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, k)
                .verify(msg, sig)
                .is_ok(),
            Key::Es256(k) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k)
                .verify(msg, sig)
                .is_ok(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Access token → when it expires.
    tokens: HashMap<String, Instant>,
    /// jti of accepted assertions → their `exp` (Unix s); an expired assertion is refused by
    /// its `exp` anyway, so it can be forgotten then.
    jtis: HashMap<String, u64>,
}

/// Why a token request is refused: RFC 6749 §5.2 `error` and `error_description`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn refusal(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error,
        description: description.into(),
    }
}

fn invalid_client(description: impl Into<String>) -> Refusal {
    refusal("invalid_client", description)
}

fn invalid_request(description: impl Into<String>) -> Refusal {
    refusal("invalid_request", description)
}

/// RFC 6749 has no token endpoint error for the server's own trouble; this is the
/// authorization endpoint's code (§4.1.2.1), with a 500.
fn server_error(description: &str) -> Refusal {
    Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        ..refusal("server_error", description)
    }
}

/// A value from the request, cut for an error description (debug-quoted: no control
/// characters reach the answer).
fn echo(s: &str) -> String {
    format!("{:?}", s.chars().take(ECHO).collect::<String>())
}

/// The token endpoint and the tokens it issued.
pub(crate) struct Issuer {
    client_id: String,
    key: Key,
    token_life: Duration,
    scope: Option<String>,
    /// `https` or `http`: the assertion's `aud` must name the URL the client used.
    scheme: &'static str,
    rng: SystemRandom,
    state: Mutex<State>,
}

type Resp = Response<Full<Bytes>>;

impl Issuer {
    /// Load and check the client's public key; `tls`: the listener serves TLS.
    pub(crate) fn new(cfg: &OAuth2Issuer, tls: bool) -> Result<Self, ReceiverError> {
        let bad = |why: String| ReceiverError::OAuth2(why);
        if cfg.client_id.trim().is_empty() {
            return Err(bad("the client id is empty".into()));
        }
        if cfg.token_life.as_secs() == 0 {
            return Err(bad(format!(
                "token life {:?} is under 1 s (expires_in is given in whole seconds)",
                cfg.token_life
            )));
        }
        let path = &cfg.public_key;
        let spki = SubjectPublicKeyInfoDer::from_pem_file(path).map_err(|e| {
            bad(match e {
                pem::Error::NoItemsFound => format!(
                    "public key {} of client {}: no PEM \"PUBLIC KEY\" block in it; give the \
                     SubjectPublicKeyInfo of the client's key \
                     (`openssl pkey -in client.key -pubout -out client.pub.pem`)",
                    path.display(),
                    cfg.client_id
                ),
                e => format!(
                    "public key {} of client {}: cannot read it as PEM ({e}); the file must \
                     exist, be readable and hold a \"PUBLIC KEY\" block",
                    path.display(),
                    cfg.client_id
                ),
            })
        })?;
        let key = parse_spki(&spki).map_err(|why| {
            bad(format!(
                "public key {} of client {}: {why}",
                path.display(),
                cfg.client_id
            ))
        })?;
        Ok(Self {
            client_id: cfg.client_id.clone(),
            key,
            token_life: cfg.token_life,
            scope: cfg.scope.clone().filter(|s| !s.trim().is_empty()),
            scheme: if tls { "https" } else { "http" },
            rng: SystemRandom::new(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The maps stay consistent whatever panicked while holding the lock.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether `token` was issued here and has not expired.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.state()
            .tokens
            .get(token)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Answer one request to [`TOKEN_PATH`].
    pub(crate) async fn serve(&self, req: Request<Incoming>, store: &SharedStore) -> Resp {
        match self.grant(req).await {
            Ok((token, life)) => {
                count(store, FHIR, vec![("oauth2:tokens_issued", 1)]).await;
                tracing::info!(
                    client_id = %self.client_id,
                    expires_in_s = life,
                    "OAuth2: access token issued"
                );
                token_json(
                    StatusCode::OK,
                    &json!({ "access_token": token, "token_type": "Bearer", "expires_in": life }),
                )
            }
            Err(r) => {
                if r.error == "invalid_client" {
                    count(store, FHIR, vec![("oauth2:assertions_refused", 1)]).await;
                }
                tracing::info!(
                    error = r.error,
                    reason = %r.description,
                    "OAuth2: token request refused"
                );
                token_json(
                    r.status,
                    &json!({ "error": r.error, "error_description": r.description }),
                )
            }
        }
    }

    /// Check the request; the new token and its life in seconds.
    async fn grant(&self, req: Request<Incoming>) -> Result<(String, u64), Refusal> {
        if req.method() != Method::POST {
            return Err(Refusal {
                status: StatusCode::METHOD_NOT_ALLOWED,
                ..invalid_request(format!(
                    "the token endpoint takes POST, not {}",
                    req.method()
                ))
            });
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if content_type != "application/x-www-form-urlencoded" {
            return Err(invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let host = req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
            .ok_or_else(|| invalid_request("no Host header"))?;
        let audience = format!("{}://{host}{TOKEN_PATH}", self.scheme);
        let body = Limited::new(req.into_body(), MAX_FORM)
            .collect()
            .await
            .map_err(|e| invalid_request(format!("reading the form failed: {e}")))?
            .to_bytes();
        let body =
            std::str::from_utf8(&body).map_err(|_| invalid_request("the form is not UTF-8"))?;
        let form = form_decode(body).map_err(invalid_request)?;
        let get = |name: &str| form.get(name).map(String::as_str);

        match get("grant_type") {
            None => return Err(invalid_request("grant_type is missing")),
            Some("client_credentials") => {}
            Some(other) => {
                return Err(refusal(
                    "unsupported_grant_type",
                    format!(
                        "grant_type {} is not supported; only client_credentials",
                        echo(other)
                    ),
                ));
            }
        }
        let assertion = match (get("client_assertion_type"), get("client_assertion")) {
            (None, None) => {
                return Err(invalid_client(
                    "no client authentication: send client_assertion_type and client_assertion \
                     (private_key_jwt)",
                ));
            }
            (Some(ASSERTION_TYPE), Some(a)) => a,
            (Some(ASSERTION_TYPE), None) => {
                return Err(invalid_request("client_assertion is missing"));
            }
            (Some(other), _) => {
                return Err(invalid_client(format!(
                    "client_assertion_type {} is not supported; only {ASSERTION_TYPE} \
                     (private_key_jwt)",
                    echo(other)
                )));
            }
            (None, Some(_)) => {
                return Err(invalid_request("client_assertion_type is missing"));
            }
        };
        if let Some(id) = get("client_id") {
            if id != self.client_id {
                return Err(invalid_client(format!("unknown client_id {}", echo(id))));
            }
        }
        self.check_assertion(assertion, &audience, unix_now()?)?;
        if let Some(required) = &self.scope {
            let requested = get("scope").unwrap_or("");
            if !requested.split(' ').any(|s| s == required) {
                return Err(refusal(
                    "invalid_scope",
                    format!(
                        "scope {} does not contain the required scope {}",
                        echo(requested),
                        echo(required)
                    ),
                ));
            }
        }
        self.issue()
    }

    /// Verify a compact JWS client assertion (RFC 7523 §3) and remember its jti.
    fn check_assertion(&self, jws: &str, audience: &str, now: u64) -> Result<(), Refusal> {
        let parts: Vec<&str> = jws.split('.').collect();
        let [header_b64, claims_b64, sig_b64] = parts[..] else {
            return Err(invalid_client(
                "client_assertion is not a compact JWS (three base64url parts)",
            ));
        };
        let header = json_part(header_b64, "header")?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != self.key.alg() {
            return Err(invalid_client(format!(
                "assertion alg {} does not fit the registered {} key of {}; expected {}",
                echo(alg),
                self.key.kind(),
                self.client_id,
                self.key.alg()
            )));
        }
        let sig = base64url::decode(sig_b64)
            .ok_or_else(|| invalid_client("the assertion's signature is not base64url"))?;
        let signed = &jws[..header_b64.len() + 1 + claims_b64.len()];
        if !self.key.verify(signed.as_bytes(), &sig) {
            return Err(invalid_client(format!(
                "the assertion's signature does not verify with the registered public key of {}",
                self.client_id
            )));
        }
        let claims = json_part(claims_b64, "claims")?;
        for claim in ["iss", "sub"] {
            let v = claims.get(claim).and_then(Value::as_str).unwrap_or("");
            if v != self.client_id {
                return Err(invalid_client(format!(
                    "assertion {claim} {} is not the client id {}",
                    echo(v),
                    self.client_id
                )));
            }
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            let got = match claims.get("aud") {
                Some(Value::String(a)) => echo(a),
                Some(v) => v.to_string().chars().take(ECHO).collect(),
                None => "(missing)".to_owned(),
            };
            return Err(invalid_client(format!(
                "assertion aud {got} is not this token endpoint {audience}"
            )));
        }
        let exp = numeric_date(&claims, "exp")?
            .ok_or_else(|| invalid_client("the assertion has no exp"))?;
        let iat = numeric_date(&claims, "iat")?.ok_or_else(|| {
            invalid_client(format!(
                "the assertion has no iat (needed to bound its life to {MAX_ASSERTION_LIFE} s)"
            ))
        })?;
        if exp <= now {
            return Err(invalid_client(format!(
                "the assertion expired {} s ago (exp {exp})",
                now - exp
            )));
        }
        if iat > now + CLOCK_SKEW {
            return Err(invalid_client(format!(
                "the assertion's iat is {} s in the future (more than {CLOCK_SKEW} s); check \
                 the client's clock",
                iat - now
            )));
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")? {
            if nbf > now + CLOCK_SKEW {
                return Err(invalid_client(format!(
                    "the assertion is not valid before {nbf}, {} s from now",
                    nbf - now
                )));
            }
        }
        if exp <= iat || exp - iat > MAX_ASSERTION_LIFE {
            return Err(invalid_client(format!(
                "the assertion lives {} s (exp - iat); at most {MAX_ASSERTION_LIFE} s",
                i128::from(exp) - i128::from(iat)
            )));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| invalid_client("the assertion has no jti"))?;
        let mut state = self.state();
        state.jtis.retain(|_, until| *until > now);
        if state.jtis.contains_key(jti) {
            return Err(invalid_client(
                "assertion replayed (its jti was used before)",
            ));
        }
        state.jtis.insert(jti.to_owned(), exp);
        Ok(())
    }

    fn issue(&self) -> Result<(String, u64), Refusal> {
        let mut raw = [0u8; 32];
        self.rng
            .fill(&mut raw)
            .map_err(|_| server_error("no random numbers for the access token"))?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut state = self.state();
        state.tokens.retain(|_, until| *until > now);
        state.tokens.insert(token.clone(), now + self.token_life);
        Ok((token, self.token_life.as_secs()))
    }
}

fn unix_now() -> Result<u64, Refusal> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| server_error("the receiver's clock is before 1970"))
}

fn token_json(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // RFC 6749 §5.1: token answers must not be cached.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
    }
    r
}

/// A JWS header or claims part: base64url of a JSON object.
fn json_part(b64: &str, what: &str) -> Result<serde_json::Map<String, Value>, Refusal> {
    let bytes = base64url::decode(b64)
        .ok_or_else(|| invalid_client(format!("the assertion's {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid_client(format!(
            "the assertion's {what} is not a JSON object"
        ))),
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly with a fraction); `None` if absent.
fn numeric_date(
    claims: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, Refusal> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(n) = v.as_u64() {
        return Ok(Some(n));
    }
    match v.as_f64() {
        // Truncation is what NumericDate comparisons at second resolution want; the range
        // also keeps NaN, infinities and absurd years out.
        Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
        _ => Err(invalid_client(format!(
            "the assertion's {name} is not a NumericDate (seconds since 1970)"
        ))),
    }
}

/// `application/x-www-form-urlencoded` into name → value; a repeated name is an error
/// (RFC 6749 §3.2).
fn form_decode(body: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_unescape(name)?;
        let value = form_unescape(value)?;
        if out.contains_key(&name) {
            return Err(format!("parameter {} appears more than once", echo(&name)));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn form_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let v = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in the form near {}", echo(s)))?;
                out.push(v);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "a form value is not UTF-8".to_owned())
}

/// One DER element: tag, contents, what follows.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        (
            bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
            rest,
        )
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.1.1
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) to the key ring verifies with.
fn parse_spki(spki: &[u8]) -> Result<Key, String> {
    let malformed = || "malformed SubjectPublicKeyInfo DER".to_owned();
    let (SEQUENCE, body, []) = der(spki).ok_or_else(malformed)? else {
        return Err(malformed());
    };
    let (SEQUENCE, algorithm, rest) = der(body).ok_or_else(malformed)? else {
        return Err(malformed());
    };
    let (BIT_STRING, bits, []) = der(rest).ok_or_else(malformed)? else {
        return Err(malformed());
    };
    let Some((0, key)) = bits.split_first() else {
        return Err(malformed());
    };
    let (OID, oid, params) = der(algorithm).ok_or_else(malformed)? else {
        return Err(malformed());
    };
    if oid == RSA_ENCRYPTION {
        let (SEQUENCE, rsa, []) = der(key).ok_or_else(malformed)? else {
            return Err(malformed());
        };
        let (INTEGER, n, _) = der(rsa).ok_or_else(malformed)? else {
            return Err(malformed());
        };
        let n = match n.iter().position(|&b| b != 0) {
            Some(i) => &n[i..],
            None => &[][..],
        };
        let bits = match n.first() {
            Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
            None => 0,
        };
        if !(2048..=8192).contains(&bits) {
            return Err(format!(
                "an RSA key of {bits} bits; RS256 needs 2048 to 8192 bits"
            ));
        }
        return Ok(Key::Rs256(key.to_vec()));
    }
    if oid == EC_PUBLIC_KEY {
        let curve = der(params)
            .filter(|(tag, _, _)| *tag == OID)
            .map(|(_, c, _)| c);
        if curve != Some(PRIME256V1) {
            return Err(
                "an EC key on another curve than P-256; only ES256 (P-256) is supported".into(),
            );
        }
        if key.len() != 65 || key.first() != Some(&0x04) {
            return Err(
                "the EC point is not in uncompressed form (04 || X || Y); export it with \
                 `openssl pkey -pubout` without -ec_conv_form compressed"
                    .into(),
            );
        }
        return Ok(Key::Es256(key.to_vec()));
    }
    Err(format!(
        "neither an RSA nor an EC P-256 key (algorithm OID bytes {}); RS256 and ES256 are \
         supported",
        oid.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let f = form_decode("a=1&b=x+y%2Bz&c=&d&e=%E2%82%AC").unwrap();
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "x y+z");
        assert_eq!((f["c"].as_str(), f["d"].as_str()), ("", ""));
        assert_eq!(f["e"], "€");
        assert!(
            form_decode("a=1&a=2")
                .unwrap_err()
                .contains("more than once")
        );
        assert!(form_decode("a=%zz").is_err());
        assert!(form_decode("a=%4").is_err());
        assert!(form_decode("a=%ff").is_err());
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der(&[0x04, 0x01, 0xaa, 0x05]),
            Some((4, &[0xaa][..], &[5][..]))
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend([7; 256]);
        assert_eq!(
            der(&long).map(|(_, c, r)| (c.len(), r.len())),
            Some((256, 0))
        );
        assert_eq!(der(&[0x04, 0x05, 0x00]), None);
        assert_eq!(der(&[0x04, 0x80]), None);
    }

    #[test]
    fn spki_problems_are_named() {
        assert!(parse_spki(b"junk").unwrap_err().contains("malformed"));
        // An Ed25519 SPKI (1.3.101.112).
        let mut ed = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        ed.extend([1; 32]);
        assert!(parse_spki(&ed).unwrap_err().contains("neither an RSA"));
        // A P-256 SPKI with a compressed point.
        let mut ec = vec![0x30, 0x39, 0x30, 0x13, 0x06, 0x07];
        ec.extend(EC_PUBLIC_KEY);
        ec.extend([0x06, 0x08]);
        ec.extend(PRIME256V1);
        ec.extend([0x03, 0x22, 0x00, 0x02]);
        ec.extend([9; 32]);
        assert!(parse_spki(&ec).unwrap_err().contains("uncompressed"));
    }
}
