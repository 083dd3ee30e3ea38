//! A simulated radio that replays scripted device sessions: advertising, connecting, bonding
//! (and failing to), notifications, stored-record transfer over RACP (and a disconnect in the
//! middle of it), a device clock that was reset. The bytes are real characteristic values built
//! from the specifications; `hearth demo` and the tests drive the driver through it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use crate::backend::{Address, BackendError, BleBackend, BleEvent, BoxFuture};
use crate::profiles::racp;

/// Faults a simulated device can show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimFaults {
    /// The first this-many bonding attempts fail.
    pub bond_failures: u32,
    /// On the first stored-record transfer, drop the link after this many records.
    pub disconnect_after_records: Option<usize>,
}

/// One scripted device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    /// Its address.
    pub address: Address,
    /// Advertised name.
    pub name: String,
    /// Advertised 16-bit service UUIDs.
    pub services: Vec<u16>,
    /// Readable characteristics (Device Information, Battery, Current Time, features …).
    pub readable: BTreeMap<u16, Vec<u8>>,
    /// Notifications sent after subscribing, one round per connection; the device
    /// disconnects after each round and stops advertising when the rounds are used up.
    pub live_rounds: VecDeque<Vec<(u16, Vec<u8>)>>,
    /// Stored records by sequence number, sent as notifications of `stored_characteristic`
    /// in answer to a RACP report request.
    pub stored: BTreeMap<u16, Vec<u8>>,
    /// Characteristic carrying stored records (0x2A18 for Glucose).
    pub stored_characteristic: u16,
    /// Whether bonding is required before anything else.
    pub requires_bond: bool,
    /// Faults to show.
    pub faults: SimFaults,
}

impl SimDevice {
    /// A device with nothing scripted yet.
    pub fn new(address: Address, name: &str, services: Vec<u16>) -> Self {
        Self {
            address,
            name: name.to_owned(),
            services,
            readable: BTreeMap::new(),
            live_rounds: VecDeque::new(),
            stored: BTreeMap::new(),
            stored_characteristic: 0x2A18,
            requires_bond: false,
            faults: SimFaults::default(),
        }
    }

    fn has_data(&self) -> bool {
        !self.live_rounds.is_empty() || !self.stored.is_empty()
    }

    fn characteristics(&self) -> Vec<u16> {
        let mut c: Vec<u16> = self.readable.keys().copied().collect();
        for round in &self.live_rounds {
            c.extend(round.iter().map(|(u, _)| *u));
        }
        if !self.stored.is_empty() {
            c.push(self.stored_characteristic);
            c.push(racp::UUID);
        }
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// The simulated radio.
#[derive(Debug)]
pub struct SimBackend {
    devices: Vec<SimDevice>,
    queue: VecDeque<BleEvent>,
    connected: HashSet<Address>,
    bonded: HashSet<Address>,
    transfers: usize,
    advertise_every: Duration,
    scanning: bool,
    /// Writes the devices received (for tests: e.g. Current Time, RACP requests).
    pub writes: Vec<(Address, u16, Vec<u8>)>,
}

impl SimBackend {
    /// Devices advertise every `advertise_every` while they have data.
    pub fn new(devices: Vec<SimDevice>, advertise_every: Duration) -> Self {
        Self {
            devices,
            queue: VecDeque::new(),
            connected: HashSet::new(),
            bonded: HashSet::new(),
            transfers: 0,
            advertise_every,
            scanning: false,
            writes: Vec::new(),
        }
    }

    fn device(&mut self, address: &Address) -> Result<&mut SimDevice, BackendError> {
        self.devices
            .iter_mut()
            .find(|d| &d.address == address)
            .ok_or_else(|| BackendError::NotConnected(address.clone()))
    }

    fn require_connected(&self, address: &Address) -> Result<(), BackendError> {
        if self.connected.contains(address) {
            Ok(())
        } else {
            Err(BackendError::NotConnected(address.clone()))
        }
    }

    fn drop_link(&mut self, address: &Address) {
        if self.connected.remove(address) {
            self.queue.push_back(BleEvent::Disconnected {
                address: address.clone(),
            });
        }
    }

    fn start_transfer(&mut self, address: &Address, request: &[u8]) -> Result<(), BackendError> {
        let combined = request.first() == Some(&0x07);
        let from = match request {
            [0x01 | 0x07, 0x01] => 0,
            [0x01, 0x03, 0x01, lo, hi] => u16::from_le_bytes([*lo, *hi]),
            [0x07, 0x03, 0x01, a, b, c, d] => {
                u16::try_from(u32::from_le_bytes([*a, *b, *c, *d])).unwrap_or(u16::MAX)
            }
            [0x04, 0x01] => {
                let n = self.device(address)?.stored.len() as u16;
                let [a, b] = n.to_le_bytes();
                self.queue.push_back(BleEvent::Notification {
                    address: address.clone(),
                    characteristic: racp::UUID,
                    value: vec![0x05, 0x00, a, b],
                });
                return Ok(());
            }
            [0x02, 0x01] => {
                self.device(address)?.stored.clear();
                self.queue.push_back(BleEvent::Notification {
                    address: address.clone(),
                    characteristic: racp::UUID,
                    value: vec![0x06, 0x00, 0x02, 0x01],
                });
                return Ok(());
            }
            other => {
                let op = other.first().copied().unwrap_or(0);
                self.queue.push_back(BleEvent::Notification {
                    address: address.clone(),
                    characteristic: racp::UUID,
                    value: vec![0x06, 0x00, op, 0x02],
                });
                return Ok(());
            }
        };
        self.transfers += 1;
        let first_transfer = self.transfers == 1;
        let dev = self.device(address)?;
        let characteristic = dev.stored_characteristic;
        let records: Vec<Vec<u8>> = dev.stored.range(from..).map(|(_, v)| v.clone()).collect();
        let cut = if first_transfer {
            dev.faults.disconnect_after_records
        } else {
            None
        };
        let found = !records.is_empty();
        let count = records.len() as u32;
        for (i, value) in records.into_iter().enumerate() {
            if cut == Some(i) {
                self.drop_link(address);
                return Ok(());
            }
            self.queue.push_back(BleEvent::Notification {
                address: address.clone(),
                characteristic,
                value,
            });
        }
        let value = if combined {
            [&[0x08u8, 0x00][..], &count.to_le_bytes()].concat()
        } else {
            vec![0x06, 0x00, 0x01, if found { 0x01 } else { 0x06 }]
        };
        self.queue.push_back(BleEvent::Notification {
            address: address.clone(),
            characteristic: racp::UUID,
            value,
        });
        Ok(())
    }
}

impl BleBackend for SimBackend {
    fn start_scan(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.scanning = true;
            Ok(())
        })
    }

