//! The BLE driver end to end against the simulated radio and a real outbox file: scripted
//! devices with spec-built bytes, a glucose meter whose first bond fails and whose first
//! transfer drops the link, a reset device clock, a low battery.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod support;

use support::scripted_allow_list;

use std::time::Duration;

use hearth_driver_api::{Driver, DriverContext, Ingest, TechnicalAlarms};
use hearth_driver_ble::backend::Address;
use hearth_driver_ble::driver::{BleDriver, BleSettings, DeviceEntry};
use hearth_driver_ble::sim::{SimBackend, SimDevice, more_scripted_devices, scripted_devices};
use hearth_model::Category;
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};

fn settings(devices: Vec<DeviceEntry>) -> BleSettings {
    BleSettings {
        name: "ble".into(),
        devices,
        offline_after: Duration::from_secs(3600),
        low_battery_percent: 20,
        clock_tolerance: Duration::from_secs(60),
        time_zone: jiff::tz::TimeZone::get("Europe/Oslo").unwrap(),
        idle_timeout: Duration::from_millis(300),
        reconnect_initial: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(50),
        commit_chunk: 100,
    }
}

fn writer(dir: &std::path::Path) -> OutboxWriter {
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let (ob, _) = Outbox::open(OutboxOptions::new(dir.join("o.db"), vec![route])).unwrap();
    OutboxWriter::spawn(ob, 1000).unwrap().0
}

/// Run the driver until `done` says so (checked on the outbox stats) or 30 s pass.
async fn run_until(
    devices: Vec<SimDevice>,
    allow: Vec<DeviceEntry>,
    dir: &std::path::Path,
    done: impl Fn(&hearth_outbox::Stats) -> bool,
) -> (
    hearth_outbox::Stats,
    Vec<(Address, u16, Vec<u8>)>,
    Vec<hearth_model::Record>,
) {
    let w = writer(dir);
    let ingest = Ingest::new(w.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ctx = DriverContext::new(
        ingest.clone(),
        TechnicalAlarms::new(ingest.clone()),
        stop_rx,
    );
    let backend = SimBackend::new(devices, Duration::from_millis(20));
    let mut driver = BleDriver::new(settings(allow), backend);
    let task = tokio::spawn(async move { driver.run(&ctx).await.map(|()| driver) });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = w.stats().await.unwrap();
        if done(&s) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    let driver = task.await.unwrap().unwrap();
    let stats = w.stats().await.unwrap();
    let records = w
        .claim(w.route("hub").unwrap(), 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.record)
        .collect();
    (stats, driver.backend().writes.clone(), records)
}

fn only(devices: Vec<SimDevice>, name: &str) -> Vec<SimDevice> {
    devices.into_iter().filter(|d| d.name == name).collect()
}

#[tokio::test]
async fn stored_glucose_records_arrive_once_despite_a_failed_bond_and_a_dropped_link() {
    let dir = tempfile::tempdir().unwrap();
    let devices = only(scripted_devices(90), "Gluco-sim");
    let allow = scripted_allow_list(Category::Health);
    let (s, _, _) = run_until(devices, allow, dir.path(), |s| {
        s.cursors.values().any(|v| *v == 90)
    })
    .await;
    assert_eq!(
        s.cursors.get("ble:ble:a4c138000005:seq"),
        Some(&90),
        "cursor at the last record: {:?}",
        s.cursors
    );
    // Each record is two readings: the concentration and the sample location.
    assert_eq!(s.lanes[2].records, 2 * 90, "90 glucose records, each once");
    assert_eq!(
        s.counter("duplicates"),
        0,
        "the resumed transfer fetched only newer records"
    );
    assert!(
        s.lanes[1].records >= 1,
        "low battery (15 %) raised a technical alarm"
    );
}

#[tokio::test]
async fn a_restart_fetches_only_records_newer_than_the_committed_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let allow = scripted_allow_list(Category::Health);
    run_until(
        only(scripted_devices(40), "Gluco-sim"),
        allow.clone(),
        dir.path(),
        |s| s.cursors.values().any(|v| *v == 40),
    )
    .await;
    // The meter took 10 more readings while hearth was stopped.
    let (s, _, _) = run_until(
        only(scripted_devices(50), "Gluco-sim"),
        allow,
        dir.path(),
        |s| s.cursors.values().any(|v| *v == 50),
    )
    .await;
    assert_eq!(
        s.counter("ingested") - s.lanes[1].records as i64,
        2 * 50,
        "50 records of two readings each"
    );
    assert_eq!(s.counter("duplicates"), 0);
}

