//! FHIR uplink against in-test HTTP(S) servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hearth_model::{DeviceId, Record};
use hearth_tls::TlsFiles;
use hearth_uplink::Uplink;
use hearth_uplink::{Claimed, Outcome};
use hearth_uplink_fhir::{Context, Gateway, PatientRef, Profile, Unsupported};
use hearth_uplink_net::{Auth, FhirSettings, FhirUplink, OAuth2};

fn context() -> Context {
    let gw = Gateway::new(DeviceId::new("hearth", "gw-1").unwrap());
    Context::new(gw, Some(PatientRef::Reference("Patient/123".into())))
}

fn settings(url: String, tls: TlsFiles) -> FhirSettings {
    FhirSettings {
        base_url: url,
        tls,
        timeout: Duration::from_millis(1500),
        profile: Profile::Phd,
        context: context(),
        auth: Auth::None,
    }
}

fn plain(server: &Server) -> FhirUplink {
    FhirUplink::new(settings(
        format!("http://{}/fhir", server.addr),
        TlsFiles::default(),
    ))
    .unwrap()
}

fn outcome_of<'a>(batch: &[Claimed], out: &'a [Outcome], rec: &Record) -> &'a Outcome {
    let i = batch
        .iter()
        .position(|c| c.record.id() == rec.id())
        .unwrap();
    &out[i]
}

fn readings(n: u64) -> Vec<Record> {
    (0..n).map(|i| temp(1 + (i % 2) as u32, i, None)).collect()
}

#[tokio::test]
async fn delivers_over_mutual_tls_on_one_kept_alive_connection() {
    let pki = Pki::new();
    let server = http_server(Some(pki.acceptor(true)), Arc::new(all_created)).await;
    let url = format!("https://localhost:{}/fhir/r4/", server.addr.port());
    let mut up = FhirUplink::new(settings(url, pki.client_files())).unwrap();
    for round in 0..3u64 {
        let batch = claimed((0..4).map(|i| temp(1, round * 10 + i, None)).collect());
        let out = up.deliver(&batch).await.unwrap();
        assert_eq!(out, vec![Outcome::Delivered; 4]);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    assert_eq!(up.connections_opened(), 1);
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/fhir/r4");
    assert_eq!(
        reqs[0].header("content-type"),
        Some("application/fhir+json")
    );
    assert_eq!(reqs[0].json()["type"], "transaction");
}

#[tokio::test]
async fn a_client_without_certificate_is_refused_by_a_mutual_tls_server() {
    let pki = Pki::new();
    let server = http_server(Some(pki.acceptor(true)), Arc::new(all_created)).await;
    let url = format!("https://localhost:{}/fhir", server.addr.port());
    let files = TlsFiles {
        ca_file: Some(pki.path("ca.pem")),
        ..TlsFiles::default()
    };
    let mut up = FhirUplink::new(settings(url, files)).unwrap();
    let batch = claimed(readings(1));
    assert!(up.deliver(&batch).await.is_err());
}

#[tokio::test]
async fn entry_answers_map_to_delivered_retry_and_rejected() {
    let (bad, busy) = (temp(1, 2, None), temp(1, 3, None));
    let (bad_id, busy_id) = (bad.id().to_string(), busy.id().to_string());
    let handler = move |req: &HttpRequest| {
        fhir_json(
            200,
            &transaction_response(req, |_, _, ine| {
                if ine.contains(&bad_id) {
                    (
                        "400 Bad Request".into(),
                        Some(serde_json::json!({"resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Observation.code is not known here"}]})),
                    )
                } else if ine.contains(&busy_id) {
                    ("503 Service Unavailable".into(), None)
                } else if ine.is_empty() {
                    ("201 Created".into(), None)
                } else {
                    ("200 OK".into(), None)
                }
            }),
        )
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let recs = vec![temp(1, 1, None), bad.clone(), busy.clone()];
    let batch = claimed(recs.clone());
    let out = up.deliver(&batch).await.unwrap();
    assert_eq!(outcome_of(&batch, &out, &recs[0]), &Outcome::Delivered);
    match outcome_of(&batch, &out, &bad) {
        Outcome::Rejected { reason } => assert!(
            reason.contains("Observation.code is not known here"),
            "{reason}"
        ),
        o => panic!("{o:?}"),
    }
    assert_eq!(
        outcome_of(&batch, &out, &busy),
        &Outcome::Retry { not_before: None }
    );
}

