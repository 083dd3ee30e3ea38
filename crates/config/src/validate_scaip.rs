//! Validation of `[route.scaip]`: the account, the session timing, the receivers in order,
//! the device profiles and the technical codes.

use std::collections::HashSet;
use std::time::Duration;

use crate::checker::Checker;
use crate::locate::KeyPath;
use crate::schema::{
    RouteConfig, ScaipProtocol, ScaipReceiverConfig, ScaipRouteConfig, SipTransportKind,
    UplinkKind, is_loopback_host, url_scheme_host,
};

impl Checker<'_, '_> {
    /// `[route.scaip]` on a route: required for `uplink = "scaip"`, refused elsewhere.
    pub(crate) fn check_scaip(&mut self, route: &RouteConfig, path: &KeyPath) {
        match (&route.scaip, route.uplink) {
            (Some(_), k) if k != UplinkKind::Scaip => {
                self.misplaced(path, ("route", "scaip"), ("uplink", "scaip"), &k)
            }
            (None, UplinkKind::Scaip) => self.fail(
                // On the uplink line: the table the operator has to add is not there to point at.
                path.key("uplink"),
                "uplink = \"scaip\" needs a [route.scaip] table with account = \"<digits>\" and \
                 at least one [[route.scaip.receiver]]"
                    .into(),
            ),
            (Some(s), _) => self.check_scaip_table(s, &path.key("scaip")),
            (None, _) => {}
        }
    }

