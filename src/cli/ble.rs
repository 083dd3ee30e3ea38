//! `hearth ble decode` and `hearth ble scan`.

use hearth_driver_ble::{DecodeError, Decoded, DeviceTime, Observation};
use hearth_model::Value;
use serde_json::{Value as Json, json};

/// Parse a characteristic UUID: `2A35`, `0x2A35` or the full 128-bit Bluetooth base form.
pub fn parse_uuid(s: &str) -> Result<u16, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_prefix("0x").unwrap_or(&t);
    let short =
        if t.len() == 36 && t.ends_with("-0000-1000-8000-00805f9b34fb") && t.starts_with("0000") {
            &t[4..8]
        } else {
            t
        };
    u16::from_str_radix(short, 16).map_err(|_| format!("{s:?} is not a 16-bit characteristic UUID; use e.g. 2A35 or 00002a35-0000-1000-8000-00805f9b34fb"))
}

/// Parse hex bytes, allowing spaces, colons and dashes between them.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-' | '_'))
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if digits.len() % 2 != 0 {
        return Err(format!("{s:?} has an odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| {
                format!(
                    "{:?} at hex digit {} is not a hex byte",
                    &digits[i..i + 2],
                    i
                )
            })
        })
        .collect()
}

fn time_json(t: &Option<DeviceTime>) -> Json {
    match t {
        Some(DeviceTime::Local(l)) => json!(l.to_string()),
        Some(DeviceTime::Utc(ms)) => {
            json!(hearth_model::Timestamp::from_unix_millis(*ms).to_rfc3339())
        }
        Some(DeviceTime::Relative(ms)) => json!({ "relative_ms": ms }),
        None => Json::Null,
    }
}

fn scalar(v: &Value) -> (Json, Json) {
    match v {
        Value::Numeric { value, .. } => (json!(value), Json::Null),
        Value::Absent(r) => (Json::Null, json!(r.as_str())),
        Value::Enumerated(hearth_model::Enumerated::Code(c)) => (json!(c.0), Json::Null),
        Value::Enumerated(hearth_model::Enumerated::Bits { bits, .. }) => (json!(bits), Json::Null),
        Value::Enumerated(hearth_model::Enumerated::Text(t)) => (json!(t), Json::Null),
        Value::Compound(_) => (Json::Null, Json::Null),
    }
}

fn entry(mdc: u32, value: &Value, o: &Observation, compound: Option<u32>) -> Json {
    let (v, absent) = scalar(value);
    let mut e = json!({
        "mdc": mdc,
        "value": v,
        "unit": o.unit.as_ref().map(|u| u.as_str()),
        "time": time_json(&o.time),
        "absent": absent,
    });
    if let (
        Some(map),
        Value::Numeric {
            decimals: Some(d), ..
        },
    ) = (e.as_object_mut(), value)
    {
        map.insert("decimals".into(), json!(d));
    }
    if let Some(map) = e.as_object_mut() {
        if let Some(c) = compound {
            map.insert("compound".into(), json!(c));
        }
        if let Some(s) = o.sequence {
            map.insert("sequence".into(), json!(s));
        }
        if let Some(u) = o.user {
            map.insert("user".into(), json!(u));
        }
    }
    e
}

/// The JSON shape of DESIGN.md: compound values are flattened into one reading per component
/// (each with `"compound"` naming the compound code).
pub fn to_json(characteristic: u16, d: &Decoded) -> Json {
    let mut readings = Vec::new();
    for o in &d.observations {
        match &o.value {
            Value::Compound(parts) => {
                for p in parts {
                    readings.push(entry(p.mdc.0, &p.value, o, Some(o.mdc.0)));
                }
            }
            v => readings.push(entry(o.mdc.0, v, o, None)),
        }
    }
    let f = &d.facts;
    json!({
        "characteristic": format!("{characteristic:04X}"),
        "name": hearth_driver_ble::characteristic_name(characteristic),
        "readings": readings,
        "device": {
            "manufacturer": f.manufacturer, "model": f.model, "serial": f.serial,
            "firmware": f.firmware, "eui64": f.eui64, "battery_percent": f.battery_percent,
            "clock_unset": f.clock_unset,
            "current_time": f.current_time.map(|t| t.to_string()),
        },
        "control": d.control.map(|c| format!("{c:?}")),
        "more_follows": d.more_follows,
    })
}

