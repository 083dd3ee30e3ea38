//! Semantic validation (ranges, uniqueness, cross-key rules, what this build implements) and the
//! warnings about configurations that run but probably do not do what was meant.
//!
//! Every rule is checked and every violation collected; they are reported in document order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_model::Category;

use crate::checker::Checker;
use crate::error::{ConfigError, ConfigWarning};
use crate::locate::{KeyPath, SourceMap};
use crate::schema::{
    BleBackendKind, BleSourceConfig, Config, GatewayConfig, RetryConfig, RetryOverride, SourceKind,
    UplinkKind,
};
use crate::units::ByteSize;

/// Checks `config` (parsed from the text behind `map`, if any) and returns its warnings.
pub(crate) fn validate(
    config: &Config,
    file: &Path,
    map: Option<&SourceMap<'_>>,
) -> Result<Vec<ConfigWarning>, ConfigError> {
    let mut c = Checker::new(map);
    c.check(config);
    if let Some(err) = c.into_error(file) {
        return Err(err);
    }
    Ok(warnings(config, file, map))
}

impl Checker<'_, '_> {
    fn check(&mut self, config: &Config) {
        let root = KeyPath::root();

        let gateway = root.key("gateway");
        let id = &config.gateway.id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            self.fail(
                gateway.key("id"),
                format!(
                    "invalid gateway id \"{id}\": use 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'"
                ),
            );
        }
        if let Some(eui) = &config.gateway.eui64 {
            if let Err(e) = hearth_model::GatewayId::parse(eui) {
                self.fail(gateway.key("eui64"), e.to_string());
            }
        }
        let data_dir = &config.gateway.data_dir;
        if !data_dir.is_absolute() {
            self.fail(
                gateway.key("data_dir"),
                format!(
                    "data_dir \"{}\" must be an absolute path (e.g. \"/var/lib/hearth\"); \
                     a relative one would depend on the daemon's working directory",
                    data_dir.display()
                ),
            );
        }

        if config.gateway.time_zone != GatewayConfig::SYSTEM_TIME_ZONE
            && jiff::tz::TimeZone::get(&config.gateway.time_zone).is_err()
        {
            self.fail(
                gateway.key("time_zone"),
                format!(
                    "unknown time zone \"{}\": use \"system\" (the box's /etc/localtime) or an \
                     IANA name from /usr/share/zoneinfo, e.g. \"Europe/Oslo\" (names are \
                     case-sensitive: Area/City)",
                    config.gateway.time_zone
                ),
            );
        }

        if config.log.level.trim().is_empty() {
            self.fail(
                root.key("log").key("level"),
                "log level must not be empty; use e.g. \"info\" or \"info,hearth_outbox=debug\""
                    .into(),
            );
        }

        let outbox = root.key("outbox");
        let o = &config.outbox;
        if o.max_bytes.bytes() < ByteSize::MIB {
            self.fail(
                outbox.key("max_bytes"),
                format!(
                    "max_bytes {} is below the minimum of 1 MiB; the outbox needs room to \
                     hold alarms while the link is down",
                    o.max_bytes
                ),
            );
        }
        if o.max_rows < 1000 {
            self.fail(
                outbox.key("max_rows"),
                format!("max_rows {} is below the minimum of 1000", o.max_rows),
            );
        }
        if !(1..=100_000).contains(&o.group_commit_max) {
            self.fail(
                outbox.key("group_commit_max"),
                format!(
                    "group_commit_max {} is out of range; use 1..=100000",
                    o.group_commit_max
                ),
            );
        }
        let retention = outbox.key("retention");
        for c in Category::ALL {
            if o.retention.for_category(c).get().is_zero() {
                self.fail(
                    retention.key(c.as_str()),
                    format!(
                        "retention of {c} must be longer than 0s, or every {c} record would be \
                         dropped at once"
                    ),
                );
            }
        }

        self.check_retry(&config.retry, &root.key("retry"), None);

        let sup = root.key("supervisor");
        let s = &config.supervisor;
        self.positive(
            s.restart_initial.get(),
            sup.key("restart_initial"),
            "restart_initial",
        );
        if s.restart_initial > s.restart_max {
            let at = self.pick(&[sup.key("restart_max"), sup.key("restart_initial")]);
            self.fail(
                at,
                format!(
                    "restart_initial ({}) must not be longer than restart_max ({})",
                    s.restart_initial, s.restart_max
                ),
            );
        }
        if s.crash_loop_restarts == 0 {
            self.fail(
                sup.key("crash_loop_restarts"),
                "crash_loop_restarts must be at least 1".into(),
            );
        }
        self.positive(
            s.crash_loop_window.get(),
            sup.key("crash_loop_window"),
            "crash_loop_window",
        );
        self.positive(
            s.stall_timeout.get(),
            sup.key("stall_timeout"),
            "stall_timeout",
        );

