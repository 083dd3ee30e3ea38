//! Defaults, helpers and warnings of a valid configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_config::*;
use hearth_model::Category;

fn load_ok(text: &str) -> Loaded {
    parse(text, Path::new("hearth.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn route(name: &str, categories: &[Category], enabled: bool) -> String {
    let cats: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "[[route]]\nname = \"{name}\"\ncategories = [{}]\nuplink = \"loopback\"\nenabled = {enabled}\n\n",
        cats.join(", ")
    )
}

const SOURCE: &str = "[[source]]\nname = \"sim\"\nkind = \"simulated\"\n";

#[test]
fn defaults_are_as_documented() {
    let c = Config::default();
    assert_eq!(c.gateway.id, "hearth");
    assert_eq!(c.gateway.data_dir, Path::new("/var/lib/hearth"));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Auto);
    assert_eq!(c.outbox.max_bytes.bytes(), 256 * 1024 * 1024);
    assert_eq!(c.outbox.max_rows, 2_000_000);
    assert_eq!(c.outbox.group_commit_max, 1024);
    assert_eq!(c.outbox.integrity_check, IntegrityCheck::Quick);
    let days = |d: u64| Duration::from_secs(d * 86_400);
    assert_eq!(c.outbox.retention.health.get(), days(30));
    assert_eq!(c.outbox.retention.welfare.get(), days(7));
    assert_eq!(c.outbox.retention.administrative.get(), days(14));
    assert_eq!(
        c.outbox.retention.for_category(Category::Welfare).get(),
        days(7)
    );
    assert_eq!(c.retry.initial.get(), Duration::from_secs(1));
    assert_eq!(c.retry.max.get(), Duration::from_secs(300));
    assert_eq!(c.retry.jitter, 0.5);
    let s = &c.supervisor;
    assert_eq!(s.restart_initial.get(), Duration::from_millis(500));
    assert_eq!(s.restart_max.get(), Duration::from_secs(60));
    assert_eq!(s.crash_loop_restarts, 5);
    assert_eq!(s.crash_loop_window.get(), Duration::from_secs(300));
    assert_eq!(s.stall_timeout.get(), Duration::from_secs(60));
    assert_eq!(s.shutdown_grace.get(), Duration::from_secs(10));
    assert_eq!(c.gateway.time_zone, "system");
    assert!(c.routes.is_empty() && c.sources.is_empty());

    // An empty file is all defaults.
    assert_eq!(load_ok("").config, c);
}

#[test]
fn route_and_source_defaults_are_as_documented() {
    let c = load_ok(&format!(
        "[[route]]\nname = \"hub\"\ncategories = [\"health\"]\nuplink = \"loopback\"\n\n{SOURCE}"
    ))
    .config;
    let r = &c.routes[0];
    assert_eq!(r.batch_size, 100);
    assert!(r.enabled);
    assert_eq!(r.retry, None);
    assert_eq!(r.loopback_path(), Path::new("loopback-hub.db"));
    // The loopback default depends on the name; loading fills it in for the effective config.
    assert_eq!(
        r.loopback,
        Some(LoopbackConfig {
            path: Some(PathBuf::from("loopback-hub.db"))
        })
    );
    let s = &c.sources[0];
    assert_eq!(s.category, Category::Health);
    assert!(s.enabled);
    assert_eq!(s.simulated, Some(SimulatedConfig::default()));
    let sim = s.simulated_settings();
    assert_eq!(
        (sim.devices, sim.interval.get(), sim.alarm_every),
        (3, Duration::from_secs(1), 0)
    );
}

#[test]
fn an_empty_file_warns_that_there_are_no_routes_and_no_sources() {
    let w = load_ok("").warnings;
    let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["route", "source"]);
    assert_eq!(
        w[0].to_string(),
        "hearth.toml: route: no [[route]] is configured: every record will be dead-lettered; add \
         a [[route]] table (see the example config)"
    );
}

#[test]
fn a_category_that_no_enabled_route_carries_is_a_warning() {
    let text = format!(
        "{}{}{SOURCE}",
        route("hub", &[Category::Health, Category::Administrative], true),
        route("care", &[Category::Administrative], true)
    );
    let w = load_ok(&text).warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0].to_string(),
        "hearth.toml:1:1: route: records of category \"welfare\" have no route and will be \
         dead-lettered; add it to a [[route]] categories list"
    );

    // Carried only by a disabled route: the warning points at that route's `enabled`.
    let text = format!(
        "{}{}{SOURCE}",
        route("hub", &[Category::Health, Category::Administrative], true),
        route("care", &[Category::Welfare], false)
    );
    let w = load_ok(&text).warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].key.as_str(), w[0].line), ("route[1].enabled", 11));
    assert!(
        w[0].message
            .contains("route \"care\" carries them but is disabled")
    );
}