    fn check_scaip_table(&mut self, s: &ScaipRouteConfig, p: &KeyPath) {
        let account = s.account.trim();
        if account.is_empty() || account.len() > 32 || !account.bytes().all(|b| b.is_ascii_digit())
        {
            self.fail(
                p.key("account"),
                format!(
                    "account \"{}\" is not 1 to 32 digits; write the home's account number at \
                     the response centre (SCAIP cid)",
                    s.account
                ),
            );
        }
        for (i, c) in s.callers.iter().enumerate() {
            let known = ["sip:", "sips:", "sip-pp:", "gsm:", "tel:", "no-voice:"];
            if !known.iter().any(|k| c.starts_with(k)) {
                self.fail(
                    p.key("callers").index(i),
                    format!(
                        "caller \"{c}\" has no known medium; start it with sip:, sips:, gsm:, \
                         tel: or no-voice:"
                    ),
                );
            }
        }
        self.positive(
            s.answer_timeout.get(),
            p.key("answer_timeout"),
            "answer_timeout",
        );
        self.positive(s.resend_every.get(), p.key("resend_every"), "resend_every");
        if s.resend_every.get() > s.answer_timeout.get() {
            self.fail(
                p.key("resend_every"),
                format!(
                    "resend_every {} is longer than answer_timeout {}; a silent receiver would \
                     get no resend before the next one is tried",
                    s.resend_every, s.answer_timeout
                ),
            );
        }
        if !(Duration::from_secs(5)..=Duration::from_secs(20)).contains(&s.hold_interval.get()) {
            self.fail(
                p.key("hold_interval"),
                format!(
                    "hold_interval {} is outside 5s..=20s, the resend pause SCAIP allows after \
                     a hold",
                    s.hold_interval
                ),
            );
        }
        if !(Duration::from_secs(180)..=Duration::from_secs(1800)).contains(&s.hold_budget.get()) {
            self.fail(
                p.key("hold_budget"),
                format!(
                    "hold_budget {} is outside 3m..=30m, how long SCAIP lets a centre hold an \
                     event",
                    s.hold_budget
                ),
            );
        }
        let hb = s.heartbeat.get();
        if !hb.is_zero() && !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&hb) {
            self.fail(
                p.key("heartbeat"),
                format!(
                    "heartbeat {} is outside 1m..=24h; write \"0s\" to turn it off",
                    s.heartbeat
                ),
            );
        }
        if s.receivers.is_empty() {
            self.fail(
                p.key("receiver"),
                "an alarm route needs at least one [[route.scaip.receiver]] (the primary \
                 response centre; alternatives follow in order)"
                    .into(),
            );
        }
        let mut names = HashSet::new();
        for (i, r) in s.receivers.iter().enumerate() {
            let rp = p.key("receiver").index(i);
            if r.name.trim().is_empty() {
                self.fail(rp.key("name"), "receiver name must not be empty".into());
            } else if !names.insert(r.name.as_str()) {
                self.fail(
                    rp.key("name"),
                    format!("receiver name \"{}\" is used twice in this route", r.name),
                );
            }
            self.check_scaip_receiver(r, &rp);
        }
        self.check_scaip_devices(s, p, &names);
        for (i, t) in s.technical.iter().enumerate() {
            let tp = p.key("technical").index(i);
            if t.kind.trim().is_empty() {
                self.fail(tp.key("kind"), "kind must not be empty".into());
            }
            if t.send && t.raised.is_none() {
                self.fail(
                    tp.key("raised"),
                    format!(
                        "technical kind \"{}\" is sent but has no raised status code; write \
                         raised = <stc> or send = false",
                        t.kind
                    ),
                );
            }
        }
    }

    fn check_scaip_devices(&mut self, s: &ScaipRouteConfig, p: &KeyPath, names: &HashSet<&str>) {
        let mut ids = HashSet::new();
        for (i, d) in s.devices.iter().enumerate() {
            let dp = p.key("device").index(i);
            if hearth_model::DeviceId::parse(&d.id).is_err() {
                self.fail(
                    dp.key("id"),
                    format!(
                        "device id \"{}\" is not scheme:value (e.g. zigbee:0x00158d0001a2b3c4)",
                        d.id
                    ),
                );
            } else if !ids.insert(d.id.as_str()) {
                self.fail(dp.key("id"), format!("device \"{}\" is listed twice", d.id));
            }
            if let Some(did) = &d.did
                && (did.is_empty() || did.len() > 16 || !did.bytes().all(|b| b.is_ascii_graphic()))
            {
                self.fail(
                    dp.key("did"),
                    format!("did \"{did}\" is not 1 to 16 printable ASCII characters"),
                );
            }
            if let Some(t) = &d.text
                && t.chars().count() > 32
            {
                self.fail(
                    dp.key("text"),
                    format!("text has {} characters; SCAIP allows 32", t.chars().count()),
                );
            }
            if d.priority.is_some_and(|n| n > 9) {
                self.fail(dp.key("priority"), "priority must be 0..=9".into());
            }
            for (j, r) in d.receivers.iter().flatten().enumerate() {
                if !names.contains(r.as_str()) {
                    self.fail(
                        dp.key("receivers").index(j),
                        format!("receiver \"{r}\" is not a [[route.scaip.receiver]] of this route"),
                    );
                }
            }
        }
    }

    fn check_scaip_receiver(&mut self, r: &ScaipReceiverConfig, rp: &KeyPath) {
        let only_for = |key: &str, protocol: &str| {
            format!("{key} only applies to protocol = \"{protocol}\"; remove it")
        };
        match r.protocol {
            ScaipProtocol::Sip => {
                for (key, set) in [
                    ("to", r.to.is_some()),
                    ("registrar", r.registrar.is_some()),
                    ("user", r.user.is_some()),
                    ("password_file", r.password_file.is_some()),
                ] {
                    if !set {
                        self.fail(
                            rp.key(key),
                            format!("a SIP receiver needs {key} (see docs/alarms.md)"),
                        );
                    }
                }
                if let Some(to) = &r.to
                    && !(to.starts_with("sip:") || to.starts_with("sips:"))
                {
                    self.fail(
                        rp.key("to"),
                        format!("to \"{to}\" is not a sip: or sips: address"),
                    );
                }
                if let Some(reg) = &r.registrar {
                    let host = registrar_host(reg);
                    if host.is_empty() {
                        self.fail(
                            rp.key("registrar"),
                            format!("registrar \"{reg}\" is not host[:port]"),
                        );
                    } else if r.transport != SipTransportKind::Tls
                        && !is_loopback_host(host)
                        && !r.insecure_transport
                    {
                        self.fail(
                            rp.key("transport"),
                            format!(
                                "transport \"{}\" to {host} sends alarms unencrypted; use tls, \
                                 or set insecure_transport = true if the network is private",
                                transport_name(r.transport)
                            ),
                        );
                    }
                }
                if r.register_expires.get() < Duration::from_secs(60) {
                    self.fail(
                        rp.key("register_expires"),
                        format!(
                            "register_expires {} is shorter than 60s",
                            r.register_expires
                        ),
                    );
                }
                for (key, set) in [
                    ("url", r.url.is_some()),
                    ("token_file", r.token_file.is_some()),
                ] {
                    if set {
                        self.fail(rp.key(key), only_for(key, "https"));
                    }
                }
            }
            ScaipProtocol::Https => {
                match r.url.as_deref().map(|u| (u, url_scheme_host(u))) {
                    None => self.fail(
                        rp.key("url"),
                        "an HTTPS receiver needs url = \"https://…\"".into(),
                    ),
                    Some((_, Some(("https", _)))) => {}
                    Some((_, Some(("http", host)))) if is_loopback_host(host) => {}
                    Some((u, _)) => self.fail(
                        rp.key("url"),
                        format!("url \"{u}\" is not an https://host[:port]/path URL"),
                    ),
                }
                for (key, set) in [
                    ("to", r.to.is_some()),
                    ("registrar", r.registrar.is_some()),
                    ("user", r.user.is_some()),
                    ("password_file", r.password_file.is_some()),
                    ("auth_user", r.auth_user.is_some()),
                    ("domain", r.domain.is_some()),
                    ("local_address", r.local_address.is_some()),
                ] {
                    if set {
                        self.fail(rp.key(key), only_for(key, "sip"));
                    }
                }
            }
        }
    }
}

/// The host of `host[:port]` or `[v6]:port`.
pub(crate) fn registrar_host(reg: &str) -> &str {
    let reg = reg.trim();
    if let Some(rest) = reg.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match reg.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => reg,
    }
}

fn transport_name(t: SipTransportKind) -> &'static str {
    match t {
        SipTransportKind::Tls => "tls",
        SipTransportKind::Tcp => "tcp",
        SipTransportKind::Udp => "udp",
    }
}
