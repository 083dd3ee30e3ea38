//! Every problem in a config file is reported as `file:line:column: key: message`, at the line
//! an operator has to change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hearth_config::*;
use proptest::prelude::*;

/// A valid config: one route (line 4) and one source (line 9), for tests to break.
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

fn error(text: &str) -> ConfigError {
    match parse(text, Path::new("hearth.toml")) {
        Ok(loaded) => panic!("expected an error, got {loaded:?}"),
        Err(e) => e,
    }
}

/// Asserts the whole rendered error.
fn check(text: &str, expected: &str) {
    assert_eq!(error(text).to_string(), expected, "for:\n{text}");
}

#[test]
fn base_is_valid() {
    let loaded = parse(BASE, Path::new("hearth.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.warnings, []);
}

#[test]
fn the_display_format_is_file_line_column_key_message() {
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"loopback\"\nbatch_size = 0",
    ));
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(e.file, Path::new("hearth.toml"));
    assert_eq!((e.line, e.column), (8, 14));
    assert_eq!(e.key, "route[0].batch_size");
    assert_eq!(e.message, "batch_size 0 is out of range; use 1..=10000");
    assert_eq!(
        e.to_string(),
        "hearth.toml:8:14: route[0].batch_size: batch_size 0 is out of range; use 1..=10000"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    check(
        "[outbox]\nmax_rows = 5000\nmax_byts = \"1 GiB\"\n",
        "hearth.toml:3:1: outbox.max_byts: unknown field `max_byts`, expected one of \
         `max_bytes`, `max_rows`, `group_commit_max`, `integrity_check`, `retention`; check the \
         spelling (docs/hearth.example.toml lists every key)",
    );
}

#[test]
fn an_unknown_key_in_a_second_route_is_named_with_its_index_and_line() {
    let e = error(&BASE.replace(
        "[[source]]",
        "[[route]]\nname = \"b\"\ncategories = [\"health\"]\nuplink = \"loopback\"\nretries = 3\n\n[[source]]",
    ));
    assert_eq!(e.kind, ErrorKind::Schema);
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("route[1].retries", 13, 1)
    );
}

#[test]
fn an_unknown_table_is_named_with_its_header_line() {
    let e = error(&format!("{BASE}\n[source.simulted]\ndevices = 2\n"));
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("source[0].simulted", 13, 9)
    );
    let e = error("[gatway]\nid = \"x\"\n");
    assert_eq!((e.key.as_str(), e.line, e.column), ("gatway", 1, 2));
}

#[test]
fn a_syntax_error_names_its_line() {
    check(
        "[gateway]\nid = \"hearth\"\ndata_dir = /var/lib/hearth\n",
        "hearth.toml:3:12: TOML syntax error: string values must be quoted, expected literal string",
    );
}

