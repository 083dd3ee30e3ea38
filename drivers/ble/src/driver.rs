//! The BLE driver: an allow-list of paired devices, a session per connection, stored-record
//! transfer resumed from the committed sequence number, clock setting, battery and offline
//! technical alarms. Backend-agnostic: the simulated radio and BlueZ plug in the same way.

use std::collections::HashMap;
use std::time::Duration;

use hearth_driver_api::{BoxFuture as DriverFuture, Driver, DriverContext, DriverError};
use hearth_model::{
    Category, DeviceId, PersonRef, Reading, ReadingFlags, Record, Severity, TechnicalKind,
    Timestamp,
};
use tokio::time::Instant;

use crate::backend::{Address, BackendError, BleBackend, BleEvent};
use crate::decode::{DeviceFacts, DeviceTime, LocalDateTime, Observation};
use crate::profiles::racp::{self, RacpResponse};

/// One allow-listed device.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    /// Its Bluetooth address.
    pub address: Address,
    /// The stable identifier readings carry (from config: system id, else address).
    pub id: DeviceId,
    /// The person it measures, from config.
    pub person: Option<PersonRef>,
    /// Category of its readings.
    pub category: Category,
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct BleSettings {
    /// Source name (logs, cursors, dead letters).
    pub name: String,
    /// The allow-list.
    pub devices: Vec<DeviceEntry>,
    /// A device not seen for this long raises a technical alarm.
    pub offline_after: Duration,
    /// Battery level (percent) below which a technical alarm is raised (A3).
    pub low_battery_percent: u8,
    /// Device clocks further off than this are set via Current Time Service when writable.
    pub clock_tolerance: Duration,
    /// The box's time zone, for device times without a zone.
    pub time_zone: jiff::tz::TimeZone,
    /// A live connection with no notification for this long is closed.
    pub idle_timeout: Duration,
    /// First reconnect delay after a failed session; doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Stored records are committed in chunks of this many (group commit; the cursor moves
    /// with each chunk).
    pub commit_chunk: usize,
}

#[derive(Debug)]
struct DeviceState {
    last_seen: Instant,
    failures: u32,
    not_before: Instant,
    offline: bool,
}

/// The driver.
pub struct BleDriver<B> {
    settings: BleSettings,
    backend: B,
    state: HashMap<Address, DeviceState>,
    /// Allow-listed devices that advertised while another session was running: served next,
    /// so one chatty device cannot starve the others.
    waiting: std::collections::VecDeque<Address>,
}

impl<B> std::fmt::Debug for BleDriver<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleDriver")
            .field("name", &self.settings.name)
            .finish_non_exhaustive()
    }
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

impl From<hearth_driver_api::IngestError> for SessionError {
    fn from(e: hearth_driver_api::IngestError) -> Self {
        SessionError::Driver(DriverError::Ingest(e))
    }
}

/// Convert a device time to UTC milliseconds with the box's zone. `None` when the device did
/// not give a complete date (its clock was never set) or a relative time.
pub fn to_utc(t: &DeviceTime, tz: &jiff::tz::TimeZone) -> Option<i64> {
    to_utc_from(t, tz, None)
}

/// As [`to_utc`]; relative times are placed after `session_start_ms` when it is known (CGM).
pub fn to_utc_from(
    t: &DeviceTime,
    tz: &jiff::tz::TimeZone,
    session_start_ms: Option<i64>,
) -> Option<i64> {
    match t {
        DeviceTime::Utc(ms) => Some(*ms),
        DeviceTime::Relative(ms) => session_start_ms.map(|s| s + ms),
        DeviceTime::Local(l) => local_to_utc(l, tz),
    }
}

/// The UTC start of a CGM session: its own zone and DST offset when the sensor knows them,
/// else the box's zone.
pub fn session_start_utc(
    s: &crate::profiles::cgm::SessionStartTime,
    tz: &jiff::tz::TimeZone,
) -> Option<i64> {
    match s.utc_offset_minutes() {
        Some(offset) => {
            local_to_utc(&s.start, &jiff::tz::TimeZone::UTC).map(|ms| ms - offset * 60_000)
        }
        None => local_to_utc(&s.start, tz),
    }
}