        self.check_mqtt(&config.mqtt);
        self.check_receipt(&config.receipt);
        self.check_routes(config);
        self.check_sources(config);
    }

    /// Checks a retry policy at `path`. For a route's `[route.retry]`, `over` is the override
    /// and `r` the merged policy: a rule is checked only when the override sets one of its keys
    /// (otherwise the global `[retry]` check already reported it), and points at the route's key.
    fn check_retry(&mut self, r: &RetryConfig, path: &KeyPath, over: Option<&RetryOverride>) {
        let sets = |k: &str| match over {
            None => true,
            Some(o) => match k {
                "initial" => o.initial.is_some(),
                "max" => o.max.is_some(),
                _ => o.jitter.is_some(),
            },
        };
        if r.initial.get().is_zero() && sets("initial") {
            self.fail(path.key("initial"), "initial must be longer than 0s".into());
        }
        if r.initial > r.max && (sets("initial") || sets("max")) {
            let mut keys = ["max", "initial"];
            if over.is_some() && !sets("max") {
                keys.reverse();
            }
            let p = self.pick(&keys.map(|k| path.key(k)));
            let from = if over.is_some() {
                " (merged with [retry])"
            } else {
                ""
            };
            self.fail(
                p,
                format!(
                    "initial ({}) must not be longer than max ({}){from}",
                    r.initial, r.max
                ),
            );
        }
        if !(0.0..=1.0).contains(&r.jitter) && sets("jitter") {
            self.fail(
                path.key("jitter"),
                format!("jitter {} is out of range; use 0.0..=1.0", r.jitter),
            );
        }
    }

    fn check_routes(&mut self, config: &Config) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut files: HashMap<PathBuf, usize> = HashMap::new();
        for (i, route) in config.routes.iter().enumerate() {
            let path = KeyPath::root().key("route").index(i);
            if let Some(msg) = bad_name(&route.name, "route") {
                self.fail(path.key("name"), msg);
            } else if let Some(&first) = names.get(route.name.as_str()) {
                let first_path = KeyPath::root().key("route").index(first).key("name");
                self.fail(
                    path.key("name"),
                    format!(
                        "duplicate route name \"{}\" (first used by route[{first}]{}); route \
                         names must be unique because delivery state is keyed by them",
                        route.name,
                        self.on_line(&first_path)
                    ),
                );
            } else {
                names.insert(&route.name, i);
            }

            if route.categories.is_empty() {
                self.fail(
                    path.key("categories"),
                    "a route needs at least one category: health, welfare or administrative".into(),
                );
            }
            for (j, c) in route.categories.iter().enumerate() {
                if route.categories[..j].contains(c) {
                    self.fail(
                        path.key("categories").index(j),
                        format!("category \"{c}\" is listed twice; list each category once"),
                    );
                }
            }

            if !route.uplink.is_available() {
                self.fail(
                    path.key("uplink"),
                    format!(
                        "uplink \"{}\" is not available in this build yet (arrives {}); \
                         use \"loopback\"",
                        route.uplink,
                        route.uplink.arrives()
                    ),
                );
            }
            self.check_route_uplink(route, &path);
            self.check_scaip(route, &path);
            if !(1..=10_000).contains(&route.batch_size) {
                self.fail(
                    path.key("batch_size"),
                    format!(
                        "batch_size {} is out of range; use 1..=10000",
                        route.batch_size
                    ),
                );
            }
            if let Some(n) = route.connections {
                if !(1..=16).contains(&n) {
                    self.fail(
                        path.key("connections"),
                        format!("connections {n} is out of range; use 1..=16"),
                    );
                } else if n > 1 && route.uplink == UplinkKind::Loopback {
                    self.fail(
                        path.key("connections"),
                        format!(
                            "connections {n}: a loopback route delivers into one SQLite file \
                             and allows only 1; remove the key"
                        ),
                    );
                }
            }
            if let Some(o) = &route.retry {
                self.check_retry(&o.apply(&config.retry), &path.key("retry"), Some(o));
            }

            if route.loopback.is_some() && route.uplink != UplinkKind::Loopback {
                self.misplaced(
                    &path,
                    ("route", "loopback"),
                    ("uplink", "loopback"),
                    &route.uplink,
                );
            } else if route.uplink == UplinkKind::Loopback {
                let file = route.loopback_path();
                let at = self.pick(&[path.key("loopback").key("path"), path.key("name")]);
                if file.as_os_str().is_empty() {
                    self.fail(at, "loopback path must not be empty".into());
                } else if let Some(&first) = files.get(&config.resolve_path(&file)) {
                    self.fail(
                        at,
                        format!(
                            "loopback file \"{}\" is already used by route \"{}\"; give each \
                             loopback route its own path",
                            file.display(),
                            config.routes[first].name
                        ),
                    );
                } else {
                    files.insert(config.resolve_path(&file), i);
                }
            }
        }
    }

    fn check_sources(&mut self, config: &Config) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        // A zigbee2mqtt source with safety devices also connects as `<client_id>-<name>-safety`
        // (issue 15): no other source may connect under that client id.
        let safety_ids: HashMap<String, &str> = config
            .sources
            .iter()
            .filter(|s| {
                s.zigbee2mqtt
                    .as_ref()
                    .is_some_and(|z| z.devices.iter().any(|d| d.role.is_safety()))
            })
            .map(|s| (format!("{}-safety", s.name), s.name.as_str()))
            .collect();
        for (i, source) in config.sources.iter().enumerate() {
            let path = KeyPath::root().key("source").index(i);
            if let Some(owner) = safety_ids.get(&source.name) {
                self.fail(
                    path.key("name"),
                    format!(
                        "source name \"{}\" is the MQTT client id suffix of the safety session of \
                         source \"{owner}\" (it has devices with a safety role); choose another \
                         name",
                        source.name
                    ),
                );
            }
            if let Some(msg) = bad_name(&source.name, "source") {
                self.fail(path.key("name"), msg);
            } else if let Some(&first) = names.get(source.name.as_str()) {
                let first_path = KeyPath::root().key("source").index(first).key("name");
                self.fail(
                    path.key("name"),
                    format!(
                        "duplicate source name \"{}\" (first used by source[{first}]{}); \
                         source names must be unique",
                        source.name,
                        self.on_line(&first_path)
                    ),
                );
            } else {
                names.insert(&source.name, i);
            }

            match (&source.zigbee2mqtt, source.kind) {
                (Some(_), kind) if kind != SourceKind::Zigbee2mqtt => {
                    self.misplaced(
                        &path,
                        ("source", "zigbee2mqtt"),
                        ("kind", "zigbee2mqtt"),
                        &kind,
                    );
                }
                (Some(z), _) => self.check_zigbee2mqtt(z, &path.key("zigbee2mqtt")),
                (None, _) => {}
            }
            match (&source.external, source.kind) {
                (Some(_), kind) if kind != SourceKind::External => {
                    self.misplaced(&path, ("source", "external"), ("kind", "external"), &kind);
                }
                (Some(e), _) => self.check_external(e, &path.key("external")),
                (None, _) => {}
            }
            match (&source.simulated, source.kind) {
                (Some(_), kind) if kind != SourceKind::Simulated => {
                    self.misplaced(&path, ("source", "simulated"), ("kind", "simulated"), &kind);
                }
                (Some(sim), _) => {
                    let sim_path = path.key("simulated");
                    if !(1..=10_000).contains(&sim.devices) {
                        self.fail(
                            sim_path.key("devices"),
                            format!("devices {} is out of range; use 1..=10000", sim.devices),
                        );
                    }
                    if sim.interval.get() < Duration::from_millis(1) {
                        self.fail(
                            sim_path.key("interval"),
                            format!("interval {} is too short; use at least 1ms", sim.interval),
                        );
                    }
                }
                (None, _) => {}
            }
            match (&source.ble, source.kind) {
                (Some(_), kind) if kind != SourceKind::Ble => {
                    self.misplaced(&path, ("source", "ble"), ("kind", "ble"), &kind);
                }
                (ble, SourceKind::Ble) => {
                    let defaults;
                    let ble = match ble {
                        Some(b) => b,
                        None => {
                            defaults = BleSourceConfig::default();
                            &defaults
                        }
                    };
                    self.check_ble(ble, &path.key("ble"));
                }
                _ => {}
            }
        }
    }

    /// Checks a `[source.ble]` table (or the defaults, when the source has none) at `path`.
    fn check_ble(&mut self, ble: &BleSourceConfig, path: &KeyPath) {
        if ble.adapter.trim().is_empty() {
            self.fail(
                path.key("adapter"),
                "adapter must not be empty; use the BlueZ adapter name, e.g. \"hci0\" (see \
                 `bluetoothctl list`)"
                    .into(),
            );
        }
        self.positive(
            ble.offline_after.get(),
            path.key("offline_after"),
            "offline_after",
        );
        if ble.low_battery_percent > 100 {
            self.fail(
                path.key("low_battery_percent"),
                format!(
                    "low_battery_percent {} is out of range; use 0..=100 (0 = never alarm)",
                    ble.low_battery_percent
                ),
            );
        }
        self.positive(
            ble.idle_timeout.get(),
            path.key("idle_timeout"),
            "idle_timeout",
        );
        self.positive(
            ble.reconnect_initial.get(),
            path.key("reconnect_initial"),
            "reconnect_initial",
        );
        if ble.reconnect_initial > ble.reconnect_max {
            let at = self.pick(&[path.key("reconnect_max"), path.key("reconnect_initial")]);
            self.fail(
                at,
                format!(
                    "reconnect_initial ({}) must not be longer than reconnect_max ({})",
                    ble.reconnect_initial, ble.reconnect_max
                ),
            );
        }
        if !(1..=10_000).contains(&ble.commit_chunk) {
            self.fail(
                path.key("commit_chunk"),
                format!(
                    "commit_chunk {} is out of range; use 1..=10000",
                    ble.commit_chunk
                ),
            );
        }

        let devices = path.key("device");
        if ble.devices.is_empty() && ble.backend == BleBackendKind::Bluez {
            self.fail(
                devices.clone(),
                "no device is configured: hearth only talks to devices on the allow-list; add a \
                 [[source.ble.device]] for each paired device (with its address)"
                    .into(),
            );
        }
        let mut addresses: HashMap<String, usize> = HashMap::new();
        let mut system_ids: HashMap<String, usize> = HashMap::new();
        for (j, device) in ble.devices.iter().enumerate() {
            let at = devices.index(j);
            if !is_ble_address(&device.address) {
                self.fail(
                    at.key("address"),
                    format!(
                        "invalid device address \"{}\": write the Bluetooth address as six \
                         hex pairs separated by ':', e.g. \"AA:BB:CC:DD:EE:FF\"",
                        device.address
                    ),
                );
            } else {
                let norm = device.address.to_ascii_uppercase();
                if let Some(&first) = addresses.get(&norm) {
                    let first_path = devices.index(first).key("address");
                    self.fail(
                        at.key("address"),
                        format!(
                            "duplicate device address \"{}\" (first listed as device[{first}]{}); \
                             list each device once",
                            device.address,
                            self.on_line(&first_path)
                        ),
                    );
                } else {
                    addresses.insert(norm, j);
                }
            }
            if let Some(id) = &device.system_id {
                if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.fail(
                        at.key("system_id"),
                        format!(
                            "invalid system_id \"{id}\": write the device's System ID (EUI-64) \
                             as 16 hex digits without separators, e.g. \"0123456789abcdef\", or \
                             leave the key out to identify the device by its address"
                        ),
                    );
                } else {
                    let norm = id.to_ascii_lowercase();
                    if let Some(&first) = system_ids.get(&norm) {
                        let first_path = devices.index(first).key("system_id");
                        self.fail(
                            at.key("system_id"),
                            format!(
                                "duplicate system_id \"{id}\" (first listed as device[{first}]{}); \
                                 the system id is the stable device id, so it must be unique",
                                self.on_line(&first_path)
                            ),
                        );
                    } else {
                        system_ids.insert(norm, j);
                    }
                }
            }
            if device.person.as_ref().is_some_and(|p| p.trim().is_empty()) {
                self.fail(
                    at.key("person"),
                    "person must not be empty; write e.g. \"Patient/123\", or leave the key out"
                        .into(),
                );
            }
        }
    }
}

