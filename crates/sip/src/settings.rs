//! What the agent needs to know: where the centre is, who we are, how to reach it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hearth_tls::TlsFiles;

/// The SIP transport to the registrar (and every request after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: one socket, bound to `local_bind`, that also receives the centre's requests.
    Udp,
    /// TCP: one connection to the registrar (or outbound proxy), reused by the centre.
    Tcp,
    /// TLS over TCP, with the client setup of `hearth-tls` (operator CA or system store, mTLS).
    Tls,
}

impl Transport {
    pub(crate) fn rsip(self) -> rsipstack::sip::Transport {
        match self {
            Transport::Udp => rsipstack::sip::Transport::Udp,
            Transport::Tcp => rsipstack::sip::Transport::Tcp,
            Transport::Tls => rsipstack::sip::Transport::Tls,
        }
    }

    pub(crate) fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// The settings of one SIP account at one centre. `Debug` never shows the password.
#[derive(Clone)]
pub struct SipSettings {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// The registrar, `host:port` (a name or an IP address); requests also go here unless
    /// `outbound_proxy` is set.
    pub registrar: String,
    /// Every request goes to this `host:port` instead of the registrar (an SBC in front of the
    /// centre); the headers still name `domain`.
    pub outbound_proxy: Option<String>,
    /// The SIP domain of our AOR and of the REGISTER Request-URI, e.g. `arc.example.net`.
    pub domain: String,
    /// The user part of our AOR (`sip:user@domain`); inbound MESSAGEs must be addressed to it.
    pub user: String,
    /// The Digest username when it is not `user` (an "authentication id").
    pub auth_user: Option<String>,
    /// The Digest password. Never logged.
    pub password: String,
    /// The local address to bind (UDP) or to connect from (TCP/TLS). `None` = the local address
    /// that routes to the registrar, with a port the system picks (never 0.0.0.0).
    pub local_bind: Option<SocketAddr>,
    /// The registration lifetime we ask for; the registrar may grant less (we refresh at 3/4 of
    /// what it granted).
    pub register_expires: Duration,
    /// TLS client files (CA, client certificate); only for [`Transport::Tls`]. `None` = the
    /// system trust store, no client certificate.
    pub tls: Option<TlsFiles>,
    /// The server name the TLS certificate must carry; `None` = the registrar's (or outbound
    /// proxy's) host name.
    pub tls_server_name: Option<String>,
    /// RFC 3261 Timer F/B (64·T1): how long a request waits for a final answer before it fails
    /// with [`crate::SipError::Timeout`]. Default 32 s.
    pub transaction_timeout: Duration,
    /// The longest wait between two registration attempts after failures (the wait doubles from
    /// 1 s up to this).
    pub max_retry_backoff: Duration,
    /// Capacity of the inbound MESSAGE channel; a MESSAGE that finds it full is answered 503 so
    /// the centre sends it again.
    pub inbound_capacity: usize,
    /// The User-Agent header.
    pub user_agent: String,
}

impl SipSettings {
    /// Settings with the defaults: no outbound proxy, `auth_user` = `user`, local address from the
    /// route, 3600 s registrations, Timer F 32 s, backoff up to 60 s.
    pub fn new(
        transport: Transport,
        registrar: impl Into<String>,
        domain: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        SipSettings {
            transport,
            registrar: registrar.into(),
            outbound_proxy: None,
            domain: domain.into(),
            user: user.into(),
            auth_user: None,
            password: password.into(),
            local_bind: None,
            register_expires: Duration::from_secs(3600),
            tls: None,
            tls_server_name: None,
            transaction_timeout: Duration::from_secs(32),
            max_retry_backoff: Duration::from_secs(60),
            inbound_capacity: 64,
            user_agent: format!("hearth/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Our address of record, `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// The Digest username: `auth_user` if set and not empty, else `user`.
    pub fn digest_user(&self) -> &str {
        match self.auth_user.as_deref() {
            Some(u) if !u.is_empty() => u,
            _ => &self.user,
        }
    }
}

impl fmt::Debug for SipSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipSettings")
            .field("transport", &self.transport)
            .field("registrar", &self.registrar)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("auth_user", &self.auth_user)
            .field("password", &"<redacted>")
            .field("local_bind", &self.local_bind)
            .field("register_expires", &self.register_expires)
            .field("tls", &self.tls)
            .field("tls_server_name", &self.tls_server_name)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("max_retry_backoff", &self.max_retry_backoff)
            .field("inbound_capacity", &self.inbound_capacity)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let s = SipSettings::new(
            Transport::Udp,
            "127.0.0.1:5060",
            "example.net",
            "u",
            "hunter2",
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn the_digest_user_defaults_to_the_aor_user() {
        let mut s = SipSettings::new(Transport::Udp, "h:1", "example.net", "unit", "p");
        assert_eq!(s.digest_user(), "unit");
        assert_eq!(s.aor(), "sip:unit@example.net");
        s.auth_user = Some(String::new());
        assert_eq!(s.digest_user(), "unit");
        s.auth_user = Some("auth-id".into());
        assert_eq!(s.digest_user(), "auth-id");
    }
}