fn local_to_utc(l: &LocalDateTime, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let (y, mo, d) = (l.year?, l.month?, l.day?);
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(l.hour).ok()?,
        i8::try_from(l.minute).ok()?,
        i8::try_from(l.second).ok()?,
        0,
    )
    .ok()?;
    // A local time that occurs twice (DST end) takes the earlier; one that does not exist
    // (DST start) is moved forward, as devices that ignore DST produce such times.
    let zoned = tz.to_ambiguous_zoned(dt).compatible().ok()?;
    Some(zoned.timestamp().as_millisecond())
}

fn box_local_now(tz: &jiff::tz::TimeZone) -> Option<jiff::civil::DateTime> {
    Some(jiff::Timestamp::now().to_zoned(tz.clone()).datetime())
}

/// The Current Time (0x2A2B) value for the box's local time now; adjust reason "external
/// reference time update".
pub fn current_time_value(tz: &jiff::tz::TimeZone) -> Option<[u8; 10]> {
    let now = box_local_now(tz)?;
    let [ylo, yhi] = (now.year() as u16).to_le_bytes();
    let dow = now.weekday().to_monday_one_offset() as u8;
    Some([
        ylo,
        yhi,
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second() as u8,
        dow,
        0,
        0x02,
    ])
}

impl<B: BleBackend> BleDriver<B> {
    /// A driver over `backend`.
    pub fn new(settings: BleSettings, backend: B) -> Self {
        let now = Instant::now();
        let state = settings
            .devices
            .iter()
            .map(|d| {
                (
                    d.address.clone(),
                    DeviceState {
                        last_seen: now,
                        failures: 0,
                        not_before: now,
                        offline: false,
                    },
                )
            })
            .collect();
        Self {
            settings,
            backend,
            state,
            waiting: std::collections::VecDeque::new(),
        }
    }