#[test]
fn a_duplicate_key_is_a_syntax_error_at_the_second_one() {
    let e = error("[outbox]\nmax_rows = 5000\nmax_rows = 6000\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line, e.column), (3, 1));
}

#[test]
fn a_bad_category_lists_the_valid_ones() {
    check(
        &BASE.replace("\"welfare\"", "\"journal\""),
        "hearth.toml:6:25: route[0].categories[1]: unknown category \"journal\"; valid categories \
         are: health, welfare, administrative",
    );
    let e = error(&format!("{BASE}category = \"medical\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("source[0].category", 12));
    assert!(e.message.contains("health, welfare, administrative"), "{e}");
}

#[test]
fn a_bad_enum_value_lists_the_valid_ones() {
    check(
        &BASE.replace("uplink = \"loopback\"", "uplink = \"http\""),
        "hearth.toml:7:10: route[0].uplink: unknown variant `http`, expected one of `loopback`, \
         `fhir`, `pcd01`, `scaip`",
    );
    let e = error("[log]\nformat = \"xml\"\n");
    assert_eq!((e.key.as_str(), e.line, e.column), ("log.format", 2, 10));
}

#[test]
fn a_wrong_type_is_named_with_its_key() {
    check(
        "[outbox]\nmax_rows = \"lots\"\n",
        "hearth.toml:2:12: outbox.max_rows: invalid type: string \"lots\", expected u64",
    );
    let e = error(&BASE.replace(
        "categories = [\"health\", \"welfare\", \"administrative\"]",
        "categories = \"health\"",
    ));
    assert_eq!((e.key.as_str(), e.line), ("route[0].categories", 6));
}

#[test]
fn a_missing_name_points_at_its_route_table() {
    check(
        &format!("{BASE}\n[[route]]\ncategories = [\"health\"]\nuplink = \"loopback\"\n"),
        "hearth.toml:13:1: route[1].name: missing required key `name`",
    );
}

#[test]
fn a_missing_uplink_in_an_inline_route_points_at_it() {
    let e = error("route = [{ name = \"a\", categories = [\"health\"] }]\n");
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("route[0].uplink", 1, 10)
    );
}

#[test]
fn duplicate_route_names_point_at_the_second_one() {
    check(
        &BASE.replace(
            "[[source]]",
            "[[route]]\nname = \"hub\"\ncategories = [\"health\"]\nuplink = \"loopback\"\n\
             [route.loopback]\npath = \"other.db\"\n\n[[source]]",
        ),
        "hearth.toml:10:8: route[1].name: duplicate route name \"hub\" (first used by route[0] \
         on line 5); route names must be unique because delivery state is keyed by them",
    );
}

#[test]
fn a_scaip_route_needs_its_table_and_a_receiver() {
    let e = error(&BASE.replace("uplink = \"loopback\"", "uplink = \"scaip\""));
    assert_eq!((e.key.as_str(), e.line), ("route[0].uplink", 7), "{e}");
    assert!(e.message.contains("needs a [route.scaip] table"), "{e}");
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"scaip\"\n[route.scaip]\naccount = \"12345\"",
    ));
    assert_eq!(e.key, "route[0].scaip.receiver");
    assert!(
        e.message.contains("at least one [[route.scaip.receiver]]"),
        "{e}"
    );
}

/// Issue 15: the alarm route's keys are checked with the key and what to write.
#[test]
fn scaip_receivers_are_checked_key_by_key() {
    let route = |receiver: &str| {
        BASE.replace(
            "uplink = \"loopback\"",
            &format!(
                "uplink = \"scaip\"\n[route.scaip]\naccount = \"12a\"\nhold_interval = \"30s\"\n\
                 [[route.scaip.receiver]]\n{receiver}\n\
                 [[route.scaip.device]]\nid = \"zigbee:0x1\"\nreceivers = [\"nobody\"]\ntext = \"{long}\"\n",
                long = "x".repeat(33)
            ),
        )
    };
    let e = error(&route(
        "name = \"arc\"\nto = \"arc@x\"\nregistrar = \"arc.example.no:5060\"\n\
         transport = \"udp\"\nuser = \"home\"\nurl = \"https://x/\"",
    ));
    let got: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        got,
        [
            "route[0].scaip.account",
            "route[0].scaip.hold_interval",
            "route[0].scaip.receiver[0].password_file",
            "route[0].scaip.receiver[0].to",
            "route[0].scaip.receiver[0].transport",
            "route[0].scaip.receiver[0].url",
            "route[0].scaip.device[0].receivers[0]",
            "route[0].scaip.device[0].text",
        ],
        "{e}"
    );
    assert!(e.to_string().contains("sends alarms unencrypted"), "{e}");
    let e = error(&route(
        "name = \"arc\"\nprotocol = \"https\"\nurl = \"http://arc.example.no/\"",
    ));
    assert!(
        e.iter().any(|e| e.key == "route[0].scaip.receiver[0].url"),
        "{e}"
    );
}

