//! The annotated example (`docs/hearth.example.toml`) is valid and documents every key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hearth_config::*;
use hearth_model::Category;
use hearth_test_kit::config_keys::documented_keys;

fn example() -> Loaded {
    parse(EXAMPLE, Path::new("docs/hearth.example.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_parses_with_no_errors_and_no_warnings() {
    let loaded = example();
    assert_eq!(loaded.warnings, []);
    let c = &loaded.config;
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].uplink, UplinkKind::Loopback);
    assert_eq!(c.routes[0].categories, Category::ALL);
    assert_eq!(c.sources.len(), 4);
    assert_eq!(c.sources[0].kind, SourceKind::Simulated);
    assert_eq!(c.sources[1].kind, SourceKind::Ble);
    let ble = c.sources[1].ble_settings();
    assert_eq!(ble.backend, BleBackendKind::Bluez);
    assert_eq!(ble.devices.len(), 2);
    assert_eq!(ble.devices[0].person.as_deref(), Some("Patient/123"));
    assert_eq!(
        ble.devices[1].system_id.as_deref(),
        Some("0123456789abcdef")
    );
    // Every [source.ble] value written is the default; only the device list is an example.
    assert_eq!(
        BleSourceConfig {
            devices: Vec::new(),
            ..ble
        },
        BleSourceConfig::default()
    );
}

#[test]
fn the_example_shows_the_defaults() {
    // Every value written in the example is the default, so the example doubles as the
    // documentation of the defaults.
    let mut c = example().config;
    c.routes.clear();
    c.sources.clear();
    assert_eq!(c, Config::default());
}

/// Every (section, key) of a serialized config: array indexes are dropped, so every `[[route]]`
/// is section `route`.
fn schema_keys(section: &str, table: &toml::Table, out: &mut BTreeSet<(String, String)>) {
    for (key, value) in table {
        let sub = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        match value {
            toml::Value::Table(t) => schema_keys(&sub, t, out),
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                for t in a.iter().filter_map(toml::Value::as_table) {
                    schema_keys(&sub, t, out);
                }
            }
            _ => {
                out.insert((section.to_owned(), key.clone()));
            }
        }
    }
}

