//! MQTT figures (issue 3), printed with baselines measured in the same run:
//! - backlog drain: messages/s from a real mosquitto into the outbox (durable, acknowledged
//!   after commit), against `mosquitto_sub` draining the same backlog from the same broker;
//! - alarm latency: publish → committed in the alarm lane, p50/p99, while the broker delivers a
//!   steady load of sensor messages; issue 15: with the SOS buttons configured as
//!   `role = "sos_button"` (their own safety session, alarms ahead in the writer) against the
//!   same buttons without a role (one session, the old path), each on its own broker under the
//!   same load, in the same run, as ratios.
//!
//! `BENCH_MQTT_MESSAGES` (default 200 000) sets the backlog; `BENCH_MQTT_RATE` (default 20 000/s)
//! the steady load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth_config::MqttConfig;
use hearth_driver_mqtt::{CommittedBatch, Handler, MqttSource, Transport};
use hearth_test_kit::Harness;
use hearth_test_kit::mosquitto::Mosquitto;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;

const SENSOR: &str =
    r#"{"battery":97,"humidity":45.2,"linkquality":120,"temperature":21.53,"voltage":3000}"#;
const ALARM: &str = r#"{"action":"emergency","battery":90,"linkquality":102}"#;

/// SOS buttons pressed during one alarm-latency run (one every 25 ms for 10 s).
const BUTTONS: usize = 400;