/// A whole-transaction 400 naming `Bundle.entry[n]`: that record is rejected, the rest resent.
#[tokio::test]
async fn a_refused_transaction_naming_an_entry_rejects_it_and_resends_the_rest() {
    let bad = temp(2, 5, None);
    let bad_id = bad.id().to_string();
    let handler = move |req: &HttpRequest| {
        let e = entries(&req.json());
        match e.iter().position(|(_, ine)| ine.contains(&bad_id)) {
            Some(n) => fhir_json(
                400,
                &serde_json::json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "processing", "diagnostics": "Unknown code system",
                 "expression": [format!("Bundle.entry[{n}].resource.code")]}]}),
            ),
            None => all_created(req),
        }
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let mut recs = readings(4);
    recs.push(bad.clone());
    let batch = claimed(recs.clone());
    let out = up.deliver(&batch).await.unwrap();
    for r in &recs[..4] {
        assert_eq!(outcome_of(&batch, &out, r), &Outcome::Delivered);
    }
    match outcome_of(&batch, &out, &bad) {
        Outcome::Rejected { reason } => {
            assert!(
                reason.contains("Unknown code system") && reason.contains("400"),
                "{reason}"
            )
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(server.requests.lock().unwrap().len(), 2);
}

/// A whole-transaction 422 naming no entry: records are sent one by one to find the culprit.
#[tokio::test]
async fn a_refused_transaction_naming_no_entry_is_resent_record_by_record() {
    let bad = temp(2, 5, None);
    let bad_id = bad.id().to_string();
    let handler = move |req: &HttpRequest| {
        if entries(&req.json())
            .iter()
            .any(|(_, ine)| ine.contains(&bad_id))
        {
            fhir_json(
                422,
                &serde_json::json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "business-rule", "diagnostics": "value out of range"}]}),
            )
        } else {
            all_created(req)
        }
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let mut recs = readings(3);
    recs.push(bad.clone());
    let batch = claimed(recs.clone());
    let out = up.deliver(&batch).await.unwrap();
    for r in &recs[..3] {
        assert_eq!(outcome_of(&batch, &out, r), &Outcome::Delivered);
    }
    assert!(
        matches!(outcome_of(&batch, &out, &bad), Outcome::Rejected { reason } if reason.contains("value out of range"))
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1 + 4);
}

#[tokio::test]
async fn a_busy_server_fails_the_batch_with_its_retry_after() {
    let handler = |_: &HttpRequest| {
        Reply::Raw(response(
            503,
            &[("retry-after", "7")],
            b"<html>maintenance</html>",
        ))
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let err = up.deliver(&claimed(readings(2))).await.unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert!(err.message.contains("503"), "{}", err.message);

    let throttled = |_: &HttpRequest| {
        Reply::Raw(response(
            429,
            &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
            b"",
        ))
    };
    let server = http_server(None, Arc::new(throttled)).await;
    let mut up = plain(&server);
    let err = up.deliver(&claimed(readings(1))).await.unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::ZERO)); // a date in the past: no extra wait
}

#[tokio::test]
async fn garbage_fails_the_batch_and_the_next_batch_uses_a_new_connection() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let handler = move |req: &HttpRequest| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Raw(response(200, &[], b"\x00\x01 this is not FHIR"))
        } else {
            all_created(req)
        }
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let batch = claimed(readings(2));
    let err = up.deliver(&batch).await.unwrap_err();
    assert!(err.message.contains("not JSON"), "{}", err.message);
    assert_eq!(
        up.deliver(&batch).await.unwrap(),
        vec![Outcome::Delivered; 2]
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_hanging_server_times_out_and_is_left() {
    let server = http_server(None, Arc::new(|_: &HttpRequest| Reply::Hang)).await;
    let mut s = settings(format!("http://{}/", server.addr), TlsFiles::default());
    s.timeout = Duration::from_millis(300);
    let mut up = FhirUplink::new(s).unwrap();
    let t = Instant::now();
    let err = up.deliver(&claimed(readings(1))).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(err.message.contains("within 300 ms"), "{}", err.message);
}

#[tokio::test]
async fn a_refused_connection_fails_the_batch() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut up = FhirUplink::new(settings(
        format!("http://127.0.0.1:{port}/"),
        TlsFiles::default(),
    ))
    .unwrap();
    let err = up.deliver(&claimed(readings(1))).await.unwrap_err();
    assert!(err.message.contains("cannot connect"), "{}", err.message);
}

