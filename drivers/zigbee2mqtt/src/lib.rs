//! # hearth-driver-zigbee2mqtt
//!
//! zigbee2mqtt (z2m) MQTT messages → hearth records (safety [`Alarm`]s, [`TechnicalAlarm`]s,
//! [`Reading`]s) through declarative TOML rules.
//!
//! [`Alarm`]: hearth_model::Alarm
//! [`TechnicalAlarm`]: hearth_model::TechnicalAlarm
//! [`Reading`]: hearth_model::Reading
//!
//! ## What it owns
//! - The meaning of z2m topics and payloads: `<base>/bridge/devices` (friendly name → IEEE
//!   address), `<base>/bridge/state`, `<base>/<name>/availability`, `<base>/<name>` (device
//!   state), `<base>/<name>/<attribute>` (z2m's `output: attribute`, for known names).
//! - The rule engine ([`Engine`]): edge-triggered, debounced, persisted alarm state; `for` and
//!   `hours` service rules; `offline_after`; observations with their MDC code and unit.
//! - The shipped rules `rules/default.toml` ([`default_rules`]) and a demo script
//!   ([`scripted_messages`]).
//!
//! ## What it must not do
//! No I/O of any kind: no MQTT client, no tokio, no clock, no files. Time comes in as `now`,
//! messages as [`Message`], state as key/values ([`Engine::restore`], [`Output::state`]). The
//! MQTT session, acknowledgements after commit and dead-lettering belong to the caller
//! (`drivers/mqtt`). It never panics on input and never logs payload values or personal data.
//!
//! ## Devices
//! A device's id is `zigbee:<IEEE as 16 lowercase hex digits>` once its friendly name is known
//! from `bridge/devices` (or when the friendly name is an IEEE address, z2m's default), so it
//! survives renames. Before that it is `zigbee:name:<friendly name, percent-escaped>`; state
//! kept under that id moves to the IEEE id when `bridge/devices` names it. Topics match the
//! longest known friendly name, so names may contain `/`.
//!
//! ## Rule semantics (operator text: `docs/zigbee2mqtt.md`)
//! - Rules are checked in order, the config's before the shipped ones; every matching rule of a
//!   payload property applies, except that a rule whose property and type an earlier rule
//!   already had is skipped (so a config rule replaces the shipped one), and `ignore` stops the
//!   rules after it. A `null` value is skipped; a property without rules is logged at debug.
//! - Alarm and technical rules are conditions (`when`, `below`/`above`, default `true`; a
//!   `low_battery` technical rule without them on a number uses `low_battery_percent` as
//!   `below`). Rules of one (emit, type) drive one alarm per device: raised at once when a
//!   condition becomes active (inactive → active; repeating a state gives nothing), cleared
//!   when every condition of the alarm stayed inactive for `debounce` (the largest of its
//!   rules). A value of the wrong kind is a problem ([`Output::problems`]), never an edge.
//!   A boolean condition is a zigbee2mqtt binary state: `true`/`false` or `"ON"`/`"OFF"`
//!   (converters declare either as `value_on`/`value_off`). A string or list condition names
//!   an enum's alarm values; its other values are the normal state.
//! - `momentary` (button actions): each live matching message raises, repeats within
//!   `debounce` count once, nothing clears.
//! - `for`: the condition must hold continuously this long, counted only within `hours`
//!   (local time of [`Settings::time_zone`], may wrap midnight); raised by [`Engine::tick`] at
//!   the moment it became due. `hours` only gate raising; the alarm clears when the condition
//!   ends. Retained messages (a replay after a reconnect) update conditions and alarm edges but
//!   give no observations and no momentary alarms.
//! - Observations: numbers keep the decimals of the JSON text (as serde_json prints them),
//!   booleans become words (`contact` true → `closed`), strings stay text; `on_change` stores a
//!   value only when it differs from the sensor's last one. Two observations with the same code
//!   in one message (z2m 1.x `illuminance` + `illuminance_lux`): the first rule's wins.
//! - Offline: `<name>/availability` `offline` raises `device_offline` (major), `online` clears
//!   it. Without availability messages, [`Engine::tick`] raises it for a device silent longer
//!   than `offline_after`; tracked are devices heard of since the state began (persisted, so
//!   across restarts) and devices listed in `bridge/devices` (their clock starts when first
//!   listed; devices removed from the list stop being tracked and their alarm clears). A live
//!   message clears it; a retained replay does not. `bridge/state` `offline` raises a critical
//!   `device_offline` for the bridge.
//! - Roles (`[[source.zigbee2mqtt.device]] role`, issue 15): a device with a safety role gets
//!   an implicit rule for itself, after the config's rules and before the shipped ones
//!   (`sos_button`: any non-empty `action` is a momentary `emergency`; `fall_detector`,
//!   `smoke_detector`, `water_leak`: `fall`, `smoke`, `water_leak` true), and its topics are in
//!   [`Engine::safety_subscriptions`] for the caller's safety session. Tests:
//!   `engine_tests::sos_button_role_makes_any_action_an_emergency`,
//!   `engine_tests::safety_roles_give_their_rule_and_safety_subscriptions`.
//! - Safety alarms have category health (part of the emergency service, as in
//!   `drivers/simulated`); technical alarms administrative; readings the sensor's category
//!   (`[[source.zigbee2mqtt.device]]`) or the source's.
//! - Alarm `at` is the payload's `last_seen` (epoch ms or ISO 8601) when present, otherwise the
//!   receipt time; timer events carry the moment they became due.
//!
//! ## Observation codes
//! IEEE 11073-10471 (independent living activity hub) sensor types in `MDC_PART_PHD_AI` = 130
//! (code = 130 × 65536 + term), and hearth-private codes in `MDC_PART_PVT` = 1024
//! (1024 × 65536 + term) for quantities without a 10101/10471 code. A rule's `mdc`/`unit`
//! override this table.
//!
//! | type | code | term | unit / words |
//! |---|---|---|---|
//! | fall | 8519681 | MDC_AI_TYPE_SENSOR_FALL 1 | fall / no_fall |
//! | emergency | 8519682 | MDC_AI_TYPE_SENSOR_PERS 2 | alarm / normal |
//! | smoke | 8519683 | SMOKE 3 | smoke / clear |
//! | carbon_monoxide | 8519684 | CO 4 | detected / clear |
//! | water_leak | 8519685 | WATER 5 | leak / dry |
//! | gas | 8519686 | GAS 6 | detected / clear |
//! | occupancy, motion | 8519687 | MOTION 7 | occupied / unoccupied (motion / no_motion) |
//! | property_exit | 8519688 | PROPEXIT 8 | exit / no_exit |
//! | enuresis | 8519689 | ENURESIS 9 | wet / dry |
//! | contact | 8519690 | CONTACTCLOSURE 10 | closed / open |
//! | usage | 8519691 | USAGE 11 | in_use / not_in_use |
//! | switch | 8519692 | SWITCH 12 | on / off |
//! | dosage | 8519693 | DOSAGE 13 | taken / missed |
//! | temperature | 8519694 | TEMP 14 | `Cel` |
//! | humidity | 8519695 | HUMIDITY 15 | `%` |
//! | illuminance | 67108865 | hearth-private 1 | `lx` |
//! | pressure | 67108866 | hearth-private 2 | `hPa` |
//! | co2 | 67108867 | hearth-private 3 | `[ppm]` |
//! | voc | 67108868 | hearth-private 4 | `[ppb]` |
//! | presence | 67108869 | hearth-private 5 | present / absent |
//! | vibration | 67108870 | hearth-private 6 | vibration / still |
//! | pm25 | 67108871 | hearth-private 7 | `ug/m3` |
//! | formaldehyde | 67108872 | hearth-private 8 | `mg/m3` |
//! | soil_moisture | 67108873 | hearth-private 9 | `%` |
//! | battery | 67108874 | hearth-private 10 | `%` |
//!
//! ## State
//! [`Output::state`] holds `z2m:<source>:<slot>:<device> <name>` → i64, 0 meaning unset:
//! `cond` (condition active since, ms), `raised` (1), `clear` (clear pending since, ms),
//! `moment` (momentary last raised, ms), `last` (hash of the last on_change value), `seen`
//! (last heard of, ms). The caller commits them with the records and passes them to
//! [`Engine::restore`] at start-up.
//!
//! Every slot is written when it changes, except `seen`: the engine keeps the exact time in
//! memory (offline detection uses it) but writes `seen` only when a device is first heard of,
//! when it is unset, when the time moved back, or when it moved at least min(`offline_after` /
//! 100, 5 min) since the value last written (with the default 25 h: 5 min). So a steady
//! stream of messages writes almost no state. After a restart the restored `seen` may be up
//! to that step older than the last message, which can only make offline detection that much
//! earlier (at most 1 % of `offline_after`), never later. Test:
//! `engine_tests::seen_is_persisted_coarsely`.
//!
//! ## Invariants (tests)
//! - Never panics on any input; unreadable messages are [`InputError`]s, skipped parts are
//!   problems. Tests: `tests/fuzz.rs` `handle_never_panics_on_bytes`,
//!   `handle_never_panics_on_json_objects`, `classify_never_panics`.
//! - Alarms are edge-triggered and debounced. Tests: `engine_tests::repeated_state_raises_once`,
//!   `engine_tests::clear_waits_for_debounce`, `engine_tests::reactivation_cancels_pending_clear`,
//!   `engine_tests::momentary_repeats_within_debounce_count_once`.
//! - `for` + `hours` in local time. Tests: `engine_tests::no_bed_return_at_night_in_oslo`,
//!   `engine_tests::door_open_waits_for_hours_to_start`.
//! - State survives a restart: no second raise after a retained replay. Test:
//!   `engine_tests::restore_then_retained_replay_does_not_raise_again`.
//! - Device ids survive renames. Tests: `engine_tests::rename_keeps_the_device_id`,
//!   `engine_tests::fallback_id_moves_to_ieee`.
//! - Same message, same record ids (the transport's sequence). Test:
//!   `engine_tests::same_message_gives_same_ids`.
//! - The shipped rules parse and the demo raises a safety alarm. Tests:
//!   `engine_tests::shipped_rules_parse`, `engine_tests::script_raises_a_safety_alarm`.
//! - The shipped rules raise and clear every alarm expose of real device models (binary as
//!   booleans or `"ON"`/`"OFF"`, enum values such as `fall_status`): test
//!   `tests/alarm_exposes.rs` `every_alarm_expose_of_the_corpus_raises_and_clears` over
//!   `tests/data/alarm_exposes.json`.
#![forbid(unsafe_code)]

