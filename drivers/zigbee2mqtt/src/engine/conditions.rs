//! Device state messages: observations, and the conditions that raise and clear alarms.

use super::*;

impl Engine {
    pub(super) fn device_state(
        &mut self,
        topic: &str,
        name: &str,
        obj: &Map<String, Json>,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let who = self.who_by_name(name).map_err(|e| input_error(topic, e))?;
        // Heard of: live messages refresh the offline clock and clear device_offline;
        // a retained replay only starts the clock of a device not tracked yet.
        if msg.retained {
            if self.get(Slot::Seen, &who.key, "").is_none() {
                self.set(Slot::Seen, &who.key, "", Some(ms(now)));
            }
        } else {
            self.set(Slot::Seen, &who.key, "", Some(ms(now)));
            if self.get(Slot::Raised, &who.key, OFFLINE).is_some() {
                self.offline_event(&who, AlarmState::Cleared, now, None, out);
                self.set(Slot::Raised, &who.key, OFFLINE, None);
            }
        }
        let device_time = match device_time(obj) {
            Ok(t) => t,
            Err(p) => {
                out.problems.push(p);
                None
            }
        };
        let rules = Arc::clone(&self.rules);
        // The rules that take effect for this device and payload: every applying rule of a
        // present, non-null property, except one that an earlier applying rule of the same
        // property and type replaces, or that an earlier applying `ignore` stops.
        let mut run = std::mem::take(&mut self.scratch);
        run.clear();
        for (property, value) in obj {
            if value.is_null() {
                continue;
            }
            let Some(pr) = self.by_property.get(property.as_str()) else {
                continue;
            };
            for (i, blockers) in &pr.live {
                let applies = |j: &usize| rules.get(*j).is_some_and(|r| Self::applies(r, &who));
                if applies(i) && !blockers.iter().any(applies) {
                    run.push(*i);
                }
            }
        }
        // Rule order, not payload order: the first rule of a type or code wins.
        run.sort_unstable();
        self.mdcs.clear();
        let ctx = Ctx {
            who: &who,
            seq: msg.sequence,
            at: device_time.unwrap_or(now),
            device_time,
            now,
        };
        for i in &run {
            let Some(rule) = rules.get(*i) else {
                continue;
            };
            let Some(value) = obj.get(rule.property.as_str()) else {
                continue;
            };
            if rule.emit == RuleEmit::Observation {
                self.observe(rule, &ctx, value, msg.retained, out);
            } else {
                self.condition(rule, &ctx, value, msg.retained, out);
            }
        }
        self.scratch = run;
        if tracing::enabled!(tracing::Level::DEBUG) {
            for property in obj.keys() {
                let ruled = self.by_property.get(property.as_str()).is_some_and(|pr| {
                    pr.any_global
                        || pr
                            .all
                            .iter()
                            .any(|j| rules.get(*j).is_some_and(|r| Self::applies(r, &who)))
                });
                if !ruled {
                    tracing::debug!(property = %property, device = %who.key, "no zigbee2mqtt rule for property");
                }
            }
        }
        self.advance(now, out);
        Ok(())
    }

    pub(super) fn observe(
        &mut self,
        rule: &Rule,
        ctx: &Ctx<'_>,
        value: &Json,
        retained: bool,
        out: &mut Output,
    ) {
        let v = match rules::observation_value(rule, value) {
            Ok(v) => v,
            Err(why) => {
                out.problems.push(format!(
                    "property \"{}\" of {}: {why}; observation {} skipped",
                    rule.property, ctx.who.key, rule.event_type
                ));
                return;
            }
        };
        if rule.on_change {
            let last_name = rule.last_key();
            let h = value_hash(value);
            let unchanged = self.get(Slot::Last, &ctx.who.key, last_name) == Some(h);
            self.set(Slot::Last, &ctx.who.key, last_name, Some(h));
            if unchanged {
                return;
            }
        }
        if retained {
            return;
        }
        if self.mdcs.contains(&rule.mdc.0) {
            tracing::debug!(property = %rule.property, "second observation with the same code in one message; skipped");
            return;
        }
        self.mdcs.push(rule.mdc.0);
        let sensor = self.sensor(ctx.who);
        let category = sensor.and_then(|s| s.category).unwrap_or(self.category);
        let mut b = Reading::builder(ctx.who.id.clone(), rule.mdc, v)
            .sequence(ctx.seq)
            .category(category);
        if let Some(u) = &rule.unit {
            if matches!(value, Json::Number(_)) {
                b = b.unit(u.clone());
            }
        }
        if let Some(t) = ctx.device_time {
            b = b.device_time(t);
        }
        if let Some(p) = sensor.and_then(|s| s.person.as_ref()) {
            b = b.person(PersonRef::new(p.clone()));
        }
        out.events.push(Event {
            kind: EventKind::Observation,
            event_type: rule.event_type.clone(),
            device: Some(ctx.who.id.clone()),
            property: Some(rule.property.clone()),
            value: value.clone(),
            record: Record::Reading(b.build(ctx.now)),
        });
    }

