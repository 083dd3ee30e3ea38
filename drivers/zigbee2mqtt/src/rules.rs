//! Rules compiled from [`RuleConfig`]: conditions, the MDC/unit table and value words.

use std::path::Path;
use std::time::Duration;

use hearth_config::{Hours, RuleConfig, RuleEmit, RuleValue, SensorConfig, SensorRole};
use hearth_model::{Enumerated, Mdc, Severity, Ucum, Value};
use serde_json::Value as Json;

use crate::EngineError;

/// The shipped rules file.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// `MDC_PART_PHD_AI` (IEEE 11073-10471, independent living activity hub).
pub const PART_PHD_AI: u32 = 130;
/// `MDC_PART_PVT`: private codes (hearth's own, for quantities without a 10101/10471 code).
pub const PART_PVT: u32 = 1024;

const fn ai(term: u32) -> u32 {
    PART_PHD_AI * 65_536 + term
}
const fn pvt(term: u32) -> u32 {
    PART_PVT * 65_536 + term
}

/// One row of the observation table: type name, MDC code, UCUM unit of numbers, words for
/// `true`/`false`.
pub(crate) struct Known {
    pub name: &'static str,
    pub mdc: u32,
    pub unit: Option<&'static str>,
    pub words: Option<(&'static str, &'static str)>,
}

/// The observation table (also in the crate doc; keep them together).
pub(crate) const TABLE: &[Known] = &[
    Known {
        name: "fall",
        mdc: ai(1),
        unit: None,
        words: Some(("fall", "no_fall")),
    },
    Known {
        name: "emergency",
        mdc: ai(2),
        unit: None,
        words: Some(("alarm", "normal")),
    },
    Known {
        name: "smoke",
        mdc: ai(3),
        unit: None,
        words: Some(("smoke", "clear")),
    },
    Known {
        name: "carbon_monoxide",
        mdc: ai(4),
        unit: None,
        words: Some(("detected", "clear")),
    },
    Known {
        name: "water_leak",
        mdc: ai(5),
        unit: None,
        words: Some(("leak", "dry")),
    },
    Known {
        name: "gas",
        mdc: ai(6),
        unit: None,
        words: Some(("detected", "clear")),
    },
    Known {
        name: "occupancy",
        mdc: ai(7),
        unit: None,
        words: Some(("occupied", "unoccupied")),
    },
    Known {
        name: "motion",
        mdc: ai(7),
        unit: None,
        words: Some(("motion", "no_motion")),
    },
    Known {
        name: "property_exit",
        mdc: ai(8),
        unit: None,
        words: Some(("exit", "no_exit")),
    },
    Known {
        name: "enuresis",
        mdc: ai(9),
        unit: None,
        words: Some(("wet", "dry")),
    },
    Known {
        name: "contact",
        mdc: ai(10),
        unit: None,
        words: Some(("closed", "open")),
    },
    Known {
        name: "usage",
        mdc: ai(11),
        unit: None,
        words: Some(("in_use", "not_in_use")),
    },
    Known {
        name: "switch",
        mdc: ai(12),
        unit: None,
        words: Some(("on", "off")),
    },
    Known {
        name: "dosage",
        mdc: ai(13),
        unit: None,
        words: Some(("taken", "missed")),
    },
    Known {
        name: "temperature",
        mdc: ai(14),
        unit: Some("Cel"),
        words: None,
    },
    Known {
        name: "humidity",
        mdc: ai(15),
        unit: Some("%"),
        words: None,
    },
    Known {
        name: "illuminance",
        mdc: pvt(1),
        unit: Some("lx"),
        words: None,
    },
    Known {
        name: "pressure",
        mdc: pvt(2),
        unit: Some("hPa"),
        words: None,
    },
    Known {
        name: "co2",
        mdc: pvt(3),
        unit: Some("[ppm]"),
        words: None,
    },
    Known {
        name: "voc",
        mdc: pvt(4),
        unit: Some("[ppb]"),
        words: None,
    },
    Known {
        name: "presence",
        mdc: pvt(5),
        unit: None,
        words: Some(("present", "absent")),
    },
    Known {
        name: "vibration",
        mdc: pvt(6),
        unit: None,
        words: Some(("vibration", "still")),
    },
    Known {
        name: "pm25",
        mdc: pvt(7),
        unit: Some("ug/m3"),
        words: None,
    },
    Known {
        name: "formaldehyde",
        mdc: pvt(8),
        unit: Some("mg/m3"),
        words: None,
    },
    Known {
        name: "soil_moisture",
        mdc: pvt(9),
        unit: Some("%"),
        words: None,
    },
    Known {
        name: "battery",
        mdc: pvt(10),
        unit: Some("%"),
        words: None,
    },
];