#[test]
fn routes_for_returns_only_enabled_routes_carrying_the_category() {
    let text = format!(
        "{}{}{}{SOURCE}",
        route("a", &[Category::Health, Category::Welfare], true),
        route("b", &[Category::Health], false),
        route("c", &[Category::Administrative, Category::Health], true),
    );
    let c = load_ok(&text).config;
    let names = |cat| {
        c.routes_for(cat)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Category::Health), ["a", "c"]);
    assert_eq!(names(Category::Welfare), ["a"]);
    assert_eq!(names(Category::Administrative), ["c"]);
}

#[test]
fn relative_paths_resolve_under_the_data_dir() {
    let mut c = Config::default();
    c.gateway.data_dir = PathBuf::from("/srv/hearth");
    assert_eq!(
        c.resolve_path(Path::new("x.db")),
        Path::new("/srv/hearth/x.db")
    );
    assert_eq!(
        c.resolve_path(Path::new("sub/x.db")),
        Path::new("/srv/hearth/sub/x.db")
    );
    assert_eq!(
        c.resolve_path(Path::new("/abs/x.db")),
        Path::new("/abs/x.db")
    );
}

#[test]
fn a_route_retry_override_falls_back_to_the_global_policy_key_by_key() {
    let text = format!(
        "[retry]\nmax = \"10m\"\njitter = 0.2\n\n{}[route.retry]\ninitial = \"2s\"\n\n{SOURCE}",
        route("hub", &Category::ALL, true)
    );
    let c = load_ok(&text).config;
    let r = c.retry_for(&c.routes[0]);
    assert_eq!(r.initial.get(), Duration::from_secs(2));
    assert_eq!(r.max.get(), Duration::from_secs(600));
    assert_eq!(r.jitter, 0.2);
}

#[test]
fn the_effective_config_prints_as_toml_that_loads_to_the_same_config() {
    let loaded = load_ok(EXAMPLE);
    let printed = loaded.config.to_toml().unwrap();
    let again = load_ok(&printed);
    assert_eq!(again.config, loaded.config, "{printed}");
    assert!(printed.contains("max_bytes = \"256 MiB\""), "{printed}");
    assert!(printed.contains("health = \"30d\""), "{printed}");
}

#[test]
fn sizes_accept_integers_and_strings_in_the_file() {
    let c = load_ok("[outbox]\nmax_bytes = 1048576\n").config;
    assert_eq!(c.outbox.max_bytes, ByteSize::new(1 << 20));
    let c = load_ok("[outbox]\nmax_bytes = \"2GiB\"\n").config;
    assert_eq!(c.outbox.max_bytes.bytes(), 2 << 30);
}

#[test]
fn a_config_built_in_code_is_validated_with_the_same_rules() {
    let mut c = load_ok(EXAMPLE).config;
    assert_eq!(c.validate(), Ok(vec![]));
    c.routes[0].batch_size = 0;
    c.supervisor.crash_loop_restarts = 0;
    let e = c.validate().unwrap_err();
    // No file and no lines: only keys.
    assert_eq!(
        e.to_string(),
        "supervisor.crash_loop_restarts: crash_loop_restarts must be at least 1\n\
         route[0].batch_size: batch_size 0 is out of range; use 1..=10000"
    );
}

#[test]
fn ble_defaults_are_as_documented() {
    let b = BleSourceConfig::default();
    assert_eq!(b.backend, BleBackendKind::Bluez);
    assert_eq!(b.adapter, "hci0");
    assert_eq!(b.offline_after.get(), Duration::from_secs(24 * 3600));
    assert_eq!(b.low_battery_percent, 20);
    assert_eq!(b.clock_tolerance.get(), Duration::from_secs(60));
    assert_eq!(b.idle_timeout.get(), Duration::from_secs(30));
    assert_eq!(b.reconnect_initial.get(), Duration::from_secs(5));
    assert_eq!(b.reconnect_max.get(), Duration::from_secs(600));
    assert_eq!(b.commit_chunk, 100);
    assert!(b.devices.is_empty());
    // A source without the table gets the defaults.
    let c = load_ok("[[source]]\nname = \"b\"\nkind = \"simulated\"\n").config;
    assert_eq!(c.sources[0].ble, None);
    assert_eq!(c.sources[0].ble_settings(), b);
}

