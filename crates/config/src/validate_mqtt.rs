//! Validation of `[mqtt]`, `[source.zigbee2mqtt]` (with its rules) and `[source.external]`.

use std::collections::HashMap;
use std::time::Duration;

use crate::checker::Checker;
use crate::locate::KeyPath;
use crate::schema::{
    ExternalConfig, Hours, MqttConfig, RuleConfig, RuleEmit, RuleValue, SEVERITIES,
    Zigbee2mqttConfig,
};

/// A topic segment list without wildcards, empty levels or a leading/trailing `/`.
pub(crate) fn bad_topic(t: &str, key: &str) -> Option<String> {
    if t.is_empty() {
        return Some(format!("{key} must not be empty"));
    }
    if t.contains(['#', '+']) {
        return Some(format!(
            "{key} \"{t}\" contains an MQTT wildcard ('#' or '+'); give the literal prefix"
        ));
    }
    if t.starts_with('/') || t.ends_with('/') || t.contains("//") {
        return Some(format!(
            "{key} \"{t}\" has an empty topic level; remove the leading, trailing or doubled '/'"
        ));
    }
    None
}

fn is_snake(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Checker<'_, '_> {
    pub(crate) fn check_mqtt(&mut self, m: &MqttConfig) {
        let path = KeyPath::root().key("mqtt");
        if m.host.trim().is_empty() {
            self.fail(
                path.key("host"),
                "host must not be empty; use \"localhost\" for the box's own broker".into(),
            );
        }
        if m.port == 0 {
            self.fail(
                path.key("port"),
                "port 0 is not a broker port; use 1883 (or 8883 with tls = true)".into(),
            );
        }
        let id = &m.client_id;
        if id.is_empty()
            || id.len() > 40
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            self.fail(
                path.key("client_id"),
                format!("invalid client_id \"{id}\": use 1 to 40 of A-Z, a-z, 0-9, '.', '_', '-'"),
            );
        }
        if m.password_file.is_some() && m.username.is_none() {
            self.fail(
                path.key("password_file"),
                "password_file needs username; set both or neither".into(),
            );
        }
        if m.client_cert.is_some() != m.client_key.is_some() {
            let at = self.pick(&[path.key("client_cert"), path.key("client_key")]);
            self.fail(
                at,
                "client_cert and client_key go together (mutual TLS); set both or neither".into(),
            );
        }
        let ka = m.keep_alive.get();
        if ka < Duration::from_secs(5) || ka > Duration::from_secs(65_535) {
            self.fail(
                path.key("keep_alive"),
                format!(
                    "keep_alive {} is out of range; use 5s..=65535s",
                    m.keep_alive
                ),
            );
        }
        self.positive(
            m.reconnect_initial.get(),
            path.key("reconnect_initial"),
            "reconnect_initial",
        );
        if m.reconnect_initial > m.reconnect_max {
            let at = self.pick(&[path.key("reconnect_max"), path.key("reconnect_initial")]);
            self.fail(
                at,
                format!(
                    "reconnect_initial ({}) must not be longer than reconnect_max ({})",
                    m.reconnect_initial, m.reconnect_max
                ),
            );
        }
        if !(1..=65_535).contains(&m.max_pending) {
            self.fail(
                path.key("max_pending"),
                format!(
                    "max_pending {} is out of range; use 1..=65535",
                    m.max_pending
                ),
            );
        }
    }

    pub(crate) fn check_zigbee2mqtt(&mut self, z: &Zigbee2mqttConfig, path: &KeyPath) {
        if let Some(msg) = bad_topic(&z.base_topic, "base_topic") {
            self.fail(path.key("base_topic"), msg);
        }
        self.positive(
            z.offline_after.get(),
            path.key("offline_after"),
            "offline_after",
        );
        if z.low_battery_percent > 100 {
            self.fail(
                path.key("low_battery_percent"),
                format!(
                    "low_battery_percent {} is out of range; use 0..=100 (0 = never alarm)",
                    z.low_battery_percent
                ),
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, d) in z.devices.iter().enumerate() {
            let p = path.key("device").index(i);
            if d.name.trim().is_empty() {
                self.fail(
                    p.key("name"),
                    "name must not be empty; use the zigbee2mqtt friendly name or IEEE address"
                        .into(),
                );
            } else if let Some(&first) = names.get(d.name.as_str()) {
                self.fail(
                    p.key("name"),
                    format!(
                        "duplicate sensor \"{}\" (first at device[{first}]); list each sensor once",
                        d.name
                    ),
                );
            } else {
                names.insert(&d.name, i);
            }
            if d.role.is_safety() && (d.name.contains(['+', '#']) || d.name.starts_with('/')) {
                self.fail(
                    p.key("name"),
                    format!(
                        "a device with role \"{}\" is subscribed by its name, which must be the \
                         zigbee2mqtt friendly name without `+`, `#` or a leading `/`",
                        d.role
                    ),
                );
            }
            if d.person.as_deref().is_some_and(|p| p.trim().is_empty()) {
                self.fail(
                    p.key("person"),
                    "person must not be empty; leave it out if the sensor has no person".into(),
                );
            }
        }
        for (i, rule) in z.rules.iter().enumerate() {
            self.check_rule(rule, &path.key("rule").index(i));
        }
    }

    /// Checks one rule; `path` is `…rule[i]`. Also used for the shipped rules file.
    pub(crate) fn check_rule(&mut self, r: &RuleConfig, path: &KeyPath) {
        if r.property.trim().is_empty() {
            self.fail(
                path.key("property"),
                "property must not be empty; name the payload key, e.g. \"water_leak\"".into(),
            );
        }
        let emit = r.emit;
        match (&r.event_type, emit) {
            (None, RuleEmit::Ignore) => {}
            (None, _) => self.fail(
                path.key("type"),
                format!("emit = \"{emit}\" needs a type, e.g. type = \"water_leak\""),
            ),
            (Some(_), RuleEmit::Ignore) => self.fail(
                path.key("type"),
                "an ignore rule has no type; remove it".into(),
            ),
            (Some(t), _) if !is_snake(t) => self.fail(
                path.key("type"),
                format!("type \"{t}\" must be snake_case (a-z, 0-9, '_'), at most 64 characters"),
            ),
            _ => {}
        }
        let condition = matches!(emit, RuleEmit::Alarm | RuleEmit::Technical);
        let only = |key: &str, set: bool, allowed: bool, what: &str, this: &mut Self| {
            if set && !allowed {
                this.fail(
                    path.key(key),
                    format!("{key} only applies to {what} rules, not emit = \"{emit}\"; remove it"),
                );
            }
        };
        only(
            "when",
            r.when.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "below",
            r.below.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "above",
            r.above.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "for",
            r.for_.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "hours",
            r.hours.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "debounce",
            r.debounce.is_some(),
            condition,
            "alarm and technical",
            self,
        );
        only(
            "momentary",
            r.momentary,
            emit == RuleEmit::Alarm,
            "alarm",
            self,
        );
        only(
            "severity",
            r.severity.is_some(),
            emit == RuleEmit::Technical,
            "technical",
            self,
        );
        let obs = emit == RuleEmit::Observation;
        only("mdc", r.mdc.is_some(), obs, "observation", self);
        only("unit", r.unit.is_some(), obs, "observation", self);
        only("on_change", r.on_change, obs, "observation", self);

        if r.when.is_some() && (r.below.is_some() || r.above.is_some()) {
            self.fail(
                path.key("when"),
                "use either when or below/above, not both".into(),
            );
        }
        if let (Some(b), Some(a)) = (r.below, r.above) {
            if a >= b {
                self.fail(
                    path.key("above"),
                    format!(
                        "above = {a} and below = {b} can never both hold; an active range needs \
                         above < below"
                    ),
                );
            }
        }
        if let Some(RuleValue::AnyOf(list)) = &r.when {
            if list.is_empty() {
                self.fail(
                    path.key("when"),
                    "when = [] never matches; list at least one value".into(),
                );
            }
        }
        if let Some(RuleValue::Number(n)) = &r.when {
            if !n.is_finite() {
                self.fail(path.key("when"), "when must be a finite number".into());
            }
        }
        if r.momentary && r.for_.is_some() {
            self.fail(
                path.key("for"),
                "a momentary alarm has no duration; remove for (or momentary)".into(),
            );
        }
        if let Some(f) = r.for_ {
            self.positive(f.get(), path.key("for"), "for");
        }
        if let Some(h) = &r.hours {
            if let Err(msg) = Hours::parse(h) {
                self.fail(path.key("hours"), msg);
            }
        }
        if let Some(s) = &r.severity {
            if !SEVERITIES.contains(&s.as_str()) {
                self.fail(
                    path.key("severity"),
                    format!(
                        "unknown severity \"{s}\"; use one of {}",
                        SEVERITIES.join(", ")
                    ),
                );
            }
        }
        if let Some(u) = &r.unit {
            if u.trim().is_empty() || u.contains(char::is_whitespace) {
                self.fail(
                    path.key("unit"),
                    format!("unit \"{u}\" is not a UCUM code; e.g. \"Cel\", \"%\", \"lx\""),
                );
            }
        }
        if r.device.as_deref().is_some_and(|d| d.trim().is_empty()) {
            self.fail(
                path.key("device"),
                "device must not be empty; leave it out to match every sensor".into(),
            );
        }
    }

    pub(crate) fn check_external(&mut self, e: &ExternalConfig, path: &KeyPath) {
        if let Some(msg) = bad_topic(&e.topic_prefix, "topic_prefix") {
            self.fail(path.key("topic_prefix"), msg);
        }
        for (i, d) in e.drivers.iter().enumerate() {
            let ok = !d.is_empty()
                && d.len() <= 32
                && d.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
                });
            if !ok {
                self.fail(
                    path.key("drivers").index(i),
                    format!("driver id \"{d}\" must be 1 to 32 of a-z, 0-9, '_' and '-'"),
                );
            }
        }
    }
}