mod engine;
mod event;
pub mod indicator;
mod rules;
mod script;

#[cfg(test)]
mod engine_tests;

pub use engine::{
    Engine, EngineError, InputError, MAX_BRIDGE_PAYLOAD, MAX_DEVICE_PAYLOAD, Message, Output,
    Settings, default_rules,
};
pub use event::{Event, EventKind};
/// The shipped rules file (`rules/default.toml`), as `hearth zigbee2mqtt rules` prints it.
pub use rules::DEFAULT_RULES;
pub use rules::{PART_PHD_AI, PART_PVT};
pub use script::scripted_messages;

use hearth_model::Timestamp;

/// The events one message gives with default settings (source `zigbee2mqtt`, base topic
/// `zigbee2mqtt`, shipped rules, UTC) and no history: exactly `{"events":[…]}`, an empty
/// list for messages that mean nothing (bridge info, `set` topics, ignored properties).
/// Skipped parts (problems) are not part of it; use [`Engine::handle`] for those.
pub fn classify(
    topic: &str,
    payload: &[u8],
    now: Timestamp,
) -> Result<serde_json::Value, InputError> {
    let mut engine = Engine::new(Settings::new("zigbee2mqtt")).map_err(|e| InputError {
        topic: topic.to_owned(),
        reason: e.to_string(),
    })?;
    let out = engine.handle(
        &Message {
            topic,
            payload,
            retained: false,
            sequence: 0,
        },
        now,
    )?;
    Ok(serde_json::json!({
        "events": out.events.iter().map(Event::to_json).collect::<Vec<_>>(),
    }))
}
