//! The receiver over real loopback sockets: FHIR with hyper's client, MLLP over TcpStream,
//! TLS with client certificates, fault injection, garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hearth_model::*;
use hearth_receiver::*;
use hearth_uplink_pcd01::{AckOutcome, Deframer, encode_oru, frame, parse_ack};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const T0: i64 = 1_741_932_309_000;

fn records(n: u64, first_seq: u64) -> Vec<Record> {
    let dev = DeviceId::new("ble", "0a1b2c0001d4e5f7").unwrap();
    (0..n)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    dev.clone(),
                    Mdc(150364),
                    Value::numeric_with_decimals(36.5, 1),
                )
                .unit(Ucum::new("Cel"))
                .device_time(Timestamp::from_unix_millis(T0 + i as i64 * 1000))
                .sequence(first_seq + i)
                .build(Timestamp::from_unix_millis(T0 + 5_000)),
            )
        })
        .collect()
}

fn bundle(recs: &[Record]) -> (Vec<u8>, usize) {
    use hearth_uplink_fhir::{Gateway, PatientRef};
    let gw = Gateway::new(DeviceId::new("hearth", "gw-1").unwrap());
    let ctx = hearth_uplink_fhir::Context::new(gw, Some(PatientRef::Reference("Patient/1".into())));
    let b =
        hearth_uplink_fhir::encode_bundle(recs, &ctx, hearth_uplink_fhir::Profile::Phd).unwrap();
    (b.to_json_bytes(), b.len())
}

fn oru(recs: &[Record]) -> hearth_uplink_pcd01::Message {
    let ctx = hearth_uplink_pcd01::Context::new("HEARTH", Timestamp::from_unix_millis(T0));
    encode_oru(recs, &ctx).unwrap()
}

fn config(dir: &tempfile::TempDir) -> ReceiverConfig {
    ReceiverConfig::new(dir.path().join("recv.db"))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn http<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO) -> Sender {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn post(
    send: &mut Sender,
    path: &str,
    body: Vec<u8>,
    bearer: Option<&str>,
) -> Result<(u16, serde_json::Value), hyper::Error> {
    let mut req = hyper::Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/fhir+json");
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Send one framed message and read one framed reply.
async fn mllp_round<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    io.write_all(bytes).await.ok()?;
    let mut d = Deframer::default();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(f) = d.next_frame() {
            return f.ok();
        }
        let n = tokio::time::timeout(Duration::from_secs(5), io.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        d.push(&buf[..n]);
    }
}

#[tokio::test]
async fn fhir_conditional_create_then_resend_is_200() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(&dir)).await.unwrap();
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    let recs = records(3, 1);
    let (body, n) = bundle(&recs);
    let (status, v) = post(&mut s, "/", body.clone(), None).await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "transaction-response");
    assert_eq!(statuses(&v), vec!["201 Created"; n]);
    // hearth's own parser reads the answer.
    let outcomes =
        hearth_uplink_fhir::parse_transaction_response(&v.to_string().into_bytes(), n).unwrap();
    assert!(outcomes.iter().all(|o| matches!(
        o,
        hearth_uplink_fhir::EntryOutcome::Delivered { created: true }
    )));
    let (status, v) = post(&mut s, "/fhir", body, None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(statuses(&v), vec!["200 OK"; n]);
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.fhir.observations, 3);
    assert_eq!(sum.fhir.duplicates, 3);
    assert_eq!(sum.fhir.other, 2, "PhgDevice + PhdDevice");
    assert_eq!(sum.fhir.requests, 2);
    assert_eq!(sum.fhir.created_twice, 0);
    assert_eq!(sum.mllp, FormatSummary::default());
    println!("{sum}");
}