#[tokio::test]
async fn live_devices_are_collected_and_a_reset_clock_is_flagged_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let devices: Vec<SimDevice> = scripted_devices(0)
        .into_iter()
        .filter(|d| d.name != "Gluco-sim")
        .collect();
    let allow = scripted_allow_list(Category::Health);
    let (s, writes, records) =
        run_until(devices, allow, dir.path(), |s| s.lanes[2].records >= 8).await;
    assert!(
        s.lanes[2].records >= 8,
        "readings from the live devices: {:?}",
        s.lanes
    );
    let bp = Address::parse("A4:C1:38:00:00:01").unwrap();
    let set = writes
        .iter()
        .find(|(a, c, _)| *a == bp && *c == 0x2A2B)
        .expect("the reset clock was set via Current Time");
    assert_eq!(set.2.len(), 10);
    assert!(
        u16::from_le_bytes([set.2[0], set.2[1]]) >= 2026,
        "a real year was written"
    );
    let flagged = records.iter().any(|r| matches!(r, hearth_model::Record::Reading(x) if x.device.as_str() == "ble:a4c138000001" && x.flags.device_clock_unset));
    assert!(
        flagged,
        "readings taken while the monitor's clock was unset are flagged"
    );
    let converted = records.iter().any(|r| matches!(r, hearth_model::Record::Reading(x) if x.device.as_str() == "ble:a4c138000002" && x.device_time.is_some()));
    assert!(
        converted,
        "device local times are converted with the box's zone"
    );
    assert!(
        s.dead_letters.is_empty(),
        "every scripted value decoded: {:?}",
        s.dead_letters
    );
}

#[tokio::test]
async fn a_malformed_notification_is_dead_lettered_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let address = Address::parse("A4:C1:38:00:00:09").unwrap();
    let mut bad = SimDevice::new(address.clone(), "Broken-sim", vec![0x1810]);
    // Flags announce a time stamp, but the value ends after the three pressures.
    bad.live_rounds.push_back(vec![(
        0x2A35,
        vec![0x02, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00],
    )]);
    bad.live_rounds.push_back(vec![(
        0x2A35,
        vec![0x00, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00],
    )]);
    let allow = vec![DeviceEntry {
        address,
        id: hearth_model::DeviceId::new("ble", "broken").unwrap(),
        person: None,
        category: Category::Health,
    }];
    let (s, _, _) = run_until(vec![bad], allow, dir.path(), |s| s.lanes[2].records >= 1).await;
    assert_eq!(
        s.dead_letters.get("input:ble:ble:broken"),
        Some(&1),
        "{:?}",
        s.dead_letters
    );
    assert_eq!(
        s.lanes[2].records, 1,
        "the next, valid measurement was stored"
    );
}

#[tokio::test]
async fn heart_rate_body_composition_cgm_and_segmented_ghs_devices_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let devices = more_scripted_devices(3);
    let allow: Vec<DeviceEntry> = devices
        .iter()
        .map(|d| DeviceEntry {
            address: d.address.clone(),
            id: hearth_model::DeviceId::new("ble", &d.address.compact()).unwrap(),
            person: None,
            category: Category::Health,
        })
        .collect();
    let (s, _, records) = run_until(devices, allow, dir.path(), |s| s.lanes[2].records >= 12).await;
    assert!(
        s.dead_letters.is_empty(),
        "every segment and packet decoded: {:?}",
        s.dead_letters
    );
    let seen = |dev: &str, mdc: u32| {
        records.iter().any(|r| matches!(r, hearth_model::Record::Reading(x) if x.device.as_str() == dev && x.mdc.0 == mdc))
    };
    assert!(seen("ble:a4c138000006", 147842), "heart rate");
    assert!(
        seen("ble:a4c138000007", 188748) && seen("ble:a4c138000007", 188736),
        "body fat and weight from the two packets"
    );
    assert!(seen("ble:a4c138000008", 160212), "CGM glucose");
    let cgm_time = records.iter().find_map(|r| match r {
        hearth_model::Record::Reading(x) if x.device.as_str() == "ble:a4c138000008" => {
            x.device_time
        }
        _ => None,
    });
    // First record: 75 min after the session start 2026-11-23 06:00 at UTC+1 → 06:15Z.
    assert_eq!(
        cgm_time.map(|t| t.to_rfc3339()),
        Some("2026-11-23T06:15:00.000Z".to_owned()),
        "placed after the session start"
    );
    assert!(
        seen("ble:a4c138000009", 150364),
        "GHS body temperature from two segments"
    );
}