/// Whether `s` is a Bluetooth address written `AA:BB:CC:DD:EE:FF` (six hex pairs, any case).
fn is_ble_address(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why `name` is not a valid route or source name, if it is not.
fn bad_name(name: &str, what: &str) -> Option<String> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        format!(
            "invalid {what} name \"{name}\": use 1 to 63 of a-z, 0-9 and '-', starting with a \
             letter or digit (it names the {what}'s stored state, so keep it stable)"
        )
    })
}

fn warnings(config: &Config, file: &Path, map: Option<&SourceMap<'_>>) -> Vec<ConfigWarning> {
    let warn = |path: &KeyPath, message: String| {
        let (line, column) = map.and_then(|m| m.locate(path)).unwrap_or((0, 0));
        ConfigWarning {
            file: file.to_path_buf(),
            line,
            column,
            key: path.to_string(),
            message,
        }
    };
    let route = KeyPath::root().key("route");
    let source = KeyPath::root().key("source");
    let mut out = Vec::new();

    for key in crate::validate_mqtt::tls_keys_without_tls(&config.mqtt) {
        out.push(warn(
            &KeyPath::root().key("mqtt").key(key),
            format!(
                "{key} is set but tls = false, so it is not used and the broker is reached \
                 without TLS; set tls = true or remove {key}"
            ),
        ));
    }

    if config.receipt.is_active()
        && !config
            .routes
            .iter()
            .any(|r| r.enabled && r.uplink == UplinkKind::Scaip)
    {
        out.push(warn(
            &KeyPath::root().key("receipt").key("indicator"),
            "[[receipt.indicator]] is configured but no enabled route has uplink = \"scaip\": \
             the receipt signal shows only for alarms sent to a response centre"
                .into(),
        ));
    }

    if config.routes.is_empty() {
        out.push(warn(
            &route,
            "no [[route]] is configured: every record will be dead-lettered; add a [[route]] \
             table (see the example config)"
                .into(),
        ));
    } else if !config.routes.iter().any(|r| r.enabled) {
        out.push(warn(
            &route,
            "every [[route]] is disabled: every record will be dead-lettered; set enabled = true \
             on at least one"
                .into(),
        ));
    } else {
        for c in Category::ALL {
            if config.routes_for(c).next().is_some() {
                continue;
            }
            let disabled = config
                .routes
                .iter()
                .position(|r| !r.enabled && r.categories.contains(&c));
            out.push(match disabled {
                Some(i) => warn(
                    &route.index(i).key("enabled"),
                    format!(
                        "records of category \"{c}\" have no enabled route and will be \
                         dead-lettered; route \"{}\" carries them but is disabled",
                        config.routes[i].name
                    ),
                ),
                None => warn(
                    &route,
                    format!(
                        "records of category \"{c}\" have no route and will be dead-lettered; \
                         add it to a [[route]] categories list"
                    ),
                ),
            });
        }
    }

    if config.sources.is_empty() {
        out.push(warn(
            &source,
            "no [[source]] is configured: hearth will only send its own technical alarms; \
             add a [[source]] table (see the example config)"
                .into(),
        ));
    } else if !config.sources.iter().any(|s| s.enabled) {
        out.push(warn(
            &source,
            "every [[source]] is disabled: hearth will only send its own technical alarms".into(),
        ));
    }
    out
}

