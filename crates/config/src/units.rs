//! Value types parsed once from config strings: durations, byte sizes and data categories.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hearth_model::Category;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written the human way: `"500ms"`, `"1s"`, `"5m"`, `"2h 30m"`, `"30d"`.
///
/// Accepted units are those of the `humantime` crate (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w`
/// and their long forms). A bare number is rejected because its unit would be a guess.
/// Serializes back to a compact string (`"30d"`, `"1m 30s"`) that parses to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ConfigDuration(Duration);

impl ConfigDuration {
    /// Wraps a [`Duration`].
    pub const fn new(d: Duration) -> Self {
        ConfigDuration(d)
    }

    /// A whole number of milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        ConfigDuration(Duration::from_millis(ms))
    }

    /// A whole number of seconds.
    pub const fn from_secs(s: u64) -> Self {
        ConfigDuration(Duration::from_secs(s))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        ConfigDuration(d)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl FromStr for ConfigDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(ConfigDuration)
            .map_err(|e| {
                format!(
                    "invalid duration \"{s}\" ({e}); write a number and a unit, \
                     e.g. \"500ms\", \"1s\", \"5m\", \"30d\""
                )
            })
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
        let mut secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        let mut parts: Vec<String> = Vec::new();
        for (unit, size) in UNITS {
            let n = secs / size;
            secs %= size;
            if n > 0 {
                parts.push(format!("{n}{unit}"));
            }
        }
        for (unit, n) in [
            ("ms", nanos / 1_000_000),
            ("us", nanos / 1_000 % 1_000),
            ("ns", nanos % 1_000),
        ] {
            if n > 0 {
                parts.push(format!("{n}{unit}"));
            }
        }
        if parts.is_empty() {
            f.write_str("0s")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"1s\", \"5m\" or \"30d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\" (a quoted string), not {v}"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\" (a quoted string), not {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: an integer (`268435456`) or a string with a unit (`"256 MiB"`, `"256MiB"`).
///
/// Units: `B`, binary `KiB` `MiB` `GiB` `TiB` (powers of 1024) and decimal `KB` `MB` `GB` `TB`
/// (powers of 1000), case-sensitive. The number must be whole. Serializes as a string in the
/// largest binary unit that divides it exactly (`"256 MiB"`, `"1000 B"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ByteSize(u64);

const UNITS_HELP: &str = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";

impl ByteSize {
    /// One kibibyte (1024 bytes).
    pub const KIB: u64 = 1 << 10;
    /// One mebibyte.
    pub const MIB: u64 = 1 << 20;
    /// One gibibyte.
    pub const GIB: u64 = 1 << 30;
    /// One tebibyte.
    pub const TIB: u64 = 1 << 40;

    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let bad = || {
            format!(
                "invalid size \"{s}\": write a whole number with an optional unit \
                 ({UNITS_HELP}), e.g. \"256 MiB\""
            )
        };
        if digits.is_empty() {
            return Err(bad());
        }
        let factor = match unit.trim_start() {
            "" | "B" => 1,
            "KiB" => Self::KIB,
            "MiB" => Self::MIB,
            "GiB" => Self::GIB,
            "TiB" => Self::TIB,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            _ => return Err(bad()),
        };
        let too_large = || format!("size \"{s}\" is too large (the maximum is 16 EiB - 1 byte)");
        let n: u64 = digits.parse().map_err(|_| too_large())?;
        n.checked_mul(factor).map(ByteSize).ok_or_else(too_large)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [
            ("TiB", Self::TIB),
            ("GiB", Self::GIB),
            ("MiB", Self::MIB),
            ("KiB", Self::KIB),
        ] {
            if self.0 != 0 && self.0 % size == 0 {
                return write!(f, "{} {unit}", self.0 / size);
            }
        }
        write!(f, "{} B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: a number of bytes or a string such as \"256 MiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative (got {v})")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `Category` has no serde impls on purpose (the model crate derives no `Serialize`), so the
/// config uses these adapters with `#[serde(with = …)]`. The names are [`Category::as_str`].
pub(crate) mod category {
    use super::*;

    /// A category name from a config file.
    pub(crate) struct Name(pub(crate) Category);

    pub(crate) fn unknown(name: &str) -> String {
        let valid: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        format!(
            "unknown category \"{name}\"; valid categories are: {}",
            valid.join(", ")
        )
    }

    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Name;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a category name (health, welfare or administrative)")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Category::ALL
                        .into_iter()
                        .find(|c| c.as_str() == v)
                        .map(Name)
                        .ok_or_else(|| E::custom(unknown(v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    pub(crate) fn serialize<S: Serializer>(c: &Category, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Category, D::Error> {
        Name::deserialize(d).map(|n| n.0)
    }

    /// The same for an optional category (a key that may be left out).
    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            c: &Option<Category>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match c {
                Some(c) => s.serialize_some(c.as_str()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Category>, D::Error> {
            Name::deserialize(d).map(|n| Some(n.0))
        }
    }

    /// The same for a list of categories.
    pub(crate) mod list {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[Category], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|c| c.as_str()))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Category>, D::Error> {
            Vec::<Name>::deserialize(d).map(|v| v.into_iter().map(|n| n.0).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_documented_units() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("1s", Duration::from_secs(1)),
            ("5m", Duration::from_secs(300)),
            ("2h 30m", Duration::from_secs(9_000)),
            ("30d", Duration::from_secs(30 * 86_400)),
            ("1w", Duration::from_secs(7 * 86_400)),
            ("250us", Duration::from_micros(250)),
            (" 10s ", Duration::from_secs(10)),
        ] {
            assert_eq!(
                text.parse::<ConfigDuration>().map(|d| d.get()),
                Ok(want),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_are_rejected_with_an_example() {
        for text in ["", "5", "5x", "s", "-1s", "1.5.2s", "forever"] {
            let e = text.parse::<ConfigDuration>().err();
            assert!(
                e.as_deref().is_some_and(|e| e.contains("e.g. \"500ms\"")),
                "{text}: {e:?}"
            );
        }
    }

    #[test]
    fn durations_display_compactly_and_round_trip() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(30 * 86_400), "30d"),
            (Duration::new(1, 1_001), "1s 1us 1ns"),
        ] {
            let c = ConfigDuration::new(d);
            assert_eq!(c.to_string(), text);
            assert_eq!(text.parse::<ConfigDuration>(), Ok(c));
        }
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        for (text, want) in [
            ("0", 0),
            ("1024", 1024),
            ("12 B", 12),
            ("256 MiB", 256 << 20),
            ("256MiB", 256 << 20),
            ("1 KiB", 1024),
            ("2 GiB", 2 << 30),
            ("1 TiB", 1 << 40),
            ("3 KB", 3_000),
            ("5 MB", 5_000_000),
            ("1GB", 1_000_000_000),
            ("2 TB", 2_000_000_000_000),
        ] {
            assert_eq!(
                text.parse::<ByteSize>().map(|b| b.bytes()),
                Ok(want),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_valid_units() {
        for text in [
            "",
            "MiB",
            "1.5 GiB",
            "-1 MiB",
            "12 mib",
            "12 XB",
            "12 MiB extra",
        ] {
            let e = text.parse::<ByteSize>().err();
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("KiB, MiB, GiB") && e.contains("256 MiB")),
                "{text}: {e:?}"
            );
        }
        let e = "20000000 TiB".parse::<ByteSize>().err();
        assert!(e.is_some_and(|e| e.contains("too large")));
        let e = "99999999999999999999".parse::<ByteSize>().err();
        assert!(e.is_some_and(|e| e.contains("too large")));
    }

    #[test]
    fn sizes_display_in_the_largest_exact_binary_unit() {
        for (n, text) in [
            (0, "0 B"),
            (1000, "1000 B"),
            (1024, "1 KiB"),
            (256 << 20, "256 MiB"),
            (3 << 30, "3 GiB"),
        ] {
            assert_eq!(ByteSize::new(n).to_string(), text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize::new(n)));
        }
    }

    #[test]
    fn unknown_category_lists_the_valid_names() {
        assert_eq!(
            category::unknown("journal"),
            "unknown category \"journal\"; valid categories are: health, welfare, administrative"
        );
    }
}
