//! Time: local hours in the gateway's zone, due times, and the timers a tick fires
//! (debounced clears, `for` raises, offline).

use super::*;

impl Engine {
    pub(super) fn local(&self, t: i64) -> Option<jiff::Zoned> {
        jiff::Timestamp::from_millisecond(t)
            .ok()
            .map(|t| t.to_zoned(self.tz.clone()))
    }

    pub(super) fn in_hours(&self, rule: &Rule, t: i64) -> bool {
        let Some(h) = rule.hours else {
            return true;
        };
        self.local(t).is_some_and(|z| {
            let m =
                u16::try_from(z.hour()).unwrap_or(0) * 60 + u16::try_from(z.minute()).unwrap_or(0);
            h.contains(m)
        })
    }

    /// The instant of local `minute` on `date`.
    pub(super) fn at_local(&self, date: jiff::civil::Date, minute: u16) -> Option<i64> {
        let h = i8::try_from(minute / 60).ok()?;
        let m = i8::try_from(minute % 60).ok()?;
        date.at(h, m, 0, 0)
            .to_zoned(self.tz.clone())
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    }

    /// The first local `minute` strictly after `t` (or at/before, with `after = false`).
    pub(super) fn boundary(&self, t: i64, minute: u16, after: bool) -> Option<i64> {
        let date = self.local(t)?.date();
        let today = self.at_local(date, minute)?;
        if after {
            if today > t {
                Some(today)
            } else {
                self.at_local(date.tomorrow().ok()?, minute)
            }
        } else if today <= t {
            Some(today)
        } else {
            self.at_local(date.yesterday().ok()?, minute)
        }
    }

    /// When a condition active since `since` has lasted `for` within `hours`.
    pub(super) fn due(&self, rule: &Rule, since: i64) -> Option<i64> {
        let f = dur_ms(rule.for_);
        let Some(h) = rule.hours else {
            return Some(since.saturating_add(f));
        };
        let mut t = since;
        for _ in 0..4 {
            let start = if self.in_hours(rule, t) {
                self.boundary(t, h.start, false)?
            } else {
                self.boundary(t, h.start, true)?
            };
            let end = self.boundary(start, h.end, true)?;
            let candidate = since.max(start).saturating_add(f);
            if candidate < end {
                return Some(candidate);
            }
            t = end;
        }
        None
    }

    /// Runs the timers: `for` rules, debounced clears, `offline_after`.
    pub fn tick(&mut self, now: Timestamp) -> Output {
        self.dirty.clear();
        let mut out = Output::default();
        self.advance(now, &mut out);
        self.finish(out)
    }

