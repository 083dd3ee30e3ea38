//! zigbee2mqtt's topics: who a device is (friendly names, IEEE addresses, renames), the bridge
//! messages, availability and the offline event.

use super::*;

/// Percent-escapes everything but `[A-Za-z0-9._/-]`.
pub(super) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `last_seen` as zigbee2mqtt writes it: epoch ms or ISO 8601.
pub(super) fn device_time(obj: &Map<String, Json>) -> Result<Option<Timestamp>, String> {
    match obj.get("last_seen") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n
            .as_i64()
            .filter(|m| (0..=253_402_300_799_999).contains(m))
            .map(|m| Some(Timestamp::from_unix_millis(m)))
            .ok_or_else(|| "last_seen is not epoch milliseconds; used the receipt time".into()),
        Some(Json::String(s)) => s
            .parse::<jiff::Timestamp>()
            .map(|t| Some(Timestamp::from_unix_millis(t.as_millisecond())))
            .map_err(|_| {
                "last_seen is not an ISO 8601 time with offset; used the receipt time".into()
            }),
        Some(other) => Err(format!(
            "last_seen is {}; expected epoch milliseconds or ISO 8601",
            kind_of(other)
        )),
    }
}

pub(super) fn state_word(payload: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let word = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => match o.get("state") {
            Some(Json::String(s)) => s.clone(),
            _ => return None,
        },
        Ok(Json::String(s)) => s,
        _ => text.to_owned(),
    };
    match word.to_ascii_lowercase().as_str() {
        "online" => Some(true),
        "offline" => Some(false),
        _ => None,
    }
}

impl Engine {
    pub(super) fn who_by_name(&mut self, name: &str) -> Result<Arc<Who>, String> {
        if let Some(w) = self.whos.get(name) {
            return Ok(Arc::clone(w));
        }
        let ieee = self.names.get(name).cloned().or_else(|| ieee_hex(name));
        let (key, ieee) = match ieee {
            Some(h) => (format!("zigbee:{h}"), Some(format!("0x{h}"))),
            None => (format!("zigbee:name:{}", escape(name)), None),
        };
        let id = DeviceId::parse(&key).map_err(|e| e.to_string())?;
        let mut who = Who {
            key,
            id,
            name: Some(name.to_owned()),
            ieee,
            sensor: None,
        };
        who.sensor = self.sensor_index(&who);
        let who = Arc::new(who);
        if self.whos.len() >= WHO_CACHE {
            self.whos.clear();
        }
        self.whos.insert(name.to_owned(), Arc::clone(&who));
        Ok(who)
    }

    pub(super) fn who_by_key(&self, key: &str) -> Option<Who> {
        let id = DeviceId::parse(key).ok()?;
        let value = key.strip_prefix("zigbee:")?;
        let (name, ieee) = match value.strip_prefix("name:") {
            Some(esc) => (Some(unescape(esc)), None),
            None => {
                let name = self.by_ieee.get(value).cloned();
                (name, Some(format!("0x{value}")))
            }
        };
        let mut who = Who {
            key: key.to_owned(),
            id,
            name,
            ieee,
            sensor: None,
        };
        who.sensor = self.sensor_index(&who);
        Some(who)
    }

    /// Whether `wanted` (a friendly name or IEEE address; `wanted_ieee` its 16 hex digits, if
    /// it is one) names the device.
    pub(super) fn matches(who: &Who, wanted: &str, wanted_ieee: Option<&str>) -> bool {
        who.name.as_deref() == Some(wanted)
            || match (&who.ieee, wanted_ieee) {
                (Some(i), Some(w)) => i.get(2..) == Some(w),
                _ => false,
            }
    }

    pub(super) fn sensor_index(&self, who: &Who) -> Option<usize> {
        self.sensors
            .iter()
            .zip(&self.sensor_ieee)
            .position(|(s, ieee)| Self::matches(who, &s.name, ieee.as_deref()))
    }

    pub(super) fn sensor(&self, who: &Who) -> Option<&SensorConfig> {
        who.sensor.and_then(|i| self.sensors.get(i))
    }

    pub(super) fn applies(rule: &Rule, who: &Who) -> bool {
        rule.device
            .as_deref()
            .is_none_or(|d| Self::matches(who, d, rule.device_ieee.as_deref()))
    }

