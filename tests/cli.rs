//! Black-box tests of the command line: the seams checked from outside (DESIGN "The command
//! line"). Each runs the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::process::{Command, Output};

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn parse_json(o: &[u8]) -> serde_json::Value {
    serde_json::from_slice(o).unwrap()
}

/// The command succeeded (the failure shows its stderr).
fn assert_success(o: &Output) {
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// The JSON a command printed, which must have succeeded.
fn succeeded_json(o: &Output) -> serde_json::Value {
    assert_success(o);
    parse_json(&o.stdout)
}

/// Runs `hearth args`, which must succeed.
fn succeeds(args: &[&str]) -> Output {
    let o = hearth(args);
    assert_success(&o);
    o
}

/// The stderr of a command, which must have exited with `code`.
fn exited_with(code: i32, o: &Output) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    err
}

/// Runs `hearth args`, which must exit with `code`; returns its stderr.
fn fails_with(code: i32, args: &[&str]) -> String {
    exited_with(code, &hearth(args))
}

/// `hearth ble decode` of `hex` as characteristic `characteristic`, then `more` arguments.
fn ble_decode(characteristic: &str, hex: &str, more: &[&str]) -> Output {
    let mut args = vec![
        "ble",
        "decode",
        "--characteristic",
        characteristic,
        "--hex",
        hex,
    ];
    args.extend(more);
    hearth(&args)
}

/// `hearth zigbee2mqtt classify` of one message, after the `more` arguments.
fn classify(more: &[&str], topic: &str, payload: &str) -> Output {
    let mut args = vec!["zigbee2mqtt", "classify"];
    args.extend(more);
    args.extend(["--topic", topic, "--payload", payload]);
    hearth(&args)
}

/// Writes `contents` to the file `name` in `dir`; returns its path.
fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> std::path::PathBuf {
    let file = dir.path().join(name);
    std::fs::write(&file, contents).unwrap();
    file
}

/// A Blood Pressure Measurement: 128/84 mmHg, mean 99, at 2025-03-14 07:05:09, pulse 66.
const BLOOD_PRESSURE: &str = "06 80 00 54 00 63 00 E9 07 03 0E 07 05 09 42 00";

