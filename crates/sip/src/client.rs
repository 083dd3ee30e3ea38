//! One client transaction with hearth's challenge policy: a 401/407 is answered once with
//! Digest (MD5 or SHA-256, never Basic); a second challenge is a credentials error unless the
//! server says the nonce was only stale (then twice more at most). Timer F and a lost connection
//! are told apart from a centre's answer by [`LocalMarker`].

use rsipstack::dialog::authenticate::{Credential, handle_client_authenticate};
use rsipstack::sip::headers::auth::{Algorithm, Scheme};
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Request, Response, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, MessageInspector};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};
use std::time::Duration;

use crate::SipError;

/// The header [`LocalMarker`] puts on responses the stack made up itself (Timer F's 408, a failed
/// stream write's 503); it never goes on the wire.
const LOCAL_MARK: &str = "X-Hearth-Local-Response";

/// Marks the responses rsipstack generates locally: they reach the transaction user with no source
/// address, while every response from the network has one.
pub(crate) struct LocalMarker;

impl MessageInspector for LocalMarker {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        msg
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        match (msg, from) {
            (SipMessage::Response(mut resp), None) => {
                resp.headers
                    .push(Header::Other(LOCAL_MARK.into(), "1".into()));
                SipMessage::Response(resp)
            }
            (msg, _) => msg,
        }
    }
}

fn is_local(resp: &Response) -> bool {
    resp.headers
        .iter()
        .any(|h| matches!(h, Header::Other(name, _) if name == LOCAL_MARK))
}

/// A challenge as far as the policy needs it.
#[derive(Debug)]
struct Challenge {
    digest: bool,
    algorithm: Option<Algorithm>,
    realm: String,
    nonce: String,
    stale: bool,
    shown: String,
}

fn read_challenge(resp: &Response) -> Option<Challenge> {
    let proxy = resp.status_code == StatusCode::ProxyAuthenticationRequired;
    let www = resp.www_authenticate_header();
    let pxy = resp.headers.iter().find_map(|h| match h {
        Header::ProxyAuthenticate(p) => Some(p),
        _ => None,
    });
    // The header rsipstack's handle_client_authenticate answers: by status code first.
    let (raw, typed) = match (proxy, www, pxy) {
        (true, _, Some(p)) | (false, None, Some(p)) => (
            p.value().to_owned(),
            p.typed()
                .ok()
                .map(|t| (t.scheme, t.algorithm, t.realm, t.nonce, t.stale)),
        ),
        (_, Some(w), _) => (
            w.value().to_owned(),
            w.typed()
                .ok()
                .map(|t| (t.scheme, t.algorithm, t.realm, t.nonce, t.stale)),
        ),
        (_, None, None) => return None,
    };
    let scheme_word = raw.split_whitespace().next().unwrap_or_default().to_owned();
    Some(match typed {
        Some((scheme, algorithm, realm, nonce, stale)) => Challenge {
            digest: matches!(scheme, Scheme::Digest),
            shown: match &algorithm {
                Some(a) => format!("{scheme_word} algorithm={a}"),
                None => scheme_word,
            },
            algorithm,
            realm,
            nonce,
            stale: stale.is_some_and(|s| s.trim_matches('"').eq_ignore_ascii_case("true")),
        },
        None => Challenge {
            digest: false,
            algorithm: None,
            realm: String::new(),
            nonce: String::new(),
            stale: false,
            shown: scheme_word,
        },
    })
}

/// Whether hearth answers this challenge at all (SS 91100 §8: Digest required, Basic forbidden).
fn acceptable(c: &Challenge) -> bool {
    c.digest
        && !c.nonce.is_empty()
        && matches!(
            c.algorithm,
            None | Some(Algorithm::Md5) | Some(Algorithm::Sha256)
        )
}

/// The final answer of a transaction and the CSeq it carried (after any challenge).
pub(crate) struct Outcome {
    pub response: Response,
    pub cseq: u32,
}