#[tokio::test]
async fn a_server_closing_kept_alive_connections_is_reconnected_transparently() {
    let handler = |req: &HttpRequest| match all_created(req) {
        Reply::Raw(b) => Reply::RawThenClose(b),
        r => r,
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    for round in 0..3 {
        let batch = claimed(vec![temp(1, round, None)]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(up.deliver(&batch).await.unwrap(), vec![Outcome::Delivered]);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn records_the_encoder_refuses_and_skipped_alarms_are_rejected_the_rest_delivered() {
    let server = http_server(None, Arc::new(all_created)).await;
    let mut s = settings(format!("http://{}/", server.addr), TlsFiles::default());
    s.context.options.unsupported = Unsupported::Skip;
    let mut up = FhirUplink::new(s).unwrap();
    let (bad, al) = (no_unit(1), alarm());
    let recs = vec![temp(1, 1, None), bad.clone(), al.clone(), temp(2, 2, None)];
    let batch = claimed(recs.clone());
    let out = up.deliver(&batch).await.unwrap();
    assert_eq!(outcome_of(&batch, &out, &recs[0]), &Outcome::Delivered);
    assert_eq!(outcome_of(&batch, &out, &recs[3]), &Outcome::Delivered);
    assert!(
        matches!(outcome_of(&batch, &out, &bad), Outcome::Rejected { reason } if reason.contains("without a unit"))
    );
    assert!(
        matches!(outcome_of(&batch, &out, &al), Outcome::Rejected { reason } if reason.contains("safety alarm"))
    );
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        entries(&reqs[0].json()).iter().filter(|(o, _)| *o).count(),
        2
    );
}

#[tokio::test]
async fn a_static_bearer_token_is_sent() {
    let handler = |req: &HttpRequest| {
        if req.header("authorization") == Some("Bearer s3cret") {
            all_created(req)
        } else {
            Reply::Raw(response(401, &[], b""))
        }
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut s = settings(format!("http://{}/", server.addr), TlsFiles::default());
    s.auth = Auth::Bearer("s3cret".into());
    assert!(!format!("{:?}", s.auth).contains("s3cret"));
    let mut up = FhirUplink::new(s).unwrap();
    assert_eq!(
        up.deliver(&claimed(readings(1))).await.unwrap(),
        vec![Outcome::Delivered]
    );
    let mut s = settings(format!("http://{}/", server.addr), TlsFiles::default());
    s.auth = Auth::Bearer("wrong".into());
    let err = FhirUplink::new(s)
        .unwrap()
        .deliver(&claimed(readings(1)))
        .await
        .unwrap_err();
    assert!(err.message.contains("401"), "{}", err.message);
}

// ---------------------------------------------------------------------------------------------
// OAuth2 client credentials with private_key_jwt.

struct Issuer {
    /// Valid tokens and when they expire.
    valid: Mutex<Vec<(String, Instant)>>,
    issued: AtomicUsize,
    life: u64,
}

fn verify_assertion(
    jwt: &str,
    dir: &std::path::Path,
    client_id: &str,
    aud: &str,
    es256: bool,
) -> Result<(), String> {
    use ring::signature;
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("not a JWS".into());
    }
    let header: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    let sig = b64url_decode(parts[2]);
    let msg = format!("{}.{}", parts[0], parts[1]);
    let ok = if es256 {
        let spki = std::fs::read(dir.join("ec.pub.der")).unwrap();
        let point = &spki[spki.len() - 65..];
        (header["alg"] == "ES256")
            && signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg.as_bytes(), &sig)
                .is_ok()
    } else {
        let der = std::fs::read(dir.join("client.pub.der")).unwrap();
        (header["alg"] == "RS256")
            && signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                .verify(msg.as_bytes(), &sig)
                .is_ok()
    };
    if !ok {
        return Err("bad signature".into());
    }
    if header["kid"] != "key-1" {
        return Err(format!("kid {}", header["kid"]));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    if claims["iss"] != client_id
        || claims["sub"] != client_id
        || claims["aud"] != aud
        || exp - iat != 60
        || iat > now + 1
        || exp < now
        || claims["jti"].as_str().is_none_or(|j| j.len() < 16)
    {
        return Err(format!("bad claims {claims}"));
    }
    Ok(())
}

async fn oauth_setup(es256: bool) -> (Pki, Arc<Issuer>, Server, Server, FhirUplink) {
    let pki = Pki::new();
    let issuer = Arc::new(Issuer {
        valid: Mutex::new(Vec::new()),
        issued: AtomicUsize::new(0),
        life: 2,
    });
    // Token endpoint over TLS (server certificate only).
    let iss = issuer.clone();
    let pki_dir = pki.dir.path().to_owned();
    let aud_cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let aud2 = aud_cell.clone();
    let token_handler = move |req: &HttpRequest| {
        let form = form_decode(std::str::from_utf8(&req.body).unwrap());
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let aud = aud2.lock().unwrap().clone();
        let check = (get("grant_type") == "client_credentials")
            .then_some(())
            .ok_or("grant_type".to_owned())
            .and_then(|_| {
                (get("client_assertion_type")
                    == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                    .then_some(())
                    .ok_or("assertion type".to_owned())
            })
            .and_then(|_| {
                (get("scope") == "fhir/Observation.write")
                    .then_some(())
                    .ok_or("scope".to_owned())
            })
            .and_then(|_| {
                verify_assertion(&get("client_assertion"), &pki_dir, "hearth-gw", &aud, es256)
            });
        if let Err(why) = check {
            return Reply::Raw(response(
                400,
                &[("content-type", "application/json")],
                serde_json::json!({"error": "invalid_client", "error_description": why})
                    .to_string()
                    .as_bytes(),
            ));
        }
        let n = iss.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let tok = format!("tok-{n}");
        iss.valid
            .lock()
            .unwrap()
            .push((tok.clone(), Instant::now() + Duration::from_secs(iss.life)));
        Reply::Raw(response(200, &[("content-type", "application/json")],
            serde_json::json!({"access_token": tok, "token_type": "Bearer", "expires_in": iss.life}).to_string().as_bytes()))
    };
    let token_server = http_server(Some(pki.acceptor(false)), Arc::new(token_handler)).await;
    let token_url = format!(
        "https://localhost:{}/connect/token",
        token_server.addr.port()
    );
    *aud_cell.lock().unwrap() = token_url.clone();
    let iss = issuer.clone();
    let fhir_handler = move |req: &HttpRequest| {
        let ok = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| {
                iss.valid
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|(v, until)| v == t && Instant::now() < *until)
            });
        if ok {
            all_created(req)
        } else {
            Reply::Raw(response(401, &[("www-authenticate", "Bearer")], b""))
        }
    };
    let fhir = http_server(Some(pki.acceptor(true)), Arc::new(fhir_handler)).await;
    let mut s = settings(
        format!("https://localhost:{}/fhir", fhir.addr.port()),
        pki.client_files(),
    );
    s.auth = Auth::OAuth2ClientCredentials(OAuth2 {
        token_url,
        client_id: "hearth-gw".into(),
        scope: Some("fhir/Observation.write".into()),
        key_file: pki.path(if es256 { "ec.key" } else { "client.key" }),
        kid: Some("key-1".into()),
        tls: None,
    });
    let up = FhirUplink::new(s).unwrap();
    (pki, issuer, token_server, fhir, up)
}

#[tokio::test]
async fn oauth2_token_is_fetched_with_a_signed_assertion_reused_and_refreshed_after_expiry() {
    let (_pki, issuer, _ts, fhir, mut up) = oauth_setup(false).await;
    for round in 0..3 {
        let out = up
            .deliver(&claimed(vec![temp(1, round, None)]))
            .await
            .unwrap();
        assert_eq!(out, vec![Outcome::Delivered]);
    }
    assert_eq!(up.tokens_fetched(), 1, "one token for three batches");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        up.deliver(&claimed(vec![temp(1, 9, None)])).await.unwrap(),
        vec![Outcome::Delivered]
    );
    assert_eq!(up.tokens_fetched(), 2, "refreshed after expiry");
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 2);
    // The server forgets every token (restart, revocation): one 401, one refresh, delivered.
    issuer.valid.lock().unwrap().clear();
    assert_eq!(
        up.deliver(&claimed(vec![temp(1, 10, None)])).await.unwrap(),
        vec![Outcome::Delivered]
    );
    assert_eq!(up.tokens_fetched(), 3);
    let unauthorised = fhir
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("authorization").is_none())
        .count();
    assert_eq!(unauthorised, 0);
}

