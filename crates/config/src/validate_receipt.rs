//! Validation of `[receipt]`: durations, each indicator's keys for its kind, the payload
//! overrides (JSON objects), the program path, and one entry per person.

use std::collections::HashMap;
use std::time::Duration;

use crate::checker::Checker;
use crate::locate::KeyPath;
use crate::schema_receipt::{IndicatorConfig, IndicatorKind, ReceiptConfig};
use crate::units::ConfigDuration;
use crate::validate_mqtt::bad_topic;

/// The shortest and longest signal.
const DURATION_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));

impl Checker<'_, '_> {
    pub(crate) fn check_receipt(&mut self, r: &ReceiptConfig) {
        let path = KeyPath::root().key("receipt");
        self.receipt_duration(r.duration, path.key("duration"));
        for (i, ind) in r.indicators.iter().enumerate() {
            self.check_indicator(ind, &path.key("indicator").index(i));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, p) in r.persons.iter().enumerate() {
            let at = path.key("person").index(i);
            if p.person.trim().is_empty() {
                self.fail(
                    at.key("person"),
                    "person must not be empty; write it as the sources do, e.g. \"Patient/123\""
                        .into(),
                );
            } else if let Some(&first) = seen.get(p.person.as_str()) {
                // The value is personal data: not repeated in the message.
                self.fail(
                    at.key("person"),
                    format!(
                        "this person already has an entry (person[{first}]{}); list each \
                         person once",
                        self.on_line(&path.key("person").index(first).key("person"))
                    ),
                );
            } else {
                seen.insert(&p.person, i);
            }
            if let Some(d) = p.duration {
                self.receipt_duration(d, at.key("duration"));
            }
        }
    }

    fn receipt_duration(&mut self, d: ConfigDuration, at: KeyPath) {
        let (min, max) = DURATION_RANGE;
        if d.get() < min || d.get() > max {
            self.fail(
                at,
                format!("duration {d} is out of range; use \"1s\"..=\"10m\""),
            );
        }
    }

    fn check_indicator(&mut self, ind: &IndicatorConfig, at: &KeyPath) {
        let kind = ind.kind;
        let zigbee = matches!(kind, IndicatorKind::Siren | IndicatorKind::Light);
        let misplaced = |key: &str, set: bool, for_zigbee: bool| {
            (set && for_zigbee != zigbee).then(|| {
                let wanted = if for_zigbee {
                    "siren\" or \"light"
                } else {
                    "command"
                };
                (
                    key.to_owned(),
                    format!(
                        "{key} only applies to kind = \"{wanted}\", but this indicator's kind \
                         is \"{kind}\"; remove it"
                    ),
                )
            })
        };
        let wrong: Vec<(String, String)> = [
            misplaced("device", ind.device.is_some(), true),
            misplaced("base_topic", ind.base_topic.is_some(), true),
            misplaced("confirmed_payload", ind.confirmed_payload.is_some(), true),
            misplaced("failing_payload", ind.failing_payload.is_some(), true),
            misplaced("program", ind.program.is_some(), false),
            misplaced("confirmed_args", !ind.confirmed_args.is_empty(), false),
            misplaced("failing_args", !ind.failing_args.is_empty(), false),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (key, msg) in wrong {
            self.fail(at.key(&key), msg);
        }
        if zigbee {
            match &ind.device {
                None => self.fail(
                    at.key("kind"),
                    format!(
                        "kind = \"{kind}\" needs device (the zigbee2mqtt friendly name, e.g. \
                         \"hall/siren\")"
                    ),
                ),
                Some(d) => {
                    if let Some(msg) = bad_topic(d, "device") {
                        self.fail(at.key("device"), msg);
                    }
                }
            }
            if let Some(b) = &ind.base_topic
                && let Some(msg) = bad_topic(b, "base_topic")
            {
                self.fail(at.key("base_topic"), msg);
            }
            for (key, payload) in [
                ("confirmed_payload", &ind.confirmed_payload),
                ("failing_payload", &ind.failing_payload),
            ] {
                if let Some(p) = payload
                    && let Err(e) = json_object(p)
                {
                    self.fail(
                        at.key(key),
                        format!(
                            "{key} is not a JSON object ({e}); write it in single quotes, e.g. \
                             '{{\"state\": \"ON\"}}'"
                        ),
                    );
                }
            }
        } else {
            match &ind.program {
                None => self.fail(
                    at.key("kind"),
                    "kind = \"command\" needs program (an absolute path)".into(),
                ),
                Some(p) if !p.is_absolute() => self.fail(
                    at.key("program"),
                    format!(
                        "program \"{}\" must be an absolute path (hearth runs it without a \
                         shell or PATH lookup)",
                        p.display()
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}

/// Checks that `text` is one JSON object (RFC 8259), with nothing after it. Returns what is
/// wrong and where (byte offset).
pub(crate) fn json_object(text: &str) -> Result<(), String> {
    let mut p = Json {
        s: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err("it must start with '{'".into());
    }
    p.value()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.at));
    }
    Ok(())
}

struct Json<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl Json<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", b as char))
        }
    }

    fn value(&mut self) -> Result<(), String> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.container(b'}', true),
            Some(b'[') => self.container(b']', false),
            Some(b'"') => self.string(),
            Some(b't') => self.word("true"),
            Some(b'f') => self.word("false"),
            Some(b'n') => self.word("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.err("unexpected character"),
            None => self.err("unexpected end"),
        }
    }

    fn container(&mut self, close: u8, object: bool) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 64 {
            return self.err("nested too deeply");
        }
        self.at += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if object {
                self.ws();
                if self.peek() != Some(b'"') {
                    return self.err("expected a \"key\"");
                }
                self.string()?;
                self.ws();
                self.eat(b':')?;
            }
            self.value()?;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err(&format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.at += 1;
        loop {
            match self.peek() {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1
                        }
                        Some(b'u') => {
                            self.at += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return self.err("bad \\u escape");
                                }
                                self.at += 1;
                            }
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                Some(c) if c < 0x20 => return self.err("control character in a string"),
                Some(_) => self.at += 1,
            }
        }
    }

    fn word(&mut self, w: &str) -> Result<(), String> {
        if self.s[self.at..].starts_with(w.as_bytes()) {
            self.at += w.len();
            Ok(())
        } else {
            self.err("unexpected word")
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("bad number"),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return self.err("bad number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return self.err("bad number");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::json_object;

    #[test]
    fn json_objects_are_recognised() {
        for good in [
            "{}",
            " { } ",
            r##"{"state":"ON","brightness":254,"color":{"hex":"#00FF00"}}"##,
            r#"{"warning":{"mode":"stop","strobe":true,"duration":-1.5e3,"x":[1,null,false,"\u00e6\n"]}}"#,
        ] {
            assert_eq!(json_object(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "[]",
            "\"x\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{} {}",
            "{'a':1}",
            &format!("{}{}", "{\"a\":[".repeat(40), "]}".repeat(40)),
        ] {
            assert!(json_object(bad).is_err(), "{bad}");
        }
    }
}
