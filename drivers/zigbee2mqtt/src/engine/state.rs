//! The engine's persisted state: slots per device key (`seen`, alarm edges, timers), what
//! changed since the last message, and restoring it at start.

use super::*;

/// Kinds of persisted state; the first part of a state key after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Slot {
    /// A condition active since (ms); name `<emit>.<type>.<property>`.
    Cond,
    /// An alarm raised (1); name `<emit>.<type>`.
    Raised,
    /// A raised alarm's condition inactive since (ms), clear pending; name `<emit>.<type>`.
    Clear,
    /// A momentary alarm last raised (ms); name `<emit>.<type>`.
    Moment,
    /// Hash of the last observed value; name `<type>.<property>`.
    Last,
    /// Last heard of (ms), for `offline_after`; name empty.
    Seen,
    /// A friendly name of this device (1), from `bridge/devices`; name the friendly name. Kept
    /// so a restarted source knows its devices' IEEE addresses before zigbee2mqtt publishes
    /// the list again (a persistent session gets no retained replay).
    Name,
}

impl Slot {
    const ALL: [Slot; 7] = [
        Slot::Cond,
        Slot::Raised,
        Slot::Clear,
        Slot::Moment,
        Slot::Last,
        Slot::Seen,
        Slot::Name,
    ];
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Slot::Cond => "cond",
            Slot::Raised => "raised",
            Slot::Clear => "clear",
            Slot::Moment => "moment",
            Slot::Last => "last",
            Slot::Seen => "seen",
            Slot::Name => "name",
        }
    }
}

/// (slot, device key, name). The device key is a device id (`zigbee:…`, never whitespace) or
/// `bridge`.
pub(super) type Key = (Slot, String, String);

/// The state of one device key: the persisted slots and the in-memory context of its timers.
#[derive(Debug, Default)]
pub(super) struct DevState {
    /// The `seen` slot (empty name), exact, in ms; 0 = unset.
    pub(super) seen: i64,
    /// The `seen` value last written to [`Output::state`] (or restored); 0 = none.
    pub(super) seen_saved: i64,
    /// Every other slot: (slot, name, value ≠ 0), unordered.
    pub(super) slots: Vec<(Slot, String, i64)>,
    /// In memory only: group → the property and value behind a pending timer, for its event.
    pub(super) context: Vec<(String, String, Json)>,
}

/// What [`DevState::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Nothing: the slot already had the value.
    None,
    /// Changed in memory only (a `seen` within its step of the persisted value).
    Silent,
    /// Changed; the caller writes the state entry.
    Write,
}

impl DevState {
    pub(super) fn get(&self, slot: Slot, name: &str) -> Option<i64> {
        if slot == Slot::Seen && name.is_empty() {
            return (self.seen != 0).then_some(self.seen);
        }
        self.slots
            .iter()
            .find(|(s, n, _)| *s == slot && n == name)
            .map(|e| e.2)
    }

    /// Sets a slot (`v` never `Some(0)`); `seen` is written only when it is first set, unset,
    /// moved back, or moved at least `step` ms since the value last written.
    pub(super) fn put(&mut self, slot: Slot, name: &str, v: Option<i64>, step: i64) -> Change {
        if slot == Slot::Seen && name.is_empty() {
            let new = v.unwrap_or(0);
            if new == self.seen {
                return Change::None;
            }
            self.seen = new;
            let write = match v {
                None => true,
                Some(t) => {
                    self.seen_saved == 0
                        || t < self.seen_saved
                        || t.saturating_sub(self.seen_saved) >= step
                }
            };
            if write {
                self.seen_saved = new;
                return Change::Write;
            }
            return Change::Silent;
        }
        let pos = self
            .slots
            .iter()
            .position(|(s, n, _)| *s == slot && n == name);
        match (pos, v) {
            (Some(i), Some(v)) => match self.slots.get_mut(i) {
                Some(e) if e.2 != v => {
                    e.2 = v;
                    Change::Write
                }
                _ => Change::None,
            },
            (Some(i), None) => {
                self.slots.swap_remove(i);
                Change::Write
            }
            (None, Some(v)) => {
                self.slots.push((slot, name.to_owned(), v));
                Change::Write
            }
            (None, None) => Change::None,
        }
    }

    /// A restored value: in memory and as persisted.
    pub(super) fn restore(&mut self, slot: Slot, name: &str, v: i64) {
        if slot == Slot::Seen && name.is_empty() {
            self.seen = v;
            self.seen_saved = v;
        } else {
            self.put(slot, name, (v != 0).then_some(v), 0);
        }
    }

    /// The persisted slots, `seen` included: (slot, name, value).
    pub(super) fn entries(&self) -> impl Iterator<Item = (Slot, &str, i64)> {
        (self.seen != 0)
            .then_some((Slot::Seen, "", self.seen))
            .into_iter()
            .chain(self.slots.iter().map(|(s, n, v)| (*s, n.as_str(), *v)))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.seen == 0 && self.slots.is_empty() && self.context.is_empty()
    }

    pub(super) fn context(&self, group: &str) -> Option<&(String, String, Json)> {
        self.context.iter().find(|c| c.0 == group)
    }

    pub(super) fn set_context(&mut self, group: &str, property: &str, value: &Json) {
        match self.context.iter_mut().find(|c| c.0 == group) {
            Some(c) => {
                if c.1 != property {
                    property.clone_into(&mut c.1);
                }
                c.2.clone_from(value);
            }
            None => self
                .context
                .push((group.to_owned(), property.to_owned(), value.clone())),
        }
    }

