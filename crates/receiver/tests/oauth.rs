//! The OAuth2 token endpoint over TLS: hearth's real FHIR uplink (`FhirUplink` with
//! `Auth::OAuth2ClientCredentials`) against it, and hand-made token requests for what the real
//! client never sends (replays, wrong audience, expired assertions, …).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_model::{DeviceId, Mdc, Reading, Record, Timestamp, Ucum};
use hearth_receiver::*;
use hearth_test_kit::claimed;
use hearth_test_kit::pki::{openssl, pki};
use hearth_tls::TlsFiles;
use hearth_uplink::Outcome;
use hearth_uplink::Uplink;
use hearth_uplink_fhir::{Context, Gateway, PatientRef, Profile};
use hearth_uplink_net::{Auth, FhirSettings, FhirUplink, OAuth2};
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const CLIENT: &str = "hearth-gw";
const SCOPE: &str = "fhir/Observation.write";
const T0: i64 = 1_741_932_309_000;

/// A receiver with TLS and the token endpoint, and the files the tests need.
struct Rig {
    dir: tempfile::TempDir,
    rx: RunningReceiver,
    port: u16,
}

impl Rig {
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join("pki").join(f)
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("recv.db")
    }

    fn token_url(&self) -> String {
        format!("https://localhost:{}/oauth2/token", self.port)
    }

    fn tls(&self) -> TlsFiles {
        TlsFiles {
            ca_file: Some(self.path("ca.pem")),
            ..TlsFiles::default()
        }
    }

    /// The real client, signing with `key` (a file in the PKI directory).
    fn uplink(&self, key: &str) -> FhirUplink {
        let gw = Gateway::new(DeviceId::new("hearth", "gw-1").unwrap());
        FhirUplink::new(FhirSettings {
            base_url: format!("https://localhost:{}/fhir", self.port),
            tls: self.tls(),
            timeout: Duration::from_secs(10),
            profile: Profile::Phd,
            context: Context::new(gw, Some(PatientRef::Reference("Patient/1".into()))),
            auth: Auth::OAuth2ClientCredentials(OAuth2 {
                token_url: self.token_url(),
                client_id: CLIENT.into(),
                scope: Some(format!("openid {SCOPE}")),
                key_file: self.path(key),
                kid: Some("key-1".into()),
                tls: None,
            }),
        })
        .unwrap()
    }

    /// A store counter the summary does not show.
    /// An OAuth2 counter as `hearth receiver summary` reads it.
    fn counter(&self, name: &str) -> u64 {
        let s = summary(&self.store()).unwrap().fhir;
        match name {
            "oauth2:tokens_issued" => s.tokens_issued,
            "oauth2:assertions_refused" => s.assertions_refused,
            other => panic!("no counter {other}"),
        }
    }
}

/// The test PKI plus `client.pub.pem` (the client certificate's RSA key), `ec.key` /
/// `ec.pub.pem` (P-256) and `other.key` (an RSA key nobody registered).
fn keys(dir: &Path) {
    pki(dir);
    for args in [
        &[
            "pkey",
            "-in",
            "client.key",
            "-pubout",
            "-out",
            "client.pub.pem",
        ][..],
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
        &["pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub.pem"],
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.key",
        ],
    ] {
        openssl(dir, args);
    }
}

/// Start a receiver over TLS whose client `hearth-gw` registered `public_key`.
async fn rig(public_key: &str, tweak: impl FnOnce(&mut ReceiverConfig)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir(&pki_dir).unwrap();
    keys(&pki_dir);
    let mut cfg = ReceiverConfig::new(dir.path().join("recv.db"));
    cfg.mllp = None;
    cfg.tls = Some(ServerTls {
        cert: pki_dir.join("server.pem"),
        key: pki_dir.join("server.key"),
        client_ca: None,
    });
    let mut issuer = OAuth2Issuer::new(CLIENT, pki_dir.join(public_key));
    issuer.scope = Some(SCOPE.into());
    cfg.oauth2 = Some(issuer);
    tweak(&mut cfg);
    let rx = start(cfg).await.unwrap();
    let port = rx.fhir_addr().unwrap().port();
    Rig { dir, rx, port }
}