/// Checks the rules of a rules file (paths `rule[i].key`).
pub(crate) fn validate_rules(
    rules: &[crate::schema::RuleConfig],
    file: &Path,
    map: &SourceMap<'_>,
) -> Result<(), ConfigError> {
    let mut c = Checker::new(Some(map));
    for (i, r) in rules.iter().enumerate() {
        c.check_rule(r, &KeyPath::root().key("rule").index(i));
    }
    match c.into_error(file) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ble_addresses_are_six_hex_pairs() {
        for good in ["AA:BB:CC:DD:EE:FF", "00:1a:7d:da:71:13"] {
            assert!(is_ble_address(good), "{good}");
        }
        for bad in [
            "",
            "AA:BB:CC:DD:EE",
            "AA:BB:CC:DD:EE:FF:00",
            "AA-BB-CC-DD-EE-FF",
            "AABBCCDDEEFF",
            "AA:BB:CC:DD:EE:GG",
            "A:BB:CC:DD:EE:FFF",
            "AA:BB:CC:DD:EE:+F",
        ] {
            assert!(!is_ble_address(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_documented_pattern() {
        for good in ["hub", "a", "0", "hub-2", &"a".repeat(63)] {
            assert_eq!(bad_name(good, "route"), None, "{good}");
        }
        for bad in ["", "-hub", "Hub", "hub_2", "hub.2", "hüb", &"a".repeat(64)] {
            assert!(bad_name(bad, "route").is_some(), "{bad}");
        }
    }
}
