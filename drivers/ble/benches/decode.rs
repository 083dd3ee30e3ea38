//! BLE figures (issue 2), printed with baselines measured in the same run:
//! - decode throughput in measurement values per second on one core, against a minimal
//!   hand-written parse of the same bytes that builds no readings;
//! - allocations per notification (a counting global allocator);
//! - a simulated session collecting 1,000 stored glucose records into a real outbox, against
//!   committing the same readings straight into the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

#[path = "../tests/support/mod.rs"]
mod support;

use support::scripted_allow_list;

use std::time::{Duration, Instant};

use hearth_driver_api::{Driver, DriverContext, Ingest, TechnicalAlarms};
use hearth_driver_ble::driver::{BleDriver, BleSettings};
use hearth_driver_ble::sim::{SimBackend, bp_measurement, date_time_bytes, scripted_devices};
use hearth_model::Category;
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteSpec};

#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    GLOBAL.stats().allocations
}

fn baseline_parse(v: &[u8]) -> u32 {
    // Flags, three SFLOATs, a date, a pulse SFLOAT: read them, build nothing.
    let w = |i: usize| u32::from(u16::from_le_bytes([v[i], v[i + 1]]));
    u32::from(v[0]) ^ w(1) ^ w(3) ^ w(5) ^ w(14)
}

fn main() {
    let value = bp_measurement(128, 84, 99, 66, date_time_bytes(2025, 3, 14, 7, 5, 9));
    let n = 2_000_000u32;
    let values_per_notification = 4.0; // systolic, diastolic, mean, pulse

    let t = Instant::now();
    let mut acc = 0u32;
    for _ in 0..n {
        acc ^= baseline_parse(std::hint::black_box(&value));
    }
    let base = f64::from(n) * values_per_notification / t.elapsed().as_secs_f64();
    std::hint::black_box(acc);

    let before = allocations();
    let t = Instant::now();
    for _ in 0..n {
        let d =
            hearth_driver_ble::decode_characteristic(0x2A35, std::hint::black_box(&value)).unwrap();
        std::hint::black_box(&d);
    }
    let rate = f64::from(n) * values_per_notification / t.elapsed().as_secs_f64();
    let allocs = (allocations() - before) as f64 / f64::from(n);
    println!(
        "{:<48} {rate:>12.0} values/s   baseline raw field reads (no readings, no checks) {base:>12.0} values/s   ratio {:>5.2}   goal ≥ 1000000 values/s",
        "decode Blood Pressure Measurement (one core)",
        rate / base
    );
    println!(
        "{:<48} {allocs:>12.1} allocations per notification (the observations, their units and the compound's components; nothing else)",
        "allocations"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let route = RouteSpec { name: "hub".into(), categories: Category::ALL.to_vec(), retry: RetryPolicy::default(), readings_only: false, alarms_only: false };
        let (ob, _) = Outbox::open(OutboxOptions::new(dir.path().join("o.db"), vec![route.clone()])).unwrap();
        let (w, _t) = OutboxWriter::spawn(ob, 1024).unwrap();
        let ingest = Ingest::new(w.clone());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let ctx = DriverContext::new(ingest.clone(), TechnicalAlarms::new(ingest.clone()), stop_rx);
        let mut devices = scripted_devices(1000);
        devices.retain(|d| d.name == "Gluco-sim");
        devices[0].faults = Default::default();
        let settings = BleSettings {
            name: "ble".into(),
            devices: scripted_allow_list(Category::Health),
            offline_after: Duration::from_secs(3600),
            low_battery_percent: 0,
            clock_tolerance: Duration::from_secs(60),
            time_zone: jiff::tz::TimeZone::UTC,
            idle_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(10),
            reconnect_max: Duration::from_millis(10),
            commit_chunk: 100,
        };
        let mut driver = BleDriver::new(settings, SimBackend::new(devices, Duration::from_millis(1)));
        let t = Instant::now();
        let task = tokio::spawn(async move { driver.run(&ctx).await });
        loop {
            if w.cursor("ble:ble:a4c138000005:seq").await.unwrap() == Some(1000) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let session = t.elapsed();
        stop_tx.send(true).unwrap();
        task.await.unwrap().unwrap();

        // Baseline: the same 1,000 readings committed straight into a fresh outbox in chunks of 100.
        let (ob2, _) = Outbox::open(OutboxOptions::new(dir.path().join("o2.db"), vec![route])).unwrap();
        let (w2, _t2) = OutboxWriter::spawn(ob2, 1024).unwrap();
        let records: Vec<_> = (0..1000u64)
            .map(|i| {
                hearth_model::Record::Reading(
                    hearth_model::Reading::builder(hearth_model::DeviceId::new("ble", "x").unwrap(), hearth_model::Mdc(160184), hearth_model::Value::numeric(5.6))
                        .sequence(i)
                        .build(hearth_model::Timestamp::now()),
                )
            })
            .collect();
        let t = Instant::now();
        for chunk in records.chunks(100) {
            w2.append(chunk.to_vec(), Some(("x".into(), 1))).await.unwrap();
        }
        let direct = t.elapsed();
        println!(
            "{:<48} {:>12.3} s        baseline direct outbox commit {:>8.3} s        ratio {:>5.2}   goal < 2 s",
            "1,000 stored glucose records: session → outbox",
            session.as_secs_f64(),
            direct.as_secs_f64(),
            session.as_secs_f64() / direct.as_secs_f64()
        );
    });
}
