//! Why the agent could not do what was asked; each message says what failed, where, and what to do.

use std::time::Duration;

/// An error of the SIP agent.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A setting cannot work (empty user, malformed address, TLS files unusable, ...).
    #[error("SIP settings: {0}")]
    Settings(String),

    /// A host name did not resolve.
    #[error("SIP: cannot resolve the {what} {target}: {reason}; check the name and the DNS setup")]
    Resolve {
        /// `registrar` or `outbound proxy`.
        what: &'static str,
        /// The `host:port` as configured.
        target: String,
        /// The resolver's answer.
        reason: String,
    },

    /// The local socket could not be bound or the connection not opened.
    #[error("SIP {transport} transport to {peer}: {reason}")]
    Transport {
        /// `udp`, `tcp` or `tls`.
        transport: String,
        /// The remote (or local, for a bind) address.
        peer: String,
        /// What failed and what to do.
        reason: String,
    },

    /// No final answer within Timer F (RFC 3261 §17.1.2.2).
    #[error(
        "SIP {method} to {target}: no final answer within {timeout:?} (Timer F); the centre or the \
         network path is down, or a firewall drops SIP"
    )]
    Timeout {
        /// REGISTER or MESSAGE.
        method: String,
        /// The address the request went to.
        target: String,
        /// Timer F as configured.
        timeout: Duration,
    },

    /// The server refused our Digest credentials (a second challenge for the same nonce).
    #[error(
        "SIP {method} to {target}: the server refused the credentials of user {user:?} in realm \
         {realm:?} ({status}); check the user, auth_user and password"
    )]
    Credentials {
        /// REGISTER or MESSAGE.
        method: String,
        /// The address the request went to.
        target: String,
        /// The Digest username.
        user: String,
        /// The challenge's realm.
        realm: String,
        /// 401 or 407.
        status: u16,
    },

    /// The server asked for an authentication we refuse or do not know (Basic is forbidden by
    /// SS 91100 §8; only Digest with MD5 or SHA-256 is answered).
    #[error(
        "SIP {method} to {target}: the server challenged with {challenge:?}, which hearth does not \
         answer (Basic is forbidden; only Digest MD5/SHA-256); the centre must offer Digest"
    )]
    UnsupportedChallenge {
        /// REGISTER or MESSAGE.
        method: String,
        /// The address the request went to.
        target: String,
        /// The scheme and algorithm offered.
        challenge: String,
    },

    /// The registrar answered REGISTER with a final error.
    #[error("SIP REGISTER at {target}: refused with {status} {reason}{hint}")]
    RegistrationRefused {
        /// The registrar address.
        target: String,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
        /// What to do, when the status tells.
        hint: String,
    },

    /// A URI given to the agent does not parse.
    #[error("SIP: {uri:?} is not a SIP URI ({reason}); give e.g. sip:arc@centre.example.net")]
    InvalidUri {
        /// What was given.
        uri: String,
        /// The parser's message.
        reason: String,
    },

    /// The agent was shut down.
    #[error("SIP agent is shut down")]
    ShutDown,

    /// The SIP stack failed in a way not covered above.
    #[error("SIP {context}: {reason}")]
    Stack {
        /// What was being done.
        context: String,
        /// rsipstack's message.
        reason: String,
    },
}

impl SipError {
    pub(crate) fn stack(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        SipError::Stack {
            context: context.into(),
            reason: e.to_string(),
        }
    }

    /// Whether trying again later can help (the network, the server's state), as opposed to a
    /// setting or credential that must be changed first.
    pub fn is_transient(&self) -> bool {
        match self {
            SipError::Resolve { .. }
            | SipError::Transport { .. }
            | SipError::Timeout { .. }
            | SipError::Stack { .. } => true,
            SipError::RegistrationRefused { status, .. } => *status >= 500 || *status == 408,
            SipError::Settings(_)
            | SipError::Credentials { .. }
            | SipError::UnsupportedChallenge { .. }
            | SipError::InvalidUri { .. }
            | SipError::ShutDown => false,
        }
    }
}
