use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// The three main categories of data (REQUIREMENTS "Categories of data", 001 2.2).
///
/// Which receiver gets which category is configuration; a route never receives a category it is
/// not configured for (DESIGN invariant 5). Welfare data (e.g. a bed sensor in a care service) are
/// confidential but not journal-worthy health data, so they are a category of their own here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Medical measurements and journal-worthy safety-alarm data.
    Health,
    /// Welfare and smart-home data that are not health data.
    Welfare,
    /// Equipment, configuration and operations data (technical alarms, heartbeats).
    Administrative,
}

impl Category {
    /// Every category, in a stable order.
    pub const ALL: [Category; 3] = [
        Category::Health,
        Category::Welfare,
        Category::Administrative,
    ];

    /// The name used in config files and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Health => "health",
            Category::Welfare => "welfare",
            Category::Administrative => "administrative",
        }
    }

    /// A small stable integer for storage.
    pub const fn code(self) -> u8 {
        match self {
            Category::Health => 0,
            Category::Welfare => 1,
            Category::Administrative => 2,
        }
    }

    /// The inverse of [`Category::code`].
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Category::Health),
            1 => Some(Category::Welfare),
            2 => Some(Category::Administrative),
            _ => None,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ModelError::UnknownName {
                what: "category",
                name: s.to_owned(),
                expected: "health, welfare, administrative",
            })
    }
}

/// Priority lanes of the outbox: alarm > technical > measurement > welfare (DESIGN invariant 3).
///
/// The derived order is the drain order: a smaller lane drains first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Safety alarms (alarm button, fall, smoke, water …). Never dropped to make room.
    Alarm,
    /// Technical alarms about the gateway and its devices (A7).
    Technical,
    /// Medical measurements.
    Measurement,
    /// Welfare observations (temperature, contact, occupancy …).
    Welfare,
}

impl Lane {
    /// Every lane, highest priority first.
    pub const ALL: [Lane; 4] = [
        Lane::Alarm,
        Lane::Technical,
        Lane::Measurement,
        Lane::Welfare,
    ];

    /// The name used in config, logs and statistics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Alarm => "alarm",
            Lane::Technical => "technical",
            Lane::Measurement => "measurement",
            Lane::Welfare => "welfare",
        }
    }

    /// A small stable integer for storage; smaller drains first.
    pub const fn code(self) -> u8 {
        match self {
            Lane::Alarm => 0,
            Lane::Technical => 1,
            Lane::Measurement => 2,
            Lane::Welfare => 3,
        }
    }

    /// The inverse of [`Lane::code`].
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Lane::Alarm),
            1 => Some(Lane::Technical),
            2 => Some(Lane::Measurement),
            3 => Some(Lane::Welfare),
            _ => None,
        }
    }

    /// Whether the outbox may drop records of this lane when it is full (never alarms).
    pub const fn droppable(self) -> bool {
        !matches!(self, Lane::Alarm)
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lane {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| ModelError::UnknownName {
                what: "lane",
                name: s.to_owned(),
                expected: "alarm, technical, measurement, welfare",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_outranks_everything() {
        for lane in Lane::ALL {
            assert!(Lane::Alarm <= lane);
        }
        assert!(Lane::Technical < Lane::Measurement);
        assert!(Lane::Measurement < Lane::Welfare);
        assert!(!Lane::Alarm.droppable());
    }

    #[test]
    fn codes_round_trip() {
        for lane in Lane::ALL {
            assert_eq!(Lane::from_code(lane.code()), Some(lane));
            assert_eq!(lane.as_str().parse::<Lane>(), Ok(lane));
        }
        for c in Category::ALL {
            assert_eq!(Category::from_code(c.code()), Some(c));
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
        assert!("journal".parse::<Category>().is_err());
    }
}