/// A loopback route `hub` for every category and a zigbee2mqtt source `zigbee`, to which a test
/// appends its rules.
const HUB_AND_ZIGBEE: &str = r#"
[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "loopback"

[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
"#;

#[test]
fn every_verb_has_help() {
    for verb in [
        vec![],
        vec!["run"],
        vec!["demo"],
        vec!["config"],
        vec!["config", "check"],
        vec!["config", "example"],
        vec!["outbox"],
        vec!["outbox", "stats"],
        vec!["alarms"],
        vec!["alarms", "log"],
        vec!["ble"],
        vec!["ble", "decode"],
        vec!["ble", "scan"],
        vec!["receiver"],
        vec!["receiver", "run"],
        vec!["receiver", "summary"],
        vec!["zigbee2mqtt"],
        vec!["zigbee2mqtt", "classify"],
        vec!["zigbee2mqtt", "rules"],
    ] {
        let mut args = verb.clone();
        args.push("--help");
        let o = hearth(&args);
        assert!(o.status.success(), "{args:?}");
        assert!(text(&o.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn version_is_printed() {
    let o = hearth(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        text(&o.stdout).trim(),
        format!("hearth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_annotated_example_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hearth.toml");
    let example = hearth(&["config", "example"]);
    assert!(example.status.success());
    std::fs::write(&file, &example.stdout).unwrap();
    let o = succeeds(&["config", "check", file.to_str().unwrap()]);
    assert!(text(&o.stdout).contains("OK"));
    assert!(docs_example_is_shipped());
}

fn docs_example_is_shipped() -> bool {
    let o = hearth(&[
        "config",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hearth.example.toml"),
    ]);
    o.status.success()
}

#[test]
fn a_broken_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        &dir,
        "broken.toml",
        "[gateway]\nid = \"box-1\"\n\n[outbox]\nmax_rows = 5000\nmax_bytse = \"1 GiB\"\n",
    );
    let err = fails_with(1, &["config", "check", file.to_str().unwrap()]);
    let want = format!("{}:6:", file.display());
    assert!(err.contains(&want), "names file and line 6: {err}");
    assert!(err.contains("max_bytse"), "names the key: {err}");
}

#[test]
fn a_missing_config_file_says_what_to_do() {
    let err = fails_with(1, &["config", "check", "/nonexistent/hearth.toml"]);
    assert!(err.contains("/nonexistent/hearth.toml"));
}

#[test]
fn run_refuses_an_invalid_config_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        &dir,
        "bad.toml",
        "[[route]]\nname = \"hub\"\ncategories = [\"journal\"]\nuplink = \"loopback\"\n",
    );
    let err = fails_with(1, &["run", "--config", file.to_str().unwrap()]);
    assert!(err.contains(":3:"), "{err}");
    assert!(err.contains("health"), "lists the valid categories: {err}");
}

#[test]
fn demo_runs_the_whole_path_and_exits_zero() {
    let o = succeeds(&["demo", "--for", "3s"]);
    let out = text(&o.stdout);
    assert!(out.contains("→ hub"), "{out}");
    assert!(out.contains("nothing lost"), "{out}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["demo", "--for", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read two lines, then close the pipe as `hearth demo | head -2` does.
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    drop(reader);
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
    // The temporary data directory went with it.
    let dir = second
        .strip_prefix("data directory: ")
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("second line: {second}"));
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}

#[test]
fn demo_keep_leaves_an_outbox_that_stats_can_read() {
    let o = hearth(&["demo", "--for", "2s", "--keep"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let dir = out
        .lines()
        .find_map(|l| l.strip_prefix("data directory: "))
        .and_then(|l| l.split(" (").next())
        .unwrap()
        .to_owned();
    let json = succeeded_json(&hearth(&["outbox", "stats", "--data-dir", &dir, "--json"]));
    assert_eq!(json["schema_version"], hearth_outbox::SCHEMA_VERSION);
    assert_eq!(json["routes"][0]["name"], "hub");
    assert!(json["counters"]["ingested"].as_i64().unwrap() > 0);
    let human = hearth(&["outbox", "stats", "--data-dir", &dir]);
    assert!(text(&human.stdout).contains("route hub"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outbox_stats_on_a_wrong_directory_explains() {
    let err = fails_with(1, &["outbox", "stats", "--data-dir", "/nonexistent"]);
    assert!(err.contains("--data-dir"));
}

#[test]
fn ble_decode_prints_readings_with_mdc_codes() {
    let json = succeeded_json(&ble_decode("2A35", BLOOD_PRESSURE, &[]));
    let readings = json["readings"].as_array().unwrap();
    let find = |mdc: u64| {
        readings
            .iter()
            .find(|r| r["mdc"] == mdc)
            .unwrap_or_else(|| panic!("mdc {mdc} in {json}"))
    };
    assert_eq!(find(150021)["value"], 128.0);
    assert_eq!(find(150022)["value"], 84.0);
    assert_eq!(find(150023)["value"], 99.0);
    assert_eq!(find(150021)["unit"], "mm[Hg]");
    assert_eq!(find(150021)["time"], "2025-03-14T07:05:09");
    assert_eq!(find(149546)["value"], 66.0);
    assert_eq!(find(150021)["absent"], serde_json::Value::Null);
}

#[test]
fn ble_decode_reports_special_values_as_absent() {
    // Systolic NaN (0x07FF), diastolic NRes (0x0800), mean +INF (0x07FE).
    let json = succeeded_json(&ble_decode("0x2a35", "00 FF 07 00 08 FE 07", &[]));
    let r = &json["readings"];
    assert_eq!(r[0]["value"], serde_json::Value::Null);
    assert_eq!(r[0]["absent"], "not-a-number");
    assert_eq!(r[1]["absent"], "not-at-this-resolution");
    assert_eq!(r[2]["absent"], "positive-infinity");
}

#[test]
fn ble_decode_of_truncated_input_exits_2_naming_the_byte() {
    let err = exited_with(2, &ble_decode("2A35", "02 80 00 54 00 63 00 E9 07", &[]));
    assert!(err.contains("byte 9"), "{err}");
    assert!(err.contains("Blood Pressure Measurement"), "{err}");
}

#[test]
fn ble_decode_of_an_unknown_characteristic_exits_2() {
    let err = exited_with(2, &ble_decode("2B00", "00", &[]));
    assert!(err.contains("0x2B00"));
}

#[test]
fn ble_scan_without_an_adapter_says_what_to_check() {
    let o = hearth(&["ble", "scan", "--seconds", "1"]);
    if o.status.success() {
        eprintln!("this machine has a Bluetooth adapter; the no-adapter message is not checked");
        return;
    }
    assert!(
        text(&o.stderr).contains("no Bluetooth adapter"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn zigbee2mqtt_classify_prints_the_events_of_one_message() {
    // A Xiaomi/Aqara water leak sensor with a weak battery (property semantics, not the model).
    let json = succeeded_json(&classify(
        &[],
        "zigbee2mqtt/0x00158d0001a2b3c4",
        r#"{"battery":9,"water_leak":true,"temperature":19.5,"linkquality":42}"#,
    ));
    let events = json["events"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("alarm", "water_leak")), "{json}");
    assert!(kinds.contains(&("technical", "low_battery")), "{json}");
    assert!(kinds.contains(&("observation", "temperature")), "{json}");
    assert_eq!(events.len(), 3, "linkquality is ignored: {json}");
    let alarm = events.iter().find(|e| e["kind"] == "alarm").unwrap();
    assert_eq!(alarm["state"], "raised");
    assert_eq!(alarm["device"], "zigbee:00158d0001a2b3c4");
}

#[test]
fn zigbee2mqtt_classify_of_an_ignored_message_is_an_empty_list() {
    let o = classify(
        &[],
        "zigbee2mqtt/remote",
        r#"{"action":"brightness_up","linkquality":80}"#,
    );
    assert!(o.status.success());
    let json = parse_json(&o.stdout);
    assert_eq!(json, serde_json::json!({"events": []}));
}

#[test]
fn zigbee2mqtt_classify_of_a_payload_that_is_not_json_exits_2() {
    let err = exited_with(2, &classify(&[], "zigbee2mqtt/x", "{\"smoke\": tru"));
    assert!(
        err.contains("zigbee2mqtt/x") && err.contains("not JSON"),
        "{err}"
    );
}

#[test]
fn zigbee2mqtt_classify_applies_the_rules_of_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        &dir,
        "hearth.toml",
        &format!(
            r#"
[gateway]
data_dir = "/var/lib/hearth"
{HUB_AND_ZIGBEE}
[[source.zigbee2mqtt.rule]]
property = "temperature"
device = "kitchen/freezer"
emit = "technical"
type = "freezer_warm"
above = -12.0
severity = "major"
"#
        ),
    );
    let json = succeeded_json(&classify(
        &["--config", config.to_str().unwrap()],
        "zigbee2mqtt/kitchen/freezer",
        r#"{"temperature":-4.5}"#,
    ));
    let technical = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "technical")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(technical["type"], "freezer_warm");
    assert_eq!(technical["severity"], "major");
}

#[test]
fn config_check_compiles_zigbee2mqtt_rules_and_names_the_one_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        &dir,
        "hearth.toml",
        &format!(
            r#"{HUB_AND_ZIGBEE}
[[source.zigbee2mqtt.rule]]
property = "plant_mood"
emit = "observation"
type = "plant_mood"
"#
        ),
    );
    let err = fails_with(1, &["config", "check", config.to_str().unwrap()]);
    assert!(
        err.contains("source \"zigbee\"") && err.contains("plant_mood") && err.contains("set mdc"),
        "{err}"
    );
}

#[test]
fn ble_decode_prints_what_a_fhir_or_pcd01_route_would_send() {
    let bundle = succeeded_json(&ble_decode("2A35", BLOOD_PRESSURE, &["--format", "fhir"]));
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().unwrap();
    let bp_obs = entries
        .iter()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "150020")
        .unwrap_or_else(|| panic!("{bundle}"));
    assert!(
        bp_obs["request"]["ifNoneExist"]
            .as_str()
            .unwrap()
            .starts_with("identifier="),
        "{bp_obs}"
    );
    let o = ble_decode("2A35", BLOOD_PRESSURE, &["--format", "pcd01"]);
    assert_success(&o);
    let hl7 = text(&o.stdout);
    assert!(hl7.starts_with("MSH|^~\\&|HEARTH|"), "{hl7}");
    assert!(hl7.contains("|ORU^R01^ORU_R01|"), "{hl7}");
    assert!(
        hl7.lines().any(|l| l.starts_with("OBX|")
            && l.contains("150021^MDC_PRESS_BLD_NONINV_SYS^MDC")
            && l.contains("|128|")),
        "{hl7}"
    );
}

/// An outbox in `data` whose route `hub` rejected three readings, plus one raw input a driver
/// could not parse. The readings' value (36.5) and the input's text must never be listed.
fn outbox_with_dead_letters(data: &std::path::Path) -> std::path::PathBuf {
    use hearth_model::*;
    use hearth_outbox::*;
    let path = data.join("outbox.db");
    let hub = RouteSpec {
        name: "hub".into(),
        categories: vec![Category::Health, Category::Administrative],
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let (mut ob, _) = Outbox::open(OutboxOptions::new(&path, vec![hub])).unwrap();
    let now = Timestamp::now();
    let readings: Vec<Record> = (1..=3)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    DeviceId::new("sim", "dev").unwrap(),
                    Mdc(150364),
                    Value::numeric_with_decimals(36.5, 1),
                )
                .sequence(i)
                .build(now),
            )
        })
        .collect();
    ob.append_all(&readings, now).unwrap();
    let id = ob.route("hub").unwrap();
    let mut b = ob.batch().unwrap();
    let claimed = b.claim(id, 10, now).unwrap();
    let answers: Vec<_> = claimed
        .iter()
        .map(|c| {
            (
                c.ticket,
                Outcome::Rejected {
                    reason: "HTTP 422: unknown code".into(),
                },
            )
        })
        .collect();
    b.settle(id, &answers, now).unwrap();
    b.dead_letter_input("z2m", b"{\"secret\": SECRET-TEXT", "expected value", now)
        .unwrap();
    b.commit().unwrap();
    path
}

#[test]
fn outbox_dead_letters_lists_them_without_health_values() {
    let dir = tempfile::tempdir().unwrap();
    outbox_with_dead_letters(dir.path());
    let data = dir.path().to_str().unwrap();
    let o = succeeds(&["outbox", "dead-letters", "--data-dir", data]);
    let out = text(&o.stdout);
    assert!(out.starts_with("4 dead letter(s)"), "{out}");
    assert_eq!(out.matches("route:hub").count(), 3, "{out}");
    assert!(out.contains("input:z2m") && out.contains("measurement/health"));
    assert!(out.contains("HTTP 422: unknown code"));
    assert!(!out.contains("36.5") && !out.contains("SECRET"), "{out}");

    let o = hearth(&[
        "outbox",
        "dead-letters",
        "--data-dir",
        data,
        "--json",
        "--route",
        "hub",
        "--limit",
        "2",
    ]);
    let json = succeeded_json(&o);
    assert_eq!(json["total"], 4);
    let rows = json["dead_letters"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["route"], "hub");
        assert_eq!(r["requeueable"], true);
        assert_eq!(r["fnv1a"].as_str().unwrap().len(), 16);
        assert!(r["size"].as_u64().unwrap() > 0);
        assert!(r.get("payload").is_none());
    }
    assert!(!text(&o.stdout).contains("36.5"));

    let err = fails_with(1, &["outbox", "dead-letters", "--data-dir", "/nonexistent"]);
    assert!(err.contains("--data-dir"));
    assert!(
        hearth(&["outbox", "dead-letters", "--help"])
            .status
            .success()
    );
    assert!(hearth(&["outbox", "requeue", "--help"]).status.success());
}

