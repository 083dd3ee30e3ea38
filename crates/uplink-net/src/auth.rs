//! Authorisation for the FHIR uplink: none, a static bearer token, or OAuth2 client credentials
//! with a `private_key_jwt` client assertion (RFC 7523; as HelseID and other national
//! health-sector identity services require), the access token cached until shortly before it
//! expires.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hearth_tls::TlsFiles;
use hearth_tls::base64url;
use hyper::body::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use crate::SetupError;
use crate::http::{HttpClient, Target, form_encode, parse_url};
use crate::net::Dialer;

/// How the FHIR uplink authorises its requests (mutual TLS is configured separately, in the
/// route's `TlsFiles`, and combines with any of these).
#[derive(Clone, Default)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>` with a fixed token.
    Bearer(String),
    /// OAuth2 client credentials grant with a `private_key_jwt` client assertion.
    OAuth2ClientCredentials(OAuth2),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
            Auth::OAuth2ClientCredentials(o) => write!(f, "Auth::OAuth2ClientCredentials({o:?})"),
        }
    }
}

/// OAuth2 client credentials with `private_key_jwt`.
#[derive(Debug, Clone)]
pub struct OAuth2 {
    /// The token endpoint, `https://…/connect/token`; also the assertion's `aud`.
    pub token_url: String,
    /// The client id registered with the identity service (`iss` and `sub` of the assertion).
    pub client_id: String,
    /// Space-separated scopes to ask for; `None` = the client's default.
    pub scope: Option<String>,
    /// PEM file of the client's private key (PKCS#8 RSA ≥ 2048 bit → RS256, PKCS#8 P-256 →
    /// ES256; PKCS#1 `RSA PRIVATE KEY` is accepted too). Its public key is registered with the
    /// identity service.
    pub key_file: PathBuf,
    /// `kid` header of the assertion (the key's id as registered), if the service wants one.
    pub kid: Option<String>,
    /// TLS files for the token endpoint; `None` = the FHIR route's own.
    pub tls: Option<TlsFiles>,
}

/// Refresh this long before the token's `expires_in` runs out (at most a fifth of its life).
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Client assertion lifetime.
const ASSERTION_LIFETIME: u64 = 60;

enum Signer {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
}

impl Signer {
    fn from_pem(path: &std::path::Path) -> Result<Self, SetupError> {
        let bad = |message: String| SetupError::Auth {
            key: "auth.key_file".into(),
            message,
        };
        let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
            bad(format!(
                "cannot read a PEM private key from {}: {e}",
                path.display()
            ))
        })?;
        let rng = SystemRandom::new();
        match &key {
            PrivateKeyDer::Pkcs8(der) => {
                if let Ok(k) = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()) {
                    return Ok(Signer::Rs256(k));
                }
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.secret_pkcs8_der(),
                    &rng,
                )
                .map(Signer::Es256)
                .map_err(|e| {
                    bad(format!(
                        "{} is neither an RSA (≥ 2048 bit) nor a P-256 key ({e})",
                        path.display()
                    ))
                })
            }
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(Signer::Rs256)
                .map_err(|e| bad(format!("{}: unusable RSA key ({e})", path.display()))),
            _ => Err(bad(format!(
                "{}: convert the key to PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`)",
                path.display()
            ))),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Signer::Rs256(_) => "RS256",
            Signer::Es256(_) => "ES256",
        }
    }

    fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Signer::Rs256(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, rng, msg, &mut sig)
                    .map_err(|_| "RSA signing failed".to_owned())?;
                Ok(sig)
            }
            Signer::Es256(k) => k
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_owned()),
        }
    }
}

/// Fetches, caches and refreshes access tokens.
pub(crate) struct TokenClient {
    cfg: OAuth2,
    target: Target,
    http: HttpClient,
    signer: Signer,
    rng: SystemRandom,
    cached: Option<(String, Instant)>,
    fetched: u64,
}