#[test]
fn a_fhir_route_needs_its_table_and_tls_to_other_hosts() {
    let e = error(&BASE.replace("uplink = \"loopback\"", "uplink = \"fhir\""));
    assert_eq!(e.key, "route[0].fhir");
    assert!(e.message.contains("needs a [route.fhir] table"), "{e}");
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"fhir\"\n[route.fhir]\nurl = \"http://hub.example.no/fhir\"",
    ));
    assert_eq!((e.key.as_str(), e.line), ("route[0].fhir.url", 9));
    assert!(e.message.contains("use https://"), "{e}");
    // Plain http to a local receiver is fine; oauth2 names what it lacks.
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"fhir\"\n[route.fhir]\nurl = \"http://127.0.0.1:8080/fhir\"\n\
         [route.fhir.auth]\nkind = \"oauth2\"\nclient_id = \"hearth\"",
    ));
    let got: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        got,
        [
            "route[0].fhir.auth.token_url",
            "route[0].fhir.auth.private_key"
        ]
    );
}

#[test]
fn a_pcd01_route_needs_host_port_and_tls_off_the_box() {
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"pcd01\"\n[route.pcd01]\nhost = \"hub.example.no\"\nport = 2575\ntls = false",
    ));
    assert_eq!(e.key, "route[0].pcd01.tls");
    assert!(e.message.contains("only over TLS"), "{e}");
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"loopback\"\n[route.pcd01]\nhost = \"h\"\nport = 1",
    ));
    assert_eq!(e.key, "route[0].pcd01");
}

#[test]
fn a_pcd01_patient_must_be_a_system_value_pair_or_an_id_and_is_not_echoed() {
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"pcd01\"\n[route.pcd01]\nhost = \"127.0.0.1\"\nport = 2575\ntls = false\npatient = \"urn:oid:2.999.77|\"",
    ));
    assert_eq!(e.key, "route[0].pcd01.patient");
    assert!(!e.message.contains("2.999.77"), "{e}");
}

#[test]
fn pcd01_header_overrides_load_and_malformed_ones_name_their_key() {
    let route =
        "uplink = \"pcd01\"\n[route.pcd01]\nhost = \"127.0.0.1\"\nport = 2575\ntls = false\n";
    let loaded = parse(
        &BASE.replace(
            "uplink = \"loopback\"",
            &format!(
                "{route}ack_mode = \"application\"\nprocessing_id = \"T\"\n\
                 profile = \"IHE PCD ORU-R01 2006^HL7^2.16.840.1.113883.9.n.m^HL7\"\n\
                 universal_service = \"182777000^monitoring of patient^SCT\""
            ),
        ),
        Path::new("hearth.toml"),
    )
    .unwrap();
    let m = loaded.config.routes[0].pcd01.clone().unwrap();
    assert_eq!(m.ack_mode, Pcd01AckMode::Application);
    assert_eq!(m.processing_id, Pcd01ProcessingId::T);
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        &format!("{route}universal_service = \"a^b^c^d\""),
    ));
    assert_eq!(e.key, "route[0].pcd01.universal_service");
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        &format!("{route}profile = \"^IHE PCD\""),
    ));
    assert_eq!(e.key, "route[0].pcd01.profile");
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        &format!("{route}ack_mode = \"AL\""),
    ));
    assert_eq!(e.key, "route[0].pcd01.ack_mode");
}

#[test]
fn pcd01_messages_in_flight_are_bounded() {
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        "uplink = \"pcd01\"\n[route.pcd01]\nhost = \"127.0.0.1\"\nport = 2575\ntls = false\nin_flight = 0",
    ));
    assert_eq!(e.key, "route[0].pcd01.in_flight");
    assert!(e.line > 0 && e.message.contains("1..=256"), "{e}");
}

