//! `[receipt]`: keys, defaults, per-person levels and the errors an installer sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use hearth_config::*;

const BASE: &str = r#"[gateway]
data_dir = "/tmp/hearth"

[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "loopback"

[[source]]
name = "sim"
kind = "simulated"
"#;

fn load(extra: &str) -> Result<Loaded, ConfigError> {
    parse(&format!("{BASE}\n{extra}"), Path::new("hearth.toml"))
}

fn errors(extra: &str) -> Vec<String> {
    match load(extra) {
        Ok(l) => panic!("expected an error, got {l:?}"),
        Err(e) => std::iter::once(&e)
            .chain(e.more.iter())
            .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message))
            .collect(),
    }
}

#[test]
fn nothing_configured_means_no_signal() {
    let c = load("").unwrap().config;
    assert_eq!(c.receipt, ReceiptConfig::default());
    assert!(!c.receipt.is_active());
    assert_eq!(c.receipt.strength, ReceiptStrength::Medium);
    assert_eq!(c.receipt.duration.get(), Duration::from_secs(10));
}

#[test]
fn every_key_parses_and_a_person_overrides_the_defaults_key_by_key() {
    let c = load(
        r#"[receipt]
strength = "low"
duration = "5s"

[[receipt.indicator]]
kind = "siren"
device = "hall/siren"
confirmed_payload = '{"warning": {"mode": "emergency", "duration": 3}}'
failing_payload = '{"warning": {"mode": "stop", "strobe": true}}'

[[receipt.indicator]]
kind = "light"
device = "hall/lamp"
base_topic = "z2m"

[[receipt.indicator]]
kind = "command"
program = "/usr/local/bin/pad"
confirmed_args = ["ok", "{strength}", "{duration}"]
failing_args = ["wait"]

[[receipt.person]]
person = "Patient/1"
strength = "very_high"
duration = "30s"

[[receipt.person]]
person = "Patient/2"
strength = "high"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .config;
    let r = &c.receipt;
    assert!(r.is_active());
    assert_eq!(r.indicators.len(), 3);
    assert_eq!(r.indicators[0].kind, IndicatorKind::Siren);
    assert_eq!(r.indicators[0].base_topic(), "zigbee2mqtt");
    assert_eq!(r.indicators[1].base_topic(), "z2m");
    assert_eq!(r.indicators[1].describe(), "light hall/lamp");
    assert_eq!(
        r.indicators[2].program.as_deref(),
        Some(Path::new("/usr/local/bin/pad"))
    );
    assert_eq!(
        r.indicators[2].confirmed_args,
        ["ok", "{strength}", "{duration}"]
    );
    let secs = |s| ConfigDuration::from_secs(s);
    assert_eq!(
        r.level_for(Some("Patient/1")),
        (ReceiptStrength::VeryHigh, secs(30))
    );
    assert_eq!(
        r.level_for(Some("Patient/2")),
        (ReceiptStrength::High, secs(5))
    );
    assert_eq!(
        r.level_for(Some("Patient/3")),
        (ReceiptStrength::Low, secs(5))
    );
    assert_eq!(r.level_for(None), (ReceiptStrength::Low, secs(5)));
    // The effective config prints and loads back the same.
    let again = parse(&c.to_toml().unwrap(), Path::new("shown.toml")).unwrap();
    assert_eq!(again.config.receipt, c.receipt);
}

#[test]
fn an_unknown_strength_or_kind_names_the_key() {
    let e = errors("[receipt]\nstrength = \"loud\"\n");
    assert!(
        e[0].starts_with("14:12: receipt.strength: unknown variant `loud`"),
        "{e:?}"
    );
    let e = errors("[[receipt.indicator]]\nkind = \"bell\"\ndevice = \"x\"\n");
    assert!(
        e[0].contains("receipt.indicator[0].kind: unknown variant `bell`"),
        "{e:?}"
    );
    let e = errors("[[receipt.indicator]]\nkind = \"siren\"\ndevise = \"x\"\n");
    assert!(e[0].contains("unknown field `devise`"), "{e:?}");
}

#[test]
fn each_kind_needs_its_keys_and_refuses_the_others() {
    assert_eq!(
        errors(
            r#"[[receipt.indicator]]
kind = "siren"
program = "/bin/true"

[[receipt.indicator]]
kind = "command"
device = "hall/siren"
failing_args = ["x"]
"#
        ),
        [
            "14:8: receipt.indicator[0].kind: kind = \"siren\" needs device (the zigbee2mqtt \
             friendly name, e.g. \"hall/siren\")",
            "15:11: receipt.indicator[0].program: program only applies to kind = \"command\", \
             but this indicator's kind is \"siren\"; remove it",
            "18:8: receipt.indicator[1].kind: kind = \"command\" needs program (an absolute path)",
            "19:10: receipt.indicator[1].device: device only applies to kind = \"siren\" or \
             \"light\", but this indicator's kind is \"command\"; remove it",
        ]
    );
}

#[test]
fn payloads_must_be_json_objects_and_programs_absolute() {
    let e = errors(
        r#"[[receipt.indicator]]
kind = "light"
device = "lamp"
confirmed_payload = '{"state": ON}'
failing_payload = '"blink"'

[[receipt.indicator]]
kind = "command"
program = "pad"
"#,
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "16:21: receipt.indicator[0].confirmed_payload: confirmed_payload is not a JSON \
             object (unexpected character at byte 10)"
        ),
        "{e:?}"
    );
    assert!(
        e[1].contains("failing_payload is not a JSON object (it must start with '{')"),
        "{e:?}"
    );
    assert!(
        e[2].starts_with(
            "21:11: receipt.indicator[1].program: program \"pad\" must be an absolute path"
        ),
        "{e:?}"
    );
}