    pub(super) fn take_context(&mut self, group: &str) -> Option<(String, Json)> {
        let i = self.context.iter().position(|c| c.0 == group)?;
        let (_, p, v) = self.context.swap_remove(i);
        Some((p, v))
    }
}

impl Engine {
    pub(super) fn key_text(&self, slot: Slot, device: &str, name: &str) -> String {
        format!("{}{}:{} {}", self.prefix, slot.as_str(), device, name)
    }

    /// Restores state committed from earlier [`Output::state`]s (other keys are ignored).
    pub fn restore(&mut self, state: impl IntoIterator<Item = (String, i64)>) {
        let prefix = self.prefix.clone();
        self.horizon = i64::MIN;
        for (k, v) in state {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((slot, rest)) = rest.split_once(':') else {
                continue;
            };
            let Some(slot) = Slot::ALL.into_iter().find(|s| s.as_str() == slot) else {
                tracing::debug!(key = %k, "unknown zigbee2mqtt state key ignored");
                continue;
            };
            let (device, name) = rest.split_once(' ').unwrap_or((rest, ""));
            match self.devices.get_mut(device) {
                Some(d) => {
                    d.restore(slot, name, v);
                    if d.is_empty() {
                        self.devices.remove(device);
                    }
                }
                None if v == 0 => {}
                None => {
                    let mut d = DevState::default();
                    d.restore(slot, name, v);
                    self.devices.insert(device.to_owned(), d);
                }
            }
        }
        self.restore_names();
    }

    /// The friendly names → IEEE addresses committed from the last `bridge/devices`, so device
    /// ids stay `zigbee:<IEEE>` across a restart.
    fn restore_names(&mut self) {
        let known: Vec<(String, String)> = self
            .entries()
            .into_iter()
            .filter(|((slot, _, _), _)| *slot == Slot::Name)
            .filter_map(|((_, device, name), _)| {
                let ieee = device.strip_prefix("zigbee:")?.to_owned();
                Some((name, ieee))
            })
            .collect();
        if known.is_empty() || !self.names.is_empty() {
            return;
        }
        for (name, ieee) in known {
            self.by_ieee
                .entry(ieee.clone())
                .or_insert_with(|| name.clone());
            self.names.insert(name, ieee);
        }
        self.whos.clear();
    }

    pub(super) fn get(&self, slot: Slot, device: &str, name: &str) -> Option<i64> {
        self.devices.get(device).and_then(|d| d.get(slot, name))
    }

    /// Sets a slot and records the state entry to write. `seen` (empty name) is exact in
    /// memory but written only when first set, unset, moved back, or moved at least
    /// `seen_step` since the value last written: a restored `seen` is then at most that much
    /// older than the truth, which can only make offline detection earlier.
    pub(super) fn set(&mut self, slot: Slot, device: &str, name: &str, v: Option<i64>) {
        let v = v.filter(|v| *v != 0);
        let step = self.seen_step;
        let change = match self.devices.get_mut(device) {
            Some(d) => {
                let change = d.put(slot, name, v, step);
                if d.is_empty() {
                    self.devices.remove(device);
                }
                change
            }
            None if v.is_none() => Change::None,
            None => {
                let mut d = DevState::default();
                let change = d.put(slot, name, v, step);
                self.devices.insert(device.to_owned(), d);
                change
            }
        };
        if change == Change::None {
            return;
        }
        // Keep `horizon` a lower bound of the timers (see `timers`).
        match (slot, v) {
            (Slot::Raised, None) => self.horizon = i64::MIN,
            (Slot::Cond | Slot::Clear, Some(t)) => self.horizon = self.horizon.min(t),
            (Slot::Seen, Some(t)) if !self.offline_after.is_zero() => {
                self.horizon = self
                    .horizon
                    .min(t.saturating_add(dur_ms(self.offline_after)));
            }
            _ => {}
        }
        if change == Change::Write {
            self.dirty
                .push((slot, device.to_owned(), name.to_owned(), v.unwrap_or(0)));
        }
    }

    /// Every persisted slot, in key order.
    pub(super) fn entries(&self) -> Vec<(Key, i64)> {
        let mut all: Vec<(Key, i64)> = self
            .devices
            .iter()
            .flat_map(|(dev, d)| {
                d.entries()
                    .map(move |(s, n, v)| ((s, dev.clone(), n.to_owned()), v))
            })
            .collect();
        all.sort();
        all
    }

    pub(super) fn set_context(&mut self, device: &str, group: &str, property: &str, value: &Json) {
        if !self.devices.contains_key(device) {
            self.devices.insert(device.to_owned(), DevState::default());
        }
        if let Some(d) = self.devices.get_mut(device) {
            d.set_context(group, property, value);
        }
    }

    pub(super) fn take_context(&mut self, device: &str, group: &str) -> Option<(String, Json)> {
        let d = self.devices.get_mut(device)?;
        let c = d.take_context(group);
        if d.is_empty() {
            self.devices.remove(device);
        }
        c
    }

    pub(super) fn finish(&mut self, mut out: Output) -> Output {
        if !self.dirty.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            // Key order; the last write of a key wins.
            dirty.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
            let mut state = Vec::with_capacity(dirty.len());
            for (i, (slot, dev, name, v)) in dirty.iter().enumerate() {
                let next_same = dirty
                    .get(i + 1)
                    .is_some_and(|n| n.0 == *slot && n.1 == *dev && n.2 == *name);
                if !next_same {
                    state.push((self.key_text(*slot, dev, name), *v));
                }
            }
            out.state = state;
            dirty.clear();
            self.dirty = dirty;
        }
        if out.events.len() > 1 {
            let mut ids = BTreeSet::new();
            out.events.retain(|e| ids.insert(e.record.id()));
        }
        out
    }

    // --- devices ---
}