#[test]
fn a_bad_zigbee2mqtt_rule_names_its_index_key_and_line() {
    let text = BASE.replace(
        "kind = \"simulated\"",
        "kind = \"zigbee2mqtt\"\n[[source.zigbee2mqtt.rule]]\nproperty = \"contact\"\nemit = \"alarm\"\n\
         type = \"door_open\"\nwhen = false\nhours = \"23:00-7\"\n",
    );
    check(
        &text,
        "hearth.toml:17:9: source[0].zigbee2mqtt.rule[0].hours: hours \"23:00-7\" is not a daily \
         window; write \"HH:MM-HH:MM\" in 24-hour local time, e.g. \"22:00-07:00\"",
    );
    // A key that does not fit the rule's emit is named, and a typo is an unknown field.
    let text = BASE.replace(
        "kind = \"simulated\"",
        "kind = \"zigbee2mqtt\"\n[[source.zigbee2mqtt.rule]]\nproperty = \"temperature\"\n\
         emit = \"observation\"\ntype = \"temperature\"\nmomentary = true\n",
    );
    let e = error(&text);
    assert_eq!(e.key, "source[0].zigbee2mqtt.rule[0].momentary");
    assert!(e.message.contains("only applies to alarm rules"), "{e}");
    let text = BASE.replace(
        "kind = \"simulated\"",
        "kind = \"zigbee2mqtt\"\n[[source.zigbee2mqtt.rule]]\nproperty = \"x\"\nemit = \"alarm\"\n\
         typ = \"x\"\n",
    );
    let e = error(&text);
    assert_eq!(
        (e.key.as_str(), e.line),
        ("source[0].zigbee2mqtt.rule[0].typ", 15)
    );
}