    fn next_event(&mut self) -> BoxFuture<'_, Result<BleEvent, BackendError>> {
        Box::pin(async move {
            loop {
                if let Some(e) = self.queue.pop_front() {
                    return Ok(e);
                }
                tokio::time::sleep(self.advertise_every).await;
                if !self.scanning {
                    continue;
                }
                for d in &self.devices {
                    if d.has_data() && !self.connected.contains(&d.address) {
                        self.queue.push_back(BleEvent::Advertisement {
                            address: d.address.clone(),
                            name: Some(d.name.clone()),
                            services: d.services.clone(),
                            rssi: Some(-60),
                        });
                    }
                }
            }
        })
    }

    fn connect<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.device(address)?;
            self.connected.insert(address.clone());
            Ok(())
        })
    }

    fn bond<'a>(&'a mut self, address: &'a Address) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.require_connected(address)?;
            let dev = self.device(address)?;
            if dev.faults.bond_failures > 0 {
                dev.faults.bond_failures -= 1;
                return Err(BackendError::Bond {
                    address: address.clone(),
                    reason: "authentication failed (simulated)".into(),
                });
            }
            self.bonded.insert(address.clone());
            Ok(())
        })
    }

    fn disconnect<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.connected.remove(address);
            Ok(())
        })
    }

    fn characteristics<'a>(
        &'a mut self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<u16>, BackendError>> {
        Box::pin(async move {
            self.require_connected(address)?;
            Ok(self.device(address)?.characteristics())
        })
    }

    fn read<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(async move {
            self.require_connected(address)?;
            self.device(address)?
                .readable
                .get(&characteristic)
                .cloned()
                .ok_or_else(|| BackendError::Gatt {
                    op: "read",
                    address: address.clone(),
                    characteristic,
                    reason: "not readable".into(),
                })
        })
    }

    fn write<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.require_connected(address)?;
            if self.device(address)?.requires_bond && !self.bonded.contains(address) {
                return Err(BackendError::Gatt {
                    op: "write",
                    address: address.clone(),
                    characteristic,
                    reason: "insufficient authentication".into(),
                });
            }
            self.writes
                .push((address.clone(), characteristic, value.to_vec()));
            match characteristic {
                racp::UUID => self.start_transfer(address, value),
                0x2A2B => {
                    self.device(address)?
                        .readable
                        .insert(0x2A2B, value.to_vec());
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }

    fn subscribe<'a>(
        &'a mut self,
        address: &'a Address,
        characteristic: u16,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.require_connected(address)?;
            let dev = self.device(address)?;
            // A live device sends its next round once its measurement characteristic is
            // subscribed, then ends the connection (as a blood-pressure monitor does).
            let sends_round = dev
                .live_rounds
                .front()
                .is_some_and(|r| r.first().is_some_and(|(u, _)| *u == characteristic));
            if sends_round && let Some(round) = dev.live_rounds.pop_front() {
                for (u, value) in round {
                    self.queue.push_back(BleEvent::Notification {
                        address: address.clone(),
                        characteristic: u,
                        value,
                    });
                }
                self.drop_link(address);
            }
            Ok(())
        })
    }
}

