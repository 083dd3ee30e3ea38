//! The receipt signal (A2) on zigbee2mqtt indicators: what hearth publishes to
//! `<base_topic>/<device>/set` when the response centre confirmed an alarm, and while delivery
//! is failing. Pure functions: the caller publishes each [`Step`] at its offset.
//!
//! - Siren, confirmed: a short audible warning (`warning.mode = "emergency"`) at the strength's
//!   level for the duration, with the strobe, so it is both sound and light.
//! - Siren, failing: the strobe only (`mode = "stop"`): no sound that suggests help is coming.
//! - Light, confirmed: green at a brightness from the strength, then off after the duration.
//! - Light, failing: red blinking (1 s on, 1 s off) for the duration, at most
//!   [`MAX_BLINKS`] blinks (Zigbee airtime), then steady red until the duration ends, then off.
//!
//! A configured `confirmed_payload` / `failing_payload` replaces the built-in signal: it is
//! published once, as written.

use std::time::Duration;

use hearth_config::{IndicatorConfig, IndicatorKind, ReceiptStrength};
use serde_json::{Value as Json, json};

/// Which signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// A response centre handled the alarm (`snu`=0).
    Confirmed,
    /// No centre handled it yet; hearth keeps sending it.
    Failing,
}

impl Signal {
    /// `confirmed` / `failing`, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Confirmed => "confirmed",
            Signal::Failing => "failing",
        }
    }
}

/// One publish of a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When, counted from the start of the signal.
    pub after: Duration,
    /// The JSON payload.
    pub payload: Json,
}

/// The most blinks of the failing light signal.
pub const MAX_BLINKS: u32 = 30;

/// The topic zigbee2mqtt takes commands for `device` on.
pub fn set_topic(base_topic: &str, device: &str) -> String {
    format!("{base_topic}/{device}/set")
}

/// The topic and steps of `signal` on a siren or light indicator; `None` for a command
/// indicator (or one without a device, which validation refuses).
pub fn plan(
    indicator: &IndicatorConfig,
    signal: Signal,
    strength: ReceiptStrength,
    duration: Duration,
) -> Option<(String, Vec<Step>)> {
    let device = indicator.device.as_deref()?;
    let topic = set_topic(indicator.base_topic(), device);
    let custom = match signal {
        Signal::Confirmed => indicator.confirmed_payload.as_deref(),
        Signal::Failing => indicator.failing_payload.as_deref(),
    };
    // Validated as a JSON object when the config was loaded.
    if let Some(payload) = custom.and_then(|c| serde_json::from_str::<Json>(c).ok()) {
        return Some((
            topic,
            vec![Step {
                after: Duration::ZERO,
                payload,
            }],
        ));
    }
    let steps = match (indicator.kind, signal) {
        (IndicatorKind::Siren, Signal::Confirmed) => vec![now(siren_confirmed(strength, duration))],
        (IndicatorKind::Siren, Signal::Failing) => vec![now(siren_failing(strength, duration))],
        (IndicatorKind::Light, Signal::Confirmed) => light_confirmed(strength, duration),
        (IndicatorKind::Light, Signal::Failing) => light_failing(strength, duration),
        (IndicatorKind::Command, _) => return None,
    };
    Some((topic, steps))
}

fn now(payload: Json) -> Step {
    Step {
        after: Duration::ZERO,
        payload,
    }
}

/// zigbee2mqtt's `warning.duration` in whole seconds (at least 1).
fn seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// The siren's confirmed signal: an audible warning at the level, with the strobe.
pub fn siren_confirmed(strength: ReceiptStrength, duration: Duration) -> Json {
    json!({
        "warning": {
            "mode": "emergency",
            "level": strength.as_str(),
            "strobe": true,
            "strobe_level": strength.as_str(),
            "strobe_duty_cycle": 5,
            "duration": seconds(duration),
        }
    })
}

/// The siren's failing signal: strobe only, no sound.
pub fn siren_failing(strength: ReceiptStrength, duration: Duration) -> Json {
    json!({
        "warning": {
            "mode": "stop",
            "level": "low",
            "strobe": true,
            "strobe_level": strength.as_str(),
            "strobe_duty_cycle": 5,
            "duration": seconds(duration),
        }
    })
}

/// A light's brightness (zigbee2mqtt 0..=254) for a strength.
pub const fn brightness(strength: ReceiptStrength) -> u8 {
    match strength {
        ReceiptStrength::Low => 64,
        ReceiptStrength::Medium => 128,
        ReceiptStrength::High => 192,
        ReceiptStrength::VeryHigh => 254,
    }
}

/// Green on at the strength's brightness, off after `duration`.
pub fn light_confirmed(strength: ReceiptStrength, duration: Duration) -> Vec<Step> {
    vec![
        now(json!({
            "state": "ON",
            "color": {"hex": "#00FF00"},
            "brightness": brightness(strength),
            "transition": 0,
        })),
        Step {
            after: duration,
            payload: json!({"state": "OFF"}),
        },
    ]
}