#[tokio::test]
async fn fhir_bad_requests_are_400_with_an_operation_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.require_bearer = Some("s3cret".into());
    let r = start(cfg).await.unwrap();
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    let (status, v) = post(&mut s, "/", b"{}".to_vec(), None).await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(v["resourceType"], "OperationOutcome");
    let (status, v) = post(&mut s, "/", b"{not json".to_vec(), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(
        v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    let (status, v) = post(
        &mut s,
        "/",
        br#"{"resourceType":"Bundle","type":"searchset"}"#.to_vec(),
        Some("s3cret"),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    assert!(
        v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.type")
    );
    let (status, _) = post(&mut s, "/Patient", b"{}".to_vec(), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    let body = br#"{"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:1","resource":"oops","request":{"method":"POST","url":"Observation"}},
        {"fullUrl":"urn:uuid:2","resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Observation"}}]}"#;
    let (status, v) = post(&mut s, "/", body.to_vec(), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(statuses(&v), vec!["400 Bad Request", "201 Created"]);
    assert_eq!(
        v["entry"][0]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    // Same fullUrl again without ifNoneExist: a real server creates a second resource.
    let (_, v) = post(&mut s, "/", body.to_vec(), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(statuses(&v), vec!["400 Bad Request", "201 Created"]);
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.fhir.rejected, 4);
    assert_eq!(sum.fhir.rejected_entries, 2);
    assert_eq!(sum.fhir.created_twice, 1);
    assert_eq!(sum.fhir.observations, 1);
}

/// hearth pipelines PCD-01 messages (ADR 0007): several frames arrive in one write and each is
/// answered, in order, on the same connection.
#[tokio::test]
async fn mllp_pipelined_messages_are_each_acknowledged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(&dir)).await.unwrap();
    let mut tcp = TcpStream::connect(r.mllp_addr().unwrap()).await.unwrap();
    let msgs: Vec<_> = records(5, 40)
        .iter()
        .map(|rec| oru(std::slice::from_ref(rec)))
        .collect();
    let mut bytes = Vec::new();
    for m in &msgs {
        bytes.extend_from_slice(&frame(m));
    }
    tcp.write_all(&bytes).await.unwrap();
    let mut d = Deframer::default();
    let mut buf = [0u8; 4096];
    let mut acks = Vec::new();
    while acks.len() < msgs.len() {
        while let Some(f) = d.next_frame() {
            acks.push(f.unwrap());
        }
        if acks.len() < msgs.len() {
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the receiver closed the connection");
            d.push(&buf[..n]);
        }
    }
    for (m, ack) in msgs.iter().zip(&acks) {
        assert!(matches!(
            parse_ack(ack, m.control_id()),
            Ok(AckOutcome::Delivered { .. })
        ));
    }
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.mllp.observations, 5);
    assert_eq!(sum.mllp.duplicates, 0);
}

#[tokio::test]
async fn mllp_message_is_acked_and_a_resend_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(&dir)).await.unwrap();
    let mut tcp = TcpStream::connect(r.mllp_addr().unwrap()).await.unwrap();
    let msg = oru(&records(4, 10));
    for _ in 0..2 {
        let ack = mllp_round(&mut tcp, &frame(&msg)).await.unwrap();
        let out = parse_ack(&ack, msg.control_id()).unwrap();
        assert!(matches!(out, AckOutcome::Delivered { .. }), "{out:?}");
        let text = String::from_utf8(ack).unwrap();
        assert!(
            text.contains("|ACK^R01^ACK|") && text.contains("|2.6\r"),
            "{text}"
        );
    }
    // Not HL7: AR with an ERR segment and the control id when there is one.
    let ack = mllp_round(
        &mut tcp,
        &hearth_uplink_pcd01::mllp::frame_bytes(b"MSH|^~\\&|X||||||ADT^A01|C9|P|2.6\r"),
    )
    .await
    .unwrap();
    // Unsupported message type (HL7 error 200) is about the route, not the message's data.
    match parse_ack(&ack, "C9").unwrap() {
        AckOutcome::RouteRefused { reason, .. } => {
            assert!(reason.contains("unsupported message type"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let ack = mllp_round(&mut tcp, &hearth_uplink_pcd01::mllp::frame_bytes(b"hello"))
        .await
        .unwrap();
    assert!(matches!(
        parse_ack(&ack, "").unwrap(),
        AckOutcome::Rejected { .. }
    ));
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.mllp.observations, 4);
    assert_eq!(sum.mllp.duplicates, 4);
    assert_eq!(sum.mllp.requests, 4);
    assert_eq!(sum.mllp.rejected, 2);
}

#[tokio::test]
async fn error_rate_half_gives_about_half_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.faults = Faults {
        error_rate: 0.5,
        seed: 42,
        ..Faults::default()
    };
    let r = start(cfg).await.unwrap();
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    let mut errors = 0;
    for i in 0..200 {
        let (body, _) = bundle(&records(1, i));
        let (status, _) = post(&mut s, "/", body, None).await.unwrap();
        match status {
            503 => errors += 1,
            200 => {}
            other => panic!("status {other}"),
        }
    }
    assert!((70..=130).contains(&errors), "{errors} of 200");
    // MLLP: AE with the error text.
    let mut tcp = TcpStream::connect(r.mllp_addr().unwrap()).await.unwrap();
    let mut ae = 0;
    for i in 0..200 {
        let msg = oru(&records(1, 1000 + i));
        let ack = mllp_round(&mut tcp, &frame(&msg)).await.unwrap();
        if let AckOutcome::Retry { reason, .. } = parse_ack(&ack, msg.control_id()).unwrap() {
            assert!(reason.contains("injected fault"));
            ae += 1;
        }
    }
    assert!((70..=130).contains(&ae), "{ae} of 200");
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.fhir.faults["error"], errors);
    assert_eq!(sum.fhir.observations, 200 - errors);
    assert_eq!(sum.mllp.faults["error"], ae);
    assert_eq!(sum.mllp.observations, 200 - ae);
}