#[test]
fn a_shipped_style_rules_file_reports_its_own_lines() {
    let e = parse_rules(
        "[[rule]]\nproperty = \"battery\"\nemit = \"technical\"\ntype = \"low_battery\"\n\
         severity = \"bad\"\n",
        Path::new("default.toml"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "default.toml:5:12: rule[0].severity: unknown severity \"bad\"; use one of critical, \
         major, minor, warning"
    );
    assert_eq!(
        parse_rules("", Path::new("x.toml")).unwrap(),
        Vec::<RuleConfig>::new()
    );
}

#[test]
fn mqtt_tls_keys_need_tls_and_come_in_pairs() {
    let e = error(&format!(
        "[mqtt]\nclient_cert = \"c.pem\"\nclient_id = \"bad id\"\n{BASE}"
    ));
    let got: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(got, ["mqtt.client_cert", "mqtt.client_id"]);
}

/// `BASE` with its source turned into a BLE source (line 9) whose `[source.ble]` table starts
/// on line 13 and holds `ble` (the header's own line not included).
fn ble(ble: &str) -> String {
    let source = "[[source]]\nname = \"sim\"\nkind = \"simulated\"\n";
    assert!(BASE.ends_with(source));
    format!(
        "{}[[source]]\nname = \"ble\"\nkind = \"ble\"\n\n[source.ble]\n{ble}",
        &BASE[..BASE.len() - source.len()]
    )
}

#[test]
fn a_ble_source_is_available_and_valid_with_its_devices() {
    let text =
        ble("adapter = \"hci1\"\n\n[[source.ble.device]]\naddress = \"aa:bb:cc:dd:ee:ff\"\n");
    let loaded = parse(&text, Path::new("hearth.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.warnings, []);
    let s = &loaded.config.sources[0];
    assert_eq!(s.kind, SourceKind::Ble);
    assert_eq!(s.ble_settings().adapter, "hci1");
    assert_eq!(s.ble_settings().devices[0].address, "aa:bb:cc:dd:ee:ff");
}

#[test]
fn a_bluez_ble_source_without_devices_asks_for_them() {
    // No [source.ble] table at all: the error points at the source.
    check(
        &BASE.replace("kind = \"simulated\"", "kind = \"ble\""),
        "hearth.toml:9:1: source[0].ble.device: no device is configured: hearth only talks to \
         devices on the allow-list; add a [[source.ble.device]] for each paired device (with its \
         address)",
    );
    // A table without devices: the error points at the table.
    let e = error(&ble("backend = \"bluez\"\n"));
    assert_eq!(
        (e.key.as_str(), e.line, e.len()),
        ("source[0].ble.device", 13, 1)
    );
    assert!(
        e.message
            .contains("add a [[source.ble.device]] for each paired device"),
        "{e}"
    );
}

#[test]
fn a_simulated_ble_backend_needs_no_devices() {
    let loaded = parse(&ble("backend = \"simulated\"\n"), Path::new("hearth.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.warnings, []);
    let b = loaded.config.sources[0].ble_settings();
    assert_eq!(b.backend, BleBackendKind::Simulated);
    assert!(b.devices.is_empty());
}

#[test]
fn a_bad_ble_address_names_its_device_and_line() {
    check(
        &ble(
            "\n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:FF\"\n\n[[source.ble.device]]\naddress = \"AA-BB-CC-DD-EE-01\"\n",
        ),
        "hearth.toml:19:11: source[0].ble.device[1].address: invalid device address \
         \"AA-BB-CC-DD-EE-01\": write the Bluetooth address as six hex pairs separated by ':', \
         e.g. \"AA:BB:CC:DD:EE:FF\"",
    );
}

#[test]
fn a_missing_ble_address_is_named_with_its_device_table() {
    let e = error(&ble("\n[[source.ble.device]]\nlabel = \"scale\"\n"));
    assert_eq!(e.kind, ErrorKind::Schema);
    assert_eq!(
        (e.key.as_str(), e.line, e.message.as_str()),
        (
            "source[0].ble.device[0].address",
            15,
            "missing required key `address`"
        )
    );
}

#[test]
fn a_duplicate_ble_address_points_at_the_second_one() {
    check(
        &ble(
            "\n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:FF\"\n\n[[source.ble.device]]\naddress = \"aa:bb:cc:dd:ee:ff\"\n",
        ),
        "hearth.toml:19:11: source[0].ble.device[1].address: duplicate device address \
         \"aa:bb:cc:dd:ee:ff\" (first listed as device[0] on line 16); list each device once",
    );
}

#[test]
fn system_ids_are_16_hex_digits_and_unique() {
    let e = error(&ble(
        "\n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:01\"\nsystem_id = \"0123456789ABCDEF\"\n\
         \n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:02\"\nsystem_id = \"0123456789abcdef\"\n\
         \n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:03\"\nsystem_id = \"01:23:45:67:89:ab:cd:ef\"\n",
    ));
    let got: Vec<(&str, usize)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("source[0].ble.device[1].system_id", 21),
            ("source[0].ble.device[2].system_id", 25),
        ]
    );
    assert!(e.message.contains("on line 17"), "{e}");
    assert!(e.more[0].message.contains("16 hex digits"), "{e}");
}

#[test]
fn a_ble_table_on_a_simulated_source_is_rejected() {
    check(
        &format!("{BASE}\n[source.ble]\nadapter = \"hci0\"\n"),
        "hearth.toml:13:1: source[0].ble: [source.ble] only applies to kind = \"ble\", but this \
         source's kind is \"simulated\"; remove the table",
    );
}

#[test]
fn ble_ranges_and_cross_key_rules_name_their_keys() {
    let e = error(&ble(
        "offline_after = \"0s\"\nlow_battery_percent = 101\nreconnect_max = \"1s\"\n\
         commit_chunk = 0\nadapter = \"\"\n\n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:FF\"\n\
         person = \" \"\n",
    ));
    let got: Vec<(&str, usize)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("source[0].ble.offline_after", 14),
            ("source[0].ble.low_battery_percent", 15),
            ("source[0].ble.reconnect_max", 16),
            ("source[0].ble.commit_chunk", 17),
            ("source[0].ble.adapter", 18),
            ("source[0].ble.device[0].person", 22),
        ]
    );
    assert_eq!(
        e.more[1].message,
        "reconnect_initial (5s) must not be longer than reconnect_max (1s)"
    );
    let e = error(&ble("low_battery_percent = 300\n"));
    assert_eq!(
        (e.kind, e.key.as_str(), e.line),
        (ErrorKind::Schema, "source[0].ble.low_battery_percent", 14)
    );
    let e = error(&ble("backend = \"btleplug\"\n"));
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        (
            "source[0].ble.backend",
            "unknown variant `btleplug`, expected `bluez` or `simulated`"
        )
    );
    let e = error(&ble(
        "\n[[source.ble.device]]\naddress = \"AA:BB:CC:DD:EE:FF\"\ncategory = \"x\"\n",
    ));
    assert_eq!(
        (e.key.as_str(), e.line),
        ("source[0].ble.device[0].category", 17)
    );
}