/// Sends `request` to `destination` (over `connection` when given) and waits for its final
/// answer, answering one Digest challenge.
pub(crate) async fn transact(
    endpoint: &EndpointInnerRef,
    request: Request,
    connection: Option<SipConnection>,
    destination: &SipAddr,
    credential: &Credential,
    timer_f: Duration,
) -> Result<Outcome, SipError> {
    let method = request.method.to_string();
    let target = destination.to_string();
    let context = format!("{method} to {target}");
    let mut seq = request
        .cseq_header()
        .and_then(|c| c.seq())
        .map_err(|e| SipError::stack(&context, e))?;
    let key = TransactionKey::from_request(&request, TransactionRole::Client)
        .map_err(|e| SipError::stack(&context, e))?;
    let mut tx = Transaction::new_client(key, request, endpoint.clone(), connection);
    tx.destination = Some(destination.clone());
    tx.send().await.map_err(|e| SipError::stack(&context, e))?;

    let mut answered_nonce: Option<String> = None;
    let mut stale_rounds = 0u8;
    loop {
        let Some(msg) = tx.receive().await else {
            return Err(SipError::Transport {
                transport: destination
                    .r#type
                    .map(|t| t.to_string().to_lowercase())
                    .unwrap_or_else(|| "udp".into()),
                peer: target,
                reason: format!(
                    "the {method} transaction ended without a final answer (the connection or the \
                     endpoint went away)"
                ),
            });
        };
        let SipMessage::Response(resp) = msg else {
            continue;
        };
        if is_local(&resp) {
            return Err(if resp.status_code == StatusCode::RequestTimeout {
                SipError::Timeout {
                    method,
                    target,
                    timeout: timer_f,
                }
            } else {
                SipError::Transport {
                    transport: destination
                        .r#type
                        .map(|t| t.to_string().to_lowercase())
                        .unwrap_or_else(|| "udp".into()),
                    peer: target,
                    reason: format!(
                        "sending {method} failed ({}); the connection is closed, hearth opens a \
                         new one on the next attempt",
                        resp.status_code
                    ),
                }
            });
        }
        let code = resp.status_code.code();
        if code < 200 {
            continue;
        }
        if code != 401 && code != 407 {
            return Ok(Outcome {
                response: resp,
                cseq: seq,
            });
        }
        let Some(challenge) = read_challenge(&resp) else {
            return Err(SipError::stack(
                &context,
                format!("{code} without a WWW-Authenticate or Proxy-Authenticate header"),
            ));
        };
        if let Some(previous) = &answered_nonce {
            let fresh_stale = challenge.stale && challenge.nonce != *previous;
            if !fresh_stale || stale_rounds >= 2 {
                return Err(SipError::Credentials {
                    method,
                    target,
                    user: credential.digest_username().to_owned(),
                    realm: challenge.realm,
                    status: code,
                });
            }
            stale_rounds += 1;
        }
        if !acceptable(&challenge) {
            return Err(SipError::UnsupportedChallenge {
                method,
                target,
                challenge: challenge.shown,
            });
        }
        seq += 1;
        tx = handle_client_authenticate(seq, &tx, resp, credential)
            .await
            .map_err(|e| SipError::stack(&context, e))?;
        tx.send().await.map_err(|e| SipError::stack(&context, e))?;
        answered_nonce = Some(challenge.nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, header: &str) -> Response {
        let text = format!(
            "SIP/2.0 {status} Challenge\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:u@d>;tag=1\r\nTo: <sip:u@d>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
             {header}\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => panic!("not a response"),
        }
    }

    #[test]
    fn an_md5_digest_challenge_is_answered() {
        let r = response(
            401,
            "WWW-Authenticate: Digest realm=\"arc\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"",
        );
        let c = read_challenge(&r).unwrap();
        assert!(acceptable(&c), "{c:?}");
        assert_eq!(c.nonce, "abc");
        assert_eq!(c.realm, "arc");
    }

    #[test]
    fn a_basic_challenge_is_refused() {
        let r = response(401, "WWW-Authenticate: Basic realm=\"arc\"");
        let c = read_challenge(&r).unwrap();
        assert!(!acceptable(&c), "{c:?}");
        assert!(c.shown.starts_with("Basic"), "{c:?}");
    }

    #[test]
    fn a_proxy_challenge_is_read_from_proxy_authenticate() {
        let r = response(
            407,
            "Proxy-Authenticate: Digest realm=\"sbc\", nonce=\"n1\", stale=true",
        );
        let c = read_challenge(&r).unwrap();
        assert!(acceptable(&c), "{c:?}");
        assert!(c.stale);
        assert_eq!(c.realm, "sbc");
    }

    #[test]
    fn an_md5_sess_challenge_is_refused() {
        let r = response(
            401,
            "WWW-Authenticate: Digest realm=\"arc\", nonce=\"abc\", algorithm=MD5-sess",
        );
        assert!(!acceptable(&read_challenge(&r).unwrap()));
    }
}
