use crate::{Alarm, Category, Lane, Reading, RecordId, TechnicalAlarm, Timestamp};

/// Anything that travels through the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A measurement or welfare observation.
    Reading(Reading),
    /// A safety alarm.
    Alarm(Alarm),
    /// A technical alarm.
    Technical(TechnicalAlarm),
}

/// The kind of a record, with what decides its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A reading of the given category.
    Reading(Category),
    /// A safety alarm.
    Alarm,
    /// A technical alarm.
    Technical,
}

impl RecordKind {
    /// The priority lane: alarms, then technical alarms, then measurements, then welfare data.
    pub const fn lane(self) -> Lane {
        match self {
            RecordKind::Alarm => Lane::Alarm,
            RecordKind::Technical => Lane::Technical,
            RecordKind::Reading(Category::Welfare) => Lane::Welfare,
            RecordKind::Reading(_) => Lane::Measurement,
        }
    }
}

impl Reading {
    /// This reading's kind.
    pub fn record_kind(&self) -> RecordKind {
        RecordKind::Reading(self.category)
    }
}

impl Record {
    /// The deterministic identifier.
    pub fn id(&self) -> RecordId {
        match self {
            Record::Reading(r) => r.id,
            Record::Alarm(a) => a.id,
            Record::Technical(t) => t.id,
        }
    }

    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Reading(r) => r.record_kind(),
            Record::Alarm(_) => RecordKind::Alarm,
            Record::Technical(_) => RecordKind::Technical,
        }
    }

    /// The priority lane.
    pub fn lane(&self) -> Lane {
        self.kind().lane()
    }

    /// The data category, which decides the routes.
    pub fn category(&self) -> Category {
        match self {
            Record::Reading(r) => r.category,
            Record::Alarm(a) => a.category,
            Record::Technical(t) => t.category(),
        }
    }

    /// When hearth received (or, for technical alarms, raised) it.
    pub fn received_at(&self) -> Timestamp {
        match self {
            Record::Reading(r) => r.received_at,
            Record::Alarm(a) => a.received_at,
            Record::Technical(t) => t.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_follow_kind_and_category() {
        assert_eq!(RecordKind::Alarm.lane(), Lane::Alarm);
        assert_eq!(RecordKind::Technical.lane(), Lane::Technical);
        assert_eq!(
            RecordKind::Reading(Category::Health).lane(),
            Lane::Measurement
        );
        assert_eq!(RecordKind::Reading(Category::Welfare).lane(), Lane::Welfare);
    }
}