pub(crate) fn known(name: &str) -> Option<&'static Known> {
    TABLE.iter().find(|k| k.name == name)
}

/// What makes an alarm or technical condition active.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// A binary expose's state, as JSON boolean or `"ON"`/`"OFF"` ([`binary_state`]).
    Bool(bool),
    Number(f64),
    Text(String),
    AnyOf(Vec<String>),
    Range {
        below: Option<f64>,
        above: Option<f64>,
    },
    /// Any non-empty string (a button's `action` of a device with role `sos_button`).
    NonEmptyText,
    /// No `when`/`below`/`above` on a `low_battery` rule: `true` for a boolean, below the
    /// source's `low_battery_percent` for a number.
    LowBattery(f64),
}

/// Why a value could not be tested.
pub(crate) fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// The state of a zigbee2mqtt binary expose: JSON `true`/`false`, or the `"ON"`/`"OFF"` that
/// some converters declare as the expose's `value_on`/`value_off` instead (e.g. Tuya DCR-CO's
/// `carbon_monoxide`, NEO NAS-AB06B2's `tamper_alarm`), so a boolean rule sees both.
pub(crate) fn binary_state(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::String(s) if s == "ON" => Some(true),
        Json::String(s) if s == "OFF" => Some(false),
        _ => None,
    }
}

impl Condition {
    /// Whether `v` makes the condition active; `Err` names what was expected.
    pub(crate) fn test(&self, v: &Json) -> Result<bool, &'static str> {
        match (self, v) {
            (Condition::Bool(b), v) => binary_state(v)
                .map(|x| *b == x)
                .ok_or("a boolean or \"ON\"/\"OFF\""),
            (Condition::Number(n), Json::Number(x)) => Ok(x.as_f64() == Some(*n)),
            (Condition::Number(_), _) => Err("a number"),
            (Condition::Text(t), Json::String(x)) => Ok(t == x),
            (Condition::Text(_), _) => Err("a string"),
            (Condition::AnyOf(l), Json::String(x)) => Ok(l.iter().any(|t| t == x)),
            (Condition::AnyOf(_), _) => Err("a string"),
            (Condition::NonEmptyText, Json::String(x)) => Ok(!x.is_empty()),
            (Condition::NonEmptyText, _) => Err("a string"),
            (Condition::Range { below, above }, Json::Number(x)) => {
                let x = x.as_f64().ok_or("a finite number")?;
                Ok(below.is_none_or(|b| x < b) && above.is_none_or(|a| x > a))
            }
            (Condition::Range { .. }, _) => Err("a number"),
            (Condition::LowBattery(_), Json::Bool(x)) => Ok(*x),
            (Condition::LowBattery(p), Json::Number(x)) => {
                let x = x.as_f64().ok_or("a finite number")?;
                Ok(x < *p)
            }
            (Condition::LowBattery(_), _) => Err("a boolean or a number"),
        }
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub property: String,
    pub emit: RuleEmit,
    /// Empty for `ignore`.
    pub event_type: String,
    pub condition: Condition,
    pub momentary: bool,
    pub device: Option<String>,
    pub for_: Duration,
    pub hours: Option<Hours>,
    pub debounce: Duration,
    pub mdc: Mdc,
    pub unit: Option<Ucum>,
    pub words: Option<(&'static str, &'static str)>,
    pub on_change: bool,
    pub severity: Severity,
    /// `device` as 16 lowercase hex digits, when it is an IEEE address.
    pub device_ieee: Option<String>,
    /// `<emit>.<type>.<property>`, see [`Rule::cond_key`].
    cond_key: String,
    /// `<emit>.<type>`, see [`Rule::group_key`].
    group_key: String,
    /// `<type>.<property>`: the name of the on_change state of an observation.
    last_key: String,
}