/// The zigbee2mqtt handler with the shipped rules, as a source with default settings has it;
/// with `roles`, the SOS buttons are configured as `sos_button` (the safety session).
fn handler(name: &str, roles: bool) -> Box<dyn Handler> {
    let mut settings = hearth_driver_zigbee2mqtt::Settings::new(name);
    settings.category = hearth_model::Category::Welfare;
    if roles {
        settings.config.devices = (0..BUTTONS)
            .map(|k| {
                let mut d = hearth_config::SensorConfig::new(format!("sos_button_{k}"));
                d.role = hearth_config::SensorRole::SosButton;
                d
            })
            .collect();
    }
    hearth_driver_mqtt::handlers::zigbee2mqtt(settings).expect("the shipped rules compile")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A publisher with a deep in-flight window, so the broker, not the publisher, sets the pace.
async fn publisher(port: u16, id: &str) -> AsyncClient {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_inflight(1000).set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(o, 2000);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

fn source(port: u16, observer: mpsc::UnboundedSender<CommittedBatch>) -> MqttSource {
    source_named("bench", false, port, observer)
}

fn source_named(
    name: &str,
    roles: bool,
    port: u16,
    observer: mpsc::UnboundedSender<CommittedBatch>,
) -> MqttSource {
    let cfg = MqttConfig {
        port,
        ..MqttConfig::default()
    };
    MqttSource::new(name, Transport::Broker(cfg), handler(name, roles)).observe(observer)
}

/// p50 and p99 of one alarm-latency run, ms.
struct Latency {
    p50: f64,
    p99: f64,
}

/// Publishes `n` sensor messages and waits until the broker has taken them all.
async fn publish_backlog(port: u16, n: usize) {
    let client = publisher(port, "bench-pub").await;
    for i in 0..n {
        client
            .publish(
                format!("zigbee2mqtt/sensor_{}", i % 50),
                QoS::AtLeastOnce,
                false,
                SENSOR,
            )
            .await
            .unwrap();
    }
    // Every request is handed to the event loop in order; a final message waited for with
    // mosquitto_sub would be simpler but perturbs the broker. Disconnect drains the queue.
    client.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn mosquitto_sub(port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-c"])
        .args(["-i", "bench-sub", "-t", "zigbee2mqtt/#"])
        .args(extra)
        .stdout(Stdio::null());
    c
}

/// `rate` sensor messages/s for `seconds`, from five `mosquitto_pub -q 1 -M 1000 -l` processes
/// (five sensors), fed in 10 ms ticks by a thread.
fn load_publishers(port: u16, rate: usize, seconds: u64) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    std::thread::spawn(move || {
        let mut children: Vec<_> = (0..5)
            .map(|k| {
                Command::new("mosquitto_pub")
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
                    .args(["-M", "1000", "-l", "-i", &format!("bench-load-{k}")])
                    .args(["-t", &format!("zigbee2mqtt/sensor_{k}")])
                    .stdin(Stdio::piped())
                    .spawn()
                    .expect("mosquitto_pub")
            })
            .collect();
        let mut pipes: Vec<_> = children
            .iter_mut()
            .map(|c| std::io::BufWriter::new(c.stdin.take().unwrap()))
            .collect();
        let per_tick = (rate / 100 / 5).max(1);
        let start = Instant::now();
        for tick in 0..(seconds * 100) {
            let due = start + Duration::from_millis(tick * 10);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            for pipe in &mut pipes {
                for _ in 0..per_tick {
                    writeln!(pipe, "{SENSOR}").unwrap();
                }
                pipe.flush().unwrap();
            }
        }
        drop(pipes);
        for mut c in children {
            assert!(c.wait().unwrap().success(), "mosquitto_pub failed");
        }
    })
}

/// Waits until the source has committed nothing for a second: the backlog of an earlier run
/// is drained, so each run starts from the same state.
async fn quiet(rx: &mut mpsc::UnboundedReceiver<CommittedBatch>) {
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {}
}

/// Alarms (a new SOS button every 25 ms) while `rate` sensor messages/s arrive for 10 s:
/// publish → committed latency, and the commits meanwhile.
async fn alarm_latency(
    label: &str,
    port: u16,
    rate: usize,
    rx: &mut mpsc::UnboundedReceiver<CommittedBatch>,
) -> Latency {
    let seconds = 10u64;
    quiet(rx).await;
    // The load comes from mosquitto_pub processes (C, light), as zigbee2mqtt's would come from
    // another process; this process only paces the lines it writes into their stdin.
    let load = load_publishers(port, rate, seconds);
    let alarms = publisher(port, "bench-alarm").await;
    let alarm_task = tokio::spawn(async move {
        let mut sent = Vec::new();
        for k in 0..BUTTONS {
            tokio::time::sleep(Duration::from_millis(25)).await;
            // Every press on another button, so each is a new alarm (no debounce merge).
            sent.push(Instant::now());
            alarms
                .publish(
                    format!("zigbee2mqtt/sos_button_{k}"),
                    QoS::AtLeastOnce,
                    false,
                    ALARM,
                )
                .await
                .unwrap();
        }
        sent
    });
    let mut committed_alarms = Vec::new();
    let mut commit_ms = Vec::new();
    let mut load_msgs = 0usize;
    let t = Instant::now();
    let expect_alarms = BUTTONS;
    while committed_alarms.len() < expect_alarms {
        let b = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no commit for 60 s")
            .expect("source ended");
        commit_ms.push(b.at.duration_since(b.requested).as_secs_f64() * 1000.0);
        for (topic, arrived) in &b.topics {
            if topic.contains("sos_button") {
                committed_alarms.push((*arrived, b.at));
            } else {
                load_msgs += 1;
            }
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    load.join().unwrap();
    let sent = alarm_task.await.unwrap();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut lat: Vec<f64> = sent
        .iter()
        .zip(&committed_alarms)
        .map(|(s, (_, c))| ms(c.duration_since(*s)))
        .collect();
    let mut to_arrive: Vec<f64> = sent
        .iter()
        .zip(&committed_alarms)
        .map(|(s, (a, _))| ms(a.duration_since(*s)))
        .collect();
    to_arrive.sort_by(f64::total_cmp);
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{:<46} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms   goal p99 <= 20 ms",
        format!("alarm publish -> committed, {label}"),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  (of which publish -> arrived at hearth: p50 {:.2} ms, p99 {:.2} ms)",
        to_arrive[to_arrive.len() / 2],
        to_arrive[((to_arrive.len() as f64 - 1.0) * 0.99).round() as usize]
    );
    commit_ms.sort_by(f64::total_cmp);
    println!(
        "  (commits meanwhile: {}, duration p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
        commit_ms.len(),
        commit_ms[commit_ms.len() / 2],
        commit_ms[((commit_ms.len() as f64 - 1.0) * 0.99).round() as usize],
        commit_ms[commit_ms.len() - 1]
    );
    println!(
        "  ({} alarms under a load of {rate} sensor msgs/s offered; {:.0} msgs/s stored meanwhile)",
        lat.len(),
        load_msgs as f64 / elapsed
    );
    Latency {
        p50: pct(0.5),
        p99: pct(0.99),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("BENCH_MQTT_MESSAGES", 200_000);
    let rate = env("BENCH_MQTT_RATE", 20_000);

    // Baseline: mosquitto_sub drains a backlog of n messages (QoS 1, persistent session).
    let broker = Mosquitto::start();
    assert!(
        mosquitto_sub(broker.port(), &["-E"])
            .status()
            .unwrap()
            .success()
    );
    publish_backlog(broker.port(), n).await;
    let t = Instant::now();
    let ok = mosquitto_sub(broker.port(), &["-C", &n.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let sub_rate = n as f64 / t.elapsed().as_secs_f64();
    drop(broker);

    // hearth: the same backlog into a durable outbox, acknowledged after each commit.
    let broker = Mosquitto::start();
    let h = Harness::new().unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let _ = h
        .run(source(broker.port(), tx), Duration::from_secs(3))
        .await; // session
    publish_backlog(broker.port(), n).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t = Instant::now();
    let running = h.spawn(source(broker.port(), tx));
    let mut stored = 0usize;
    let mut records = 0usize;
    while stored < n {
        let b = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no commit for 60 s")
            .expect("source ended");
        stored += b.topics.len();
        records += b.records;
    }
    let hearth_rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{:<46} {:>9.0} msg/s   baseline mosquitto_sub {:>9.0} msg/s   ratio {:>5.2}   goal >= 20000 msg/s",
        format!("MQTT backlog {n} msgs -> outbox (durable, acked)"),
        hearth_rate,
        sub_rate,
        hearth_rate / sub_rate
    );
    println!(
        "  ({records} records from {n} zigbee2mqtt messages; each commit fsynced, synchronous=FULL)"
    );

    // Alarm latency under the full load, and under a load a busy home could produce: the SOS
    // buttons without a role (the old path: one session, the source above) and as
    // `sos_button` (issue 15: a safety session; a source of its own on a broker of its own,
    // under the same load), one after the other in this run.
    let safe_broker = Mosquitto::start();
    let h2 = Harness::new().unwrap();
    let (tx, _warm) = mpsc::unbounded_channel();
    // Both sessions and their subscriptions exist and are recorded before the load (as on a
    // box that has run before; the main session then leaves the buttons to the safety one).
    let _ = h2
        .run(
            source_named("safe", true, safe_broker.port(), tx),
            Duration::from_secs(3),
        )
        .await;
    let (tx, mut safe_rx) = mpsc::unbounded_channel();
    let safe = h2.spawn(source_named("safe", true, safe_broker.port(), tx));
    for load in [rate, 1_000] {
        let old = alarm_latency("no role (one session)", broker.port(), load, &mut rx).await;
        let new = alarm_latency(
            "role sos_button (safety session)",
            safe_broker.port(),
            load,
            &mut safe_rx,
        )
        .await;
        println!(
            "{:<46} p50 {:>8.2} ms vs {:>8.2} ms  ratio {:>6.3}   p99 {:>8.2} ms vs {:>8.2} ms  ratio {:>6.3}",
            format!("alarm latency at {load} msg/s: sos_button vs no role"),
            new.p50,
            old.p50,
            new.p50 / old.p50,
            new.p99,
            old.p99,
            new.p99 / old.p99
        );
    }
    drop(safe);
    drop(running);
    h2.stop();
    h.stop();
}