#[test]
fn topics_durations_and_persons_are_checked() {
    let e = errors(
        r#"[receipt]
duration = "0s"

[[receipt.indicator]]
kind = "siren"
device = "hall/+"
base_topic = "/z2m"

[[receipt.person]]
person = "Patient/1"
duration = "11m"

[[receipt.person]]
person = "Patient/1"

[[receipt.person]]
person = " "
"#,
    );
    assert_eq!(
        e,
        [
            "14:12: receipt.duration: duration 0s is out of range; use \"1s\"..=\"10m\"",
            "18:10: receipt.indicator[0].device: device \"hall/+\" contains an MQTT wildcard \
             ('#' or '+'); give the literal prefix",
            "19:14: receipt.indicator[0].base_topic: base_topic \"/z2m\" has an empty topic \
             level; remove the leading, trailing or doubled '/'",
            "23:12: receipt.person[0].duration: duration 11m is out of range; use \
             \"1s\"..=\"10m\"",
            "26:10: receipt.person[1].person: this person already has an entry (person[0] on \
             line 22); list each person once",
            "29:10: receipt.person[2].person: person must not be empty; write it as the sources \
             do, e.g. \"Patient/123\"",
        ]
    );
}

#[test]
fn the_example_indicators_are_valid() {
    // The commented-out example indicators, as an installer would uncomment them.
    let c = load(
        r#"[[receipt.indicator]]
kind = "siren"
device = "hall/siren"
confirmed_payload = '{"warning": {"mode": "emergency", "level": "low", "strobe": true, "duration": 5}}'
failing_payload = '{"warning": {"mode": "stop", "strobe": true, "strobe_duty_cycle": 5, "duration": 10}}'
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .config;
    assert_eq!(
        c.receipt.indicators[0].device.as_deref(),
        Some("hall/siren")
    );
}

#[test]
fn the_example_of_the_alarms_guide_is_valid() {
    let doc = include_str!("../../../docs/alarms.md");
    let section = &doc[doc.find("## Receipt signal").expect("the section")..];
    let start = section.find("```toml\n").expect("a TOML block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").expect("its end")];
    let c = load(block).unwrap_or_else(|e| panic!("{e}")).config;
    assert_eq!(c.receipt.indicators.len(), 3);
    assert_eq!(c.receipt.persons.len(), 1);
}

#[test]
fn indicators_without_an_alarm_route_are_a_warning() {
    let loaded = load("[[receipt.indicator]]\nkind = \"siren\"\ndevice = \"s\"\n").unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].key, "receipt.indicator");
    assert!(loaded.warnings[0].message.contains("uplink = \"scaip\""));
}