impl Rule {
    /// The key of this rule's condition state: `<emit>.<type>.<property>`.
    pub(crate) fn cond_key(&self) -> &str {
        &self.cond_key
    }

    /// The key of the alarm it drives: `<emit>.<type>` (rules of one type share one alarm).
    pub(crate) fn group_key(&self) -> &str {
        &self.group_key
    }

    /// The name of an observation's last value: `<type>.<property>`.
    pub(crate) fn last_key(&self) -> &str {
        &self.last_key
    }

    pub(crate) fn is_condition(&self) -> bool {
        matches!(self.emit, RuleEmit::Alarm | RuleEmit::Technical)
    }
}

pub(crate) fn group_key(emit: RuleEmit, event_type: &str) -> String {
    format!("{}.{}", emit.as_str(), event_type)
}

pub(crate) fn severity(name: &str) -> Option<Severity> {
    match name {
        "critical" => Some(Severity::Critical),
        "major" => Some(Severity::Major),
        "minor" => Some(Severity::Minor),
        "warning" => Some(Severity::Warning),
        _ => None,
    }
}

/// The implicit rules of device `n` (1-based) by its role (issue 15): the role comes from the
/// config, not from the payload. `sos_button`: any non-empty `action` is a momentary
/// `emergency` alarm; `fall_detector`, `smoke_detector`, `water_leak`: `fall`, `smoke`,
/// `water_leak` true is that alarm (as the shipped rules, so they hold with
/// `default_rules = false` too). Each applies to that device only.
pub(crate) fn role_rules(
    d: &SensorConfig,
    n: usize,
    source_debounce: Duration,
    low_battery_percent: u8,
) -> Result<Vec<Rule>, EngineError> {
    let (property, event_type, momentary) = match d.role {
        SensorRole::None => return Ok(Vec::new()),
        SensorRole::SosButton => ("action", "emergency", true),
        SensorRole::FallDetector => ("fall", "fall", false),
        SensorRole::SmokeDetector => ("smoke", "smoke", false),
        SensorRole::WaterLeak => ("water_leak", "water_leak", false),
    };
    let mut r = RuleConfig::new(property, RuleEmit::Alarm, Some(event_type));
    r.momentary = momentary;
    r.device = Some(d.name.clone());
    let origin = format!("device {n} (role {})", d.role);
    let mut rule = compile(&r, &origin, 1, source_debounce, low_battery_percent)?;
    if d.role == SensorRole::SosButton {
        rule.condition = Condition::NonEmptyText;
    }
    Ok(vec![rule])
}