/// Red blinking for `duration` (1 s on, 1 s off, at most [`MAX_BLINKS`]), then off.
pub fn light_failing(strength: ReceiptStrength, duration: Duration) -> Vec<Step> {
    let period = Duration::from_secs(2);
    let half = Duration::from_secs(1);
    let on = json!({
        "state": "ON",
        "color": {"hex": "#FF0000"},
        "brightness": brightness(strength),
        "transition": 0,
    });
    let off = json!({"state": "OFF", "transition": 0});
    let mut steps = vec![now(on.clone())];
    // Blink k goes off at 2k+1 s and on again at 2k+2 s, while that is within the duration.
    for k in 0..MAX_BLINKS {
        let off_at = period * k + half;
        let on_at = period * (k + 1);
        if on_at >= duration || k + 1 == MAX_BLINKS {
            break;
        }
        steps.push(Step {
            after: off_at,
            payload: off.clone(),
        });
        steps.push(Step {
            after: on_at,
            payload: json!({"state": "ON", "transition": 0}),
        });
    }
    steps.push(Step {
        after: duration,
        payload: json!({"state": "OFF"}),
    });
    steps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn indicator(kind: IndicatorKind) -> IndicatorConfig {
        IndicatorConfig {
            kind,
            device: Some("hall/siren".into()),
            base_topic: None,
            confirmed_payload: None,
            failing_payload: None,
            program: None,
            confirmed_args: Vec::new(),
            failing_args: Vec::new(),
        }
    }

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn the_siren_confirms_with_sound_at_the_level_for_the_duration() {
        let (topic, steps) = plan(
            &indicator(IndicatorKind::Siren),
            Signal::Confirmed,
            ReceiptStrength::High,
            TEN,
        )
        .unwrap();
        assert_eq!(topic, "zigbee2mqtt/hall/siren/set");
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].after, Duration::ZERO);
        assert_eq!(
            steps[0].payload.to_string(),
            r#"{"warning":{"duration":10,"level":"high","mode":"emergency","strobe":true,"strobe_duty_cycle":5,"strobe_level":"high"}}"#
        );
    }

    #[test]
    fn the_failing_siren_only_flashes() {
        let p = siren_failing(ReceiptStrength::VeryHigh, Duration::from_millis(300));
        assert_eq!(
            p.to_string(),
            r#"{"warning":{"duration":1,"level":"low","mode":"stop","strobe":true,"strobe_duty_cycle":5,"strobe_level":"very_high"}}"#
        );
        // Never a sounding mode while delivery fails.
        for s in [
            ReceiptStrength::Low,
            ReceiptStrength::Medium,
            ReceiptStrength::High,
            ReceiptStrength::VeryHigh,
        ] {
            assert_eq!(siren_failing(s, TEN)["warning"]["mode"], "stop");
            assert_ne!(siren_confirmed(s, TEN)["warning"]["mode"], "stop");
            assert_eq!(siren_confirmed(s, TEN)["warning"]["level"], s.as_str());
        }
    }

    #[test]
    fn the_light_is_green_at_the_strength_then_off() {
        let mut light = indicator(IndicatorKind::Light);
        light.device = Some("lamp".into());
        light.base_topic = Some("z2m".into());
        let (topic, steps) = plan(&light, Signal::Confirmed, ReceiptStrength::Low, TEN).unwrap();
        assert_eq!(topic, "z2m/lamp/set");
        assert_eq!(
            steps,
            [
                Step {
                    after: Duration::ZERO,
                    payload: json!({"state": "ON", "color": {"hex": "#00FF00"}, "brightness": 64, "transition": 0}),
                },
                Step {
                    after: TEN,
                    payload: json!({"state": "OFF"}),
                },
            ]
        );
        let bright: Vec<u8> = [
            ReceiptStrength::Low,
            ReceiptStrength::Medium,
            ReceiptStrength::High,
            ReceiptStrength::VeryHigh,
        ]
        .map(brightness)
        .to_vec();
        assert_eq!(bright, [64, 128, 192, 254]);
    }

    #[test]
    fn the_failing_light_blinks_red_and_ends_off() {
        let steps = light_failing(ReceiptStrength::Medium, Duration::from_secs(5));
        let summary: Vec<(u64, &str)> = steps
            .iter()
            .map(|s| {
                (
                    u64::try_from(s.after.as_millis()).unwrap(),
                    s.payload["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, "ON"),
                (1000, "OFF"),
                (2000, "ON"),
                (3000, "OFF"),
                (4000, "ON"),
                (5000, "OFF")
            ]
        );
        assert_eq!(steps[0].payload["color"]["hex"], "#FF0000");
        assert_eq!(steps[0].payload["brightness"], 128);
        // Offsets never go back in time, and a long signal is capped.
        let long = light_failing(ReceiptStrength::Low, Duration::from_secs(600));
        assert!(long.windows(2).all(|w| w[0].after <= w[1].after));
        let ons = long.iter().filter(|s| s.payload["state"] == "ON").count();
        assert_eq!(ons, usize::try_from(MAX_BLINKS).unwrap());
        assert_eq!(long.last().unwrap().after, Duration::from_secs(600));
        // A 1 s signal is on, then off.
        assert_eq!(
            light_failing(ReceiptStrength::Low, Duration::from_secs(1)).len(),
            2
        );
    }

    #[test]
    fn a_configured_payload_replaces_the_built_in_signal() {
        let mut siren = indicator(IndicatorKind::Siren);
        siren.failing_payload = Some(r#"{"warning": {"mode": "stop", "strobe": true}}"#.into());
        let (_, steps) = plan(&siren, Signal::Failing, ReceiptStrength::High, TEN).unwrap();
        assert_eq!(
            steps,
            [Step {
                after: Duration::ZERO,
                payload: json!({"warning": {"mode": "stop", "strobe": true}}),
            }]
        );
        // The other signal stays built in.
        let (_, steps) = plan(&siren, Signal::Confirmed, ReceiptStrength::High, TEN).unwrap();
        assert_eq!(steps[0].payload["warning"]["mode"], "emergency");
    }

    #[test]
    fn a_command_indicator_has_no_topic() {
        let mut c = indicator(IndicatorKind::Command);
        c.device = None;
        assert_eq!(plan(&c, Signal::Confirmed, ReceiptStrength::Low, TEN), None);
    }
}
