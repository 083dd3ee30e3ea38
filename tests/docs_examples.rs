//! The configuration examples in the documentation are valid: every TOML block with a route in
//! `docs/*.md` loads, and every TOML block of
//! `docs/zigbee2mqtt.md` that holds a rule loads into a zigbee2mqtt source without error or
//! warning, and the rules engine accepts it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::path::Path;

const BASE: &str = r#"
[gateway]
data_dir = "/var/lib/hearth"
time_zone = "Europe/Oslo"

[[route]]
name = "hub"
categories = ["health", "welfare", "administrative"]
uplink = "loopback"

[[source]]
name = "zigbee"
kind = "zigbee2mqtt"
category = "welfare"
"#;

fn toml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_rule_example_in_the_zigbee2mqtt_guide_is_valid() {
    let doc = std::fs::read_to_string("docs/zigbee2mqtt.md").unwrap();
    let blocks: Vec<String> = toml_blocks(&doc)
        .into_iter()
        .filter(|b| b.contains("[[source.zigbee2mqtt.rule]]"))
        .collect();
    assert!(blocks.len() >= 3, "the guide lost its rule examples");
    for block in blocks {
        let text = format!("{BASE}{block}");
        let loaded = hearth_config::parse(&text, Path::new("example.toml"))
            .unwrap_or_else(|e| panic!("example does not load:\n{block}\n{e}"));
        assert!(loaded.warnings.is_empty(), "{block}: {:?}", loaded.warnings);
        let source = &loaded.config.sources[0];
        // As hearth builds them (src/daemon/settings.rs, `zigbee2mqtt`).
        let settings = hearth_driver_zigbee2mqtt::Settings {
            source: source.name.clone(),
            config: source.zigbee2mqtt_settings(),
            category: source.category,
            time_zone: loaded.config.gateway.time_zone().unwrap(),
        };
        hearth_driver_zigbee2mqtt::Engine::new(settings)
            .unwrap_or_else(|e| panic!("the engine refuses the example:\n{block}\n{e}"));
    }
}

#[test]
fn every_route_example_in_the_docs_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir("docs").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let doc = std::fs::read_to_string(&path).unwrap();
        for block in toml_blocks(&doc)
            .into_iter()
            .filter(|b| b.contains("[[route]]"))
        {
            let mut text = format!("[gateway]\ndata_dir = \"/var/lib/hearth\"\n{block}");
            if !block.contains("[[source]]") {
                text.push_str("\n[[source]]\nname = \"sim\"\nkind = \"simulated\"\n");
            }
            let loaded =
                hearth_config::parse(&text, Path::new("example.toml")).unwrap_or_else(|e| {
                    panic!("{}: example does not load:\n{block}\n{e}", path.display())
                });
            // A fragment shows one route; that other categories lack one is expected.
            let warnings: Vec<_> = loaded
                .warnings
                .iter()
                .filter(|w| !w.message.contains("have no route"))
                .collect();
            assert!(
                warnings.is_empty(),
                "{}: {block}: {warnings:?}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no route examples found in docs/");
}

/// Every `section.key` the annotated example spells (`key = …`, commented out or not); the
/// example is tied to the schema both ways by `crates/config/tests/example.rs`.
fn schema_keys_from_the_example() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string("docs/hearth.example.toml").unwrap();
    hearth_test_kit::config_keys::documented_keys(&text)
        .into_iter()
        .map(|(section, key)| format!("{section}.{key}"))
        .collect()
}

/// Issue 13: the docs promised keys the schema did not have. Every `section.key` that the
/// guides name in backticks must be a key of the configuration.
#[test]
fn every_config_key_the_docs_name_exists() {
    const TABLES: [&str; 8] = [
        "gateway",
        "log",
        "outbox",
        "retry",
        "supervisor",
        "mqtt",
        "route",
        "source",
    ];
    // Backticked words of that shape that are not hearth keys, each with its reason.
    const NOT_KEYS: [&str; 3] = [
        "outbox.db",         // the database file
        "outbox.db.reserve", // the full-disk reserve file beside it
        "mqtt.base_topic",   // zigbee2mqtt's own configuration.yaml, in docs/zigbee2mqtt.md
    ];
    let keys = schema_keys_from_the_example();
    assert!(keys.contains("gateway.eui64"), "{keys:?}");
    let mut files = vec![std::path::PathBuf::from("README.md")];
    for dir in ["docs", "docs/drivers", "docs/protocols"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "md") {
                files.push(e.path());
            }
        }
    }
    let mut checked = 0;
    let mut unknown = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in text.split('`').skip(1).step_by(2) {
            let Some((table, _)) = word.split_once('.') else {
                continue;
            };
            let key_like = word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            if !key_like || !TABLES.contains(&table) || NOT_KEYS.contains(&word) {
                continue;
            }
            checked += 1;
            if !keys.contains(word) {
                unknown.push(format!("{}: `{word}`", file.display()));
            }
        }
    }
    assert!(checked >= 10, "found only {checked} key mentions");
    assert!(
        unknown.is_empty(),
        "the docs name keys the configuration does not have: {unknown:#?}"
    );
}