    /// The backend (tests inspect the simulated radio).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn entry(&self, address: &Address) -> Option<DeviceEntry> {
        self.settings
            .devices
            .iter()
            .find(|d| &d.address == address)
            .cloned()
    }

    /// Cursor key of a device's stored records.
    pub fn cursor_key(entry: &DeviceEntry) -> String {
        format!("ble:{}:seq", entry.id)
    }

    fn readings(
        &self,
        entry: &DeviceEntry,
        observations: Vec<Observation>,
        facts: &DeviceFacts,
        stored: bool,
    ) -> Vec<Record> {
        let now = Timestamp::now();
        observations
            .into_iter()
            .map(|o| {
                let time = o.time.as_ref().and_then(|t| {
                    to_utc_from(t, &self.settings.time_zone, facts.session_start_utc_ms)
                });
                let clock_unset = facts.clock_unset
                    || matches!(&o.time, Some(DeviceTime::Local(l)) if !l.is_complete());
                let mut b = Reading::builder(entry.id.clone(), o.mdc, o.value)
                    .category(entry.category)
                    .flags(ReadingFlags {
                        device_clock_unset: clock_unset,
                        stored_record: stored,
                    });
                if let Some(u) = o.unit {
                    b = b.unit(u);
                }
                if let Some(t) = time {
                    b = b.device_time(Timestamp::from_unix_millis(t));
                }
                if let Some(s) = o.sequence {
                    b = b.sequence(s);
                }
                if let Some(p) = &entry.person {
                    b = b.person(p.clone());
                }
                Record::Reading(b.build(now))
            })
            .collect()
    }

    async fn dead_letter(
        &self,
        ctx: &DriverContext,
        entry: &DeviceEntry,
        characteristic: u16,
        value: &[u8],
        error: String,
    ) {
        tracing::warn!(source = %self.settings.name, device = %entry.id, characteristic = format!("0x{characteristic:04X}"), %error, "malformed characteristic value dead-lettered");
        if let Err(e) = ctx
            .ingest
            .dead_letter(
                &format!("ble:{}", entry.id),
                value.to_vec(),
                format!("0x{characteristic:04X}: {error}"),
            )
            .await
        {
            tracing::error!(error = %e, "cannot store a dead letter");
        }
    }

    /// One connection: connect, bond if needed, read device facts, set the clock, subscribe,
    /// fetch stored records after the committed cursor, collect live values until the device
    /// disconnects or goes idle.
    async fn session(
        &mut self,
        ctx: &DriverContext,
        entry: &DeviceEntry,
    ) -> Result<usize, SessionError> {
        let address = entry.address.clone();
        self.backend.connect(&address).await?;
        let chars = self.backend.characteristics(&address).await?;
        let glucose = chars.contains(&racp::UUID) && chars.contains(&0x2A18);
        let ghs_stored = chars.contains(&racp::UUID) && chars.contains(&0x2BDD);
        let stored_profile = glucose || ghs_stored;
        if stored_profile {
            // Glucose requires bonding and encryption before anything else (GLS §3); GHS
            // stored data is expected to as well.
            self.backend.bond(&address).await?;
        }
        let mut facts = DeviceFacts::default();
        for c in [0x2A29u16, 0x2A24, 0x2A25, 0x2A26, 0x2A23, 0x2A19, 0x2A2B] {
            if !chars.contains(&c) {
                continue;
            }
            let Ok(value) = self.backend.read(&address, c).await else {
                continue;
            };
            match crate::decode_characteristic(c, &value) {
                Ok(d) => merge_facts(&mut facts, d.facts),
                Err(e) => self.dead_letter(ctx, entry, c, &value, e.to_string()).await,
            }
        }
        self.check_battery(ctx, entry, &facts).await;
        report_facts(ctx, entry, &facts).await;
        if let Some(device_now) = facts.current_time {
            let off = match (
                local_to_utc(&device_now, &self.settings.time_zone),
                Timestamp::now().unix_millis(),
            ) {
                (Some(dev), now) => {
                    (dev - now).unsigned_abs() > self.settings.clock_tolerance.as_millis() as u64
                }
                (None, _) => true,
            };
            if !device_now.is_complete() {
                facts.clock_unset = true;
            }
            if off && let Some(value) = current_time_value(&self.settings.time_zone) {
                match self.backend.write(&address, 0x2A2B, &value).await {
                    Ok(()) => {
                        tracing::info!(device = %entry.id, "device clock set via Current Time Service")
                    }
                    Err(e) => {
                        tracing::debug!(device = %entry.id, error = %e, "device clock not writable")
                    }
                }
            }
        }
        // A CGM's readings are minutes after its session start: read it to place them in time.
        if chars.contains(&0x2AAA)
            && let Ok(value) = self.backend.read(&address, 0x2AAA).await
        {
            match crate::profiles::cgm::session_start_time(&value) {
                Ok(start) => {
                    facts.session_start_utc_ms = session_start_utc(&start, &self.settings.time_zone)
                }
                Err(e) => {
                    self.dead_letter(ctx, entry, 0x2AAA, &value, e.to_string())
                        .await
                }
            }
        }
        // A thermometer may state its site once in Temperature Type (0x2A1D) instead of in
        // every measurement.
        let mut site = None;
        if chars.contains(&0x2A1D)
            && let Ok(value) = self.backend.read(&address, 0x2A1D).await
        {
            site = crate::profiles::hts::temperature_type(&value).ok();
        }
        let measurement_chars: Vec<u16> = chars
            .iter()
            .copied()
            .filter(|c| is_measurement(*c))
            .collect();
        let mut committed = 0;
        if stored_profile {
            if glucose {
                self.backend.subscribe(&address, 0x2A18).await?;
                if chars.contains(&0x2A34) {
                    self.backend.subscribe(&address, 0x2A34).await?;
                }
            } else {
                self.backend.subscribe(&address, 0x2BDD).await?;
            }
            self.backend.subscribe(&address, racp::UUID).await?;
            let key = Self::cursor_key(entry);
            let last = ctx.ingest.cursor(&key).await?;
            // Only records newer than the last committed one (invariant 1).
            let request = match (glucose, last) {
                (true, Some(last)) => {
                    racp::report_from_u16(u16::try_from(last + 1).unwrap_or(u16::MAX))
                }
                (true, None) => racp::report_all(),
                (false, last) => racp::combined_report_from_u32(
                    last.map_or(0, |l| u32::try_from(l + 1).unwrap_or(u32::MAX)),
                ),
            };
            self.backend.write(&address, racp::UUID, &request).await?;
            committed += self
                .collect(ctx, entry, &facts, Some(key), true, site)
                .await?
                .0;
        } else if chars.contains(&racp::UUID) && chars.contains(&0x2A5E) {
            // Pulse oximeter memory: records carry no sequence number, so hearth fetches them
            // all and deletes them from the device only after they are committed (invariant 1).
            // Their device time stamps give them stable ids, so a fetch repeated after a crash
            // between commit and delete stores nothing twice.
            self.backend.subscribe(&address, 0x2A5E).await?;
            self.backend.subscribe(&address, racp::UUID).await?;
            self.backend
                .write(&address, racp::UUID, &racp::report_all())
                .await?;
            let (n, complete) = self.collect(ctx, entry, &facts, None, true, site).await?;
            committed += n;
            if complete && n > 0 {
                self.backend
                    .write(&address, racp::UUID, &racp::delete_all())
                    .await?;
                match self.await_racp(&address).await {
                    Some(RacpResponse::Response { code, .. }) if code.is_complete() => {
                        tracing::info!(device = %entry.id, records = n, "stored records committed, then deleted from the device");
                    }
                    other => {
                        tracing::warn!(device = %entry.id, ?other, "the device did not confirm deleting its stored records; they are fetched again and deduplicated")
                    }
                }
            }
        } else {
            for c in &measurement_chars {
                self.backend.subscribe(&address, *c).await?;
            }
            committed += self.collect(ctx, entry, &facts, None, false, site).await?.0;
        }
        let _ = self.backend.disconnect(&address).await;
        Ok(committed)
    }

    /// Receive notifications until the procedure ends; commit in chunks with the cursor.
    async fn collect(
        &mut self,
        ctx: &DriverContext,
        entry: &DeviceEntry,
        facts: &DeviceFacts,
        cursor_key: Option<String>,
        stored: bool,
        site: Option<u8>,
    ) -> Result<(usize, bool), SessionError> {
        // Whether the device said the stored-record procedure completed.
        let mut complete = false;
        // Body Composition measurements may span two packets; the assembler joins them and is
        // dropped (reset) with the connection.
        let mut bcs = crate::profiles::bcs::BcsAssembler::new();
        // GHS observations may be segmented; the reassembler joins them (bounded, resets on a
        // gap) and is dropped with the connection.
        let mut ghs_live = crate::profiles::ghs::Reassembler::new();
        let mut ghs_stored = crate::profiles::ghs::Reassembler::for_characteristic(0x2BDD);
        let mut buffer: Vec<Record> = Vec::new();
        let mut max_seq: Option<u64> = None;
        let mut committed = 0usize;
        loop {
            let event = tokio::select! {
                e = self.backend.next_event() => e?,
                _ = tokio::time::sleep(self.settings.idle_timeout) => {
                    tracing::debug!(device = %entry.id, "no notification within the idle timeout; closing");
                    break;
                }
                _ = ctx.stopping() => break,
            };
            match event {
                BleEvent::Notification {
                    address,
                    characteristic,
                    value,
                } if address == entry.address => {
                    let decoded = match characteristic {
                        0x2A1C => {
                            crate::profiles::hts::measurement_with_site(&value, site).map(Some)
                        }
                        0x2A1E => {
                            crate::profiles::hts::intermediate_temperature_with_site(&value, site)
                                .map(Some)
                        }
                        0x2A9C => bcs.feed(&value),
                        0x2B8B => ghs_live.feed(&value).and_then(|whole| {
                            whole
                                .map(|b| crate::profiles::ghs::observation(&b))
                                .transpose()
                        }),
                        0x2BDD => ghs_stored.feed(&value).and_then(|whole| {
                            whole
                                .map(|b| crate::profiles::ghs::stored_observation(&b))
                                .transpose()
                        }),
                        _ => crate::decode_characteristic(characteristic, &value).map(Some),
                    };
                    match decoded {
                        Ok(None) => {}
                        Ok(Some(d)) => {
                            match d.control {
                                Some(RacpResponse::Response { code, .. }) => {
                                    complete = code.is_complete();
                                    if !complete {
                                        tracing::warn!(device = %entry.id, ?code, "stored-record transfer ended with an error");
                                    }
                                    break;
                                }
                                Some(RacpResponse::CombinedReport(n)) => {
                                    complete = true;
                                    tracing::debug!(device = %entry.id, records = n, "GHS combined report complete");
                                    break;
                                }
                                _ => {}
                            }
                            for o in &d.observations {
                                max_seq = max_seq.max(o.sequence);
                            }
                            buffer.extend(self.readings(entry, d.observations, facts, stored));
                        }
                        Err(e) => {
                            self.dead_letter(ctx, entry, characteristic, &value, e.to_string())
                                .await
                        }
                    }
                    if buffer.len() >= self.settings.commit_chunk {
                        committed += self
                            .commit(ctx, &mut buffer, cursor_key.as_deref(), max_seq)
                            .await?;
                    }
                    if !stored && !buffer.is_empty() {
                        // Live values are committed as they come (alarms and readings must not wait).
                        committed += self.commit(ctx, &mut buffer, None, None).await?;
                    }
                }
                BleEvent::Disconnected { address } if address == entry.address => break,
                BleEvent::Advertisement { address, .. } => self.remember(address),
                _ => {}
            }
        }
        // Everything received completely is committed, with the cursor of the last record:
        // after a disconnect mid-transfer the next session resumes after it.
        committed += self
            .commit(ctx, &mut buffer, cursor_key.as_deref(), max_seq)
            .await?;
        Ok((committed, complete))
    }

    /// Wait (bounded) for the device's answer on the RACP.
    async fn await_racp(&mut self, address: &Address) -> Option<RacpResponse> {
        let deadline = tokio::time::Instant::now() + self.settings.idle_timeout;
        loop {
            let event = tokio::select! {
                e = self.backend.next_event() => e.ok()?,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            match event {
                BleEvent::Notification {
                    address: a,
                    characteristic: racp::UUID,
                    value,
                } if &a == address => {
                    return racp::response(&value).ok().and_then(|d| d.control);
                }
                BleEvent::Disconnected { address: a } if &a == address => return None,
                BleEvent::Advertisement { address: a, .. } => self.remember(a),
                _ => {}
            }
        }
    }

    async fn commit(
        &self,
        ctx: &DriverContext,
        buffer: &mut Vec<Record>,
        cursor_key: Option<&str>,
        max_seq: Option<u64>,
    ) -> Result<usize, SessionError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let records = std::mem::take(buffer);
        let n = records.len();
        let cursor = cursor_key
            .zip(max_seq)
            .map(|(k, s)| (k.to_owned(), s as i64));
        ctx.ingest.submit(records, cursor).await?;
        Ok(n)
    }

    async fn check_battery(&self, ctx: &DriverContext, entry: &DeviceEntry, facts: &DeviceFacts) {
        let Some(level) = facts.battery_percent else {
            return;
        };
        let source = entry.id.to_string();
        let result = if level < self.settings.low_battery_percent {
            ctx.technical
                .raise(
                    &source,
                    TechnicalKind::LowBattery,
                    Severity::Minor,
                    format!("battery at {level} %: replace or charge it (A3)"),
                )
                .await
        } else if level >= self.settings.low_battery_percent.saturating_add(5) {
            ctx.technical
                .clear(
                    &source,
                    TechnicalKind::LowBattery,
                    format!("battery at {level} %"),
                )
                .await
        } else {
            Ok(false)
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot store a battery technical alarm");
        }
    }

    async fn check_offline(&mut self, ctx: &DriverContext) {
        let now = Instant::now();
        let after = self.settings.offline_after;
        let entries = self.settings.devices.clone();
        for entry in entries {
            let Some(st) = self.state.get_mut(&entry.address) else {
                continue;
            };
            if !st.offline && now.duration_since(st.last_seen) > after {
                st.offline = true;
                let msg = format!(
                    "not seen for more than {}: check its battery and that it is in range of the gateway",
                    humanize(after)
                );
                if let Err(e) = ctx
                    .technical
                    .raise(
                        &entry.id.to_string(),
                        TechnicalKind::DeviceOffline,
                        Severity::Minor,
                        msg,
                    )
                    .await
                {
                    tracing::error!(error = %e, "cannot store a device-offline technical alarm");
                }
            }
        }
    }

    async fn on_advertisement(&mut self, ctx: &DriverContext, address: Address) {
        let Some(entry) = self.entry(&address) else {
            return;
        };
        let now = Instant::now();
        let was_offline = self.state.get(&address).is_some_and(|s| s.offline);
        if let Some(st) = self.state.get_mut(&address) {
            st.last_seen = now;
            st.offline = false;
            if now < st.not_before {
                return;
            }
        }
        if was_offline
            && let Err(e) = ctx
                .technical
                .clear(
                    &entry.id.to_string(),
                    TechnicalKind::DeviceOffline,
                    "seen again",
                )
                .await
        {
            tracing::error!(error = %e, "cannot clear a device-offline technical alarm");
        }
        match self.session(ctx, &entry).await {
            Ok(n) => {
                tracing::info!(source = %self.settings.name, device = %entry.id, readings = n, "device session finished");
                if let Some(st) = self.state.get_mut(&address) {
                    st.failures = 0;
                }
            }
            Err(SessionError::Driver(e)) => {
                // Storing failed: nothing was acknowledged; the cursor did not move.
                let _ = self.backend.disconnect(&address).await;
                tracing::error!(device = %entry.id, error = %e, "cannot store readings; the device keeps them and is asked again later");
                self.back_off(&address);
            }
            Err(SessionError::Backend(e)) => {
                let _ = self.backend.disconnect(&address).await;
                tracing::warn!(device = %entry.id, error = %e, "device session failed; retrying with backoff");
                self.back_off(&address);
            }
        }
    }

    fn remember(&mut self, address: Address) {
        if self.state.contains_key(&address) && !self.waiting.contains(&address) {
            self.waiting.push_back(address);
        }
    }

    fn back_off(&mut self, address: &Address) {
        let (initial, max) = (self.settings.reconnect_initial, self.settings.reconnect_max);
        if let Some(st) = self.state.get_mut(address) {
            st.failures = st.failures.saturating_add(1);
            let delay = initial
                .saturating_mul(1u32 << st.failures.min(16).saturating_sub(1))
                .min(max);
            st.not_before = Instant::now() + delay;
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h", s / 3600)
    } else if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn is_measurement(c: u16) -> bool {
    matches!(
        c,
        0x2A35
            | 0x2A36
            | 0x2A1C
            | 0x2A1E
            | 0x2A9D
            | 0x2A9C
            | 0x2A5E
            | 0x2A5F
            | 0x2A37
            | 0x2AA7
            | 0x2B8B
    )
}

/// Hand what the device told (Device Information Service, System ID, battery) to the outbox's
/// device table, which the FHIR uplink reads for PhdDevice (issue 6). A failure to store them
/// does not end the session: the readings are what must not be lost.
async fn report_facts(ctx: &DriverContext, entry: &DeviceEntry, facts: &DeviceFacts) {
    let device = hearth_model::Device {
        id: Some(entry.id.clone()),
        manufacturer: facts.manufacturer.clone(),
        model: facts.model.clone(),
        serial: facts.serial.clone(),
        firmware: facts.firmware.clone(),
        eui64: facts.eui64.clone(),
        battery_percent: facts.battery_percent,
    };
    if device
        == (hearth_model::Device {
            id: Some(entry.id.clone()),
            ..hearth_model::Device::default()
        })
    {
        return;
    }
    if let Err(e) = ctx.ingest.device_facts(&entry.id, device).await {
        tracing::warn!(device = %entry.id, error = %e, "device facts not stored; will try at the next connection");
    }
}

fn merge_facts(into: &mut DeviceFacts, from: DeviceFacts) {
    macro_rules! take {
        ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f; } )* };
    }
    take!(
        manufacturer,
        model,
        serial,
        firmware,
        hardware,
        software,
        eui64,
        battery_percent,
        current_time
    );
    into.clock_unset |= from.clock_unset;
}

