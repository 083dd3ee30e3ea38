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
        let settings = hearth_driver_zigbee2mqtt::Settings::from_source(
            source,
            loaded.config.gateway.time_zone().unwrap(),
        );
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