/// A config with every optional table and key present.
fn full_config() -> Config {
    let mut c = Config::default();
    c.gateway.eui64 = Some("02-1A-2B-3C-4D-5E-6F-70".into());
    c.routes.push(RouteConfig {
        name: "hub".into(),
        categories: vec![Category::Health],
        uplink: UplinkKind::Loopback,
        batch_size: 100,
        connections: Some(1),
        enabled: true,
        retry: Some(RetryOverride {
            initial: Some(ConfigDuration::from_secs(1)),
            max: Some(ConfigDuration::from_secs(2)),
            jitter: Some(0.1),
        }),
        loopback: Some(LoopbackConfig {
            path: Some(PathBuf::from("x.db")),
        }),
        fhir: None,
        pcd01: None,
        scaip: None,
        tls: None,
    });
    let tls = Some(RouteTlsConfig {
        ca_file: Some(PathBuf::from("ca.pem")),
        client_cert: Some(PathBuf::from("c.pem")),
        client_key: Some(PathBuf::from("k.pem")),
    });
    c.routes.push(RouteConfig {
        name: "hub-fhir".into(),
        categories: vec![Category::Health],
        uplink: UplinkKind::Fhir,
        batch_size: 100,
        connections: None,
        enabled: true,
        retry: None,
        loopback: None,
        fhir: Some(FhirRouteConfig {
            url: "https://hub.example.no/fhir".into(),
            profile: FhirProfile::Phd,
            timeout: ConfigDuration::from_secs(30),
            patient: Some("Patient/1".into()),
            organization: Some("974760673".into()),
            municipality: Some("0301".into()),
            device_id_system: Some("urn:oid:2.16.578.1.12.4.1.7.1".into()),
            unsupported: FhirUnsupported::Skip,
            auth: FhirAuthConfig {
                kind: FhirAuthKind::Oauth2,
                token_file: Some(PathBuf::from("t")),
                token_url: Some("https://id.example.no/connect/token".into()),
                client_id: Some("hearth".into()),
                scope: Some("s".into()),
                private_key: Some(PathBuf::from("k.pem")),
                key_id: Some("k1".into()),
            },
        }),
        pcd01: None,
        scaip: None,
        tls: tls.clone(),
    });
    c.routes.push(RouteConfig {
        name: "hub-pcd01".into(),
        categories: vec![Category::Health],
        uplink: UplinkKind::Pcd01,
        batch_size: 100,
        connections: None,
        enabled: true,
        retry: None,
        loopback: None,
        fhir: None,
        pcd01: Some(Pcd01RouteConfig {
            host: "hub.example.no".into(),
            port: 2575,
            tls: true,
            server_name: Some("hub.example.no".into()),
            timeout: ConfigDuration::from_secs(30),
            in_flight: 32,
            patient: Some("urn:oid:2.16.578.1.12.4.1.4.1|13116900216".into()),
            receiving_application: Some("HUB".into()),
            receiving_facility: Some("KOMMUNE".into()),
            ack_mode: Pcd01AckMode::Application,
            processing_id: Pcd01ProcessingId::T,
            profile: Some("IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO".into()),
            universal_service: Some("182777000^monitoring of patient^SCT".into()),
        }),
        scaip: None,
        tls: tls.clone(),
    });
    c.routes.push(RouteConfig {
        name: "centre".into(),
        categories: vec![Category::Health],
        uplink: UplinkKind::Scaip,
        batch_size: 100,
        connections: Some(4),
        enabled: true,
        retry: None,
        loopback: None,
        fhir: None,
        pcd01: None,
        scaip: Some(ScaipRouteConfig {
            account: "12345678".into(),
            callers: vec!["sip:home@arc.example.no".into()],
            answer_timeout: ConfigDuration::from_secs(10),
            resend_every: ConfigDuration::from_secs(4),
            hold_interval: ConfigDuration::from_secs(10),
            hold_budget: ConfigDuration::from_secs(180),
            heartbeat: ConfigDuration::from_secs(60),
            heartbeat_offer: true,
            receivers: vec![
                ScaipReceiverConfig {
                    name: "arc".into(),
                    protocol: ScaipProtocol::Sip,
                    to: Some("sips:arc@arc.example.no".into()),
                    registrar: Some("arc.example.no:5061".into()),
                    transport: SipTransportKind::Tls,
                    user: Some("home".into()),
                    domain: Some("arc.example.no".into()),
                    auth_user: Some("home".into()),
                    password_file: Some(PathBuf::from("p")),
                    register_expires: ConfigDuration::from_secs(600),
                    local_address: Some("192.0.2.1:5061".into()),
                    insecure_transport: false,
                    url: None,
                    token_file: None,
                    tls: tls.clone(),
                },
                ScaipReceiverConfig {
                    name: "arc-b".into(),
                    protocol: ScaipProtocol::Https,
                    to: None,
                    registrar: None,
                    transport: SipTransportKind::Tls,
                    user: None,
                    domain: None,
                    auth_user: None,
                    password_file: None,
                    register_expires: ConfigDuration::from_secs(600),
                    local_address: None,
                    insecure_transport: false,
                    url: Some("https://arc-b.example.no/scaip".into()),
                    token_file: Some(PathBuf::from("t")),
                    tls: None,
                },
            ],
            devices: vec![ScaipDeviceConfig {
                id: "zigbee:0x00158d0001a2b3c4".into(),
                device_type: Some(3),
                component: Some(2),
                location: Some(21),
                did: Some("00158d0001a2b3c4".into()),
                text: Some("x".into()),
                priority: Some(1),
                receivers: Some(vec!["arc-b".into(), "arc".into()]),
            }],
            technical: vec![ScaipTechnicalConfig {
                kind: "device_offline".into(),
                send: true,
                raised: Some(23),
                cleared: Some(112),
            }],
        }),
        tls,
    });
    c.sources.push(SourceConfig {
        name: "sim".into(),
        kind: SourceKind::Simulated,
        category: Category::Health,
        enabled: true,
        simulated: Some(SimulatedConfig::default()),
        ble: None,
        zigbee2mqtt: None,
        external: None,
    });
    c.sources.push(SourceConfig {
        name: "ble".into(),
        kind: SourceKind::Ble,
        category: Category::Health,
        enabled: true,
        simulated: None,
        ble: Some(BleSourceConfig {
            devices: vec![BleDeviceConfig {
                address: "AA:BB:CC:DD:EE:FF".into(),
                system_id: Some("0123456789abcdef".into()),
                person: Some("Patient/1".into()),
                category: Some(Category::Welfare),
                label: Some("x".into()),
            }],
            ..BleSourceConfig::default()
        }),
        zigbee2mqtt: None,
        external: None,
    });
    c.mqtt = MqttConfig {
        username: Some("hearth".into()),
        password_file: Some(PathBuf::from("/etc/hearth/mqtt.pass")),
        tls: true,
        ca_file: Some(PathBuf::from("ca.pem")),
        client_cert: Some(PathBuf::from("c.pem")),
        client_key: Some(PathBuf::from("k.pem")),
        ..MqttConfig::default()
    };
    c.receipt = ReceiptConfig {
        strength: ReceiptStrength::High,
        duration: ConfigDuration::from_secs(5),
        indicators: vec![
            IndicatorConfig {
                kind: IndicatorKind::Siren,
                device: Some("hall/siren".into()),
                base_topic: Some("z2m".into()),
                confirmed_payload: Some("{}".into()),
                failing_payload: Some("{}".into()),
                program: None,
                confirmed_args: Vec::new(),
                failing_args: Vec::new(),
            },
            IndicatorConfig {
                kind: IndicatorKind::Command,
                device: None,
                base_topic: None,
                confirmed_payload: None,
                failing_payload: None,
                program: Some(PathBuf::from("/usr/bin/true")),
                confirmed_args: vec!["ok".into()],
                failing_args: vec!["wait".into()],
            },
        ],
        persons: vec![ReceiptPersonConfig {
            person: "Patient/1".into(),
            strength: Some(ReceiptStrength::Low),
            duration: Some(ConfigDuration::from_secs(30)),
        }],
    };
    let mut rule = RuleConfig::new("occupancy", RuleEmit::Alarm, Some("no_bed_return"));
    rule.when = Some(RuleValue::Bool(false));
    rule.below = Some(1.0);
    rule.above = Some(0.0);
    rule.device = Some("bed".into());
    rule.for_ = Some(ConfigDuration::from_secs(1800));
    rule.hours = Some("22:00-07:00".into());
    rule.debounce = Some(ConfigDuration::from_secs(1));
    rule.mdc = Some(1);
    rule.unit = Some("Cel".into());
    rule.severity = Some("minor".into());
    c.sources.push(SourceConfig {
        name: "zigbee".into(),
        kind: SourceKind::Zigbee2mqtt,
        category: Category::Welfare,
        enabled: true,
        simulated: None,
        ble: None,
        zigbee2mqtt: Some(Zigbee2mqttConfig {
            rules: vec![rule],
            devices: vec![SensorConfig {
                name: "bed".into(),
                person: Some("Patient/1".into()),
                category: Some(Category::Welfare),
                label: Some("x".into()),
                role: hearth_config::SensorRole::SosButton,
            }],
            ..Zigbee2mqttConfig::default()
        }),
        external: None,
    });
    c.sources.push(SourceConfig {
        name: "vendors".into(),
        kind: SourceKind::External,
        category: Category::Welfare,
        enabled: true,
        simulated: None,
        ble: None,
        zigbee2mqtt: None,
        external: Some(ExternalConfig {
            drivers: vec!["acme".into()],
            ..ExternalConfig::default()
        }),
    });
    c
}

#[test]
fn the_example_documents_every_key_of_the_schema() {
    let full = toml::Table::try_from(full_config()).unwrap();
    let mut schema = BTreeSet::new();
    schema_keys("", &full, &mut schema);
    assert!(schema.len() > 30, "the walk found too few keys: {schema:?}");
    let documented = documented_keys(EXAMPLE);
    let missing: Vec<_> = schema.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "docs/hearth.example.toml does not document these (section, key) pairs: {missing:?}"
    );
    // And it documents nothing that the schema does not have.
    let unknown: Vec<_> = documented.difference(&schema).collect();
    assert!(
        unknown.is_empty(),
        "the example documents unknown keys: {unknown:?}"
    );
}

#[test]
fn the_commented_out_keys_of_the_example_are_valid_too() {
    let uncommented: String = EXAMPLE
        .lines()
        .map(|line| {
            let rest = line.trim_start_matches("# ");
            let is_key = rest
                .split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            let is_header = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
            if line.starts_with("# ") && (is_key || is_header) {
                format!("{rest}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert_ne!(
        uncommented, EXAMPLE,
        "the example has no commented-out keys any more"
    );
    let loaded =
        parse(&uncommented, Path::new("uncommented.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.config.routes[0].retry.is_some());
}