    pub(super) fn condition(
        &mut self,
        rule: &Rule,
        ctx: &Ctx<'_>,
        value: &Json,
        retained: bool,
        out: &mut Output,
    ) {
        let active = match rule.condition.test(value) {
            Ok(a) => a,
            Err(expected) => {
                out.problems.push(format!(
                    "property \"{}\" of {} is {}; the {} rule {} expects {expected}; skipped",
                    rule.property,
                    ctx.who.key,
                    kind_of(value),
                    rule.emit,
                    rule.event_type
                ));
                return;
            }
        };
        let dev = ctx.who.key.as_str();
        let group = rule.group_key();
        let now = ms(ctx.now);
        if rule.momentary {
            if !active || retained || !self.in_hours(rule, now) {
                return;
            }
            let debounce = dur_ms(rule.debounce);
            if self
                .get(Slot::Moment, dev, group)
                .is_some_and(|last| now.saturating_sub(last) < debounce)
            {
                return;
            }
            self.set(Slot::Moment, dev, group, Some(now));
            let ev = self.raised_by(rule, ctx, value);
            out.events.push(ev);
            return;
        }
        let cond = rule.cond_key();
        if active {
            if self.get(Slot::Cond, dev, cond).is_none() {
                self.set(Slot::Cond, dev, cond, Some(now));
            }
            self.set_context(dev, group, &rule.property, value);
            self.set(Slot::Clear, dev, group, None);
            let raised = self.get(Slot::Raised, dev, group).is_some();
            if !raised && rule.for_.is_zero() && self.in_hours(rule, now) {
                let ev = self.raised_by(rule, ctx, value);
                out.events.push(ev);
                self.set(Slot::Raised, dev, group, Some(1));
            }
        } else {
            self.set(Slot::Cond, dev, cond, None);
            let raised = self.get(Slot::Raised, dev, group).is_some();
            if !raised {
                return;
            }
            let others = self.group_active(dev, rule.emit.as_str(), &rule.event_type);
            if !others && self.get(Slot::Clear, dev, group).is_none() {
                self.set(Slot::Clear, dev, group, Some(now));
                self.set_context(dev, group, &rule.property, value);
            }
        }
    }

    /// Whether any condition of the group `<emit>.<event_type>` is active for the device.
    pub(super) fn group_active(&self, dev: &str, emit: &str, event_type: &str) -> bool {
        // Names starting with `<emit>.<event_type>.`.
        let is_of_group = |n: &str| {
            n.strip_prefix(emit)
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_prefix(event_type))
                .is_some_and(|n| n.starts_with('.'))
        };
        self.devices.get(dev).is_some_and(|d| {
            d.slots
                .iter()
                .any(|(s, n, _)| *s == Slot::Cond && is_of_group(n))
        })
    }

    pub(super) fn group_rule(&self, who: &Who, group: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.is_condition() && r.group_key() == group && Self::applies(r, who))
    }

    pub(super) fn group_severity(&self, who: &Who, group: &str) -> Severity {
        match (self.group_rule(who, group), group == OFFLINE) {
            (Some(r), _) => r.severity,
            (None, true) => Severity::Major,
            (None, false) => Severity::Minor,
        }
    }

    pub(super) fn group_debounce(&self, who: &Who, group: &str) -> Duration {
        self.rules
            .iter()
            .filter(|r| r.is_condition() && r.group_key() == group && Self::applies(r, who))
            .map(|r| r.debounce)
            .max()
            .unwrap_or(self.debounce)
    }

    /// The raise event of a condition `rule` that this message's `value` set off.
    pub(super) fn raised_by(&self, rule: &Rule, ctx: &Ctx<'_>, value: &Json) -> Event {
        self.condition_event(
            rule,
            ctx.who,
            AlarmState::Raised,
            ctx.at,
            ctx.now,
            Some(ctx.seq),
            Some(&rule.property),
            value.clone(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn condition_event(
        &self,
        rule: &Rule,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        now: Timestamp,
        seq: Option<u64>,
        property: Option<&str>,
        value: Json,
    ) -> Event {
        self.group_event(
            rule.emit,
            &rule.event_type,
            rule.severity,
            who,
            state,
            at,
            now,
            seq,
            property,
            value,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn group_event(
        &self,
        emit: RuleEmit,
        event_type: &str,
        severity: Severity,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        now: Timestamp,
        seq: Option<u64>,
        property: Option<&str>,
        value: Json,
    ) -> Event {
        let sensor = self.sensor(who);
        let (kind, record) = if emit == RuleEmit::Alarm {
            let person = sensor.and_then(|s| s.person.clone()).map(PersonRef::new);
            (
                EventKind::Alarm,
                Record::Alarm(Alarm::new(
                    who.id.clone(),
                    AlarmKind::from_name(event_type),
                    state,
                    at,
                    now,
                    Category::Health,
                    person,
                    seq,
                )),
            )
        } else {
            let id = who.id.as_str();
            let message = match (event_type, state) {
                ("low_battery", AlarmState::Raised) => {
                    format!("The battery of Zigbee device {id} is low: replace it soon.")
                }
                ("low_battery", AlarmState::Cleared) => {
                    format!("The battery of Zigbee device {id} is no longer low.")
                }
                (t, AlarmState::Raised) => format!(
                    "Zigbee device {id}: {t} started (property {}).",
                    property.unwrap_or("-")
                ),
                (t, AlarmState::Cleared) => format!("Zigbee device {id}: {t} ended."),
            };
            (
                EventKind::Technical,
                Record::Technical(TechnicalAlarm::new(
                    format!("zigbee2mqtt:{}:{id}", self.source),
                    TechnicalKind::from_name(event_type),
                    severity,
                    state,
                    message,
                    at,
                )),
            )
        };
        Event {
            kind,
            event_type: event_type.to_owned(),
            device: Some(who.id.clone()),
            property: property.map(str::to_owned),
            value,
            record,
        }
    }

    // --- time ---
}