impl<B: BleBackend> Driver for BleDriver<B> {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> DriverFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            self.backend
                .start_scan()
                .await
                .map_err(|e| DriverError::Link(e.to_string()))?;
            tracing::info!(source = %self.settings.name, devices = self.settings.devices.len(), "BLE source scanning");
            let mut offline_tick =
                tokio::time::interval(Duration::from_secs(60).min(self.settings.offline_after));
            loop {
                if let Some(address) = self.waiting.pop_front() {
                    if ctx.is_stopping() {
                        return Ok(());
                    }
                    self.on_advertisement(ctx, address).await;
                    continue;
                }
                tokio::select! {
                    _ = ctx.stopping() => return Ok(()),
                    _ = offline_tick.tick() => self.check_offline(ctx).await,
                    event = self.backend.next_event() => match event {
                        Ok(BleEvent::Advertisement { address, .. }) => self.on_advertisement(ctx, address).await,
                        Ok(_) => {}
                        Err(BackendError::Stopped) => return Ok(()),
                        Err(e) => return Err(DriverError::Link(e.to_string())),
                    },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oslo() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Europe/Oslo").unwrap()
    }

    fn local(y: u16, mo: u8, d: u8, h: u8, mi: u8) -> DeviceTime {
        DeviceTime::Local(LocalDateTime {
            year: Some(y),
            month: Some(mo),
            day: Some(d),
            hour: h,
            minute: mi,
            second: 9,
        })
    }

    #[test]
    fn device_local_time_is_converted_with_the_box_zone() {
        // Winter: CET = UTC+1.
        let t = to_utc(&local(2025, 3, 14, 7, 5), &oslo()).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(t).to_rfc3339(),
            "2025-03-14T06:05:09.000Z"
        );
        // Summer: CEST = UTC+2.
        let t = to_utc(&local(2025, 7, 1, 12, 0), &oslo()).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(t).to_rfc3339(),
            "2025-07-01T10:00:09.000Z"
        );
        // 02:30 on 2025-03-30 does not exist in Oslo (clocks jump to 03:00): moved forward.
        let t = to_utc(&local(2025, 3, 30, 2, 30), &oslo()).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(t).to_rfc3339(),
            "2025-03-30T01:30:09.000Z"
        );
    }

    #[test]
    fn cgm_relative_times_are_placed_after_the_session_start() {
        // 2025-03-14 07:00:00 local, zone +4 × 15 min (UTC+1), DST 0 → 06:00:00Z.
        let start = crate::profiles::cgm::SessionStartTime {
            start: LocalDateTime {
                year: Some(2025),
                month: Some(3),
                day: Some(14),
                hour: 7,
                minute: 0,
                second: 0,
            },
            time_zone: Some(4),
            dst: Some(0),
            crc: None,
        };
        let s = session_start_utc(&start, &jiff::tz::TimeZone::UTC).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(s).to_rfc3339(),
            "2025-03-14T06:00:00.000Z"
        );
        let t = to_utc_from(&DeviceTime::Relative(75 * 60_000), &oslo(), Some(s)).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(t).to_rfc3339(),
            "2025-03-14T07:15:00.000Z"
        );
        assert_eq!(to_utc_from(&DeviceTime::Relative(5), &oslo(), None), None);
    }

    #[test]
    fn an_unset_device_clock_gives_no_time() {
        let unset = DeviceTime::Local(LocalDateTime {
            year: None,
            month: None,
            day: None,
            hour: 0,
            minute: 12,
            second: 0,
        });
        assert_eq!(to_utc(&unset, &oslo()), None);
        assert_eq!(to_utc(&DeviceTime::Relative(5), &oslo()), None);
        assert_eq!(to_utc(&DeviceTime::Utc(5), &oslo()), Some(5));
    }

    #[test]
    fn current_time_value_is_ten_octets_of_local_time() {
        let v = current_time_value(&oslo()).unwrap();
        assert!(u16::from_le_bytes([v[0], v[1]]) >= 2026);
        assert!((1..=7).contains(&v[7]), "day of week 1 (Monday) … 7");
        assert_eq!(v[9], 0x02, "adjust reason: external reference");
    }
}