#[tokio::test]
async fn resets_garbage_and_down_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.faults = Faults {
        reset_rate: 0.3,
        garbage_rate: 0.3,
        down: vec![(Duration::ZERO, Duration::from_millis(400))],
        latency: Duration::from_millis(1),
        seed: 9,
        ..Faults::default()
    };
    let r = start(cfg).await.unwrap();
    let mllp = r.mllp_addr().unwrap();
    // Down: the connection is accepted and dropped at once.
    let mut tcp = TcpStream::connect(mllp).await.unwrap();
    assert!(
        mllp_round(&mut tcp, &frame(&oru(&records(1, 1))))
            .await
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    // Retry every message until it is acknowledged, like hearth's sender.
    let (mut resets, mut garbage) = (0, 0);
    for i in 0..60 {
        let msg = oru(&records(1, 100 + i));
        loop {
            let mut tcp = TcpStream::connect(mllp).await.unwrap();
            match mllp_round(&mut tcp, &frame(&msg)).await {
                None => resets += 1,
                Some(ack) => match parse_ack(&ack, msg.control_id()) {
                    Ok(AckOutcome::Delivered { .. }) => break,
                    Ok(other) => panic!("{other:?}"),
                    Err(_) => garbage += 1,
                },
            }
        }
    }
    assert!(
        resets > 5 && garbage > 5,
        "resets {resets}, garbage {garbage}"
    );
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    // Resets and garbage come after storing: every resend is recognised, nothing stored twice.
    assert_eq!(sum.mllp.observations, 60);
    assert!(sum.mllp.duplicates > 0);
    assert_eq!(sum.mllp.faults["down_connection"], 1);
    println!("{sum}");
}

#[tokio::test]
async fn garbage_input_never_panics_and_the_receiver_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(&dir)).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let junk: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let mut v: Vec<u8> = (0..rng.usize(0..2000)).map(|_| rng.u8(..)).collect();
            match i % 4 {
                0 => v.insert(0, 0x0B),
                1 => v.extend([0x1C, 0x0D]),
                2 => {
                    let mut h = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/fhir+json\r\ncontent-length: 100\r\n\r\n".to_vec();
                    h.extend(v);
                    v = h;
                }
                _ => {}
            }
            v
        })
        .collect();
    for addr in [r.fhir_addr().unwrap(), r.mllp_addr().unwrap()] {
        for j in &junk {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let _ = tcp.write_all(j).await;
            let _ = tcp.shutdown().await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut sink)).await;
        }
    }
    // Random JSON-ish bundles on the FHIR port.
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    for body in [
        &br#"{"resourceType":"Bundle","type":"transaction","entry":{}}"#[..],
        br#"{"resourceType":"Bundle","type":"transaction","entry":[null,[],{"resource":{"resourceType":""}}]}"#,
        br#"[1,2,3]"#,
        br#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation"},"request":{"ifNoneExist":"%%%ff"}}]}"#,
    ] {
        let (status, v) = post(&mut s, "/", body.to_vec(), None).await.unwrap();
        assert!(status == 200 || status == 400, "{status} {v}");
    }
    // Still serving both.
    let (body, n) = bundle(&records(2, 1));
    let (status, v) = post(&mut s, "/", body, None).await.unwrap();
    assert_eq!((status, statuses(&v).len()), (200, n));
    let mut tcp = TcpStream::connect(r.mllp_addr().unwrap()).await.unwrap();
    let msg = oru(&records(2, 1));
    let ack = mllp_round(&mut tcp, &frame(&msg)).await.unwrap();
    assert!(matches!(
        parse_ack(&ack, msg.control_id()),
        Ok(AckOutcome::Delivered { .. })
    ));
    r.shutdown().await;
}

use hearth_test_kit::pki::pki;

