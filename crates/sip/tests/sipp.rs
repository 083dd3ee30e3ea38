//! hearth-sip against SIPp (Debian `sip-tester`) playing the alarm centre: an implementation
//! nobody here wrote checks our REGISTER (Digest, verified by SIPp's `<verifyauth>`), our
//! MESSAGE, and our answers to the centre's MESSAGEs. Scenarios: `tests/sipp/*.xml`.
//!
//! Each test starts `sipp` (`hearth_test_kit::sipp`) as a child on a free loopback port with
//! `-m` (calls) and `-timeout` as a hang guard, and checks its exit status (0 = every call of the
//! scenario passed) as well as what our side saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use hearth_sip::{InboundMessage, SipAgent, SipError, SipSettings, Transport};
use hearth_test_kit::sipp::{Sipp, SippTransport, free_port};

const USER: &str = "unit17";
const AUTH_USER: &str = "unit17-auth";
const PASSWORD: &str = "correct horse";
const DOMAIN: &str = "arc.test";

/// SIPp (`hearth_test_kit::sipp`) with a scenario of `tests/sipp/`, over `transport`, for
/// `calls` calls, with `-key`s.
fn start_sipp(scenario: &str, transport: Transport, calls: u32, keys: &[(&str, &str)]) -> Sipp {
    let mode = match transport {
        Transport::Udp => SippTransport::Udp,
        Transport::Tcp => SippTransport::Tcp,
        Transport::Tls => panic!("this SIPp build has no TLS; use kamailio as a TLS front"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let mut builder = Sipp::builder(path).transport(mode).calls(calls);
    for (k, v) in keys {
        builder = builder.key(k, v);
    }
    builder.start()
}

fn settings(transport: Transport, registrar: String) -> SipSettings {
    let mut s = SipSettings::new(transport, registrar, DOMAIN, USER, PASSWORD);
    s.auth_user = Some(AUTH_USER.into());
    s.transaction_timeout = Duration::from_secs(8);
    s
}

/// Starts the agent; SIPp may still be opening its socket, so a refused TCP connection is
/// retried for a few seconds.
async fn start(settings: SipSettings) -> (SipAgent, tokio::sync::mpsc::Receiver<InboundMessage>) {
    let mut last = None;
    for _ in 0..40 {
        match SipAgent::start(settings.clone()).await {
            Ok(started) => return started,
            Err(e @ SipError::Transport { .. }) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("registration failed: {e}"),
        }
    }
    panic!("could not reach sipp: {last:?}");
}

const MRQ: &str = "<mrq><ref>A1b2C3d4</ref><cid>123456</cid><dty>0005</dty></mrq>";

async fn registers_sends_and_receives(transport: Transport) {
    let sipp = start_sipp(
        "centre.xml",
        transport,
        2,
        &[
            ("auth_user", AUTH_USER),
            ("auth_pass", PASSWORD),
            ("target_user", USER),
        ],
    );
    let (agent, mut inbound) = start(settings(transport, sipp.address())).await;
    assert!(matches!(
        *agent.registration().borrow(),
        hearth_sip::RegistrationState::Registered { expires } if expires == Duration::from_secs(3600)
    ));

    let answer = agent
        .send_message("sip:arc@arc.test", "application/scaip+xml", MRQ.as_bytes())
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.is_success());

    let mrs = tokio::time::timeout(Duration::from_secs(20), inbound.recv())
        .await
        .expect("the centre's MESSAGE did not arrive")
        .expect("inbound channel closed");
    assert_eq!(mrs.content_type.as_deref(), Some("application/scaip+xml"));
    // SIPp ends the body it sends with CRLF.
    assert_eq!(
        String::from_utf8_lossy(&mrs.body).trim_end(),
        "<mrs><ref>A1b2C3d4</ref><snu>0</snu></mrs>"
    );
    assert_eq!(mrs.to, format!("sip:{USER}@{DOMAIN}"));
    assert!(mrs.from.starts_with("sip:arc@"), "{mrs:?}");
    assert_eq!(agent.refused_messages(), 0);
    sipp.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_sends_a_message_and_takes_the_centres_message_over_udp() {
    registers_sends_and_receives(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_sends_a_message_and_takes_the_centres_message_over_tcp() {
    registers_sends_and_receives(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_another_user_is_refused_and_not_delivered() {
    let sipp = start_sipp(
        "centre_wrong_user.xml",
        Transport::Udp,
        2,
        &[
            ("auth_user", AUTH_USER),
            ("auth_pass", PASSWORD),
            ("target_user", "somebody-else"),
        ],
    );
    let (agent, mut inbound) = start(settings(Transport::Udp, sipp.address())).await;
    let answer = agent
        .send_message("sip:arc@arc.test", "application/scaip+xml", MRQ.as_bytes())
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    // SIPp passes only if its MESSAGE to somebody-else got our 404.
    sipp.assert_passed().await;
    assert_eq!(agent.refused_messages(), 1);
    assert!(
        inbound.try_recv().is_err(),
        "a MESSAGE to another user must not be delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_nobody_answers_fails_with_a_timeout() {
    let sipp = start_sipp("silent_centre.xml", Transport::Udp, 2, &[]);
    let mut s = settings(Transport::Udp, sipp.address());
    // Timer F short, so the test is quick; nothing is asserted about elapsed time.
    s.transaction_timeout = Duration::from_secs(2);
    let (agent, _inbound) = start(s).await;
    let e = agent
        .send_message("sip:arc@arc.test", "application/scaip+xml", MRQ.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(e, SipError::Timeout { ref method, .. } if method == "MESSAGE"),
        "{e}"
    );
    assert!(e.to_string().contains("Timer F"), "{e}");
    sipp.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_challenge_with_the_same_nonce_is_a_credentials_error_not_a_loop() {
    let sipp = start_sipp("challenges_twice.xml", Transport::Udp, 1, &[]);
    let e = match SipAgent::start(settings(Transport::Udp, sipp.address())).await {
        Ok(_) => panic!("registration must fail"),
        Err(e) => e,
    };
    assert!(
        matches!(e, SipError::Credentials { status: 401, ref realm, ref user, .. } if realm == "arc.test" && user == AUTH_USER),
        "{e}"
    );
    assert!(!e.is_transient());
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    sipp.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_sipps_digest_check() {
    // The same centre as above; SIPp's <verifyauth> must reject the digest of a wrong password,
    // which shows that the passing tests above really had their Digest checked.
    let sipp = start_sipp(
        "centre.xml",
        Transport::Udp,
        2,
        &[
            ("auth_user", AUTH_USER),
            ("auth_pass", PASSWORD),
            ("target_user", USER),
        ],
    );
    let mut s = settings(Transport::Udp, sipp.address());
    s.password = "wrong horse".into();
    let e = match SipAgent::start(s).await {
        Ok(_) => panic!("registration must fail"),
        Err(e) => e,
    };
    assert!(
        matches!(e, SipError::RegistrationRefused { status: 403, .. }),
        "{e}"
    );
    // `wait` panics if sipp does not stop (its 30 s hang guard, plus a margin).
    let exit = sipp.wait().await;
    assert!(!exit.status.success(), "sipp accepted a wrong digest");
}

/// A TLS front for SIPp (whose Debian build has no TLS): accepts TLS with the test PKI's server
/// certificate, requires a client certificate signed by its CA (mutual TLS), and relays the bytes
/// to SIPp's TCP port. Returns its port and whether a client certificate was seen.
async fn tls_front(
    pki: &Path,
    upstream: u16,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client_cert_seen = Arc::new(AtomicBool::new(false));
    let seen = client_cert_seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if tls.get_ref().1.peer_certificates().is_some() {
                    seen.store(true, Ordering::SeqCst);
                }
                // SIPp may still be opening its port.
                let mut up = None;
                for _ in 0..50 {
                    match tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        Ok(s) => {
                            up = Some(s);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                let Some(mut up) = up else {
                    return;
                };
                tokio::io::copy_bidirectional(&mut tls, &mut up).await.ok();
            });
        }
    });
    (port, client_cert_seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_sends_and_receives_over_mutual_tls_with_the_hearth_tls_client() {
    let pki = tempfile::tempdir().unwrap();
    hearth_test_kit::pki::pki(pki.path());
    let sipp = start_sipp(
        "centre.xml",
        Transport::Tcp,
        2,
        &[
            ("auth_user", AUTH_USER),
            ("auth_pass", PASSWORD),
            ("target_user", USER),
        ],
    );
    let (port, client_cert_seen) = tls_front(pki.path(), sipp.port()).await;
    let mut s = settings(Transport::Tls, format!("127.0.0.1:{port}"));
    // The name the centre's certificate must carry (the test PKI's has localhost and 127.0.0.1).
    s.tls_server_name = Some("localhost".into());
    s.tls = Some(hearth_sip::TlsFiles {
        ca_file: Some(pki.path().join("ca.pem")),
        client_cert: Some(pki.path().join("client.pem")),
        client_key: Some(pki.path().join("client.key")),
    });
    let (agent, mut inbound) = start(s).await;
    assert!(client_cert_seen.load(std::sync::atomic::Ordering::SeqCst));
    let answer = agent
        .send_message("sip:arc@arc.test", "application/scaip+xml", MRQ.as_bytes())
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let mrs = tokio::time::timeout(Duration::from_secs(20), inbound.recv())
        .await
        .expect("the centre's MESSAGE did not arrive over TLS")
        .expect("inbound channel closed");
    assert!(
        String::from_utf8_lossy(&mrs.body).contains("<ref>A1b2C3d4</ref>"),
        "{mrs:?}"
    );
    sipp.assert_passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_centre_certificate_from_an_unknown_ca_is_refused() {
    let pki = tempfile::tempdir().unwrap();
    hearth_test_kit::pki::pki(pki.path());
    // Nothing behind the front: the handshake fails before any SIP.
    let (port, _) = tls_front(pki.path(), free_port(SippTransport::Tcp)).await;
    let mut s = settings(Transport::Tls, format!("127.0.0.1:{port}"));
    s.tls = Some(hearth_sip::TlsFiles {
        // A certificate, but not the CA that signed the front's.
        ca_file: Some(pki.path().join("client.pem")),
        client_cert: Some(pki.path().join("client.pem")),
        client_key: Some(pki.path().join("client.key")),
    });
    let e = match SipAgent::start(s).await {
        Ok(_) => panic!("an unverified centre must be refused"),
        Err(e) => e,
    };
    assert!(
        matches!(e, SipError::Transport { ref reason, .. } if reason.contains("TLS handshake failed")),
        "{e}"
    );
}