#[test]
fn outbox_requeue_needs_exactly_one_selection_and_says_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    outbox_with_dead_letters(dir.path());
    let data = dir.path().to_str().unwrap();
    assert_eq!(
        hearth(&["outbox", "requeue", "--data-dir", data])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        hearth(&[
            "outbox",
            "requeue",
            "--data-dir",
            data,
            "--all",
            "--route",
            "hub"
        ])
        .status
        .code(),
        Some(2)
    );
    // The raw input cannot be requeued: exit 1, and why.
    let listed = hearth(&["outbox", "dead-letters", "--data-dir", data, "--json"]);
    let json = parse_json(&listed.stdout);
    let input = json["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["origin"] == "input:z2m")
        .unwrap()["id"]
        .to_string();
    let err = fails_with(
        1,
        &["outbox", "requeue", "--data-dir", data, "--id", &input],
    );
    assert!(err.contains("raw input"), "{err}");
    // With the daemon stopped, by reason: all three, and they are pending again.
    let o = succeeds(&[
        "outbox",
        "requeue",
        "--data-dir",
        data,
        "--reason-contains",
        "422",
    ]);
    assert!(text(&o.stdout).contains("requeued 3 dead letter(s) on route hub"));
    let s = hearth(&["outbox", "stats", "--data-dir", data, "--json"]);
    let json = parse_json(&s.stdout);
    assert_eq!(json["records"], 3);
    assert_eq!(json["counters"]["requeued:hub"], 3);
    assert_eq!(json["dead_letters"]["input:z2m"], 1);
    assert!(json["dead_letters"].get("route:hub").is_none());
}

