//! Fill an outbox with N blood-pressure readings for route `hub` (benchmarks, operator drills).
//!
//! `cargo run --release -p hearth-outbox --example fill -- DATA_DIR N`

use hearth_model::*;
use hearth_outbox::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: fill DATA_DIR N")?);
    let n: u64 = args.next().ok_or("usage: fill DATA_DIR N")?.parse()?;
    let route = RouteSpec {
        name: "hub".into(),
        categories: Category::ALL.to_vec(),
        retry: RetryPolicy::default(),
        readings_only: false,
        alarms_only: false,
    };
    let mut opts = OutboxOptions::new(dir.join("outbox.db"), vec![route]);
    opts.max_rows = n.max(2_000_000) + 1000;
    opts.max_bytes = 8 << 30;
    let (mut ob, _) = Outbox::open(opts)?;
    let dev = DeviceId::new("ble", "0011223344556677")?;
    let now = Timestamp::now();
    let mut i = 0u64;
    while i < n {
        let mut b = ob.batch()?;
        for _ in 0..1000.min(n - i) {
            let r = Reading::builder(
                dev.clone(),
                Mdc(150021),
                Value::numeric_with_decimals(120.0 + (i % 40) as f64, 0),
            )
            .unit(Ucum::new("mm[Hg]"))
            .device_time(Timestamp::from_unix_millis(
                1_700_000_000_000 + i as i64 * 1000,
            ))
            .sequence(i)
            .build(now);
            b.append(&Record::Reading(r), now)?;
            i += 1;
        }
        b.commit()?;
    }
    ob.connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    println!("{} records in {}", ob.len(), ob.path().display());
    Ok(())
}