#[test]
fn an_unknown_time_zone_names_the_key_and_says_what_to_use() {
    check(
        "[gateway]\ndata_dir = \"/tmp/hearth\"\ntime_zone = \"Mars/Olympus_Mons\"\n",
        "hearth.toml:3:13: gateway.time_zone: unknown time zone \"Mars/Olympus_Mons\": use \
         \"system\" (the box's /etc/localtime) or an IANA name from /usr/share/zoneinfo, e.g. \
         \"Europe/Oslo\" (names are case-sensitive: Area/City)",
    );
    let e = error("[gateway]\ntime_zone = \"\"\n");
    assert_eq!((e.key.as_str(), e.line), ("gateway.time_zone", 2));
}

#[test]
fn bad_durations_and_sizes_name_their_key() {
    let e = error("[retry]\ninitial = \"1 fortnight\"\n");
    assert_eq!(
        (e.kind, e.key.as_str(), e.line, e.column),
        (ErrorKind::Schema, "retry.initial", 2, 11)
    );
    assert!(e.message.contains("e.g. \"500ms\""), "{e}");
    let e = error("[supervisor]\nstall_timeout = 60\n");
    assert_eq!((e.key.as_str(), e.line), ("supervisor.stall_timeout", 2));
    assert!(e.message.contains("\"60s\""), "{e}");
    let e = error("[outbox]\nmax_bytes = \"1.5 GiB\"\n");
    assert_eq!((e.key.as_str(), e.line), ("outbox.max_bytes", 2));
    assert!(e.message.contains("whole number"), "{e}");
    let e = error("[outbox]\nmax_bytes = -5\n");
    assert_eq!((e.key.as_str(), e.line), ("outbox.max_bytes", 2));
}

#[test]
fn range_rules_point_at_the_key_that_was_written() {
    check(
        "[outbox]\nmax_bytes = \"512 KiB\"\n",
        "hearth.toml:2:13: outbox.max_bytes: max_bytes 512 KiB is below the minimum of 1 MiB; \
         the outbox needs room to hold alarms while the link is down",
    );
    // restart_initial is left at its default (500ms): the error lands on the key that was set.
    check(
        "[supervisor]\nrestart_max = \"100ms\"\n",
        "hearth.toml:2:15: supervisor.restart_max: restart_initial (500ms) must not be longer \
         than restart_max (100ms)",
    );
    let e = error("[retry]\njitter = 1.5\n");
    assert_eq!((e.key.as_str(), e.line), ("retry.jitter", 2));
    let e = error("[retry]\njitter = nan\n");
    assert_eq!((e.key.as_str(), e.line), ("retry.jitter", 2));
}

#[test]
fn a_route_retry_override_is_checked_merged_with_the_global_policy() {
    let text = BASE.replace(
        "[[source]]",
        "[route.retry]\ninitial = \"10m\"\n\n[[source]]",
    );
    check(
        &text,
        "hearth.toml:10:11: route[0].retry.initial: initial (10m) must not be longer than max \
         (5m) (merged with [retry])",
    );
}

#[test]
fn all_validation_errors_are_reported_in_document_order() {
    let text = "[gateway]\nid = \"has space\"\ndata_dir = \"relative\"\n\n\
                [[route]]\nname = \"Hub\"\ncategories = []\nuplink = \"scaip\"\nbatch_size = 0\n\n\
                [outbox]\nmax_rows = 10\n";
    let e = error(text);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "gateway.id"),
            (3, "gateway.data_dir"),
            (6, "route[0].name"),
            (7, "route[0].categories"),
            (8, "route[0].uplink"),
            (9, "route[0].batch_size"),
            (12, "outbox.max_rows"),
        ]
    );
    assert!(e.iter().all(|e| e.kind == ErrorKind::Invalid));
    assert!(e.more.iter().all(|e| e.more.is_empty()));
    assert_eq!(e.to_string().lines().count(), 7);
    assert!(e.to_string().lines().all(|l| l.starts_with("hearth.toml:")));
}

