//! After the centre closes the TCP connection, the agent opens a new one and registers again at
//! once (the registrar needs our contact on a live connection to reach us). The registrar here is
//! a few lines of test code: what is checked is our reaction to the close, not SIP interop
//! (tests/sipp.rs does that against SIPp).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hearth_sip::{RegistrationState, SipAgent, SipSettings, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One REGISTER as the registrar saw it.
#[derive(Debug)]
struct Seen {
    connection: u32,
    call_id: String,
    cseq: u32,
}

async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            // REGISTER has no body.
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Some(head);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .collect()
}

/// Answers every REGISTER 200 for `expires` seconds; with `close_first`, closes the first
/// connection right after its first answer.
async fn registrar(
    listener: TcpListener,
    seen: mpsc::UnboundedSender<Seen>,
    expires: u32,
    close_first: bool,
) {
    let mut number = 0;
    while let Ok((mut stream, _)) = listener.accept().await {
        number += 1;
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(head) = read_request(&mut stream).await {
                let value = |name: &str| {
                    header(&head, name)
                        .first()
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_owned())
                        .unwrap_or_default()
                };
                let cseq = value("CSeq");
                seen.send(Seen {
                    connection: number,
                    call_id: value("Call-ID"),
                    cseq: cseq
                        .split_whitespace()
                        .next()
                        .unwrap_or("0")
                        .parse()
                        .unwrap(),
                })
                .ok();
                let mut answer = String::from("SIP/2.0 200 OK\r\n");
                for name in ["Via", "From", "Call-ID", "CSeq"] {
                    for line in header(&head, name) {
                        answer.push_str(line);
                        answer.push_str("\r\n");
                    }
                }
                answer.push_str(&format!("{};tag=reg1\r\n", header(&head, "To")[0]));
                answer.push_str(&format!("Expires: {expires}\r\nContent-Length: 0\r\n\r\n"));
                stream.write_all(answer.as_bytes()).await.unwrap();
                if close_first && number == 1 {
                    // The centre restarts: the connection goes away.
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_followed_by_a_new_connection_and_registration() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(registrar(listener, seen_tx, 3600, true));

    let settings = SipSettings::new(Transport::Tcp, addr.to_string(), "arc.test", "unit17", "pw");
    let (agent, _inbound) = SipAgent::start(settings).await.unwrap();
    let first = seen.recv().await.unwrap();
    assert_eq!(first.connection, 1);

    let second = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("no REGISTER after the connection was closed")
        .unwrap();
    assert_eq!(second.connection, 2, "{second:?}");
    // A refresh of the same registration: same Call-ID, a higher CSeq (RFC 3261 §10.2.4).
    assert_eq!(second.call_id, first.call_id);
    assert!(second.cseq > first.cseq, "{first:?} {second:?}");

    let mut state = agent.registration();
    tokio::time::timeout(
        Duration::from_secs(20),
        state.wait_for(|s| matches!(s, RegistrationState::Registered { .. })),
    )
    .await
    .expect("not registered again")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_is_refreshed_before_it_expires() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    // The registrar grants 2 s (less than the 3600 s asked for): the refresh comes after 1.5 s.
    tokio::spawn(registrar(listener, seen_tx, 2, false));

    let settings = SipSettings::new(Transport::Tcp, addr.to_string(), "arc.test", "unit17", "pw");
    let (agent, _inbound) = SipAgent::start(settings).await.unwrap();
    assert_eq!(
        *agent.registration().borrow(),
        RegistrationState::Registered {
            expires: Duration::from_secs(2)
        }
    );
    let first = seen.recv().await.unwrap();
    let refresh = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("no refresh")
        .unwrap();
    assert_eq!(
        refresh.connection, first.connection,
        "the refresh reuses the connection"
    );
    assert_eq!(refresh.call_id, first.call_id);
    assert_eq!(refresh.cseq, first.cseq + 1);
}
