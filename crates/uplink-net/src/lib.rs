//! # hearth-uplink-net
//!
//! hearth's two network receivers behind the [`hearth_uplink::Uplink`] trait:
//! - [`FhirUplink`]: FHIR R4 transaction Bundles (encoded by `hearth-uplink-fhir`) POSTed over
//!   HTTP/1.1 + TLS (mutual TLS optional) on one keep-alive connection, with no auth, a static
//!   bearer token, or OAuth2 client credentials with a `private_key_jwt` assertion.
//! - [`MllpUplink`]: IHE PCD-01 ORU^R01 messages (encoded by `hearth-uplink-pcd01`), one per
//!   reading so a resend is the same message (ADR 0007), pipelined over MLLP on one persistent
//!   TCP (+TLS) connection, each ACK matched to its message by MSA-2.
//! - [`ScaipHttps`]: safety alarms as SCAIP `<mrq>` bodies POSTed over HTTPS, the centre's
//!   `<mrs>` in the answer (the open specification `docs/protocols/scaip-https.md`, B4), behind
//!   [`hearth_uplink_scaip::AlarmProtocol`] so the alarm session drives it like SCAIP over SIP.
//!
//! Every TLS connection is set up by [`hearth_tls::client_config`] (rustls + ring,
//! TLS 1.2/1.3, operator CA or system store, client certificates).
//!
//! ## What becomes of a batch
//! `deliver` answers exactly one [`Outcome`](hearth_uplink::Outcome) per record, in order, or
//! an [`UplinkError`](hearth_uplink::UplinkError) when the whole batch is to be retried
//! (connection failure, timeout, 5xx/408/429 with `Retry-After`, garbage reply). Records the
//! encoder or the receiver refuses for good are `Rejected` with the reason (→ dead letters). See
//! `UPLINKS.md` for the full tables.
#![forbid(unsafe_code)]

mod auth;
mod fhir;
mod http;
mod mllp;
mod net;
mod scaip_https;
mod scaip_sip;

pub use auth::{Auth, OAuth2};
pub use fhir::{FhirSettings, FhirUplink};
pub use hearth_uplink_scaip::xml::CONTENT_TYPE as SCAIP_CONTENT_TYPE;
pub use http::{MAX_RETRY_AFTER, parse_retry_after};
pub use mllp::{DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT, MllpSettings, MllpUplink};
pub use scaip_https::{MAX_HOLD_OFF, SCAIP_PATH, ScaipHttps, ScaipHttpsSettings};
pub use scaip_sip::{InboundCounters, ScaipSip};

/// An uplink cannot be built from its settings; the message names the setting and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A URL, host or server name is not usable.
    #[error("{key}: {message}")]
    Address {
        /// The setting.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] hearth_tls::TlsError),
    /// The auth settings cannot be used.
    #[error("{key}: {message}")]
    Auth {
        /// The setting.
        key: String,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn tls_config(
    files: &hearth_tls::TlsFiles,
    table: &str,
) -> Result<rustls::ClientConfig, SetupError> {
    Ok(hearth_tls::client_config(files, table)?)
}