#[tokio::test]
async fn oauth2_with_an_es256_key() {
    let (_pki, issuer, _ts, _fhir, mut up) = oauth_setup(true).await;
    assert_eq!(
        up.deliver(&claimed(readings(2))).await.unwrap(),
        vec![Outcome::Delivered; 2]
    );
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_endpoint_refusal_fails_the_batch_with_its_reason() {
    let pki = Pki::new();
    let refuse = |_: &HttpRequest| {
        Reply::Raw(response(
            400,
            &[("content-type", "application/json")],
            br#"{"error":"invalid_client","error_description":"unknown key"}"#,
        ))
    };
    let ts = http_server(Some(pki.acceptor(false)), Arc::new(refuse)).await;
    let fhir = http_server(None, Arc::new(all_created)).await;
    let mut s = settings(format!("http://{}/", fhir.addr), pki.client_files());
    s.auth = Auth::OAuth2ClientCredentials(OAuth2 {
        token_url: format!("https://localhost:{}/token", ts.addr.port()),
        client_id: "hearth-gw".into(),
        scope: None,
        key_file: pki.path("client.key"),
        kid: None,
        tls: None,
    });
    let err = FhirUplink::new(s)
        .unwrap()
        .deliver(&claimed(readings(1)))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("invalid_client") && err.message.contains("unknown key"),
        "{}",
        err.message
    );
    assert_eq!(fhir.requests.lock().unwrap().len(), 0);
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let e = FhirUplink::new(settings("ftp://x".into(), TlsFiles::default()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("fhir.url"), "{e}");
    let mut s = settings(
        "https://localhost/".into(),
        TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        },
    );
    let e = FhirUplink::new(s.clone()).err().unwrap();
    assert!(e.to_string().contains("fhir.ca_file"), "{e}");
    s.tls = TlsFiles::default();
    s.base_url = "http://localhost/".into();
    s.auth = Auth::OAuth2ClientCredentials(OAuth2 {
        token_url: "https://localhost/token".into(),
        client_id: "x".into(),
        scope: None,
        key_file: "/nonexistent/key.pem".into(),
        kid: None,
        tls: None,
    });
    let e = FhirUplink::new(s).err().unwrap();
    assert!(e.to_string().contains("auth.key_file"), "{e}");
}