    /// Splits `<name>[/<suffix>]`, preferring the longest known friendly name.
    pub(super) fn split_device<'t>(&self, rest: &'t str) -> (&'t str, &'t str) {
        // Candidates, longest first: the whole topic rest, then its parts before each `/`.
        if !self.names.is_empty() {
            if self.names.contains_key(rest) {
                return (rest, "");
            }
            let cuts = rest.match_indices('/').map(|(i, _)| i).rev();
            for i in cuts {
                if let (Some(name), Some(suffix)) = (rest.get(..i), rest.get(i + 1..)) {
                    if self.names.contains_key(name) {
                        return (name, suffix);
                    }
                }
            }
        }
        if let Some(name) = rest.strip_suffix("/availability") {
            return (name, "availability");
        }
        let mut at = 0;
        for seg in rest.split('/') {
            if at > 0 && (seg == "set" || seg == "get") {
                return (&rest[..at - 1], &rest[at..]);
            }
            at += seg.len() + 1;
        }
        (rest, "")
    }

    // --- input ---

    pub(super) fn bridge_state(
        &mut self,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let online = state_word(msg.payload).ok_or_else(|| {
            input_error(
                msg.topic,
                "expected {\"state\":\"online\"|\"offline\"} or online/offline",
            )
        })?;
        let raised = self.get(Slot::Raised, BRIDGE, OFFLINE).is_some();
        if online == raised {
            let state = if online {
                AlarmState::Cleared
            } else {
                AlarmState::Raised
            };
            let message = if online {
                format!(
                    "The zigbee2mqtt bridge of source {} is online again.",
                    self.source
                )
            } else {
                format!(
                    "The zigbee2mqtt bridge of source {} is offline: no Zigbee sensor data and no \
                     Zigbee safety alarms arrive. Check the zigbee2mqtt service and its Zigbee \
                     adapter.",
                    self.source
                )
            };
            let record = TechnicalAlarm::new(
                format!("zigbee2mqtt:{}:{BRIDGE}", self.source),
                TechnicalKind::DeviceOffline,
                Severity::Critical,
                state,
                message,
                now,
            );
            out.events.push(Event {
                kind: EventKind::Technical,
                event_type: "device_offline".into(),
                device: None,
                property: Some("state".into()),
                value: Json::String(if online { "online" } else { "offline" }.into()),
                record: Record::Technical(record),
            });
            self.set(Slot::Raised, BRIDGE, OFFLINE, (!online).then_some(1));
        }
        Ok(())
    }

    pub(super) fn bridge_devices(
        &mut self,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let list = match serde_json::from_slice::<Json>(msg.payload) {
            Ok(Json::Array(a)) => a,
            Ok(other) => {
                return Err(input_error(
                    msg.topic,
                    format!(
                        "bridge/devices is {}; expected a JSON array of devices",
                        kind_of(&other)
                    ),
                ));
            }
            Err(e) => {
                return Err(input_error(
                    msg.topic,
                    format!("the payload is not JSON: {e}"),
                ));
            }
        };
        let mut names = BTreeMap::new();
        let mut tracked = BTreeSet::new();
        for (i, d) in list.iter().enumerate() {
            let Some(d) = d.as_object() else {
                out.problems
                    .push(format!("bridge/devices[{i}] is not an object; skipped"));
                continue;
            };
            let Some(ieee) = d
                .get("ieee_address")
                .and_then(Json::as_str)
                .and_then(ieee_hex)
            else {
                out.problems.push(format!(
                    "bridge/devices[{i}] has no ieee_address of 16 hex digits; skipped"
                ));
                continue;
            };
            if d.get("type").and_then(Json::as_str) == Some("Coordinator") {
                continue;
            }
            if let Some(facts) = device_facts(d, &ieee) {
                out.devices.push(facts);
            }
            if let Some(name) = d.get("friendly_name").and_then(Json::as_str) {
                names.insert(name.to_owned(), ieee.clone());
            }
            if d.get("disabled").and_then(Json::as_bool) != Some(true) {
                tracked.insert(format!("zigbee:{ieee}"));
            }
        }
        self.by_ieee.clear();
        for (name, ieee) in &names {
            if !self.by_ieee.contains_key(ieee) {
                self.by_ieee.insert(ieee.clone(), name.clone());
            }
        }
        self.persist_names(&names);
        self.names = names;
        self.whos.clear();
        // Who a device is decides which rules apply, so every timer may have moved.
        self.horizon = i64::MIN;
        self.migrate_fallback_ids();
        // Offline tracking follows the list: start the clock of new devices, stop that of
        // removed ones.
        let seen: Vec<String> = self
            .entries()
            .into_iter()
            .filter(|((s, d, _), _)| {
                *s == Slot::Seen && ieee_hex(d.strip_prefix("zigbee:").unwrap_or("")).is_some()
            })
            .map(|((_, d, _), _)| d)
            .collect();
        for d in seen {
            if !tracked.contains(&d) {
                self.set(Slot::Seen, &d, "", None);
                if self.get(Slot::Raised, &d, OFFLINE).is_some() {
                    if let Some(who) = self.who_by_key(&d) {
                        self.offline_event(&who, AlarmState::Cleared, now, None, out);
                    }
                    self.set(Slot::Raised, &d, OFFLINE, None);
                }
            }
        }
        for d in tracked {
            if self.get(Slot::Seen, &d, "").is_none() {
                self.set(Slot::Seen, &d, "", Some(ms(now)));
            }
        }
        Ok(())
    }

    /// Commits the friendly names of `names` (name → IEEE) and forgets those no longer listed.
    fn persist_names(&mut self, names: &BTreeMap<String, String>) {
        let stale: Vec<(String, String)> = self
            .entries()
            .into_iter()
            .filter(|((slot, _, _), _)| *slot == Slot::Name)
            .map(|((_, device, name), _)| (device, name))
            .filter(|(device, name)| {
                names
                    .get(name)
                    .map(|ieee| format!("zigbee:{ieee}"))
                    .as_deref()
                    != Some(device.as_str())
            })
            .collect();
        for (device, name) in stale {
            self.set(Slot::Name, &device, &name, None);
        }
        for (name, ieee) in names {
            let device = format!("zigbee:{ieee}");
            if self.get(Slot::Name, &device, name).is_none() {
                self.set(Slot::Name, &device, name, Some(1));
            }
        }
    }

    /// Moves the state of devices known only by friendly name to their IEEE id.
    pub(super) fn migrate_fallback_ids(&mut self) {
        let moves: Vec<(Key, i64)> = self
            .entries()
            .into_iter()
            .filter(|((_, d, _), _)| d.starts_with("zigbee:name:"))
            .collect();
        for ((slot, d, name), v) in moves {
            let Some(esc) = d.strip_prefix("zigbee:name:") else {
                continue;
            };
            let Some(ieee) = self.names.get(&unescape(esc)).cloned() else {
                continue;
            };
            let new = format!("zigbee:{ieee}");
            self.set(slot, &d, &name, None);
            if self.get(slot, &new, &name).is_none() {
                self.set(slot, &new, &name, Some(v));
            }
            if let Some((p, v)) = self.take_context(&d, &name) {
                self.set_context(&new, &name, &p, &v);
            }
        }
    }

    pub(super) fn availability(
        &mut self,
        msg: &Message<'_>,
        name: &str,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let online = state_word(msg.payload).ok_or_else(|| {
            input_error(
                msg.topic,
                "expected {\"state\":\"online\"|\"offline\"} or online/offline",
            )
        })?;
        let who = self
            .who_by_name(name)
            .map_err(|e| input_error(msg.topic, e))?;
        let raised = self.get(Slot::Raised, &who.key, OFFLINE).is_some();
        if online {
            self.set(Slot::Seen, &who.key, "", Some(ms(now)));
        }
        if online == raised {
            let state = if online {
                AlarmState::Cleared
            } else {
                AlarmState::Raised
            };
            let value = Json::String(if online { "online" } else { "offline" }.into());
            self.offline_event(&who, state, now, Some(("availability", value)), out);
            self.set(Slot::Raised, &who.key, OFFLINE, (!online).then_some(1));
        }
        Ok(())
    }

    pub(super) fn offline_event(
        &self,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        cause: Option<(&str, Json)>,
        out: &mut Output,
    ) {
        let id = who.id.as_str();
        let message = match (state, &cause) {
            (AlarmState::Cleared, _) => format!("Zigbee device {id} is reachable again."),
            (AlarmState::Raised, Some(_)) => format!(
                "zigbee2mqtt reports Zigbee device {id} offline: check its battery or power and \
                 that it is within range of the Zigbee network."
            ),
            (AlarmState::Raised, None) => format!(
                "Zigbee device {id} has sent nothing for {}: check its battery or power and that \
                 it is within range of the Zigbee network.",
                hearth_config::ConfigDuration::new(self.offline_after)
            ),
        };
        let (property, value) = cause.map_or((None, Json::Null), |(p, v)| (Some(p.to_owned()), v));
        out.events.push(Event {
            kind: EventKind::Technical,
            event_type: "device_offline".into(),
            device: Some(who.id.clone()),
            property,
            value,
            record: Record::Technical(TechnicalAlarm::new(
                format!("zigbee2mqtt:{}:{id}", self.source),
                TechnicalKind::DeviceOffline,
                self.group_severity(who, OFFLINE),
                state,
                message,
                at,
            )),
        });
    }
}

/// The facts of one `bridge/devices` entry: `definition.vendor` and `definition.model`,
/// `software_build_id`, the IEEE address. `None` when it tells none of the first three.
fn device_facts(d: &serde_json::Map<String, Json>, ieee: &str) -> Option<hearth_model::Device> {
    let text = |v: Option<&Json>| {
        v.and_then(Json::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let def = d.get("definition");
    let manufacturer = text(def.and_then(|x| x.get("vendor")));
    let model = text(def.and_then(|x| x.get("model")));
    let firmware = text(d.get("software_build_id"));
    if manufacturer.is_none() && model.is_none() && firmware.is_none() {
        return None;
    }
    Some(hearth_model::Device {
        id: hearth_model::DeviceId::new("zigbee", ieee).ok(),
        manufacturer,
        model,
        firmware,
        eui64: Some(ieee.to_owned()),
        ..hearth_model::Device::default()
    })
}