fn records(n: u64, first_seq: u64) -> Vec<Record> {
    let dev = DeviceId::new("ble", "0a1b2c0001d4e5f7").unwrap();
    (0..n)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    dev.clone(),
                    Mdc(150364),
                    hearth_model::Value::numeric_with_decimals(36.5, 1),
                )
                .unit(Ucum::new("Cel"))
                .device_time(Timestamp::from_unix_millis(T0 + i as i64 * 1000))
                .sequence(first_seq + i)
                .build(Timestamp::from_unix_millis(T0 + 5_000)),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Hand-made requests.

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(rig: &Rig) -> Sender {
    let cfg = hearth_tls::client_config(&rig.tls(), "test").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(rig.rx.fhir_addr().unwrap())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn request(
    s: &mut Sender,
    req: hyper::http::request::Builder,
    body: Vec<u8>,
) -> (u16, HeaderMap, Value) {
    let resp = s
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

/// POST a token request form.
async fn token(rig: &Rig, s: &mut Sender, form: &str) -> (u16, HeaderMap, Value) {
    let req = hyper::Request::post("/oauth2/token")
        .header("host", format!("localhost:{}", rig.port))
        .header("content-type", "application/x-www-form-urlencoded");
    request(s, req, form.as_bytes().to_vec()).await
}

/// POST an empty transaction Bundle with `Authorization: <authorization>`.
async fn fhir(s: &mut Sender, authorization: Option<&str>) -> (u16, HeaderMap, Value) {
    let mut req = hyper::Request::post("/fhir")
        .header("host", "localhost")
        .header("content-type", "application/fhir+json");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let body = br#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#.to_vec();
    request(s, req, body).await
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A compact JWS signed RS256 with the PKCS#8 RSA key in `key`.
fn jws(key: &Path, header: &Value, claims: &Value) -> String {
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(key).unwrap() else {
        panic!("{} is not PKCS#8", key.display());
    };
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let input = format!(
        "{}.{}",
        hearth_tls::base64url::encode(header.to_string().as_bytes()),
        hearth_tls::base64url::encode(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", hearth_tls::base64url::encode(&sig))
}

/// The claims the real client sends, `jti` unique per call.
fn claims(rig: &Rig) -> Value {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = now();
    json!({
        "iss": CLIENT, "sub": CLIENT, "aud": rig.token_url(),
        "jti": format!("jti-{t}-{n}"), "iat": t, "nbf": t, "exp": t + 60,
    })
}

fn form_with(assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={}&scope={}",
        form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        form_encode(assertion),
        form_encode(SCOPE)
    )
}

/// Assert a `400` with `error` and a description containing `why`.
fn refused(answer: &(u16, HeaderMap, Value), error: &str, why: &str) {
    let (status, headers, v) = answer;
    assert_eq!(*status, 400, "{v}");
    assert_eq!(v["error"], error, "{v}");
    let desc = v["error_description"].as_str().unwrap();
    assert!(desc.contains(why), "{desc:?} does not contain {why:?}");
    assert_eq!(headers["cache-control"], "no-store");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_rsa_client_delivers_several_batches_with_one_token() {
    let rig = rig("client.pub.pem", |_| {}).await;
    let mut up = rig.uplink("client.key");
    for round in 0..3 {
        let out = up.deliver(&claimed(records(2, round * 10))).await.unwrap();
        assert_eq!(out, vec![Outcome::Delivered; 2]);
    }
    assert_eq!(up.tokens_fetched(), 1, "one token for three batches");
    assert_eq!(rig.counter("oauth2:tokens_issued"), 1);
    assert_eq!(rig.counter("oauth2:assertions_refused"), 0);
    let store = rig.store();
    rig.rx.shutdown().await;
    let sum = summary(&store).unwrap();
    assert!(
        sum.to_string()
            .contains("1 OAuth2 tokens issued (0 assertions refused)"),
        "{sum}"
    );
    assert_eq!(sum.fhir.observations, 6);
    // The token request is not a FHIR request.
    assert_eq!((sum.fhir.requests, sum.fhir.rejected), (3, 0));
}

#[tokio::test]
async fn an_ec_p256_client_works_too() {
    let rig = rig("ec.pub.pem", |_| {}).await;
    let mut up = rig.uplink("ec.key");
    for round in 0..2 {
        let out = up.deliver(&claimed(records(3, round * 10))).await.unwrap();
        assert_eq!(out, vec![Outcome::Delivered; 3]);
    }
    assert_eq!(up.tokens_fetched(), 1);
    // An RSA-signed assertion does not fit the registered EC key.
    let mut s = connect(&rig).await;
    let a = jws(
        &rig.path("client.key"),
        &json!({"alg": "RS256"}),
        &claims(&rig),
    );
    refused(
        &token(&rig, &mut s, &form_with(&a)).await,
        "invalid_client",
        "expected ES256",
    );
    rig.rx.shutdown().await;
}

#[tokio::test]
async fn a_client_signing_with_another_key_fails_the_batch_with_the_reason() {
    let rig = rig("client.pub.pem", |_| {}).await;
    let mut up = rig.uplink("other.key");
    let err = up.deliver(&claimed(records(1, 1))).await.unwrap_err();
    assert!(
        err.message.contains("invalid_client")
            && err
                .message
                .contains("signature does not verify with the registered public key of hearth-gw"),
        "{}",
        err.message
    );
    assert_eq!(up.tokens_fetched(), 0);
    assert_eq!(rig.counter("oauth2:assertions_refused"), 1);
    let store = rig.store();
    rig.rx.shutdown().await;
    // Nothing reached the FHIR endpoint.
    let sum = summary(&store).unwrap();
    assert_eq!((sum.fhir.requests, sum.fhir.observations), (0, 0));
}

#[tokio::test]
async fn replayed_misaddressed_expired_and_malformed_assertions_are_refused() {
    let rig = rig("client.pub.pem", |_| {}).await;
    let key = rig.path("client.key");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"});
    let mut s = connect(&rig).await;

    // A good one: a token, not cached, usable on the FHIR endpoint.
    let good = jws(&key, &header, &claims(&rig));
    let (status, headers, v) = token(&rig, &mut s, &form_with(&good)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_u64()),
        (Some("Bearer"), Some(300))
    );
    let tok = v["access_token"].as_str().unwrap().to_owned();
    assert!(
        tok.len() == 64 && tok.bytes().all(|b| b.is_ascii_hexdigit()),
        "{tok}"
    );
    let (status, _, v) = fhir(&mut s, Some(&format!("Bearer {tok}"))).await;
    assert_eq!(
        (status, v["type"].as_str()),
        (200, Some("transaction-response"))
    );

    // The same assertion again.
    refused(
        &token(&rig, &mut s, &form_with(&good)).await,
        "invalid_client",
        "assertion replayed",
    );

    let mut cases: Vec<(Value, Value, &str)> = Vec::new();
    let mut c = claims(&rig);
    c["aud"] = json!(format!("https://localhost:{}/connect/token", rig.port));
    cases.push((header.clone(), c, "is not this token endpoint"));
    let mut c = claims(&rig);
    c["aud"] = json!(format!("http://localhost:{}/oauth2/token", rig.port));
    cases.push((header.clone(), c, "is not this token endpoint"));
    let t = now();
    let mut c = claims(&rig);
    (c["iat"], c["nbf"], c["exp"]) = (json!(t - 120), json!(t - 120), json!(t - 60));
    cases.push((header.clone(), c, "expired"));
    let mut c = claims(&rig);
    c["exp"] = json!(t + 600);
    cases.push((header.clone(), c, "at most 300 s"));
    let mut c = claims(&rig);
    (c["iat"], c["exp"]) = (json!(t + 120), json!(t + 180));
    cases.push((header.clone(), c, "in the future"));
    let mut c = claims(&rig);
    c.as_object_mut().unwrap().remove("jti");
    cases.push((header.clone(), c, "no jti"));
    let mut c = claims(&rig);
    c["iss"] = json!("someone-else");
    cases.push((
        header.clone(),
        c,
        "iss \"someone-else\" is not the client id",
    ));
    let mut c = claims(&rig);
    c["sub"] = json!("someone-else");
    cases.push((header.clone(), c, "sub \"someone-else\""));
    cases.push((json!({"alg": "none"}), claims(&rig), "expected RS256"));
    cases.push((
        json!({"alg": "ES256"}),
        claims(&rig),
        "does not fit the registered RSA key",
    ));
    for (h, c, why) in cases {
        let a = jws(&key, &h, &c);
        refused(
            &token(&rig, &mut s, &form_with(&a)).await,
            "invalid_client",
            why,
        );
    }
    // A signature of other claims.
    let a = jws(&key, &header, &claims(&rig));
    let mut parts: Vec<&str> = a.split('.').collect();
    let other = hearth_tls::base64url::encode(claims(&rig).to_string().as_bytes());
    parts[1] = &other;
    refused(
        &token(&rig, &mut s, &form_with(&parts.join("."))).await,
        "invalid_client",
        "signature does not verify",
    );
    refused(
        &token(&rig, &mut s, &form_with("a.b")).await,
        "invalid_client",
        "compact JWS",
    );

    // The form itself.
    let a = jws(&key, &header, &claims(&rig));
    let cases = [
        (
            form_with(&a).replace("client_credentials", "password"),
            "unsupported_grant_type",
            "password",
        ),
        (
            form_with(&a).replace("grant_type=client_credentials&", ""),
            "invalid_request",
            "grant_type is missing",
        ),
        (
            "grant_type=client_credentials&client_secret=x".to_owned(),
            "invalid_client",
            "no client authentication",
        ),
        (
            format!("{}&scope=x", form_with(&a)),
            "invalid_request",
            "more than once",
        ),
        (
            form_with(&a).replace(&form_encode(SCOPE), "other"),
            "invalid_scope",
            "required scope",
        ),
    ];
    for (form, error, why) in cases {
        refused(&token(&rig, &mut s, &form).await, error, why);
    }
    let req = hyper::Request::post("/oauth2/token")
        .header("host", format!("localhost:{}", rig.port))
        .header("content-type", "application/json");
    refused(
        &request(&mut s, req, b"{}".to_vec()).await,
        "invalid_request",
        "x-www-form-urlencoded",
    );
    let req = hyper::Request::get("/oauth2/token").header("host", "localhost");
    let (status, headers, v) = request(&mut s, req, Vec::new()).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (405, Some("invalid_request"))
    );
    assert_eq!(headers["allow"], "POST");
    // invalid_client answers are the assertions refused: 1 replay + 10 claims/headers + 2
    // malformed + 1 without client authentication.
    assert_eq!(rig.counter("oauth2:assertions_refused"), 14);
    assert_eq!(rig.counter("oauth2:tokens_issued"), 1);
    rig.rx.shutdown().await;
}

#[tokio::test]
async fn fhir_requests_need_an_issued_unexpired_token() {
    let rig = rig("client.pub.pem", |cfg| {
        if let Some(o) = cfg.oauth2.as_mut() {
            o.token_life = Duration::from_secs(1);
        }
        cfg.require_bearer = Some("s3cret".into());
    })
    .await;
    let mut s = connect(&rig).await;
    // No token: a challenge without an error code (RFC 6750 §3.1).
    let (status, headers, v) = fhir(&mut s, None).await;
    assert_eq!(
        (status, v["resourceType"].as_str()),
        (401, Some("OperationOutcome")),
        "{v}"
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    for auth in ["Bearer 00ff", "Bearer ", "Basic czNjcmV0"] {
        let (status, headers, v) = fhir(&mut s, Some(auth)).await;
        assert_eq!(status, 401, "{auth}: {v}");
        assert_eq!(v["issue"][0]["code"], "login");
        if auth.starts_with("Bearer 0") {
            assert_eq!(
                headers["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
        }
    }
    // The static bearer token is accepted alongside.
    assert_eq!(fhir(&mut s, Some("Bearer s3cret")).await.0, 200);
    let a = jws(
        &rig.path("client.key"),
        &json!({"alg": "RS256"}),
        &claims(&rig),
    );
    let (status, _, v) = token(&rig, &mut s, &form_with(&a)).await;
    assert_eq!((status, v["expires_in"].as_u64()), (200, Some(1)));
    let tok = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(fhir(&mut s, Some(&format!("bearer {tok}"))).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, headers, v) = fhir(&mut s, Some(&format!("Bearer {tok}"))).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert!(
        v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let store = rig.store();
    rig.rx.shutdown().await;
    let sum = summary(&store).unwrap();
    assert_eq!(sum.fhir.rejected, 5);
}

#[tokio::test]
async fn the_uplink_fetches_a_new_token_when_the_old_one_runs_out() {
    let rig = rig("client.pub.pem", |cfg| {
        if let Some(o) = cfg.oauth2.as_mut() {
            o.token_life = Duration::from_secs(2);
        }
    })
    .await;
    let mut up = rig.uplink("client.key");
    let out = up.deliver(&claimed(records(1, 1))).await.unwrap();
    assert_eq!(out, vec![Outcome::Delivered]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = up.deliver(&claimed(records(1, 2))).await.unwrap();
    assert_eq!(out, vec![Outcome::Delivered]);
    assert_eq!(up.tokens_fetched(), 2);
    assert_eq!(rig.counter("oauth2:tokens_issued"), 2);
    rig.rx.shutdown().await;
}

#[tokio::test]
async fn unusable_public_keys_are_errors_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    for args in [
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.key",
        ][..],
        &[
            "pkey",
            "-in",
            "small.key",
            "-pubout",
            "-out",
            "small.pub.pem",
        ],
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.key",
        ],
        &["pkey", "-in", "p384.key", "-pubout", "-out", "p384.pub.pem"],
        &["genpkey", "-algorithm", "ED25519", "-out", "ed.key"],
        &["pkey", "-in", "ed.key", "-pubout", "-out", "ed.pub.pem"],
    ] {
        openssl(d, args);
    }
    let start_with = |key: &str, life: Duration| {
        let mut cfg = ReceiverConfig::new(d.join("recv.db"));
        cfg.mllp = None;
        let mut issuer = OAuth2Issuer::new(CLIENT, d.join(key));
        issuer.token_life = life;
        cfg.oauth2 = Some(issuer);
        start(cfg)
    };
    let life = DEFAULT_TOKEN_LIFE;
    for (key, why) in [
        ("missing.pem", "cannot read it as PEM"),
        ("client.key", "no PEM \"PUBLIC KEY\" block"),
        ("client.pem", "no PEM \"PUBLIC KEY\" block"),
        ("small.pub.pem", "RSA key of 1024 bits"),
        ("p384.pub.pem", "another curve than P-256"),
        ("ed.pub.pem", "neither an RSA nor an EC P-256 key"),
    ] {
        let e = start_with(key, life).await.unwrap_err().to_string();
        assert!(e.contains(&d.join(key).display().to_string()), "{e}");
        assert!(e.contains(why) && e.contains(CLIENT), "{key}: {e}");
    }
    let e = start_with("ec.pub.pem", Duration::from_millis(500))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("under 1 s"), "{e}");
    let rx = start_with("ec.pub.pem", life).await.unwrap();
    rx.shutdown().await;
}