/// Issue 6: a route whose patient the server does not know had every reading refused and
/// dead-lettered, one request per reading. A refusal of the route fails the batch as
/// `RouteRefused` after one request, and no record is rejected.
#[tokio::test]
async fn issue_6_a_refusal_of_the_route_keeps_every_record_after_one_request() {
    use hearth_uplink::Failure;
    let cases: Vec<(u16, serde_json::Value)> = vec![
        // HAPI names the missing subject in the text only.
        (
            400,
            serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "processing",
             "diagnostics": "HAPI-1094: Resource Patient/123 not found, specified in path: Observation.subject"}]}),
        ),
        (
            404,
            serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": "Organization/974600951 is unknown"}]}),
        ),
        (
            422,
            serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "unknown reference",
             "expression": ["Bundle.entry[2].resource.subject"]}]}),
        ),
        (
            403,
            serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "processing", "diagnostics": "not allowed"}]}),
        ),
    ];
    for (status, body) in cases {
        let handler = move |_: &HttpRequest| fhir_json(status, &body);
        let server = http_server(None, Arc::new(handler)).await;
        let mut up = plain(&server);
        let batch = claimed(readings(5));
        let err = up.deliver(&batch).await.unwrap_err();
        assert_eq!(err.failure, Failure::RouteRefused, "{status}: {err}");
        assert!(err.message.contains(&status.to_string()), "{err}");
        assert_eq!(
            server.requests.lock().unwrap().len(),
            1,
            "{status}: one request, not one per reading"
        );
    }
}

/// A refusal of the route inside a transaction-response (an entry's outcome) keeps the batch
/// too; a refusal of a record's own data still rejects just that record.
#[tokio::test]
async fn issue_6_an_entry_refused_because_of_the_route_keeps_the_batch() {
    use hearth_uplink::Failure;
    let handler = |req: &HttpRequest| {
        fhir_json(
            200,
            &transaction_response(req, |_, observation, _| {
                if !observation {
                    ("201 Created".into(), None)
                } else {
                    (
                        "404 Not Found".into(),
                        Some(serde_json::json!({"resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "processing",
                                   "diagnostics": "no such patient", "expression": ["Observation.subject"]}]})),
                    )
                }
            }),
        )
    };
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let err = up.deliver(&claimed(readings(3))).await.unwrap_err();
    assert_eq!(err.failure, Failure::RouteRefused, "{err}");
}