impl TokenClient {
    pub(crate) fn new(
        cfg: OAuth2,
        route_tls: &TlsFiles,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let target = parse_url(&cfg.token_url).map_err(|message| SetupError::Auth {
            key: "auth.token_url".into(),
            message,
        })?;
        let tls = if target.https {
            let files = cfg.tls.as_ref().unwrap_or(route_tls);
            Some(Arc::new(crate::tls_config(files, "auth")?))
        } else {
            None
        };
        let dialer =
            Dialer::new(&target.host, target.port, tls, &target.host).map_err(|message| {
                SetupError::Auth {
                    key: "auth.token_url".into(),
                    message,
                }
            })?;
        let signer = Signer::from_pem(&cfg.key_file)?;
        if cfg.client_id.is_empty() {
            return Err(SetupError::Auth {
                key: "auth.client_id".into(),
                message: "empty client id".into(),
            });
        }
        Ok(Self {
            http: HttpClient::new(dialer, target.authority.clone(), timeout),
            target,
            cfg,
            signer,
            rng: SystemRandom::new(),
            cached: None,
            fetched: 0,
        })
    }

    /// Tokens fetched so far.
    pub(crate) fn tokens_fetched(&self) -> u64 {
        self.fetched
    }

    /// Forget the cached token (the receiver answered 401).
    pub(crate) fn invalidate(&mut self) {
        self.cached = None;
    }

    fn assertion(&self) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_owned())?
            .as_secs();
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| "no random numbers for the assertion's jti".to_owned())?;
        let mut header = serde_json::json!({"alg": self.signer.alg(), "typ": "JWT"});
        if let Some(kid) = &self.cfg.kid {
            header["kid"] = serde_json::Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.cfg.client_id,
            "sub": self.cfg.client_id,
            "aud": self.cfg.token_url,
            "jti": base64url::encode(&jti),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            base64url::encode(header.to_string().as_bytes()),
            base64url::encode(claims.to_string().as_bytes())
        );
        let sig = self.signer.sign(&self.rng, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", base64url::encode(&sig)))
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub(crate) async fn token(&mut self) -> Result<String, String> {
        if let Some((tok, until)) = &self.cached {
            if Instant::now() < *until {
                return Ok(tok.clone());
            }
        }
        let assertion = self.assertion()?;
        let mut form = format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
            form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            form_encode(&assertion)
        );
        if let Some(scope) = self.cfg.scope.as_deref().filter(|s| !s.is_empty()) {
            form.push_str("&scope=");
            form.push_str(&form_encode(scope));
        }
        let headers = [
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("accept", "application/json".to_owned()),
        ];
        let resp = self
            .http
            .post(&self.target.path, &headers, Bytes::from(form))
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let json: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|_| {
            self.http.reset();
            format!(
                "token endpoint {} answered HTTP {} with a body that is not JSON",
                self.cfg.token_url, resp.status
            )
        })?;
        if !(200..300).contains(&resp.status) {
            let err = json.get("error").and_then(|v| v.as_str()).unwrap_or("");
            let desc = json
                .get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            return Err(format!(
                "token endpoint {} refused the client credentials: HTTP {} {err} {desc}; check \
                 client_id, the registered public key (kid) and the scope",
                self.cfg.token_url, resp.status
            ));
        }
        let token = json
            .get("access_token")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "token endpoint answered without an access_token".to_owned())?
            .to_owned();
        let token_type = json
            .get("token_type")
            .and_then(|v| v.as_str())
            .unwrap_or("Bearer");
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "token endpoint issued a {token_type:?} token; only Bearer tokens are supported \
                 (DPoP is not implemented)"
            ));
        }
        let life = json
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map_or(Duration::from_secs(300), Duration::from_secs);
        let margin = EXPIRY_MARGIN.min(life / 5);
        self.cached = Some((token.clone(), Instant::now() + life - margin));
        self.fetched += 1;
        tracing::debug!(
            expires_in_s = life.as_secs(),
            "fetched an OAuth2 access token"
        );
        Ok(token)
    }
}
