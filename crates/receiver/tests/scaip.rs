//! The receiver's SCAIP-over-HTTPS endpoint (a response centre) driven by hearth's real unit
//! side (`hearth_uplink_net::ScaipHttps`) over TLS on loopback, plus raw HTTP for refusals.
//! No assertion on timing (hang guards only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_receiver::*;
use hearth_test_kit::pki::pki;
use hearth_tls::TlsFiles;
use hearth_uplink_net::{ScaipHttps, ScaipHttpsSettings};
use hearth_uplink_scaip::session::{self, Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{
    AlarmProtocol, MessageType, Mrq, ProtocolError, Ref, SessionPolicy, Verdict,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

struct Centre {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    store: PathBuf,
    rx: Option<RunningReceiver>,
}

impl Centre {
    /// A receiver with only the SCAIP endpoint; TLS (with client certificates when `mtls`)
    /// unless `plain`.
    async fn start(endpoint: ScaipEndpoint, tls: Option<bool>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki_dir = dir.path().join("pki");
        std::fs::create_dir(&pki_dir).unwrap();
        if tls.is_some() {
            pki(&pki_dir);
        }
        let store = dir.path().join("recv.db");
        let mut cfg = ReceiverConfig::new(&store);
        cfg.fhir = None;
        cfg.mllp = None;
        cfg.scaip = Some(endpoint);
        cfg.tls = tls.map(|mtls| ServerTls {
            cert: pki_dir.join("server.pem"),
            key: pki_dir.join("server.key"),
            client_ca: mtls.then(|| pki_dir.join("ca.pem")),
        });
        let rx = start(cfg).await.unwrap();
        Self {
            _dir: dir,
            pki: pki_dir,
            store,
            rx: Some(rx),
        }
    }

    fn port(&self) -> u16 {
        self.rx.as_ref().unwrap().scaip_addr().unwrap().port()
    }

    fn unit(&self, token: Option<&str>) -> ScaipHttps {
        let p = |f: &str| Some(self.pki.join(f));
        ScaipHttps::new(ScaipHttpsSettings {
            url: format!("https://localhost:{}", self.port()),
            token: token.map(str::to_owned),
            tls: TlsFiles {
                ca_file: p("ca.pem"),
                client_cert: p("client.pem"),
                client_key: p("client.key"),
            },
            connect_timeout: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn summary(&self) -> ScaipSummary {
        summary(&self.store).unwrap().scaip
    }

    fn requests(&self) -> Vec<ScaipRequest> {
        scaip_requests(&self.store).unwrap()
    }

    async fn stop(mut self) -> Self {
        if let Some(rx) = self.rx.take() {
            rx.shutdown().await;
        }
        self
    }
}

fn alarm(reference: &str) -> Mrq {
    Mrq {
        reference: Some(Ref::new(reference).unwrap()),
        caller_id: "4711".into(),
        device_type: 3,
        status: Some(10),
        ..Mrq::default()
    }
}

fn with_faults(faults: ScaipFaults) -> ScaipEndpoint {
    ScaipEndpoint {
        faults,
        ..ScaipEndpoint::loopback()
    }
}

#[tokio::test]
async fn an_alarm_is_stored_once_and_a_repeat_is_answered_and_counted() {
    let centre = Centre::start(ScaipEndpoint::loopback(), Some(true)).await;
    let unit = centre.unit(None);
    for _ in 0..2 {
        let a = guarded(unit.exchange(&alarm("Rep1"), Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(a.verdict, Verdict::Handled);
        assert_eq!(a.reference.as_str(), "Rep1");
    }
    let mut reset = alarm("Rep1");
    reset.message_type = MessageType::Reset;
    guarded(unit.notify(&reset)).await.unwrap();
    let centre = centre.stop().await;
    let s = centre.summary();
    assert_eq!(
        (s.events, s.repeats, s.requests, s.resets),
        (1, 2, 3, 1),
        "{s:?}"
    );
    let r = centre.requests();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].reference.as_deref(), Some("Rep1"));
    assert_eq!(r[0].message_type.as_deref(), Some("ME"));
    assert_eq!(r[0].device_type, Some(3));
    assert_eq!(r[0].status_code, Some(10));
    assert_eq!((r[0].http_status, r[0].snu), (200, Some(0)));
    assert_eq!(
        r.iter().map(|x| x.repeat).collect::<Vec<_>>(),
        vec![false, true, true]
    );
    assert_eq!(r[2].message_type.as_deref(), Some("RE"));
    assert!(r[0].at_ms > 0);
    let text = summary(&centre.store).unwrap().to_string();
    assert!(text.contains("SCAIP: 1 events"), "{text}");
}

#[tokio::test]
async fn a_heartbeat_gets_the_interval_and_is_not_an_event() {
    let centre = Centre::start(
        ScaipEndpoint {
            heartbeat_minutes: Some(5),
            ..ScaipEndpoint::loopback()
        },
        Some(false),
    )
    .await;
    let unit = centre.unit(None);
    let mut pi = alarm("Hb1");
    pi.message_type = MessageType::Heartbeat;
    pi.heartbeat_offer = true;
    pi.status = None;
    let a = guarded(unit.exchange(&pi, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(a.verdict, Verdict::Handled);
    assert_eq!(a.heartbeat, Some(Duration::from_secs(300)));
    let s = centre.summary();
    assert_eq!((s.events, s.heartbeats), (0, 1), "{s:?}");
}

#[tokio::test]
async fn hold_once_then_ok_through_the_session() {
    let centre = Centre::start(
        with_faults(ScaipFaults::first(1, ScaipFault::Hold)),
        Some(true),
    )
    .await;
    let receivers = vec![Receiver {
        name: "reference".into(),
        protocol: Arc::new(centre.unit(None)),
    }];
    let policy = SessionPolicy {
        answer_timeout: Duration::from_secs(20),
        resend_every: Duration::from_secs(10),
        hold_interval: Duration::from_secs(5),
        hold_budget: Duration::from_secs(60),
    };
    let log = Mutex::new(Vec::<Attempt>::new());
    let out = guarded(session::run(&receivers, &alarm("Held1"), policy, &|a| {
        log.lock().unwrap().push(a.clone())
    }))
    .await;
    assert!(
        matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 0,
                ..
            }
        ),
        "{out:?}"
    );
    let results: Vec<_> = log
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|a| a.result)
        .collect();
    assert_eq!(
        results,
        vec![
            AttemptResult::Answer(Verdict::Hold),
            AttemptResult::Answer(Verdict::Handled)
        ]
    );
    let r = centre.requests();
    assert_eq!(
        r.iter().map(|x| x.snu).collect::<Vec<_>>(),
        vec![Some(4), Some(0)]
    );
    assert_eq!(r[0].fault.as_deref(), Some("hold"));
    let s = centre.summary();
    assert_eq!((s.events, s.repeats), (1, 1));
    assert_eq!(s.faults.get("hold"), Some(&1));
}

#[tokio::test]
async fn scripted_faults_reach_the_unit_as_verdicts_and_errors() {
    type Check = fn(&Result<hearth_uplink_scaip::CentreAnswer, ProtocolError>) -> bool;
    let cases: Vec<(ScaipFault, Check)> = vec![
        (ScaipFault::Busy, |r| {
            r.as_ref().is_ok_and(|a| a.verdict == Verdict::Busy)
        }),
        (ScaipFault::NotTreated, |r| {
            r.as_ref().is_ok_and(|a| a.verdict == Verdict::NotTreated)
        }),
        (ScaipFault::Snu(99), |r| {
            r.as_ref().is_ok_and(|a| a.verdict == Verdict::Error(99))
        }),
        (ScaipFault::WrongRef, |r| {
            matches!(r, Err(ProtocolError::Malformed(_)))
        }),
        (ScaipFault::Malformed, |r| {
            matches!(r, Err(ProtocolError::Malformed(_)))
        }),
        (ScaipFault::Unauthorized, |r| {
            matches!(r, Err(ProtocolError::Refused(_)))
        }),
        (ScaipFault::Hang, |r| {
            matches!(r, Err(ProtocolError::NoAnswer(_)))
        }),
    ];
    for (fault, check) in cases {
        let centre = Centre::start(with_faults(ScaipFaults::always(fault)), Some(false)).await;
        let unit = centre.unit(None);
        let r = guarded(unit.exchange(&alarm("Fault1"), Duration::from_millis(1500))).await;
        assert!(check(&r), "{fault:?}: {r:?}");
        let centre = centre.stop().await;
        let s = centre.summary();
        assert_eq!(s.requests, 1, "{fault:?}");
        assert_eq!(s.faults.get(fault.name()), Some(&1), "{fault:?}: {s:?}");
        // Every fault but 401 still has the event stored (a lost answer is not a lost alarm).
        let stored = u64::from(fault != ScaipFault::Unauthorized);
        assert_eq!(s.events, stored, "{fault:?}");
    }
}

#[tokio::test]
async fn the_bearer_token_is_required_when_configured() {
    let centre = Centre::start(
        ScaipEndpoint {
            bearer: Some("centre-token".into()),
            ..ScaipEndpoint::loopback()
        },
        Some(false),
    )
    .await;
    let r = guarded(
        centre
            .unit(None)
            .exchange(&alarm("A1"), Duration::from_secs(5)),
    )
    .await;
    assert!(matches!(r, Err(ProtocolError::Refused(_))), "{r:?}");
    let r = guarded(
        centre
            .unit(Some("wrong"))
            .exchange(&alarm("A1"), Duration::from_secs(5)),
    )
    .await;
    assert!(matches!(r, Err(ProtocolError::Refused(_))), "{r:?}");
    let a = guarded(
        centre
            .unit(Some("centre-token"))
            .exchange(&alarm("A1"), Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(a.verdict, Verdict::Handled);
    let s = centre.summary();
    assert_eq!((s.events, s.rejected, s.requests), (1, 2, 3));
    let r = centre.requests();
    assert_eq!(r[0].http_status, 401);
    assert_eq!(r[0].reference, None, "an unauthenticated body is not read");
}

/// One raw HTTP/1.1 request over plain TCP; the status code.
async fn raw(port: u16, head: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "{head}\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    guarded(s.read_to_end(&mut out)).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn http_refusals_follow_the_specification() {
    let centre = Centre::start(ScaipEndpoint::loopback(), None).await;
    let port = centre.port();
    let ok = b"<mrq><ref>r1</ref><cid>1</cid><dty>3</dty></mrq>";
    let ct = "\r\ncontent-type: application/scaip+xml";
    assert_eq!(
        raw(port, &format!("POST /scaip HTTP/1.1{ct}"), ok).await,
        200
    );
    assert_eq!(
        raw(port, &format!("POST /api/scaip HTTP/1.1{ct}"), ok).await,
        200
    );
    assert_eq!(
        raw(port, &format!("POST /fhir HTTP/1.1{ct}"), ok).await,
        404
    );
    assert_eq!(
        raw(port, &format!("GET /scaip HTTP/1.1{ct}"), b"").await,
        405
    );
    assert_eq!(
        raw(port, "POST /scaip HTTP/1.1\r\ncontent-type: text/xml", ok).await,
        415
    );
    assert_eq!(
        raw(port, &format!("POST /scaip HTTP/1.1{ct}"), b"<mrq>").await,
        400
    );
    assert_eq!(
        raw(
            port,
            &format!("POST /scaip HTTP/1.1{ct}"),
            b"<mrs><ref>1</ref></mrs>"
        )
        .await,
        400
    );
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        raw(port, &format!("POST /scaip HTTP/1.1{ct}"), &big).await,
        413
    );
    let s = centre.summary();
    assert_eq!(
        (s.events, s.repeats, s.rejected, s.requests),
        (1, 1, 6, 8),
        "{s:?}"
    );
}

#[test]
fn a_store_without_scaip_traffic_has_an_empty_log() {
    // The request log lives in the same file as the rest: a store without SCAIP traffic
    // still gives an empty log and a summary without a SCAIP line.
    let dir = tempfile::tempdir().unwrap();
    let store: &Path = &dir.path().join("recv.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = ReceiverConfig::new(store);
        cfg.mllp = None;
        start(cfg).await.unwrap().shutdown().await;
    });
    assert!(scaip_requests(store).unwrap().is_empty());
    assert!(!summary(store).unwrap().to_string().contains("SCAIP"));
}
