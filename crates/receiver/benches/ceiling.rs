//! The reference receiver's own ingest ceiling (issue 4 figures' baseline): pre-encoded FHIR
//! transaction Bundles and PCD-01 messages of 500 readings each, sent back to back over
//! `BENCH_CEILING_CONNECTIONS` (default 2, a route's default `connections`) loopback
//! connections at once, as hearth's uplinks do; prints observations/s per format. The daemon's
//! drain through the outbox and the uplinks (`./scripts/bench`) is compared with this.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hearth_model::*;
use hearth_receiver::{ReceiverConfig, start, summary};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PER_BATCH: u64 = 500;

fn records(n: u64, first: u64) -> Vec<Record> {
    let dev = DeviceId::new("ble", "0a1b2c0001d4e5f7").unwrap();
    (first..first + n)
        .map(|i| {
            Record::Reading(
                Reading::builder(
                    dev.clone(),
                    Mdc(150364),
                    Value::numeric_with_decimals(36.5, 1),
                )
                .unit(Ucum::new("Cel"))
                .device_time(Timestamp::from_unix_millis(
                    1_741_932_309_000 + i as i64 * 1000,
                ))
                .sequence(i)
                .person(PersonRef::new("Patient/bench"))
                .build(Timestamp::now()),
            )
        })
        .collect()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deal `items` round-robin into `n` lists.
fn split<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        out[i % n].push(item);
    }
    out
}

/// POST each bundle on one keep-alive connection, waiting for each answer.
async fn post_all(addr: SocketAddr, bodies: Vec<Vec<u8>>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    for body in bodies {
        let req = hyper::Request::post("/fhir")
            .header("host", "localhost")
            .header("content-type", "application/fhir+json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        send.ready().await.unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let _ = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
    }
}

/// Send each framed message on one MLLP connection, waiting for its ACK.
async fn mllp_all(addr: SocketAddr, frames: Vec<(Vec<u8>, String)>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut deframer = hearth_uplink_pcd01::Deframer::new(1 << 20);
    let mut buf = vec![0u8; 64 << 10];
    for (frame, id) in frames {
        tcp.write_all(&frame).await.unwrap();
        let ack = loop {
            if let Some(f) = deframer.next_frame() {
                break f.unwrap();
            }
            let k = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(k > 0, "the receiver closed the connection");
            deframer.push(&buf[..k]);
        };
        let outcome = hearth_uplink_pcd01::parse_ack(&ack, &id).unwrap();
        assert!(
            matches!(outcome, hearth_uplink_pcd01::AckOutcome::Delivered { .. }),
            "{outcome:?}"
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("BENCH_CEILING_READINGS", 100_000);
    let connections = env("BENCH_CEILING_CONNECTIONS", 2).max(1) as usize;
    let batches = n / PER_BATCH;
    let dir = tempfile::tempdir().unwrap();
    let running = start(ReceiverConfig::new(dir.path().join("ceiling.db")))
        .await
        .unwrap();

    // FHIR: encode first, then time only the sending.
    let gw = hearth_uplink_fhir::Gateway::new(DeviceId::new("hearth", "bench").unwrap());
    let ctx = hearth_uplink_fhir::Context::new(gw, None);
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            hearth_uplink_fhir::encode_bundle(
                &records(PER_BATCH, b * PER_BATCH),
                &ctx,
                hearth_uplink_fhir::Profile::Phd,
            )
            .unwrap()
            .to_json_bytes()
        })
        .collect();
    let addr = running.fhir_addr().unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = split(bodies, connections)
        .into_iter()
        .map(|bodies| tokio::spawn(post_all(addr, bodies)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let fhir_rate = (batches * PER_BATCH) as f64 / t.elapsed().as_secs_f64();

    // PCD-01 over MLLP.
    let ctx = hearth_uplink_pcd01::Context::new("HEARTH", Timestamp::now());
    let frames: Vec<(Vec<u8>, String)> = (0..batches)
        .map(|b| {
            let m = hearth_uplink_pcd01::encode_oru(
                &records(PER_BATCH, 10_000_000 + b * PER_BATCH),
                &ctx,
            )
            .unwrap();
            (hearth_uplink_pcd01::frame(&m), m.control_id().to_owned())
        })
        .collect();
    let addr = running.mllp_addr().unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = split(frames, connections)
        .into_iter()
        .map(|frames| tokio::spawn(mllp_all(addr, frames)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mllp_rate = (batches * PER_BATCH) as f64 / t.elapsed().as_secs_f64();
    running.shutdown().await;
    let s = summary(&dir.path().join("ceiling.db")).unwrap();
    assert_eq!(s.fhir.observations, batches * PER_BATCH);
    assert_eq!(s.mllp.observations, batches * PER_BATCH);
    println!(
        "receiver ceiling FHIR   {fhir_rate:>9.0} obs/s  ({} readings, bundles of {PER_BATCH}, pre-encoded, {connections} connections)",
        batches * PER_BATCH
    );
    println!(
        "receiver ceiling PCD-01 {mllp_rate:>9.0} obs/s  ({} readings, messages of {PER_BATCH}, pre-encoded, {connections} connections)",
        batches * PER_BATCH
    );
}