/// `[mqtt]` keys that only matter with TLS, set while `tls = false` (the broker is then reached
/// in plain text, which is probably not what was meant).
pub(crate) fn tls_keys_without_tls(m: &MqttConfig) -> Vec<&'static str> {
    if m.tls {
        return Vec::new();
    }
    [
        ("ca_file", m.ca_file.is_some()),
        ("client_cert", m.client_cert.is_some()),
        ("client_key", m.client_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

impl Checker<'_, '_> {
    /// `[route.fhir]`, `[route.pcd01]` and `[route.tls]` of `route` at `path` (`route[i]`).
    pub(crate) fn check_route_uplink(
        &mut self,
        route: &crate::schema::RouteConfig,
        path: &KeyPath,
    ) {
        use crate::schema::{FhirAuthKind, UplinkKind, is_loopback_host, url_scheme_host};
        let kind = route.uplink;

        match (&route.fhir, kind) {
            (Some(_), k) if k != UplinkKind::Fhir => {
                self.misplaced(path, ("route", "fhir"), ("uplink", "fhir"), &kind)
            }
            (None, UplinkKind::Fhir) => self.fail(
                path.key("fhir"),
                "uplink = \"fhir\" needs a [route.fhir] table with url = \"https://…\"".into(),
            ),
            (Some(f), _) => {
                let p = path.key("fhir");
                match url_scheme_host(&f.url) {
                    Some(("https", _)) => {}
                    Some(("http", host)) if is_loopback_host(host) => {}
                    Some(("http", _)) => self.fail(
                        p.key("url"),
                        format!(
                            "url \"{}\" is plain http to another host; health data leaves the \
                             box only over TLS: use https://",
                            f.url
                        ),
                    ),
                    _ => self.fail(
                        p.key("url"),
                        format!("url \"{}\" is not an http(s)://host[:port]/path URL", f.url),
                    ),
                }
                self.positive(f.timeout.get(), p.key("timeout"), "timeout");
                if f.patient.as_deref().is_some_and(|x| x.trim().is_empty()) {
                    self.fail(
                        p.key("patient"),
                        "patient must not be empty; leave it out or write Patient/<id> or \
                         <system>|<value>"
                            .into(),
                    );
                }
                let digits =
                    |v: &str, n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_digit());
                if let Some(o) = &f.organization
                    && !digits(o, 9)
                {
                    self.fail(
                        p.key("organization"),
                        format!("organization \"{o}\" is not a 9-digit organisation number"),
                    );
                }
                match &f.municipality {
                    Some(m) if !digits(m, 4) => self.fail(
                        p.key("municipality"),
                        format!("municipality \"{m}\" is not a 4-digit municipality number"),
                    ),
                    None if f.profile == crate::schema::FhirProfile::Pmd => self.fail(
                        p.key("municipality"),
                        "profile = \"pmd\" needs municipality (the 4-digit kommunenummer)".into(),
                    ),
                    _ => {}
                }
                if let Some(system) = &f.device_id_system {
                    let uri = ["urn:", "http://", "https://"]
                        .iter()
                        .any(|s| system.starts_with(s) && system.len() > s.len())
                        && !system.contains(char::is_whitespace)
                        && !system.contains('|');
                    if !uri {
                        self.fail(
                            p.key("device_id_system"),
                            format!(
                                "device_id_system \"{system}\" is not an identifier system URI; \
                                 write urn:oid:<your OID>.1 or an http(s):// URI your \
                                 organisation owns"
                            ),
                        );
                    }
                }
                let a = &f.auth;
                let ap = p.key("auth");
                match a.kind {
                    FhirAuthKind::None => {}
                    FhirAuthKind::Bearer => {
                        if a.token_file.is_none() {
                            self.fail(
                                ap.key("token_file"),
                                "kind = \"bearer\" needs token_file (a file whose first line is \
                                 the token)"
                                    .into(),
                            );
                        }
                    }
                    FhirAuthKind::Oauth2 => {
                        for (key, set) in [
                            ("token_url", a.token_url.is_some()),
                            ("client_id", a.client_id.is_some()),
                            ("private_key", a.private_key.is_some()),
                        ] {
                            if !set {
                                self.fail(
                                    ap.key(key),
                                    format!(
                                        "kind = \"oauth2\" needs {key} (client credentials with \
                                         a private_key_jwt assertion)"
                                    ),
                                );
                            }
                        }
                        if let Some(u) = &a.token_url
                            && !matches!(url_scheme_host(u), Some(("https", _)))
                            && !matches!(url_scheme_host(u), Some(("http", h)) if is_loopback_host(h))
                        {
                            self.fail(
                                ap.key("token_url"),
                                format!("token_url \"{u}\" must be an https:// URL"),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
        match (&route.pcd01, kind) {
            (Some(_), k) if k != UplinkKind::Pcd01 => {
                self.misplaced(path, ("route", "pcd01"), ("uplink", "pcd01"), &kind)
            }
            (None, UplinkKind::Pcd01) => self.fail(
                path.key("pcd01"),
                "uplink = \"pcd01\" needs a [route.pcd01] table with host and port".into(),
            ),
            (Some(m), _) => {
                let p = path.key("pcd01");
                if m.host.trim().is_empty() {
                    self.fail(p.key("host"), "host must not be empty".into());
                }
                if m.port == 0 {
                    self.fail(p.key("port"), "port 0 is not an MLLP port".into());
                }
                if !m.tls && !is_loopback_host(&m.host) {
                    self.fail(
                        p.key("tls"),
                        format!(
                            "tls = false to {}: health data leaves the box only over TLS; \
                             plain MLLP is allowed to a loopback address only",
                            m.host
                        ),
                    );
                }
                self.positive(m.timeout.get(), p.key("timeout"), "timeout");
                if let Some(patient) = &m.patient {
                    let bad_pair = patient
                        .split_once('|')
                        .is_some_and(|(sys, v)| sys.trim().is_empty() || v.trim().is_empty());
                    if patient.trim().is_empty()
                        || bad_pair
                        || patient.chars().any(char::is_control)
                    {
                        // The value is personal data: not repeated in the message.
                        self.fail(
                            p.key("patient"),
                            "patient must be <system>|<value> (e.g. \
                             urn:oid:2.16.578.1.12.4.1.4.1|<national identity number>), \
                             Patient/<id> or a local id, without control characters"
                                .into(),
                        );
                    }
                }
                for (key, value, max, what) in [
                    (
                        "profile",
                        &m.profile,
                        crate::schema_uplink::PCD01_PROFILE_COMPONENTS,
                        "entity^namespace^universal id^type",
                    ),
                    (
                        "universal_service",
                        &m.universal_service,
                        crate::schema_uplink::PCD01_SERVICE_COMPONENTS,
                        "code^text^coding system",
                    ),
                ] {
                    let Some(v) = value else { continue };
                    let parts: Vec<&str> = v.split('^').collect();
                    if parts.len() > max
                        || parts.first().is_none_or(|c| c.trim().is_empty())
                        || v.chars().any(char::is_control)
                    {
                        self.fail(
                            p.key(key),
                            format!(
                                "{key} = {v:?}: write {what} (up to {max} components separated \
                                 by ^, the first one not empty)"
                            ),
                        );
                    }
                }
                let max = crate::schema_uplink::PCD01_MAX_IN_FLIGHT;
                if !(1..=max).contains(&m.in_flight) {
                    self.fail(
                        p.key("in_flight"),
                        format!(
                            "in_flight = {}: messages in flight must be 1..={max} (1 = one at a time)",
                            m.in_flight
                        ),
                    );
                }
            }
            _ => {}
        }
        if let Some(t) = &route.tls {
            if !matches!(kind, UplinkKind::Fhir | UplinkKind::Pcd01) {
                self.misplaced(
                    path,
                    ("route", "tls"),
                    ("uplink", "fhir\" or \"pcd01"),
                    &kind,
                );
            }
            if t.client_cert.is_some() != t.client_key.is_some() {
                let at = self.pick(&[
                    path.key("tls").key("client_cert"),
                    path.key("tls").key("client_key"),
                ]);
                self.fail(
                    at,
                    "client_cert and client_key go together (mutual TLS); set both or neither"
                        .into(),
                );
            }
        }
    }
}