    /// Calls `f(due, slot, device, name)` for every timer (in no order): a pending clear
    /// (slot `clear`), a `for` rule to raise (`cond`), a silent device (`seen`).
    ///
    /// `horizon` stays at most the earliest of them: only a `clear` or `cond` set (at or
    /// after its value), a `seen` set (due `offline_after` later) or an alarm no longer
    /// raised (any) can add an earlier timer; `Engine::set` lowers it then, and
    /// `bridge/devices`, `restore` and firing timers reset it.
    pub(super) fn for_each_timer(&self, mut f: impl FnMut(i64, Slot, &str, &str)) {
        for (dev, d) in &self.devices {
            let mut who: Option<Option<Who>> = None;
            for (slot, name, v) in d.entries() {
                match slot {
                    Slot::Clear => {
                        let Some(who) = who.get_or_insert_with(|| self.who_by_key(dev)) else {
                            continue;
                        };
                        let dl = dur_ms(self.group_debounce(who, name));
                        f(v.saturating_add(dl), slot, dev, name);
                    }
                    Slot::Cond => {
                        let Some(who) = who.get_or_insert_with(|| self.who_by_key(dev)) else {
                            continue;
                        };
                        let Some(rule) = self.rules.iter().find(|r| {
                            r.is_condition()
                                && !r.momentary
                                && r.cond_key() == name
                                && Self::applies(r, who)
                        }) else {
                            continue;
                        };
                        if d.get(Slot::Raised, rule.group_key()).is_some() {
                            continue;
                        }
                        if let Some(due) = self.due(rule, v) {
                            f(due, slot, dev, name);
                        }
                    }
                    Slot::Seen
                        if d.get(Slot::Raised, OFFLINE).is_none()
                            && !self.offline_after.is_zero() =>
                    {
                        f(
                            v.saturating_add(dur_ms(self.offline_after)),
                            slot,
                            dev,
                            name,
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    pub(super) fn advance(&mut self, now: Timestamp, out: &mut Output) {
        let now_ms = ms(now);
        if now_ms < self.horizon {
            return;
        }
        let mut due: Vec<(i64, Timer)> = Vec::new();
        let mut next = i64::MAX;
        self.for_each_timer(|t, slot, dev, name| {
            if t > now_ms {
                next = next.min(t);
                return;
            }
            let timer = match slot {
                Slot::Clear => Timer::Clear(dev.to_owned(), name.to_owned()),
                Slot::Cond => Timer::Raise(dev.to_owned(), name.to_owned()),
                _ => Timer::Offline(dev.to_owned()),
            };
            due.push((t, timer));
        });
        self.horizon = next;
        if due.is_empty() {
            return;
        }
        due.sort();
        // What fired may have left or added timers: look again next time.
        self.horizon = i64::MIN;
        for (t, timer) in due {
            let at = Timestamp::from_unix_millis(t);
            match timer {
                Timer::Clear(dev, group) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    let since = self.get(Slot::Clear, &dev, &group);
                    self.set(Slot::Clear, &dev, &group, None);
                    if self.get(Slot::Raised, &dev, &group).is_none() {
                        continue;
                    }
                    let Some((emit, event_type)) = group.split_once('.') else {
                        continue;
                    };
                    let emit = if emit == "alarm" {
                        RuleEmit::Alarm
                    } else {
                        RuleEmit::Technical
                    };
                    if self.group_active(&dev, emit.as_str(), event_type) {
                        continue;
                    }
                    let (property, value) = self
                        .take_context(&dev, &group)
                        .map_or((None, Json::Null), |(p, v)| (Some(p), v));
                    let severity = self.group_severity(&who, &group);
                    let cleared_at = since.map_or(at, Timestamp::from_unix_millis);
                    out.events.push(self.group_event(
                        emit,
                        event_type,
                        severity,
                        &who,
                        AlarmState::Cleared,
                        cleared_at,
                        now,
                        None,
                        property.as_deref(),
                        value,
                    ));
                    self.set(Slot::Raised, &dev, &group, None);
                }
                Timer::Raise(dev, cond) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    let Some(rule) = self
                        .rules
                        .iter()
                        .find(|r| {
                            r.is_condition() && r.cond_key() == cond && Self::applies(r, &who)
                        })
                        .cloned()
                    else {
                        continue;
                    };
                    let group = rule.group_key();
                    if self.get(Slot::Raised, &dev, group).is_some() {
                        continue;
                    }
                    let (property, value) = self
                        .devices
                        .get(&dev)
                        .and_then(|d| d.context(group))
                        .map_or((rule.property.clone(), Json::Null), |(_, p, v)| {
                            (p.clone(), v.clone())
                        });
                    out.events.push(self.condition_event(
                        &rule,
                        &who,
                        AlarmState::Raised,
                        at,
                        now,
                        None,
                        Some(&property),
                        value,
                    ));
                    self.set(Slot::Raised, &dev, group, Some(1));
                }
                Timer::Offline(dev) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    if self.get(Slot::Raised, &dev, OFFLINE).is_some() {
                        continue;
                    }
                    self.offline_event(&who, AlarmState::Raised, at, None, out);
                    self.set(Slot::Raised, &dev, OFFLINE, Some(1));
                }
            }
        }
    }

    /// The earliest time [`Engine::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let mut next: Option<i64> = None;
        self.for_each_timer(|t, _, _, _| next = Some(next.map_or(t, |n| n.min(t))));
        next.map(Timestamp::from_unix_millis)
    }
}