/// A Date Time (0x2A08) value.
pub fn date_time_bytes(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> [u8; 7] {
    let [a, b] = year.to_le_bytes();
    [a, b, month, day, hour, minute, second]
}

fn sfloat(mantissa: i16, exponent: i8) -> [u8; 2] {
    let word = ((exponent as u16 & 0xF) << 12) | (mantissa as u16 & 0x0FFF);
    word.to_le_bytes()
}

fn float32(mantissa: i32, exponent: i8) -> [u8; 4] {
    ((u32::from(exponent as u8) << 24) | (mantissa as u32 & 0x00FF_FFFF)).to_le_bytes()
}

fn time_of(i: u32) -> [u8; 7] {
    // Round i happened i minutes after 2026-11-23 08:00 (device local time).
    let minutes = 8 * 60 + i;
    let day = 23 + (minutes / 1440) as u8;
    let m = minutes % 1440;
    date_time_bytes(2026, 11, day.min(30), (m / 60) as u8, (m % 60) as u8, 0)
}

fn device_info(
    d: &mut SimDevice,
    manufacturer: &str,
    model: &str,
    serial: &str,
    system_id: [u8; 8],
    battery: u8,
) {
    d.readable.insert(0x2A29, manufacturer.as_bytes().to_vec());
    d.readable.insert(0x2A24, model.as_bytes().to_vec());
    d.readable.insert(0x2A25, serial.as_bytes().to_vec());
    d.readable.insert(0x2A26, b"1.4.2".to_vec());
    d.readable.insert(0x2A23, system_id.to_vec());
    d.readable.insert(0x2A19, vec![battery]);
}

/// Blood Pressure Measurement (0x2A35) with time stamp and pulse, mmHg.
pub fn bp_measurement(sys: i16, dia: i16, map: i16, pulse: i16, time: [u8; 7]) -> Vec<u8> {
    let mut v = vec![0x06];
    v.extend(sfloat(sys, 0));
    v.extend(sfloat(dia, 0));
    v.extend(sfloat(map, 0));
    v.extend(time);
    v.extend(sfloat(pulse, 0));
    v
}

/// Glucose Measurement (0x2A18): sequence, base time, concentration in mol/L as SFLOAT
/// (`mmol_tenths` = 56 → 5.6 mmol/L = 56e-4 mol/L), capillary whole blood from a finger.
pub fn glucose_measurement(seq: u16, time: [u8; 7], mmol_tenths: i16) -> Vec<u8> {
    let mut v = vec![0x06];
    v.extend(seq.to_le_bytes());
    v.extend(time);
    v.extend(sfloat(mmol_tenths, -4));
    v.push(0x11);
    v
}

/// The devices `hearth demo` and the tests use: a blood-pressure monitor whose clock was reset,
/// a thermometer, a scale, a pulse oximeter, and a glucose meter with `glucose_records` stored
/// records that needs bonding (which fails once), has a low battery, and drops the link
/// during the first transfer.
pub fn scripted_devices(glucose_records: u16) -> Vec<SimDevice> {
    let addr = |s: &str| Address::parse(s).unwrap_or_else(|| Address::trusted(s));
    let mut bp = SimDevice::new(
        addr("A4:C1:38:00:00:01"),
        "BP7000-sim",
        vec![0x1810, 0x180A, 0x180F, 0x1805],
    );
    device_info(
        &mut bp,
        "Acme Medical",
        "BP7000",
        "BP-000123",
        [0x01, 0x00, 0x00, 0x00, 0x00, 0x38, 0xC1, 0xA4],
        85,
    );
    // A reset clock reports an unknown date; hearth flags it and sets the clock.
    bp.readable.insert(
        0x2A2B,
        [date_time_bytes(0, 0, 0, 0, 12, 0).as_slice(), &[0, 0, 0]].concat(),
    );
    for i in 0..600u32 {
        let w = (i * 7 % 11) as i16;
        bp.live_rounds.push_back(vec![(
            0x2A35,
            bp_measurement(118 + w, 76 + w / 2, 90 + w / 2, 64 + w, time_of(i)),
        )]);
    }

    let mut thermo = SimDevice::new(
        addr("A4:C1:38:00:00:02"),
        "Thermo-sim",
        vec![0x1809, 0x180A],
    );
    device_info(
        &mut thermo,
        "Acme Medical",
        "TH20",
        "TH-000777",
        [0x02, 0x00, 0x00, 0x00, 0x00, 0x38, 0xC1, 0xA4],
        64,
    );
    for i in 0..600u32 {
        let mut v = vec![0x06];
        v.extend(float32(365 + (i % 6) as i32, -1));
        v.extend(time_of(i));
        v.push(0x06); // mouth
        thermo.live_rounds.push_back(vec![(0x2A1C, v)]);
    }

    let mut scale = SimDevice::new(addr("A4:C1:38:00:00:03"), "Scale-sim", vec![0x181D, 0x180A]);
    device_info(
        &mut scale,
        "Acme Medical",
        "WS50",
        "WS-004242",
        [0x03, 0x00, 0x00, 0x00, 0x00, 0x38, 0xC1, 0xA4],
        90,
    );
    for i in 0..600u32 {
        let mut v = vec![0x02];
        v.extend((14_490u16 + (i % 20) as u16).to_le_bytes()); // 72.45 kg + i × 5 g
        v.extend(time_of(i));
        scale.live_rounds.push_back(vec![(0x2A9D, v)]);
    }

    let mut oxi = SimDevice::new(addr("A4:C1:38:00:00:04"), "Oxi-sim", vec![0x1822, 0x180A]);
    device_info(
        &mut oxi,
        "Acme Medical",
        "PO3",
        "PO-000042",
        [0x04, 0x00, 0x00, 0x00, 0x00, 0x38, 0xC1, 0xA4],
        70,
    );
    for i in 0..600u32 {
        let mut v = vec![0x01];
        v.extend(sfloat(95 + (i % 4) as i16, 0));
        v.extend(sfloat(68 + (i % 9) as i16, 0));
        v.extend(time_of(i));
        oxi.live_rounds.push_back(vec![(0x2A5E, v)]);
    }

    let mut gluco = SimDevice::new(
        addr("A4:C1:38:00:00:05"),
        "Gluco-sim",
        vec![0x1808, 0x180A, 0x180F],
    );
    device_info(
        &mut gluco,
        "Acme Medical",
        "GL10",
        "GL-000099",
        [0x05, 0x00, 0x00, 0x00, 0x00, 0x38, 0xC1, 0xA4],
        15,
    );
    gluco.requires_bond = true;
    gluco.faults = SimFaults {
        bond_failures: 1,
        disconnect_after_records: Some(usize::from(glucose_records / 3)),
    };
    for seq in 1..=glucose_records {
        let mmol = 48 + (seq % 30) as i16;
        gluco
            .stored
            .insert(seq, glucose_measurement(seq, time_of(u32::from(seq)), mmol));
    }
    vec![bp, thermo, scale, oxi, gluco]
}

/// More scripted devices for the profiles the demo does not show: a heart-rate strap, a body
/// composition scale sending two-packet measurements, a CGM sensor with E2E-CRC, and a
/// Generic Health Sensor thermometer whose observations arrive in two segments.
pub fn more_scripted_devices(rounds: u32) -> Vec<SimDevice> {
    let addr = |s: &str| Address::parse(s).unwrap_or_else(|| Address::trusted(s));
    let mut hr = SimDevice::new(addr("A4:C1:38:00:00:06"), "HR-sim", vec![0x180D]);
    let mut bcs = SimDevice::new(addr("A4:C1:38:00:00:07"), "BCS-sim", vec![0x181B]);
    let mut cgm = SimDevice::new(addr("A4:C1:38:00:00:08"), "CGM-sim", vec![0x181F]);
    // Session started 2026-11-23 06:00 local, time zone UTC+1 (4 × 15 min), no DST.
    cgm.readable.insert(
        0x2AAA,
        [&date_time_bytes(2026, 11, 23, 6, 0, 0)[..], &[4, 0]].concat(),
    );
    let mut ghs = SimDevice::new(addr("A4:C1:38:00:00:09"), "GHS-sim", vec![0x1840]);
    for i in 0..rounds {
        hr.live_rounds
            .push_back(vec![(0x2A37, vec![0x00, 60 + (i % 30) as u8])]);
        // Packet 1: body fat 25.0 % with the multiple-packet flag (b12); packet 2: weight.
        let fat = (250 + i % 10) as u16;
        let mut p1 = vec![0x00, 0x10];
        p1.extend(fat.to_le_bytes());
        let mut p2 = vec![0x00, 0x04];
        p2.extend(fat.to_le_bytes());
        p2.extend((14_490u16 + i as u16).to_le_bytes());
        bcs.live_rounds.push_back(vec![(0x2A9C, p1), (0x2A9C, p2)]);
        cgm.live_rounds.push_back(vec![(
            0x2AA7,
            cgm_record(112 + (i % 20) as i16, 75 + 5 * i as u16),
        )]);
        ghs.live_rounds
            .push_back(ghs_segments(369 + (i % 5) as i32, 1000 * u64::from(i + 1)));
    }
    let mut store = SimDevice::new(addr("A4:C1:38:00:00:0B"), "GHSStore-sim", vec![0x1840]);
    store.stored_characteristic = 0x2BDD;
    for record in 1..=rounds.min(u32::from(u16::MAX)) {
        store.stored.insert(
            record as u16,
            ghs_stored_record(
                record,
                365 + (record % 7) as i32,
                60_000 * u64::from(record),
            ),
        );
    }
    store.faults.disconnect_after_records = Some((rounds / 2) as usize);
    let mut oxi_store = SimDevice::new(addr("A4:C1:38:00:00:0C"), "OxiStore-sim", vec![0x1822]);
    oxi_store.stored_characteristic = 0x2A5E;
    for i in 1..=rounds.min(u32::from(u16::MAX)) {
        let mut v = vec![0x01];
        v.extend(sfloat(94 + (i % 5) as i16, 0));
        v.extend(sfloat(70 + (i % 7) as i16, 0));
        v.extend(time_of(i));
        oxi_store.stored.insert(i as u16, v);
    }
    vec![hr, bcs, cgm, ghs, store, oxi_store]
}

/// One CGM measurement record (glucose mg/dL as SFLOAT, time offset in minutes) with its
/// E2E-CRC (CRC-16/MCRF4XX over size…offset).
pub fn cgm_record(mg_dl: i16, offset_min: u16) -> Vec<u8> {
    let mut r = vec![0x08, 0x00];
    r.extend(sfloat(mg_dl, 0));
    r.extend(offset_min.to_le_bytes());
    let crc = crate::profiles::cgm::crc16_mcrf4xx(&r);
    r.extend(crc.to_le_bytes());
    r
}

/// A GHS numeric body-temperature observation (°C, `tenths` × 0.1, UTC time stamp `ms` after
/// 2000-01-01 at 1 ms resolution) split into two segments.
pub fn ghs_segments(tenths: i32, ms: u64) -> Vec<(u16, Vec<u8>)> {
    let body = ghs_body(tenths, ms);
    let (a, b) = body.split_at(body.len() / 2);
    vec![
        (0x2B8B, [&[0x01u8][..], a].concat()),
        (0x2B8B, [&[0x02u8 | (1 << 2)][..], b].concat()),
    ]
}

/// A stored GHS observation (0x2BDD) in one segment: header, record number, observation.
pub fn ghs_stored_record(record: u32, tenths: i32, ms: u64) -> Vec<u8> {
    let mut v = vec![0x03u8];
    v.extend(record.to_le_bytes());
    v.extend(ghs_body(tenths, ms));
    v
}

fn ghs_body(tenths: i32, ms: u64) -> Vec<u8> {
    let mut fields = 150_364u32.to_le_bytes().to_vec();
    fields.push(0x02 | 0x08 | 0x20); // UTC, 1 ms resolution, current timeline
    fields.extend_from_slice(&ms.to_le_bytes()[..6]);
    fields.extend_from_slice(&[1, 0]); // synchronised by NTP, no TZ offset
    let mut value = 6048u16.to_le_bytes().to_vec(); // MDC_DIM_DEGC term code
    value.extend(float32(tenths, -1));
    let length = (5 + fields.len() + value.len()) as u16;
    let mut body = vec![1u8];
    body.extend(length.to_le_bytes());
    body.extend(0x0003u16.to_le_bytes()); // type and time stamp present
    body.extend(fields);
    body.extend(value);
    body
}
