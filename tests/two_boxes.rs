//! Issue 13, "record ids are not scoped to the box": two boxes whose devices have the same ids
//! (a vendor's `ext:` ids numbered from 1, here with identical readings) deliver to one hub.
//! The reference receiver does what a hub should — FHIR conditional create on the Observation
//! identifier, PCD-01 deduplication on MSH-10 — so if the boxes sent the same identifiers, it
//! would answer "matched" for the second box and store nothing: silent loss. Each box must get
//! every one of its readings stored. Box A has an assigned `gateway.eui64`, box B generates its
//! identity; both outboxes are filled by an "older build" (ids not yet scoped), so the upgrade
//! path is what is delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::path::Path;

use common::{
    assert_each_format_stored, prefill_outbox, runtime, start, stop, wait_drained, write_config,
};
use hearth_model::{DeviceId, Mdc, Value};

const READINGS: u64 = 300;

/// The same readings on every box: same device ids, times, sequence numbers and values.
fn prefill(path: &Path) {
    prefill_outbox(
        path,
        &["fhir", "pcd01"],
        true,
        "Patient/shared-hub-1",
        READINGS,
        |i| {
            let device = DeviceId::new("ext", &format!("acme-scale:{}", 1 + i % 3)).unwrap();
            let value = Value::numeric_with_decimals(70.5, 1);
            (device, Mdc(188_736), value, "kg")
        },
    );
}

fn config(dir: &Path, eui64: Option<&str>, fhir: u16, mllp: u16) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    prefill(&data.join("outbox.db"));
    let eui = eui64.map_or(String::new(), |e| format!("eui64 = \"{e}\"\n"));
    write_config(
        dir,
        &format!(
            r#"
[gateway]
id = "hearth"
data_dir = "{data}"
{eui}
[retry]
initial = "200ms"
max = "2s"

[[route]]
name = "fhir"
categories = ["health"]
uplink = "fhir"
[route.fhir]
url = "http://127.0.0.1:{fhir}/fhir"

[[route]]
name = "pcd01"
categories = ["health"]
uplink = "pcd01"
[route.pcd01]
host = "127.0.0.1"
port = {mllp}
tls = false
"#,
            data = data.display(),
        ),
    )
}

#[test]
fn two_boxes_with_the_same_device_ids_deliver_every_reading_to_one_hub() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = dir.path().join("receiver.db");
    let receiver = rt
        .block_on(hearth_receiver::start(
            hearth_receiver::ReceiverConfig::new(&store),
        ))
        .unwrap();
    let (fhir, mllp) = (
        receiver.fhir_addr().unwrap().port(),
        receiver.mllp_addr().unwrap().port(),
    );

    for (name, eui) in [("a", Some("00-15-8D-00-01-A2-B3-C4")), ("b", None)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let cfg = config(&d, eui, fhir, mllp);
        let log = d.join("hearth.log");
        let child = start(&cfg, &log);
        wait_drained(&d.join("data"), &log, 120);
        stop(child);
    }
    // Box B made its identity and keeps it.
    let generated = std::fs::read_to_string(dir.path().join("b/data/gateway-eui64")).unwrap();
    assert!(
        hearth_model::GatewayId::parse(&generated)
            .unwrap()
            .is_local(),
        "{generated}"
    );
    rt.block_on(receiver.shutdown());

    let s = hearth_receiver::summary(&store).unwrap();
    eprintln!("{s}");
    assert_each_format_stored(&s, 2 * READINGS);
}