#[test]
fn a_running_daemon_raises_dead_letters_and_sends_what_is_requeued() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    outbox_with_dead_letters(&data);
    let config = write_file(
        &dir,
        "hearth.toml",
        &format!(
            "[gateway]\ndata_dir = \"{}\"\n\n[[route]]\nname = \"hub\"\n\
             categories = [\"health\", \"administrative\"]\nuplink = \"loopback\"\n",
            data.display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let data_s = data.to_str().unwrap();
    let loopback = data.join("loopback-hub.db");
    let technical = |want: &str| -> bool {
        rusqlite::Connection::open_with_flags(&loopback, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM received WHERE detail = ?1",
                    [want],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1)
    };
    let wait = |what: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        while !what() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(30),
                "timed out"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait(&|| technical("dead_letters raised"));
    succeeds(&["outbox", "requeue", "--data-dir", data_s, "--route", "hub"]);
    let delivered = || -> i64 {
        let s = hearth(&["outbox", "stats", "--data-dir", data_s, "--json"]);
        parse_json(&s.stdout)["counters"]["delivered:hub"]
            .as_i64()
            .unwrap_or(0)
    };
    // The three readings; the alarm stays raised, as the raw input is still there.
    wait(&|| delivered() >= 4);
    assert!(!technical("dead_letters cleared"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let readings: i64 = rusqlite::Connection::open(&loopback)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM received WHERE kind = 'reading'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(readings, 3);
}

/// An outbox in `data` whose alarm log the writer filled, as the daemon's alarm route would:
/// an alarm queued, tried at the primary (no answer), handled by the secondary.
fn outbox_with_alarm_log(data: &std::path::Path) -> hearth_model::RecordId {
    use hearth_model::*;
    use hearth_outbox::*;
    let path = data.join("outbox.db");
    let (ob, _) = Outbox::open(OutboxOptions::new(&path, vec![])).unwrap();
    let record = RecordId::derive(&["z2m", "0x01", "fall", "1"]);
    let now = Timestamp::now().unix_millis();
    let entry = |dt: i64, event: &str, receiver: Option<&str>, detail: serde_json::Value| {
        let mut e = AlarmLogEntry::new(Timestamp::from_unix_millis(now + dt), "alarm", event);
        e.record = Some(record);
        e.reference = Some("a1b2c3".into());
        e.receiver = receiver.map(str::to_owned);
        e.detail = detail.as_object().cloned().unwrap();
        e
    };
    let entries = vec![
        entry(
            0,
            "queued",
            None,
            serde_json::json!({"kind": "fall", "device": "z2m:0x01", "criticality": "high"}),
        ),
        entry(
            1,
            "attempt",
            Some("primary"),
            serde_json::json!({"mty": "ME", "result": "timeout"}),
        ),
        entry(
            2,
            "handled",
            Some("secondary"),
            serde_json::json!({"mty": "ME", "verdict": "handled"}),
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (writer, thread) = OutboxWriter::spawn(ob, 100).unwrap();
    rt.block_on(writer.log_alarm_events(entries)).unwrap();
    drop(writer);
    thread.join().unwrap();
    record
}

#[test]
fn alarms_log_lists_every_attempt_as_json_lines_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let record = outbox_with_alarm_log(dir.path());
    let data = dir.path().to_str().unwrap();
    let o = hearth(&["alarms", "log", "--data-dir", data, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["queued", "attempt", "handled"]);
    assert!(lines.iter().all(|l| l["record"] == record.to_string()));
    assert!(
        lines
            .iter()
            .all(|l| l["route"] == "alarm" && l["reference"] == "a1b2c3")
    );
    assert_eq!(lines[0]["receiver"], serde_json::Value::Null);
    assert_eq!(lines[1]["receiver"], "primary");
    assert_eq!(lines[2]["receiver"], "secondary");
    assert_eq!(lines[0]["detail"]["kind"], "fall");
    assert_eq!(lines[2]["detail"]["verdict"], "handled");
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[0]["detail_unreadable"], false);

    // The newest N, still oldest first; --since an RFC 3339 time in the future: nothing.
    let o = hearth(&[
        "alarms",
        "log",
        "--data-dir",
        data,
        "--json",
        "--limit",
        "2",
    ]);
    assert_eq!(text(&o.stdout).lines().count(), 2);
    assert!(
        text(&o.stdout)
            .lines()
            .last()
            .unwrap()
            .contains("\"handled\"")
    );
    let o = hearth(&[
        "alarms",
        "log",
        "--data-dir",
        data,
        "--json",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "");
    let o = hearth(&[
        "alarms",
        "log",
        "--data-dir",
        data,
        "--json",
        "--since",
        "1h",
    ]);
    assert_eq!(text(&o.stdout).lines().count(), 3);

    // The table: local time with its offset (TZ=UTC here), words, short record id.
    let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["alarms", "log", "--data-dir", data])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("3 alarm event(s)"), "{out}");
    assert!(out.contains("+00:00"), "{out}");
    assert!(out.contains("secondary"), "{out}");
    assert!(out.contains("verdict=handled"), "{out}");
    assert!(out.contains(&record.to_string()[..8]), "{out}");
}

#[test]
fn alarms_log_on_a_wrong_directory_or_a_bad_since_explains() {
    let o = hearth(&["alarms", "log", "--data-dir", "/nonexistent"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--data-dir"),
        "{}",
        text(&o.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    outbox_with_alarm_log(dir.path());
    let data = dir.path().to_str().unwrap();
    let o = hearth(&["alarms", "log", "--data-dir", data, "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("RFC 3339"), "{}", text(&o.stderr));
}
