//! The contract's MQTT topics: `<prefix>/<driver>/in` (driver → hearth) and
//! `<prefix>/<driver>/error` (hearth → driver).

/// The default topic prefix (config `[source.external] topic_prefix`).
pub const DEFAULT_PREFIX: &str = "hearth/v1/driver";

/// Longest driver id.
pub const MAX_DRIVER_ID_LEN: usize = 32;

/// Whether `driver` is a valid driver id: 1 to 32 of `a-z`, `0-9`, `_`, `-`.
pub fn is_valid_driver_id(driver: &str) -> bool {
    (1..=MAX_DRIVER_ID_LEN).contains(&driver.len())
        && driver
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The prefix without trailing slashes (`"hearth/v1/driver/"` and `"hearth/v1/driver"` are one).
fn trimmed(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// The driver id of a topic `<prefix>/<driver>/in`, or `None` when the topic is not a driver's
/// input topic (another prefix, another suffix, or an invalid driver id).
pub fn parse_topic<'t>(prefix: &str, topic: &'t str) -> Option<&'t str> {
    let driver = topic
        .strip_prefix(trimmed(prefix))?
        .strip_prefix('/')?
        .strip_suffix("/in")?;
    is_valid_driver_id(driver).then_some(driver)
}

/// The topic hearth answers invalid messages of `driver` on: `<prefix>/<driver>/error`.
pub fn error_topic(prefix: &str, driver: &str) -> String {
    format!("{}/{driver}/error", trimmed(prefix))
}

/// The topic `driver` publishes to: `<prefix>/<driver>/in`.
pub fn input_topic(prefix: &str, driver: &str) -> String {
    format!("{}/{driver}/in", trimmed(prefix))
}

/// hearth's subscription for every driver: `<prefix>/+/in`.
pub fn subscription(prefix: &str) -> String {
    format!("{}/+/in", trimmed(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let p = DEFAULT_PREFIX;
        assert_eq!(
            input_topic(p, "acme_bed-2"),
            "hearth/v1/driver/acme_bed-2/in"
        );
        assert_eq!(
            parse_topic(p, &input_topic(p, "acme_bed-2")),
            Some("acme_bed-2")
        );
        assert_eq!(error_topic(p, "acme"), "hearth/v1/driver/acme/error");
        assert_eq!(error_topic("site/x/", "acme"), "site/x/acme/error");
        assert_eq!(parse_topic("site/x/", "site/x/acme/in"), Some("acme"));
        assert_eq!(subscription(p), "hearth/v1/driver/+/in");
    }

    #[test]
    fn other_topics_are_not_driver_topics() {
        let p = DEFAULT_PREFIX;
        for t in [
            "hearth/v1/driver/acme/error",
            "hearth/v1/driver/acme/in/x",
            "hearth/v1/driver//in",
            "hearth/v1/driver/Acme/in",
            "hearth/v1/driver/a/b/in",
            "hearth/v1/driverx/acme/in",
            "other/acme/in",
            "hearth/v1/driver/abcdefghijklmnopqrstuvwxyz0123456/in",
        ] {
            assert_eq!(parse_topic(p, t), None, "{t}");
        }
        assert!(is_valid_driver_id("abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!is_valid_driver_id(""));
        assert!(!is_valid_driver_id("acme.bed"));
    }
}