/// The decoded values as readings of a placeholder device (`ble:decoded`) for `patient`; device
/// local times are read as UTC (the CLI has no gateway time zone).
fn readings(d: &Decoded, patient: &str) -> anyhow::Result<Vec<hearth_model::Record>> {
    let device = hearth_model::DeviceId::new("ble", "decoded")?;
    let now = hearth_model::Timestamp::now();
    d.observations
        .iter()
        .map(|o| {
            let mut b = hearth_model::Reading::builder(device.clone(), o.mdc, o.value.clone())
                .person(hearth_model::PersonRef::new(patient));
            if let Some(u) = &o.unit {
                b = b.unit(u.clone());
            }
            if let Some(seq) = o.sequence {
                b = b.sequence(seq);
            }
            match &o.time {
                Some(DeviceTime::Utc(ms)) => {
                    b = b.device_time(hearth_model::Timestamp::from_unix_millis(*ms));
                }
                Some(DeviceTime::Local(l)) => {
                    if let (Some(y), Some(mo), Some(day)) = (l.year, l.month, l.day) {
                        let dt = jiff::civil::date(y as i16, mo as i8, day as i8).at(
                            l.hour as i8,
                            l.minute as i8,
                            l.second as i8,
                            0,
                        );
                        if let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC) {
                            b = b.device_time(hearth_model::Timestamp::from_unix_millis(
                                z.timestamp().as_millisecond(),
                            ));
                        }
                    }
                }
                _ => {}
            }
            Ok(hearth_model::Record::Reading(b.build(now)))
        })
        .collect()
}

/// What would be sent for one value, in a receiver's format.
fn encoded(d: &Decoded, format: &str, profile: &str, patient: &str) -> anyhow::Result<String> {
    let records = readings(d, patient)?;
    match format {
        "fhir" => {
            let profile = match profile {
                "phd" => hearth_uplink_fhir::Profile::Phd,
                "vkp" => hearth_uplink_fhir::Profile::Vkp,
                "pmd" => hearth_uplink_fhir::Profile::Pmd,
                other => anyhow::bail!("--profile {other}: use phd, vkp or pmd"),
            };
            let gateway =
                hearth_uplink_fhir::Gateway::new(hearth_model::DeviceId::new("hearth", "cli")?);
            let ctx = hearth_uplink_fhir::Context::new(gateway, None);
            let bundle = hearth_uplink_fhir::encode_bundle(&records, &ctx, profile)?;
            Ok(bundle.to_pretty_json())
        }
        _ => {
            let ctx = hearth_uplink_pcd01::Context::new("HEARTH", hearth_model::Timestamp::now());
            let message = hearth_uplink_pcd01::encode_oru(&records, &ctx)?;
            // Segments end in CR on the wire; one per line here.
            Ok(message.as_str().replace('\r', "\n"))
        }
    }
}

/// Decode one value; exit code 2 with a message naming the byte on malformed input.
pub fn decode(
    characteristic: &str,
    hex: &str,
    format: &str,
    profile: &str,
    patient: &str,
) -> anyhow::Result<bool> {
    let uuid = match parse_uuid(characteristic) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(false);
        }
    };
    let bytes = match parse_hex(hex) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: --hex: {e}");
            return Ok(false);
        }
    };
    match hearth_driver_ble::decode_characteristic(uuid, &bytes) {
        Ok(d) => {
            match format {
                "json" => outln!("{}", serde_json::to_string_pretty(&to_json(uuid, &d))?),
                other => out!("{}", encoded(&d, other, profile, patient)?),
            }
            Ok(true)
        }
        Err(e @ DecodeError { .. }) => {
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}

/// Scan with the real adapter.
pub fn scan(adapter: &str, seconds: u64) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match hearth_driver_ble::bluez::scan(adapter, std::time::Duration::from_secs(seconds)).await
        {
            Ok(found) => {
                for (address, name, services, rssi) in found {
                    outln!(
                        "{address}  {:<24} rssi {:>4}  services {}",
                        name.unwrap_or_default(),
                        rssi.map_or("?".into(), |r| r.to_string()),
                        services
                            .iter()
                            .map(|s| format!("{s:04X}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
                Ok(true)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(false)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_hex_parse_in_the_usual_spellings() {
        assert_eq!(parse_uuid("2A35"), Ok(0x2A35));
        assert_eq!(parse_uuid("0x2a35"), Ok(0x2A35));
        assert_eq!(
            parse_uuid("00002a35-0000-1000-8000-00805f9b34fb"),
            Ok(0x2A35)
        );
        assert!(parse_uuid("zz").is_err());
        assert_eq!(parse_hex("06 80:00-54"), Ok(vec![6, 0x80, 0, 0x54]));
        assert!(parse_hex("068").is_err());
        assert!(parse_hex("0g").is_err());
    }
}
