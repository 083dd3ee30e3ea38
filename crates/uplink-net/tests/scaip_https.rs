//! SCAIP over HTTPS (`ScaipHttps`) against in-test HTTPS servers on loopback, and against an
//! independent centre written in Python from `docs/protocols/scaip-https.md` alone
//! (`tests/scaip_https_centre.py`). Real TLS throughout; no assertion on timing (hang guards
//! only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(unused_imports)]
mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hearth_tls::TlsFiles;
use hearth_uplink_net::{ScaipHttps, ScaipHttpsSettings, SetupError};
use hearth_uplink_scaip::session::{self, Attempt, AttemptResult, Receiver, SessionOutcome};
use hearth_uplink_scaip::{
    AlarmProtocol, CallMode, MessageType, Mrq, ProtocolError, Ref, SessionPolicy, Verdict,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Generous guard against a hang (never a timing assertion).
const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

fn alarm(reference: &str) -> Mrq {
    Mrq {
        reference: Some(Ref::new(reference).unwrap()),
        caller_id: "4711".into(),
        device_type: 3,
        component: Some(2),
        status: Some(10),
        ..Mrq::default()
    }
}

fn settings(url: String, tls: TlsFiles) -> ScaipHttpsSettings {
    ScaipHttpsSettings {
        url,
        token: None,
        tls,
        connect_timeout: Duration::from_secs(5),
        answer_timeout: Duration::from_secs(5),
    }
}

fn ca_only(pki: &Pki) -> TlsFiles {
    TlsFiles {
        ca_file: Some(pki.path("ca.pem")),
        ..TlsFiles::default()
    }
}

fn mrs(body: &str) -> Reply {
    Reply::Raw(response(
        200,
        &[("content-type", "application/scaip+xml")],
        body.as_bytes(),
    ))
}

/// A centre answering every request with `<mrs>` for its ref and this snu (+ extra elements).
fn answering(snu: u16, extra: &'static str) -> Handler {
    Arc::new(move |req: &HttpRequest| {
        let m = Mrq::parse(&req.body).unwrap();
        mrs(&format!(
            "<mrs><ref>{}</ref><snu>{snu}</snu>{extra}</mrs>",
            m.reference.unwrap()
        ))
    })
}

#[tokio::test]
async fn an_alarm_over_mutual_tls_is_handled_with_its_voice_instruction() {
    let pki = Pki::new();
    let server = http_server(
        Some(pki.acceptor(true)),
        answering(0, "<mre>1</mre><cre>05</cre>"),
    )
    .await;
    let url = format!("https://localhost:{}/api/v1/", server.addr.port());
    let up = ScaipHttps::new(settings(url, pki.client_files())).unwrap();
    assert!(
        up.describe().ends_with("/api/v1/scaip"),
        "{}",
        up.describe()
    );
    let answer = guarded(up.exchange(&alarm("Q7x2Lm9P"), Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(answer.verdict, Verdict::Handled);
    assert_eq!(answer.reference.as_str(), "Q7x2Lm9P");
    let voice = answer.voice.unwrap();
    assert_eq!(voice.mode, 1);
    assert_eq!(voice.call, CallMode::AnswerFor(Duration::from_secs(300)));
    // A second alarm reuses the kept-alive connection.
    guarded(up.exchange(&alarm("Second1"), Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/api/v1/scaip");
    assert_eq!(
        reqs[0].header("content-type"),
        Some("application/scaip+xml")
    );
    assert_eq!(reqs[0].header("authorization"), None);
    assert_eq!(
        String::from_utf8_lossy(&reqs[0].body),
        "<mrq><ref>Q7x2Lm9P</ref><cid>4711</cid><dty>0003</dty><dco>002</dco><stc>010</stc></mrq>"
    );
}

#[tokio::test]
async fn hold_not_treated_busy_and_errors_are_verdicts() {
    let pki = Pki::new();
    for (snu, verdict) in [
        (4, Verdict::Hold),
        (5, Verdict::NotTreated),
        (6, Verdict::Busy),
        (2, Verdict::Error(2)),
    ] {
        let server = http_server(Some(pki.acceptor(false)), answering(snu, "")).await;
        let url = format!("https://localhost:{}", server.addr.port());
        let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
        let a = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(a.verdict, verdict);
    }
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_401_403_are_refusals() {
    let pki = Pki::new();
    let handler: Handler = Arc::new(|req: &HttpRequest| match req.header("authorization") {
        Some("Bearer right-token") => {
            let m = Mrq::parse(&req.body).unwrap();
            mrs(&format!(
                "<mrs><ref>{}</ref><snu>0</snu></mrs>",
                m.reference.unwrap()
            ))
        }
        Some("Bearer other-account") => Reply::Raw(response(403, &[], b"")),
        _ => Reply::Raw(response(401, &[("www-authenticate", "Bearer")], b"")),
    });
    let server = http_server(Some(pki.acceptor(false)), handler).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    for (token, ok) in [
        (Some("right-token"), true),
        (None, false),
        (Some("wrong-token"), false),
        (Some("other-account"), false),
    ] {
        let mut s = settings(url.clone(), ca_only(&pki));
        s.token = token.map(str::to_owned);
        let up = ScaipHttps::new(s).unwrap();
        let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
        if ok {
            assert_eq!(r.unwrap().verdict, Verdict::Handled);
        } else {
            assert!(
                matches!(r, Err(ProtocolError::Refused(_))),
                "{token:?}: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_ref_garbage_or_no_mrs_is_malformed_never_handled() {
    let pki = Pki::new();
    for reply in [
        "<mrs><ref>other</ref><snu>0</snu></mrs>",
        "<mrs><ref>abc</ref><snu>0</snu>",
        "<mrs><ref>abc</ref></mrs>",
        "<mrq><ref>abc</ref><snu>0</snu></mrq>",
        "",
        "OK",
    ] {
        let server = http_server(
            Some(pki.acceptor(false)),
            Arc::new(move |_: &HttpRequest| mrs(reply)),
        )
        .await;
        let url = format!("https://localhost:{}", server.addr.port());
        let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
        let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
        assert!(
            matches!(r, Err(ProtocolError::Malformed(_))),
            "{reply:?}: {r:?}"
        );
    }
    let server = http_server(
        Some(pki.acceptor(false)),
        Arc::new(|_: &HttpRequest| Reply::Raw(response(204, &[], b""))),
    )
    .await;
    let url = format!("https://localhost:{}", server.addr.port());
    let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
    let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
    assert!(matches!(r, Err(ProtocolError::Malformed(_))), "{r:?}");
}

#[tokio::test]
async fn silence_is_no_answer() {
    let pki = Pki::new();
    let server = http_server(
        Some(pki.acceptor(false)),
        Arc::new(|_: &HttpRequest| Reply::Hang),
    )
    .await;
    let url = format!("https://localhost:{}", server.addr.port());
    let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
    let r = guarded(up.exchange(&alarm("abc"), Duration::from_millis(300))).await;
    assert!(matches!(r, Err(ProtocolError::NoAnswer(_))), "{r:?}");
}

#[tokio::test]
async fn overload_and_server_errors_are_unavailable_and_retry_after_is_honoured() {
    let pki = Pki::new();
    for status in [500u16, 502, 429, 413, 415, 404, 301] {
        let server = http_server(
            Some(pki.acceptor(false)),
            Arc::new(move |_: &HttpRequest| Reply::Raw(response(status, &[], b""))),
        )
        .await;
        let url = format!("https://localhost:{}", server.addr.port());
        let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
        let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
        assert!(
            matches!(r, Err(ProtocolError::Unavailable(_))),
            "{status}: {r:?}"
        );
    }
    let server = http_server(
        Some(pki.acceptor(false)),
        Arc::new(|_: &HttpRequest| Reply::Raw(response(503, &[("retry-after", "30")], b""))),
    )
    .await;
    let url = format!("https://localhost:{}", server.addr.port());
    let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
    for _ in 0..3 {
        let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
        assert!(matches!(r, Err(ProtocolError::Unavailable(_))), "{r:?}");
    }
    assert_eq!(
        server.requests.lock().unwrap().len(),
        1,
        "no request while the Retry-After lasts"
    );
}

#[tokio::test]
async fn no_connection_or_an_untrusted_centre_is_unavailable() {
    let pki = Pki::new();
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let up = ScaipHttps::new(settings(format!("https://localhost:{port}"), ca_only(&pki))).unwrap();
    let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
    assert!(matches!(r, Err(ProtocolError::Unavailable(_))), "{r:?}");
    // A centre whose certificate another CA signed.
    let other = Pki::new();
    let server = http_server(Some(other.acceptor(false)), answering(0, "")).await;
    let up = ScaipHttps::new(settings(
        format!("https://localhost:{}", server.addr.port()),
        ca_only(&pki),
    ))
    .unwrap();
    let r = guarded(up.exchange(&alarm("abc"), Duration::from_secs(5))).await;
    assert!(matches!(r, Err(ProtocolError::Unavailable(_))), "{r:?}");
    assert!(server.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reset_is_sent_and_its_answer_ignored() {
    let pki = Pki::new();
    let server = http_server(
        Some(pki.acceptor(false)),
        Arc::new(|_: &HttpRequest| mrs("not even xml")),
    )
    .await;
    let url = format!("https://localhost:{}", server.addr.port());
    let up = ScaipHttps::new(settings(url, ca_only(&pki))).unwrap();
    let mut reset = alarm("abc");
    reset.message_type = MessageType::Reset;
    guarded(up.notify(&reset)).await.unwrap();
    let reqs = server.requests.lock().unwrap();
    let sent = Mrq::parse(&reqs[0].body).unwrap();
    assert_eq!(sent.message_type, MessageType::Reset);
    assert_eq!(sent.reference.unwrap().as_str(), "abc");
}

#[test]
fn plain_http_is_refused_outside_loopback() {
    assert!(matches!(
        ScaipHttps::new(settings(
            "http://arc.example/api".into(),
            TlsFiles::default()
        )),
        Err(SetupError::Address { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The third implementation: a Python centre written from the specification alone.

struct PyCentre {
    port: u16,
    record: PathBuf,
    _child: tokio::process::Child,
}

impl PyCentre {
    async fn start(pki: &Pki, extra: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scaip_https_centre.py");
        let record = pki.path(&format!("record-{}.jsonl", fastrand_suffix()));
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg("--cert")
            .arg(pki.path("server.pem"))
            .arg("--key")
            .arg(pki.path("server.key"))
            .arg("--record")
            .arg(&record)
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = guarded(lines.next_line())
            .await
            .unwrap()
            .expect("PORT line");
        let port = line.strip_prefix("PORT ").unwrap().trim().parse().unwrap();
        Self {
            port,
            record,
            _child: child,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/arc", self.port)
    }

    /// The centre's record: one JSON object per request it read.
    fn record(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn fastrand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn the_python_centre_handles_an_alarm_and_records_it_once() {
    let pki = Pki::new();
    let centre = PyCentre::start(&pki, &["--token", "py-token"]).await;
    let mut s = settings(centre.url(), ca_only(&pki));
    s.token = Some("py-token".into());
    let up = ScaipHttps::new(s).unwrap();
    let a = guarded(up.exchange(&alarm("PyAlarm1"), Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(a.verdict, Verdict::Handled);
    // A resend of the same ref is the same event, answered again.
    let a = guarded(up.exchange(&alarm("PyAlarm1"), Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(a.verdict, Verdict::Handled);
    let rec = centre.record();
    assert_eq!(rec.len(), 2, "{rec:?}");
    assert_eq!(rec[0]["ref"], "PyAlarm1");
    assert_eq!(rec[0]["mty"], "ME");
    assert_eq!(rec[0]["dty"], 3);
    assert_eq!(rec[0]["stc"], 10);
    assert_eq!(rec[0]["snu"], 0);
    assert_eq!(rec[0]["repeat"], false);
    assert_eq!(rec[1]["repeat"], true);
    assert_eq!(rec[1]["events"], 1, "a repeat is not a second event");
    // Without the token: refused.
    let up = ScaipHttps::new(settings(centre.url(), ca_only(&pki))).unwrap();
    let r = guarded(up.exchange(&alarm("PyAlarm2"), Duration::from_secs(10))).await;
    assert!(matches!(r, Err(ProtocolError::Refused(_))), "{r:?}");
}

#[tokio::test]
async fn a_session_holds_then_is_handled_by_the_python_centre_over_mutual_tls() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let centre = PyCentre::start(&pki, &["--hold", "1", "--client-ca", ca.to_str().unwrap()]).await;
    let up = ScaipHttps::new(settings(centre.url(), pki.client_files())).unwrap();
    let receivers = vec![Receiver {
        name: "py".into(),
        protocol: Arc::new(up),
    }];
    let policy = SessionPolicy {
        answer_timeout: Duration::from_secs(20),
        resend_every: Duration::from_secs(10),
        hold_interval: Duration::from_secs(5),
        hold_budget: Duration::from_secs(60),
    };
    let log = Mutex::new(Vec::<Attempt>::new());
    let out = guarded(session::run(&receivers, &alarm("HoldMe1"), policy, &|a| {
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
    let results: Vec<AttemptResult> = log
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
    let rec = centre.record();
    let snus: Vec<i64> = rec.iter().map(|r| r["snu"].as_i64().unwrap()).collect();
    assert_eq!(snus, vec![4, 0], "{rec:?}");
    assert!(rec.iter().all(|r| r["ref"] == "HoldMe1"));
    assert_eq!(rec[1]["repeat"], true);
    assert_eq!(rec[1]["events"], 1);
}

#[tokio::test]
async fn a_silent_centre_is_reset_and_the_python_centre_takes_the_alarm() {
    let pki = Pki::new();
    let silent = http_server(
        Some(pki.acceptor(false)),
        Arc::new(|req: &HttpRequest| {
            match Mrq::parse(&req.body) {
                // The reset is answered; the alarm never is.
                Ok(m) if m.message_type == MessageType::Reset => mrs(&format!(
                    "<mrs><ref>{}</ref><snu>0</snu></mrs>",
                    m.reference.unwrap()
                )),
                _ => Reply::Hang,
            }
        }),
    )
    .await;
    let centre = PyCentre::start(&pki, &[]).await;
    let receivers = vec![
        Receiver {
            name: "silent".into(),
            protocol: Arc::new(
                ScaipHttps::new(settings(
                    format!("https://localhost:{}", silent.addr.port()),
                    ca_only(&pki),
                ))
                .unwrap(),
            ),
        },
        Receiver {
            name: "py".into(),
            protocol: Arc::new(ScaipHttps::new(settings(centre.url(), ca_only(&pki))).unwrap()),
        },
    ];
    let policy = SessionPolicy {
        answer_timeout: Duration::from_millis(1500),
        resend_every: Duration::from_millis(500),
        ..SessionPolicy::default()
    };
    let out = guarded(session::run(&receivers, &alarm("Silent1"), policy, &|_| {})).await;
    assert!(
        matches!(
            out,
            SessionOutcome::Handled {
                receiver_index: 1,
                ..
            }
        ),
        "{out:?}"
    );
    // The reset is sent in the background: wait for it (guarded).
    guarded(async {
        loop {
            let reset_seen =
                silent.requests.lock().unwrap().iter().any(|r| {
                    Mrq::parse(&r.body).is_ok_and(|m| m.message_type == MessageType::Reset)
                });
            if reset_seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let reqs = silent.requests.lock().unwrap();
    assert!(reqs.len() >= 2, "resent while silent, then reset");
    assert!(
        reqs.iter()
            .all(|r| { Mrq::parse(&r.body).unwrap().reference.unwrap().as_str() == "Silent1" })
    );
    let rec = centre.record();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["snu"], 0);
}
