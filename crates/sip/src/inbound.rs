//! Requests from the centre: a MESSAGE addressed to our AOR goes to the caller and is answered
//! 200; one addressed to anybody else is refused (SIS-TR 91102 §7.5) and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// A MESSAGE the centre sent to our AOR (e.g. the SCAIP `<mrs>`), already answered 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The From URI (the centre's identity), e.g. `sip:arc@centre.example.net`.
    pub from: String,
    /// The To URI (our AOR as the centre wrote it).
    pub to: String,
    /// The Content-Type header, e.g. `application/scaip+xml`.
    pub content_type: Option<String>,
    /// The body, as received.
    pub body: Vec<u8>,
}

/// What to do with one inbound request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A MESSAGE to us with a body: deliver, then 200.
    Deliver,
    /// A MESSAGE to another user: 404, counted.
    NotOurs,
    /// A MESSAGE to us without a body: 400.
    Empty,
    /// OPTIONS: 200 with Allow.
    Options,
    /// ACK: nothing to answer.
    Ignore,
    /// Anything else: 405 with Allow.
    NotAllowed,
}

/// Whether `req` is addressed to `user`: the Request-URI's user part or the To URI's user part
/// (user parts compare case-sensitively, RFC 3261 §19.1.4).
pub(crate) fn addressed_to(req: &Request, user: &str) -> bool {
    if req.uri.user() == Some(user) {
        return true;
    }
    req.to_header()
        .ok()
        .and_then(|to| to.uri().ok())
        .is_some_and(|uri| uri.user() == Some(user))
}

pub(crate) fn verdict(req: &Request, user: &str) -> Verdict {
    match req.method {
        Method::Message if !addressed_to(req, user) => Verdict::NotOurs,
        Method::Message if req.body.is_empty() => Verdict::Empty,
        Method::Message => Verdict::Deliver,
        Method::Options => Verdict::Options,
        Method::Ack => Verdict::Ignore,
        _ => Verdict::NotAllowed,
    }
}

fn uri_text(header: Result<rsipstack::sip::Uri, rsipstack::sip::Error>) -> String {
    header.map(|u| u.to_string()).unwrap_or_default()
}

fn message_of(req: &Request) -> InboundMessage {
    let content_type = req.headers.iter().find_map(|h| match h {
        Header::ContentType(ct) => Some(ct.value().trim().to_owned()),
        _ => None,
    });
    InboundMessage {
        from: uri_text(req.from_header().and_then(|f| f.uri())),
        to: uri_text(req.to_header().and_then(|t| t.uri())),
        content_type,
        body: req.body.clone(),
    }
}

fn allow() -> Header {
    Header::Allow(rsipstack::sip::Allow::new("MESSAGE, OPTIONS"))
}

/// Answers every server transaction the endpoint creates, until the endpoint stops.
pub(crate) async fn serve(
    mut incoming: TransactionReceiver,
    user: String,
    deliver: mpsc::Sender<InboundMessage>,
    refused: Arc<AtomicU64>,
) {
    while let Some(mut tx) = incoming.recv().await {
        let req = &tx.original;
        let verdict = verdict(req, &user);
        let (status, headers) = match verdict {
            Verdict::Deliver => {
                let message = message_of(req);
                let from = message.from.clone();
                match deliver.try_send(message) {
                    Ok(()) => {
                        info!(%from, "SIP MESSAGE received");
                        (StatusCode::OK, vec![])
                    }
                    Err(e) => {
                        // The centre resends its answer (SCAIP retries independently of SIP).
                        warn!(%from, error = %e, "SIP MESSAGE not taken (receiver full or gone); answered 503");
                        (StatusCode::ServiceUnavailable, vec![])
                    }
                }
            }
            Verdict::NotOurs => {
                let total = refused.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(
                    request_uri = %req.uri,
                    to = %uri_text(req.to_header().and_then(|t| t.uri())),
                    from = %uri_text(req.from_header().and_then(|f| f.uri())),
                    refused_total = total,
                    "SIP MESSAGE not addressed to our AOR; refused with 404"
                );
                (StatusCode::NotFound, vec![])
            }
            Verdict::Empty => (StatusCode::BadRequest, vec![]),
            Verdict::Options => (StatusCode::OK, vec![allow()]),
            Verdict::Ignore => continue,
            Verdict::NotAllowed => {
                debug!(method = %req.method, "SIP request refused with 405");
                (StatusCode::MethodNotAllowed, vec![allow()])
            }
        };
        if let Err(e) = tx.reply_with(status.clone(), headers, None).await {
            warn!(error = %e, %status, "SIP: cannot answer an inbound request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    fn request(method: &str, ruri: &str, to: &str, body: &str) -> Request {
        let text = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:arc@centre>;tag=1\r\nTo: <{to}>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\
             Content-Type: application/scaip+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("not a request"),
        }
    }

    #[test]
    fn a_message_to_our_contact_or_aor_is_delivered() {
        let r = request(
            "MESSAGE",
            "sip:unit@10.0.0.2:5060",
            "sip:unit@centre",
            "<mrs/>",
        );
        assert_eq!(verdict(&r, "unit"), Verdict::Deliver);
        let r = request("MESSAGE", "sip:10.0.0.2:5060", "sip:unit@centre", "<mrs/>");
        assert_eq!(verdict(&r, "unit"), Verdict::Deliver);
        let m = message_of(&r);
        assert_eq!(m.from, "sip:arc@centre");
        assert_eq!(m.to, "sip:unit@centre");
        assert_eq!(m.content_type.as_deref(), Some("application/scaip+xml"));
        assert_eq!(m.body, b"<mrs/>");
    }

    #[test]
    fn a_message_to_another_user_is_refused() {
        let r = request(
            "MESSAGE",
            "sip:other@10.0.0.2:5060",
            "sip:other@centre",
            "<mrs/>",
        );
        assert_eq!(verdict(&r, "unit"), Verdict::NotOurs);
        // User parts are case-sensitive.
        let r = request("MESSAGE", "sip:UNIT@10.0.0.2", "sip:UNIT@centre", "<mrs/>");
        assert_eq!(verdict(&r, "unit"), Verdict::NotOurs);
    }

    #[test]
    fn other_methods_are_not_delivered() {
        let r = request("MESSAGE", "sip:unit@h", "sip:unit@centre", "");
        assert_eq!(verdict(&r, "unit"), Verdict::Empty);
        let r = request("OPTIONS", "sip:unit@h", "sip:unit@centre", "");
        assert_eq!(verdict(&r, "unit"), Verdict::Options);
        let r = request("INFO", "sip:unit@h", "sip:unit@centre", "x");
        assert_eq!(verdict(&r, "unit"), Verdict::NotAllowed);
    }
}