async fn tls_connect(
    addr: SocketAddr,
    files: &hearth_tls::TlsFiles,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let cfg = hearth_tls::client_config(files, "test").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_certificate_and_refuses_none() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir(&pki_dir).unwrap();
    pki(&pki_dir);
    let mut cfg = config(&dir);
    cfg.tls = Some(ServerTls {
        cert: pki_dir.join("server.pem"),
        key: pki_dir.join("server.key"),
        client_ca: Some(pki_dir.join("ca.pem")),
    });
    let r = start(cfg).await.unwrap();
    let with_cert = hearth_tls::TlsFiles {
        ca_file: Some(pki_dir.join("ca.pem")),
        client_cert: Some(pki_dir.join("client.pem")),
        client_key: Some(pki_dir.join("client.key")),
    };
    let without = hearth_tls::TlsFiles {
        ca_file: Some(pki_dir.join("ca.pem")),
        ..Default::default()
    };
    // FHIR over mTLS.
    let mut s = http(
        tls_connect(r.fhir_addr().unwrap(), &with_cert)
            .await
            .unwrap(),
    )
    .await;
    let (body, n) = bundle(&records(2, 1));
    let (status, v) = post(&mut s, "/", body.clone(), None).await.unwrap();
    assert_eq!(
        (status, statuses(&v)),
        (200, vec!["201 Created".to_owned(); n])
    );
    // MLLP over mTLS.
    let mut tls = tls_connect(r.mllp_addr().unwrap(), &with_cert)
        .await
        .unwrap();
    let msg = oru(&records(2, 1));
    let ack = mllp_round(&mut tls, &frame(&msg)).await.unwrap();
    assert!(matches!(
        parse_ack(&ack, msg.control_id()),
        Ok(AckOutcome::Delivered { .. })
    ));
    // Without a client certificate: the handshake or the first exchange fails.
    match tls_connect(r.fhir_addr().unwrap(), &without).await {
        Err(_) => {}
        Ok(io) => {
            let mut s = http(io).await;
            assert!(post(&mut s, "/", body, None).await.is_err());
        }
    }
    match tls_connect(r.mllp_addr().unwrap(), &without).await {
        Err(_) => {}
        Ok(mut io) => assert!(mllp_round(&mut io, &frame(&msg)).await.is_none()),
    }
    // Plain TCP on a TLS port gets nothing useful.
    let mut tcp = TcpStream::connect(r.mllp_addr().unwrap()).await.unwrap();
    assert!(mllp_round(&mut tcp, &frame(&msg)).await.is_none());
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!((sum.fhir.observations, sum.mllp.observations), (2, 2));
    // The attempts without a client certificate never reached the endpoints.
    assert_eq!((sum.fhir.duplicates, sum.mllp.duplicates), (0, 0));
    assert_eq!((sum.fhir.requests, sum.mllp.requests), (1, 1));
}

#[tokio::test]
async fn bad_tls_files_and_busy_ports_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.tls = Some(ServerTls {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key"),
        client_ca: None,
    });
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(e.contains("missing.pem"), "{e}");
    let r = start(config(&dir)).await.unwrap();
    let mut cfg = config(&dir);
    cfg.fhir = Some(Listen::Addr(r.fhir_addr().unwrap()));
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(e.contains("FHIR"), "{e}");
    // An injected listener is used as is.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut cfg = config(&dir);
    cfg.fhir = None;
    cfg.mllp = Some(Listen::Listener(l));
    let r2 = start(cfg).await.unwrap();
    assert_eq!((r2.mllp_addr(), r2.fhir_addr()), (Some(addr), None));
    r2.shutdown().await;
    r.shutdown().await;
}

#[tokio::test]
async fn fhir_reset_closes_without_an_answer_after_storing_and_garbage_is_not_fhir() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.faults = Faults {
        reset_rate: 1.0,
        ..Faults::default()
    };
    let r = start(cfg).await.unwrap();
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    let (body, n) = bundle(&records(1, 1));
    assert!(post(&mut s, "/", body.clone(), None).await.is_err());
    r.shutdown().await;
    let mut cfg = config(&dir);
    cfg.faults = Faults {
        garbage_rate: 1.0,
        seed: 5,
        ..Faults::default()
    };
    let r = start(cfg).await.unwrap();
    let mut s = http(TcpStream::connect(r.fhir_addr().unwrap()).await.unwrap()).await;
    for _ in 0..4 {
        let resp = s
            .send_request(
                hyper::Request::post("/")
                    .header("content-type", "application/fhir+json")
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(hearth_uplink_fhir::parse_transaction_response(&bytes, n).is_err());
    }
    r.shutdown().await;
    let sum = summary(&dir.path().join("recv.db")).unwrap();
    assert_eq!(sum.fhir.observations, 1);
    assert_eq!(sum.fhir.duplicates, 4);
    assert_eq!(
        (sum.fhir.faults["reset"], sum.fhir.faults["garbage"]),
        (1, 4)
    );
}