#[tokio::test]
async fn a_device_not_seen_for_the_configured_time_raises_a_technical_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path());
    let ingest = Ingest::new(w.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ctx = DriverContext::new(
        ingest.clone(),
        TechnicalAlarms::new(ingest.clone()),
        stop_rx,
    );
    let address = Address::parse("A4:C1:38:00:00:0A").unwrap();
    let allow = vec![DeviceEntry {
        address,
        id: hearth_model::DeviceId::new("ble", "silent").unwrap(),
        person: None,
        category: Category::Health,
    }];
    let mut s = settings(allow);
    s.offline_after = Duration::from_millis(100);
    // The allow-listed device never advertises.
    let mut driver = BleDriver::new(s, SimBackend::new(Vec::new(), Duration::from_millis(20)));
    let task = tokio::spawn(async move { driver.run(&ctx).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.stats().await.unwrap().lanes[1].records == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    let claimed = w.claim(w.route("hub").unwrap(), 100).await.unwrap();
    let offline: Vec<_> = claimed
        .iter()
        .filter(|c| matches!(&c.record, hearth_model::Record::Technical(t) if t.kind == hearth_model::TechnicalKind::DeviceOffline && t.source == "ble:silent"))
        .collect();
    assert_eq!(
        offline.len(),
        1,
        "raised once, not on every check: {claimed:?}"
    );
}

#[tokio::test]
async fn ghs_stored_observations_arrive_once_across_a_dropped_link() {
    let dir = tempfile::tempdir().unwrap();
    let devices: Vec<SimDevice> = more_scripted_devices(40)
        .into_iter()
        .filter(|d| d.name == "GHSStore-sim")
        .collect();
    let allow = scripted_allow_list(Category::Health);
    let (s, writes, records) = run_until(devices, allow, dir.path(), |s| {
        s.cursors.values().any(|v| *v == 40)
    })
    .await;
    assert_eq!(
        s.cursors.get("ble:ble:a4c13800000b:seq"),
        Some(&40),
        "{:?}",
        s.cursors
    );
    assert_eq!(s.lanes[2].records, 40, "40 stored observations, each once");
    assert_eq!(s.counter("duplicates"), 0);
    let requests: Vec<_> = writes
        .iter()
        .filter(|(_, c, _)| *c == 0x2A52)
        .map(|(_, _, v)| v.clone())
        .collect();
    assert_eq!(
        requests[0],
        vec![0x07, 0x03, 0x01, 0, 0, 0, 0],
        "first: everything"
    );
    assert_eq!(
        requests[1],
        vec![0x07, 0x03, 0x01, 21, 0, 0, 0],
        "after the drop: from the committed record + 1"
    );
    assert!(records.iter().all(|r| matches!(r, hearth_model::Record::Reading(x) if x.sequence.is_some() && x.device_time.is_some())));
}

#[tokio::test]
async fn pulse_oximeter_memory_is_deleted_only_after_its_records_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let devices: Vec<SimDevice> = more_scripted_devices(25)
        .into_iter()
        .filter(|d| d.name == "OxiStore-sim")
        .collect();
    let allow = scripted_allow_list(Category::Health);
    let (s, writes, _) = run_until(devices, allow, dir.path(), |s| s.lanes[2].records >= 50).await;
    assert_eq!(
        s.lanes[2].records, 50,
        "25 records of SpO2 and pulse rate, each once"
    );
    let requests: Vec<_> = writes
        .iter()
        .filter(|(_, c, _)| *c == 0x2A52)
        .map(|(_, _, v)| v.clone())
        .collect();
    assert_eq!(requests.first(), Some(&vec![0x01, 0x01]), "report all");
    assert_eq!(
        requests.get(1),
        Some(&vec![0x02, 0x01]),
        "then delete all, after the commit"
    );
    assert_eq!(
        requests.len(),
        2,
        "nothing fetched again: the device's memory is empty"
    );
}

/// Issue 6 (b): what a device tells in its Device Information Service reaches the outbox's
/// device table (which the FHIR uplink reads for PhdDevice manufacturer/modelNumber).
#[tokio::test]
async fn issue_6_device_information_is_stored_as_device_facts() {
    let dir = tempfile::tempdir().unwrap();
    let devices = only(scripted_devices(0), "BP7000-sim");
    let allow = scripted_allow_list(Category::Health);
    let (s, _, _) = run_until(devices, allow, dir.path(), |s| s.lanes[2].records >= 1).await;
    assert!(s.lanes[2].records >= 1);
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let (ob, _) = Outbox::open(OutboxOptions::new(dir.path().join("o.db"), vec![route])).unwrap();
    let facts = ob.devices().unwrap();
    let bp = facts
        .iter()
        .find(|d| {
            d.id.as_ref()
                .is_some_and(|i| i.as_str() == "ble:a4c138000001")
        })
        .unwrap_or_else(|| panic!("no facts of the BP monitor: {facts:?}"));
    assert_eq!(bp.manufacturer.as_deref(), Some("Acme Medical"));
    assert_eq!(bp.model.as_deref(), Some("BP7000"));
    assert_eq!(bp.serial.as_deref(), Some("BP-000123"));
    assert_eq!(bp.firmware.as_deref(), Some("1.4.2"));
}
