use std::fmt;

use crate::ModelError;

/// A stable device identifier: `scheme:value`, e.g. `ble:0123456789abcdef` (EUI-64 system id)
/// or `z2m:0x00158d0001a2b3c4` (Zigbee IEEE address).
///
/// It names the physical device, not how it is currently reachable: a friendly name or a BLE
/// random address may change, the identifier must not (it is part of every record id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Build from a scheme (`ble`, `z2m`, `ext`, `hearth` …) and a scheme-specific value.
    pub fn new(scheme: &str, value: &str) -> Result<Self, ModelError> {
        let bad = |why| ModelError::InvalidDeviceId {
            scheme: scheme.to_owned(),
            value: value.to_owned(),
            why,
        };
        if scheme.is_empty() || value.is_empty() {
            return Err(bad("scheme and value must not be empty"));
        }
        if !scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("scheme must be lowercase ASCII letters, digits or '-'"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "value must not contain whitespace or control characters",
            ));
        }
        Ok(Self(format!("{scheme}:{value}")))
    }

    /// Parse the `scheme:value` form produced by [`DeviceId::as_str`].
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s.split_once(':') {
            Some((scheme, value)) => Self::new(scheme, value),
            None => Err(ModelError::InvalidDeviceId {
                scheme: String::new(),
                value: s.to_owned(),
                why: "expected the form scheme:value",
            }),
        }
    }

    /// The `scheme:value` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme part (`ble`, `z2m`, …).
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(s, _)| s)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What hearth knows about a device (Device Information Service, zigbee2mqtt `bridge/devices`).
///
/// Everything but the id is optional: devices tell what they tell. Feeds the equipment register
/// (A7) and the FHIR PhdDevice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// The stable identifier; `None` only while a device is being discovered.
    pub id: Option<DeviceId>,
    /// Manufacturer name as the device reports it.
    pub manufacturer: Option<String>,
    /// Model number or name.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Firmware revision.
    pub firmware: Option<String>,
    /// IEEE EUI-64 (BLE System ID, Zigbee IEEE address), 16 lowercase hex digits.
    pub eui64: Option<String>,
    /// Last reported battery level in percent.
    pub battery_percent: Option<u8>,
}

impl Device {
    /// Take every fact `newer` tells; keep what it does not (a later report may carry only
    /// some facts, e.g. the battery level, and must not erase the manufacturer).
    pub fn merge(&mut self, newer: Device) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f; } )* };
        }
        take!(
            id,
            manufacturer,
            model,
            serial,
            firmware,
            eui64,
            battery_percent
        );
    }
}

/// The facts known about each device, shared between the drivers' side (which updates it after
/// the facts are stored) and the uplinks (which read it when encoding). A cheap clone of one
/// shared map; no I/O.
#[derive(Debug, Clone, Default)]
pub struct DeviceRegistry {
    inner: std::sync::Arc<std::sync::RwLock<std::collections::BTreeMap<DeviceId, Device>>>,
}

impl DeviceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merge facts about a device (keyed by `device.id`; a device without id is ignored) and
    /// return what is now known about it.
    pub fn upsert(&self, device: Device) -> Option<Device> {
        let id = device.id.clone()?;
        let mut map = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = map.entry(id).or_default();
        known.merge(device);
        Some(known.clone())
    }

    /// What is known about one device.
    pub fn get(&self, id: &DeviceId) -> Option<Device> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Everything known, by device id.
    pub fn snapshot(&self) -> std::collections::BTreeMap<DeviceId, Device> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many devices are known.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no device is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_merges_facts_and_keeps_what_a_later_report_omits() {
        let id = DeviceId::new("ble", "0011223344556677").unwrap();
        let reg = DeviceRegistry::new();
        let shared = reg.clone();
        reg.upsert(Device {
            id: Some(id.clone()),
            manufacturer: Some("Acme".into()),
            model: Some("T-1".into()),
            ..Device::default()
        });
        let now = shared
            .upsert(Device {
                id: Some(id.clone()),
                battery_percent: Some(50),
                model: Some("T-2".into()),
                ..Device::default()
            })
            .unwrap();
        assert_eq!(now.manufacturer.as_deref(), Some("Acme"));
        assert_eq!(now.model.as_deref(), Some("T-2"));
        assert_eq!(reg.get(&id).unwrap().battery_percent, Some(50));
        assert_eq!(reg.len(), 1);
        assert!(reg.upsert(Device::default()).is_none());
    }

    #[test]
    fn device_id_round_trips_and_rejects_bad_input() {
        let id = DeviceId::new("ble", "0123456789abcdef").unwrap();
        assert_eq!(id.as_str(), "ble:0123456789abcdef");
        assert_eq!(id.scheme(), "ble");
        assert_eq!(DeviceId::parse(id.as_str()).unwrap(), id);
        assert!(DeviceId::new("", "x").is_err());
        assert!(DeviceId::new("BLE", "x").is_err());
        assert!(DeviceId::new("ble", "a b").is_err());
        assert!(DeviceId::parse("nocolon").is_err());
    }
}