/// Compiles one rule; `n` (1-based) and `origin` name it in errors.
pub(crate) fn compile(
    r: &RuleConfig,
    origin: &str,
    n: usize,
    source_debounce: Duration,
    low_battery_percent: u8,
) -> Result<Rule, EngineError> {
    let bad = |why: String| EngineError::Rule {
        origin: origin.to_owned(),
        index: n,
        property: r.property.clone(),
        why,
    };
    if r.property.is_empty() {
        return Err(bad("property must not be empty".into()));
    }
    let event_type = match (r.emit, &r.event_type) {
        (RuleEmit::Ignore, _) => String::new(),
        (_, Some(t)) if !t.is_empty() => t.clone(),
        (e, _) => return Err(bad(format!("emit = \"{e}\" needs a type"))),
    };
    let condition = match (&r.when, r.below, r.above) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad("use either when or below/above, not both".into()));
        }
        (Some(RuleValue::Bool(b)), ..) => Condition::Bool(*b),
        (Some(RuleValue::Number(x)), ..) => Condition::Number(*x),
        (Some(RuleValue::Text(t)), ..) => Condition::Text(t.clone()),
        (Some(RuleValue::AnyOf(l)), ..) => Condition::AnyOf(l.clone()),
        (None, None, None) if event_type == "low_battery" && r.emit == RuleEmit::Technical => {
            Condition::LowBattery(f64::from(low_battery_percent))
        }
        (None, None, None) => Condition::Bool(true),
        (None, below, above) => Condition::Range { below, above },
    };
    let hours = match &r.hours {
        Some(h) => Some(Hours::parse(h).map_err(bad)?),
        None => None,
    };
    let severity = match &r.severity {
        Some(s) => severity(s).ok_or_else(|| bad(format!("unknown severity \"{s}\"")))?,
        None => Severity::Minor,
    };
    let table = known(&event_type);
    let (mdc, unit, words) = if r.emit == RuleEmit::Observation {
        let mdc = match (r.mdc, table) {
            (Some(m), _) => m,
            (None, Some(k)) => k.mdc,
            (None, None) => {
                return Err(bad(format!(
                    "observation type \"{event_type}\" has no code in the shipped table; set \
                     mdc (partition * 65536 + term, e.g. {} for a hearth-private code)",
                    pvt(1000)
                )));
            }
        };
        let unit = r
            .unit
            .clone()
            .or_else(|| table.and_then(|k| k.unit.map(str::to_owned)))
            .map(Ucum::new);
        (Mdc(mdc), unit, table.and_then(|k| k.words))
    } else {
        (Mdc(0), None, table.and_then(|k| k.words))
    };
    if r.momentary && r.emit != RuleEmit::Alarm {
        return Err(bad("momentary only applies to alarm rules".into()));
    }
    let cond_key = format!("{}.{}.{}", r.emit.as_str(), event_type, r.property);
    let group_key = group_key(r.emit, &event_type);
    let last_key = format!("{}.{}", event_type, r.property);
    Ok(Rule {
        device_ieee: r.device.as_deref().and_then(ieee_hex),
        cond_key,
        group_key,
        last_key,
        property: r.property.clone(),
        emit: r.emit,
        event_type,
        condition,
        momentary: r.momentary,
        device: r.device.clone(),
        for_: r.for_.map_or(Duration::ZERO, |d| d.get()),
        hours,
        debounce: r.debounce.map_or(source_debounce, |d| d.get()),
        mdc,
        unit,
        words,
        on_change: r.on_change,
        severity,
    })
}

/// 16 lowercase hex digits of an IEEE address (`0x00158D…` or bare hex), if it is one.
pub(crate) fn ieee_hex(s: &str) -> Option<String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    (h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// The shipped rules, parsed.
pub(crate) fn try_default_rules() -> Result<Vec<RuleConfig>, EngineError> {
    hearth_config::parse_rules(
        DEFAULT_RULES,
        Path::new("drivers/zigbee2mqtt/rules/default.toml"),
    )
    .map_err(|e| EngineError::DefaultRules(e.to_string()))
}

/// The observation value of a JSON value; `Err` says why it has none.
pub(crate) fn observation_value(rule: &Rule, v: &Json) -> Result<Value, String> {
    match v {
        Json::Bool(b) => {
            let (t, f) = rule.words.unwrap_or(("true", "false"));
            Ok(Value::Enumerated(Enumerated::Text(
                if *b { t } else { f }.to_owned(),
            )))
        }
        Json::Number(n) => {
            let x = n
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or("not a finite number")?;
            Ok(Value::numeric_from_text(x, &n.to_string()))
        }
        Json::String(s) if s.is_empty() => Err("an empty string".into()),
        Json::String(s) if s.chars().count() > 64 => {
            Err("a string longer than 64 characters".into())
        }
        Json::String(s) => Ok(Value::Enumerated(Enumerated::Text(s.clone()))),
        other => Err(format!(
            "{}; expected a boolean, a number or a string",
            kind_of(other)
        )),
    }
}
