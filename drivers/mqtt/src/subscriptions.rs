//! Which topic filters to subscribe and unsubscribe on connect (sans-I/O).
//!
//! The session is persistent: the broker keeps its subscriptions across connections, and
//! subscribing again makes it replay every retained message. So on connect hearth subscribes
//! only what the broker lacks and unsubscribes what is no longer configured (a changed
//! `base_topic` or `topic_prefix`), which needs the set the broker holds: hearth records it in
//! the source's outbox journal (`mqtt:<source>:subscriptions`) once the broker confirmed it.

use std::collections::BTreeSet;

/// What to ask the broker for on one connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Filters to subscribe (QoS 1), in configured order.
    pub subscribe: Vec<String>,
    /// Filters to unsubscribe.
    pub unsubscribe: Vec<String>,
}

impl Plan {
    /// How many SUBACKs and UNSUBACKs confirm the plan (one packet per filter).
    pub(crate) fn acks(&self) -> usize {
        self.subscribe.len() + self.unsubscribe.len()
    }
}

/// The plan for a connect: `configured` are the filters of the handler now, `recorded` the set
/// last confirmed by the broker (`None`: never recorded, e.g. before hearth kept the record).
pub(crate) fn plan(
    configured: &[String],
    recorded: Option<&[String]>,
    session_present: bool,
) -> Plan {
    match recorded {
        // The broker kept the session and hearth knows its subscriptions: only the difference.
        Some(recorded) if session_present => {
            let had: BTreeSet<&str> = recorded.iter().map(String::as_str).collect();
            let want: BTreeSet<&str> = configured.iter().map(String::as_str).collect();
            Plan {
                subscribe: unique(configured.iter().filter(|f| !had.contains(f.as_str()))),
                unsubscribe: unique(recorded.iter().filter(|f| !want.contains(f.as_str()))),
            }
        }
        // A new session has no subscriptions; a kept one with no record has unknown ones, and
        // subscribing again is harmless (a retained replay), missing a filter is not.
        _ => Plan {
            subscribe: unique(configured.iter()),
            unsubscribe: Vec::new(),
        },
    }
}

fn unique<'a>(filters: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    filters
        .filter(|f| seen.insert(f.as_str()))
        .cloned()
        .collect()
}

/// The outbox journal holding the confirmed subscriptions of `source`.
pub(crate) fn journal_key(source: &str) -> String {
    format!("mqtt:{source}:subscriptions")
}

/// The journal bytes of a filter set: filters separated by NUL, which MQTT forbids in topic
/// filters ([MQTT-1.5.3-2]), so no filter can contain the separator.
pub(crate) fn encode(filters: &[String]) -> Vec<u8> {
    filters.join("\0").into_bytes()
}

/// The filter set of the journal entries of [`journal_key`] (the newest entry counts); `None`
/// when nothing was recorded or the bytes are not a filter set.
pub(crate) fn decode(journal: &[(i64, Vec<u8>)]) -> Option<Vec<String>> {
    let (_, bytes) = journal.last()?;
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() {
        return Some(Vec::new());
    }
    Some(text.split('\0').map(str::to_owned).collect())
}

/// Whether `topic` matches the MQTT topic filter `filter` (`+` one level, `#` the rest,
/// including the parent level). Topics starting with `$` are not matched by wildcards at the
/// first level ([MQTT-4.7.2-1]).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters_match_as_mqtt_says() {
        assert!(matches("z/sos", "z/sos"));
        assert!(!matches("z/sos", "z/sos2"));
        assert!(!matches("z/sos", "z/sos/availability"));
        assert!(matches("z/sos/+", "z/sos/availability"));
        assert!(!matches("z/sos/+", "z/sos"));
        assert!(!matches("z/sos/+", "z/sos/a/b"));
        assert!(matches("z/#", "z"));
        assert!(matches("z/#", "z/a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("z/+/x", "z/a/x"));
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    fn check(
        configured: &[&str],
        recorded: Option<&[&str]>,
        present: bool,
        sub: &[&str],
        unsub: &[&str],
    ) {
        let recorded = recorded.map(v);
        let p = plan(&v(configured), recorded.as_deref(), present);
        assert_eq!(
            p,
            Plan {
                subscribe: v(sub),
                unsubscribe: v(unsub)
            }
        );
    }

    #[test]
    fn a_new_session_subscribes_everything_and_unsubscribes_nothing() {
        check(&["z/#"], None, false, &["z/#"], &[]);
        check(&["z/#"], Some(&["old/#"]), false, &["z/#"], &[]);
    }

    #[test]
    fn a_kept_session_without_a_record_subscribes_everything() {
        check(&["z/#", "z/#"], None, true, &["z/#"], &[]);
    }

    #[test]
    fn a_kept_session_changes_only_the_difference() {
        check(&["z/#"], Some(&["z/#"]), true, &[], &[]);
        check(
            &["new/#", "b/#"],
            Some(&["old/#", "b/#"]),
            true,
            &["new/#"],
            &["old/#"],
        );
        check(&[], Some(&["old/#"]), true, &[], &["old/#"]);
    }

    #[test]
    fn the_record_round_trips() {
        for set in [
            v(&[]),
            v(&["z/#"]),
            v(&["a/+/b", "hearth/v1/driver/+/in", "#"]),
        ] {
            assert_eq!(decode(&[(0, encode(&set))]), Some(set));
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[(0, vec![0xFF])]), None);
    }
}