/// 401 without OAuth2 to renew: the route is refused, not merely unreachable.
#[tokio::test]
async fn issue_6_unauthorized_refuses_the_route() {
    use hearth_uplink::Failure;
    let handler = |_: &HttpRequest| Reply::Raw(response(401, &[], b""));
    let server = http_server(None, Arc::new(handler)).await;
    let mut up = plain(&server);
    let err = up.deliver(&claimed(readings(2))).await.unwrap_err();
    assert_eq!(err.failure, Failure::RouteRefused, "{err}");
}

/// Issue 6: with the route's `unsupported = "skip"`, a reading the VKP profile has no mapping
/// for (body fat) is settled as skipped, not dead-lettered; the default still dead-letters it.
/// Oral temperature is mapped (Bodytemp with bodySite) and delivered either way.
#[tokio::test]
async fn issue_6_unsupported_skip_settles_unmapped_readings_as_skipped() {
    use hearth_model::{Mdc, Reading, Timestamp, Ucum, Value};
    let server = http_server(None, Arc::new(all_created)).await;
    let reading = |mdc: u32, unit: &str, seq: u64| {
        Record::Reading(
            Reading::builder(device(1), Mdc(mdc), Value::numeric_with_decimals(21.5, 1))
                .unit(Ucum::new(unit))
                .device_time(Timestamp::from_unix_millis(1_741_935_909_000))
                .sequence(seq)
                .build(Timestamp::from_unix_millis(1_741_935_911_000)),
        )
    };
    let batch = claimed(vec![reading(188748, "%", 1), reading(188424, "Cel", 2)]);
    for skip in [false, true] {
        let mut s = settings(format!("http://{}/fhir", server.addr), TlsFiles::default());
        s.profile = Profile::Vkp;
        s.context.patient = Some(PatientRef::Identifier {
            system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
            value: "13116900216".into(),
        });
        // As the daemon configures every FHIR route: unmapped readings are listed, not fatal.
        s.context.options.unsupported = Unsupported::Skip;
        let mut up = FhirUplink::new(s).unwrap().skip_unsupported(skip);
        let out = up.deliver(&batch).await.unwrap();
        assert_eq!(out[1], Outcome::Delivered, "oral temperature is mapped");
        match (&out[0], skip) {
            (Outcome::Skipped { reason }, true) | (Outcome::Rejected { reason }, false) => {
                assert!(reason.contains("188748"), "{reason}")
            }
            (o, _) => panic!("skip = {skip}: {o:?}"),
        }
    }
    let reqs = server.requests.lock().unwrap();
    let body = reqs[0].json();
    let obs = &body["entry"][0]["resource"];
    assert_eq!(obs["code"]["coding"][0]["code"], "8310-5");
    assert_eq!(obs["bodySite"]["coding"][0]["code"], "74262004");
}

/// Issue 6 (b): facts a driver reported after the uplink was built (shared registry) reach the
/// PhdDevice of the next Bundle; before that, manufacturer/modelNumber say "unknown".
#[tokio::test]
async fn issue_6_device_facts_from_the_shared_registry_reach_the_phd_device() {
    let server = http_server(None, Arc::new(all_created)).await;
    let registry = hearth_model::DeviceRegistry::new();
    let mut up = plain(&server).with_device_registry(registry.clone());
    let first = temp(1, 1, None);
    let Record::Reading(r) = &first else { panic!() };
    let dev = r.device.clone();
    up.deliver(&claimed(vec![first.clone()])).await.unwrap();
    registry.upsert(hearth_model::Device {
        id: Some(dev.clone()),
        manufacturer: Some("Acme".into()),
        model: Some("T-1".into()),
        ..hearth_model::Device::default()
    });
    up.deliver(&claimed(vec![temp(1, 2, None)])).await.unwrap();
    let reqs = server.requests.lock().unwrap();
    let device_of = |i: usize| {
        reqs[i].json()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].clone())
            .find(|r| {
                r["meta"]["profile"][0]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("/PhdDevice")
            })
            .unwrap()
    };
    let before = device_of(0);
    assert!(before.get("manufacturer").is_none());
    assert_eq!(
        before["_manufacturer"]["extension"][0]["valueCode"],
        "unknown"
    );
    let after = device_of(1);
    assert_eq!(after["manufacturer"], "Acme");
    assert_eq!(after["modelNumber"], "T-1");
}
