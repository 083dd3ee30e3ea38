//! hearth's SIP user agent for alarm receivers (SCAIP, SS 91100): it REGISTERs at the centre's
//! registrar with HTTP Digest (never Basic), keeps the registration fresh, sends MESSAGE requests
//! (RFC 3428) and hands every MESSAGE addressed to our AOR to the caller. It is body-agnostic:
//! the SCAIP XML is another crate's business.
//!
//! Built on rsipstack (ADR 0010): its transaction layer (retransmissions, Timer F), transports and
//! digest computation; this crate adds the registration loop, the challenge policy, the TLS
//! client from `hearth-tls` and the inbound filter.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hearth_sip::SipError> {
//! use hearth_sip::{SipAgent, SipSettings, Transport};
//! let settings = SipSettings::new(Transport::Tcp, "arc.example.net:5060", "arc.example.net", "unit17", "secret");
//! let (agent, mut inbound) = SipAgent::start(settings).await?;
//! let answer = agent
//!     .send_message("sip:arc@arc.example.net", "application/scaip+xml", b"<mrq>...</mrq>")
//!     .await?;
//! assert_eq!(answer.status, 200);
//! let mrs = inbound.recv().await; // the centre's <mrs>, in its own MESSAGE
//! # let _ = mrs; Ok(()) }
//! ```

mod agent;
mod client;
mod error;
mod inbound;
mod settings;

pub use agent::{MessageAnswer, RegistrationState, SipAgent};
pub use error::SipError;
pub use hearth_tls::TlsFiles;
pub use inbound::InboundMessage;
pub use settings::{SipSettings, Transport};
