//! The rules of each payload property, compiled once: which rules may take effect and which
//! earlier rules skip them.

use super::*;

/// The rules of one payload property.
#[derive(Debug, Default)]
pub(super) struct PropertyRules {
    /// The rules (rule order, no `ignore`) that may take effect: each with the earlier rules
    /// of the property that skip it when they apply to the device (an `ignore`, or one of the
    /// same emit and type). Rules such an earlier rule without `device` always skips are left
    /// out.
    pub(super) live: Vec<(usize, Vec<usize>)>,
    /// Every rule of the property, for the "no rule" debug log.
    pub(super) all: Vec<usize>,
    /// Some rule of the property has no `device`.
    pub(super) any_global: bool,
}

/// Rule indices by property (see [`PropertyRules`]). Its keys are fixed by the rules, so a
/// fast hash (FNV-1a) is safe for the lookups of payload properties.
pub(super) type RuleIndex =
    HashMap<String, PropertyRules, std::hash::BuildHasherDefault<FnvHasher>>;

/// Rule indices by property (see [`PropertyRules`]).
pub(super) fn index_rules(rules: &[Rule]) -> RuleIndex {
    let mut map = RuleIndex::default();
    for (i, r) in rules.iter().enumerate() {
        let pr = map.entry(r.property.clone()).or_default();
        pr.all.push(i);
        pr.any_global |= r.device.is_none();
        if r.emit == RuleEmit::Ignore {
            continue;
        }
        let blockers: Vec<usize> = rules
            .iter()
            .take(i)
            .enumerate()
            .filter(|(_, e)| {
                e.property == r.property
                    && (e.emit == RuleEmit::Ignore
                        || (e.emit == r.emit && e.event_type == r.event_type))
            })
            .map(|(j, _)| j)
            .collect();
        if blockers
            .iter()
            .any(|j| rules.get(*j).is_some_and(|e| e.device.is_none()))
        {
            continue;
        }
        pr.live.push((i, blockers));
    }
    map
}