#[test]
fn duplicate_categories_and_misplaced_option_tables_are_rejected() {
    let e = error(&BASE.replace("\"administrative\"]", "\"health\"]"));
    assert_eq!(
        (e.key.as_str(), e.line, e.column),
        ("route[0].categories[2]", 6, 36)
    );
    let e = error(&format!(
        "{BASE}[source.simulated]\ndevices = 0\ninterval = \"0s\"\n"
    ));
    let got: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        got,
        [
            "source[0].simulated.devices",
            "source[0].simulated.interval"
        ]
    );
    let e = error(&BASE.replace(
        "kind = \"simulated\"",
        "kind = \"zigbee2mqtt\"\n[source.simulated]",
    ));
    let got: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(got, ["source[0].simulated"]);
}

#[test]
fn two_loopback_routes_cannot_share_a_file() {
    let text = BASE.replace(
        "[[source]]",
        "[[route]]\nname = \"b\"\ncategories = [\"health\"]\nuplink = \"loopback\"\n\
         [route.loopback]\npath = \"/tmp/hearth/loopback-hub.db\"\n\n[[source]]",
    );
    let e = error(&text);
    assert_eq!((e.key.as_str(), e.line), ("route[1].loopback.path", 14));
    assert!(e.message.contains("already used by route \"hub\""), "{e}");
}

#[test]
fn a_missing_file_is_named_with_what_to_do() {
    let e = load(Path::new("/nonexistent/hearth.toml")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    let s = e.to_string();
    assert!(
        s.starts_with("/nonexistent/hearth.toml: cannot read config file: "),
        "{s}"
    );
    assert!(s.contains("--config"), "{s}");
}

#[test]
fn a_file_that_is_not_utf8_names_the_line() {
    let dir = std::env::temp_dir().join(format!("hearth-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, b"[gateway]\nid = \"h\xffx\"\n").unwrap();
    let e = load(&file).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 2, 8));
}