#[test]
fn a_full_ble_source_parses() {
    let text = format!(
        "{}[gateway]\ntime_zone = \"Europe/Oslo\"\n\n\
         [[source]]\nname = \"ble\"\nkind = \"ble\"\ncategory = \"welfare\"\n\n\
         [source.ble]\nbackend = \"bluez\"\nadapter = \"hci1\"\noffline_after = \"12h\"\n\
         low_battery_percent = 15\nclock_tolerance = \"2m\"\nidle_timeout = \"45s\"\n\
         reconnect_initial = \"2s\"\nreconnect_max = \"1h\"\ncommit_chunk = 50\n\n\
         [[source.ble.device]]\naddress = \"00:1A:7D:DA:71:13\"\nlabel = \"BP, living room\"\n\
         person = \"Patient/123\"\ncategory = \"health\"\n\n\
         [[source.ble.device]]\naddress = \"C4:7C:8D:6A:1F:02\"\nsystem_id = \"0123456789abcdef\"\n",
        route("hub", &Category::ALL, true)
    );
    let loaded = load_ok(&text);
    assert_eq!(loaded.warnings, []);
    let c = &loaded.config;
    assert_eq!(c.gateway.time_zone, "Europe/Oslo");
    assert_eq!(
        c.gateway.time_zone().unwrap().iana_name(),
        Some("Europe/Oslo")
    );
    let s = &c.sources[0];
    assert_eq!((s.kind, s.category), (SourceKind::Ble, Category::Welfare));
    let expected = BleSourceConfig {
        backend: BleBackendKind::Bluez,
        adapter: "hci1".into(),
        offline_after: ConfigDuration::from_secs(12 * 3600),
        low_battery_percent: 15,
        clock_tolerance: ConfigDuration::from_secs(120),
        idle_timeout: ConfigDuration::from_secs(45),
        reconnect_initial: ConfigDuration::from_secs(2),
        reconnect_max: ConfigDuration::from_secs(3600),
        commit_chunk: 50,
        devices: vec![
            BleDeviceConfig {
                address: "00:1A:7D:DA:71:13".into(),
                system_id: None,
                person: Some("Patient/123".into()),
                category: Some(Category::Health),
                label: Some("BP, living room".into()),
            },
            BleDeviceConfig {
                address: "C4:7C:8D:6A:1F:02".into(),
                system_id: Some("0123456789abcdef".into()),
                person: None,
                category: None,
                label: None,
            },
        ],
    };
    assert_eq!(s.ble.as_ref(), Some(&expected));
    assert_eq!(s.ble_settings(), expected);
    assert_eq!(
        expected.devices[0].category_or(s.category),
        Category::Health
    );
    assert_eq!(
        expected.devices[1].category_or(s.category),
        Category::Welfare
    );

    // The effective config round-trips, device list and optional keys included.
    let printed = c.to_toml().unwrap();
    assert!(printed.contains("[[source.ble.device]]"), "{printed}");
    assert_eq!(load_ok(&printed).config, *c, "{printed}");
}

#[test]
fn a_ble_source_without_its_table_gets_the_defaults_filled_in() {
    let c = load_ok(
        "[[source]]\nname = \"b\"\nkind = \"ble\"\n[source.ble]\nbackend = \"simulated\"\n",
    )
    .config;
    assert_eq!(
        c.sources[0].ble_settings().backend,
        BleBackendKind::Simulated
    );
    let c = Config {
        sources: vec![SourceConfig {
            name: "b".into(),
            kind: SourceKind::Ble,
            category: Category::Health,
            enabled: true,
            simulated: None,
            ble: None,
            zigbee2mqtt: None,
            external: None,
        }],
        ..Config::default()
    };
    // Built in code without a table: bluez by default, so the device list is required.
    let e = c.validate().unwrap_err();
    assert_eq!(e.key, "source[0].ble.device");
    assert_eq!(e.line, 0);
}

#[test]
fn the_time_zone_resolves_system_and_iana_names() {
    let mut g = GatewayConfig::default();
    assert_eq!(g.time_zone, GatewayConfig::SYSTEM_TIME_ZONE);
    // "system" never fails: the box's zone, or UTC when it cannot be determined.
    assert!(g.time_zone().is_ok());
    g.time_zone = "UTC".into();
    assert_eq!(g.time_zone().unwrap().iana_name(), Some("UTC"));
    g.time_zone = "Nowhere/Special".into();
    let e = g.time_zone().unwrap_err();
    assert!(e.contains("\"Nowhere/Special\""), "{e}");
    assert!(e.contains("/usr/share/zoneinfo"), "{e}");
}