#[test]
fn load_reads_a_valid_file() {
    let dir = std::env::temp_dir().join(format!("hearth-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hearth.toml");
    std::fs::write(&file, BASE).unwrap();
    let loaded = load(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.unwrap().config.routes[0].name, "hub");
}

/// Lines from the example and some broken variants, to build almost-valid documents.
fn fragment() -> impl Strategy<Value = String> {
    let lines: Vec<String> = EXAMPLE
        .lines()
        .chain(BASE.lines())
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    prop_oneof![
        4 => proptest::sample::select(lines),
        1 => "[a-z_\\[\\]=\". 0-9-]{0,20}",
        1 => ".{0,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = parse(&text, Path::new("p.toml"));
    }

    #[test]
    fn parse_never_panics_on_almost_valid_documents(lines in proptest::collection::vec(fragment(), 0..40)) {
        let text = lines.join("\n");
        match parse(&text, Path::new("p.toml")) {
            Ok(_) => {}
            // Every error of a non-empty document has a position, except a missing whole table.
            Err(e) => for e in e.iter() {
                prop_assert!(e.line <= text.lines().count() + 1, "{e}");
            },
        }
    }
}

#[test]
fn connections_are_bounded_and_loopback_has_one() {
    check(
        &BASE.replace(
            "uplink = \"loopback\"",
            "uplink = \"loopback\"\nconnections = 2",
        ),
        "hearth.toml:8:15: route[0].connections: connections 2: a loopback route delivers into \
         one SQLite file and allows only 1; remove the key",
    );
    let fhir = "uplink = \"fhir\"\n[route.fhir]\nurl = \"http://127.0.0.1:8080/fhir\"";
    let e = error(&BASE.replace(
        "uplink = \"loopback\"",
        &format!("connections = 17\n{fhir}"),
    ));
    assert_eq!(e.key, "route[0].connections");
    assert_eq!(e.message, "connections 17 is out of range; use 1..=16");
    // The defaults: two for the network uplinks, one for loopback.
    let loaded = parse(
        &BASE.replace("uplink = \"loopback\"", fhir),
        Path::new("hearth.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.config.routes[0].connections(), 2);
    let loaded = parse(BASE, Path::new("hearth.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.config.routes[0].connections(), 1);
}

#[test]
fn a_gateway_eui64_that_is_not_16_hex_digits_names_the_key_and_shows_the_form() {
    let e = error("[gateway]\neui64 = \"02-1A-2B\"\n");
    assert_eq!((e.key.as_str(), e.line), ("gateway.eui64", 2));
    assert!(e.message.contains("16 hex digits"), "{e}");
    assert!(e.message.contains("02-1A-2B-3C-4D-5E-6F-70"), "{e}");
}

#[test]
fn a_device_id_system_that_is_not_a_uri_names_the_key() {
    let text = "[[route]]\nname = \"hub\"\ncategories = [\"health\"]\nuplink = \"fhir\"\n\
                [route.fhir]\nurl = \"https://hub.example.no/fhir\"\n\
                device_id_system = \"our devices\"\n";
    let e = error(text);
    assert_eq!(
        (e.key.as_str(), e.line),
        ("route[0].fhir.device_id_system", 7)
    );
    assert!(e.message.contains("urn:oid:"), "{e}");
}

/// Issue 15: `[[source.zigbee2mqtt.device]] role`: the documented roles parse (default
/// `none`), an unknown one lists the valid ones, and a safety device's name must be a topic
/// level without wildcards (it is subscribed by name).
#[test]
fn zigbee2mqtt_device_roles_parse_and_are_checked() {
    let z2m = |name: &str, role: &str| {
        format!(
            "{BASE}\n[[source]]\nname = \"zigbee\"\nkind = \"zigbee2mqtt\"\n\n\
             [[source.zigbee2mqtt.device]]\nname = \"{name}\"\n{role}\n"
        )
    };
    let loaded = parse(&z2m("hall/sos", ""), Path::new("hearth.toml")).unwrap();
    let devices = &loaded.config.sources[1].zigbee2mqtt_settings().devices;
    assert_eq!(devices[0].role, SensorRole::None);
    for role in SensorRole::ALL {
        let text = z2m("hall/sos", &format!("role = \"{role}\""));
        let loaded = parse(&text, Path::new("hearth.toml")).unwrap_or_else(|e| panic!("{e}"));
        let d = &loaded.config.sources[1].zigbee2mqtt_settings().devices[0];
        assert_eq!(d.role, role);
        assert_eq!(d.role.is_safety(), role != SensorRole::None);
    }
    let e = error(&z2m("hall/sos", "role = \"panic\""));
    assert_eq!(e.key.as_str(), "source[1].zigbee2mqtt.device[0].role");
    assert!(
        e.to_string().contains(
            "expected one of `none`, `sos_button`, `fall_detector`, `smoke_detector`, `water_leak`"
        ),
        "{e}"
    );
    let e = error(&z2m("hall/+", "role = \"sos_button\""));
    assert_eq!(e.key.as_str(), "source[1].zigbee2mqtt.device[0].name");
    assert!(e.to_string().contains("without `+`, `#`"), "{e}");
    // Without a safety role, the name is only matched, never subscribed.
    parse(&z2m("hall/+", "role = \"none\""), Path::new("hearth.toml")).unwrap();
    // The safety session connects as `<client_id>-zigbee-safety`: no source may take that name.
    let text = format!(
        "{}\n[[source]]\nname = \"zigbee-safety\"\nkind = \"simulated\"\n",
        z2m("hall/sos", "role = \"sos_button\"")
    );
    let e = error(&text);
    assert_eq!(e.key.as_str(), "source[2].name");
    assert!(e.to_string().contains("safety session"), "{e}");
}
