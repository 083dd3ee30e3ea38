//! Commit-then-ack bookkeeping for one MQTT session, without I/O (STYLE rule 4).
//!
//! The broker redelivers a QoS 1 message whose PUBACK it did not get (hearth crashed after the
//! commit, or the link dropped before the ack left), with the DUP flag and the packet id it had.
//! Such a message is already stored and must not be stored again, but it must be acknowledged.
//!
//! The ledger remembers, per packet id, a hash of topic and payload and the message's sequence
//! number; the entries are committed as cursors in the same transaction as the records
//! (`mqtt:<source>:pkid:<id>`), so they are exactly as durable as what they describe. A DUP
//! message is a redelivery when its packet id's entry has the same hash and is recent: a packet
//! id is reused by the broker only after our PUBACK arrived, and mosquitto hands them out in
//! turn, so an entry older than [`WINDOW`] messages belongs to an earlier use of the id.

use std::collections::HashMap;

/// How many messages back an entry may be and still be the original of a redelivery. Larger
/// than any receive window (≤ 65 535 unacknowledged messages), smaller than a packet-id cycle
/// is likely to be when ids are reused in turn.
pub const WINDOW: u64 = 65_536;

/// Sequence numbers are kept modulo this in an entry (23 bits); the hash takes the other 40.
const SEQ_MOD: u64 = 1 << 23;
const HASH_MASK: u64 = (1 << 40) - 1;

/// A stable 64-bit FNV-1a hash of topic and payload (stable across builds and versions, unlike
/// `std`'s hasher, because entries outlive the binary that wrote them).
pub fn content_hash(topic: &str, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic
        .as_bytes()
        .iter()
        .chain(std::iter::once(&0u8))
        .chain(payload)
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The packed cursor value of an entry: 40 bits of hash, 23 bits of sequence.
pub fn entry_value(hash: u64, seq: u64) -> i64 {
    (((hash & HASH_MASK) << 23) | (seq % SEQ_MOD)) as i64
}

/// Whether a DUP message with `hash`, arriving when `current_seq` is the last sequence number
/// handed out, is a redelivery of the message recorded as `stored`.
pub fn is_redelivery(stored: i64, hash: u64, current_seq: u64) -> bool {
    let stored = stored as u64;
    if stored >> 23 != hash & HASH_MASK {
        return false;
    }
    let age = (current_seq % SEQ_MOD + SEQ_MOD - (stored % SEQ_MOD)) % SEQ_MOD;
    age < WINDOW
}

/// The ledger of one source.
#[derive(Debug)]
pub struct Ledger {
    prefix: String,
    seq: u64,
    /// Entries of this process's lifetime (packet id → packed entry), for redeliveries whose
    /// original is not committed yet or was committed by this process.
    recent: HashMap<u16, i64>,
}

/// What to do with an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it with this sequence number (and then acknowledge it).
    Store(u64),
    /// Already stored: acknowledge it only.
    AckOnly,
}

impl Ledger {
    /// A ledger for `source`, resuming after the committed sequence number `seq`.
    pub fn new(source: &str, seq: u64) -> Self {
        Ledger {
            prefix: format!("mqtt:{source}:"),
            seq,
            recent: HashMap::new(),
        }
    }

    /// The cursor key of the sequence number.
    pub fn seq_key(source: &str) -> String {
        format!("mqtt:{source}:seq")
    }

    /// The cursor key of a packet id's entry.
    pub fn pkid_key(&self, pkid: u16) -> String {
        format!("{}pkid:{pkid}", self.prefix)
    }

    /// The last sequence number handed out.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether deciding about a DUP message with `pkid` needs the committed entry (this process
    /// has not seen the packet id yet).
    pub fn needs_lookup(&self, dup: bool, pkid: u16) -> bool {
        dup && pkid != 0 && !self.recent.contains_key(&pkid)
    }

    /// Decides about a message. `committed` is the committed entry of `pkid` when
    /// [`Ledger::needs_lookup`] asked for it. Returns the verdict and, for a stored QoS 1
    /// message, the cursor to commit with it.
    pub fn admit(
        &mut self,
        dup: bool,
        pkid: u16,
        hash: u64,
        committed: Option<i64>,
    ) -> (Verdict, Option<(String, i64)>) {
        if dup && pkid != 0 {
            let known = self.recent.get(&pkid).copied().or(committed);
            if known.is_some_and(|e| is_redelivery(e, hash, self.seq)) {
                return (Verdict::AckOnly, None);
            }
        }
        self.seq += 1;
        if pkid == 0 {
            // QoS 0: nothing to acknowledge, nothing redelivered.
            return (Verdict::Store(self.seq), None);
        }
        let entry = entry_value(hash, self.seq);
        self.recent.insert(pkid, entry);
        (Verdict::Store(self.seq), Some((self.pkid_key(pkid), entry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivery_of_a_committed_message_is_acknowledged_only() {
        let mut l = Ledger::new("z", 0);
        let h = content_hash("zigbee2mqtt/leak", b"{\"water_leak\":true}");
        let (v, c) = l.admit(false, 7, h, None);
        assert_eq!(v, Verdict::Store(1));
        let (key, entry) = c.unwrap();
        assert_eq!(key, "mqtt:z:pkid:7");
        // Same process: remembered.
        assert_eq!(l.admit(true, 7, h, None).0, Verdict::AckOnly);
        // After a restart: the committed entry decides.
        let mut l = Ledger::new("z", 1);
        assert!(l.needs_lookup(true, 7));
        assert_eq!(l.admit(true, 7, h, Some(entry)).0, Verdict::AckOnly);
    }

    #[test]
    fn a_dup_that_was_never_committed_is_stored() {
        let mut l = Ledger::new("z", 10);
        let h = content_hash("t", b"a");
        assert_eq!(l.admit(true, 3, h, None).0, Verdict::Store(11));
    }

    #[test]
    fn a_reused_packet_id_with_other_content_is_a_new_message() {
        let mut l = Ledger::new("z", 0);
        l.admit(false, 5, content_hash("t", b"a"), None);
        assert_eq!(
            l.admit(true, 5, content_hash("t", b"b"), None).0,
            Verdict::Store(2)
        );
    }

    #[test]
    fn an_entry_older_than_the_window_is_an_earlier_use_of_the_packet_id() {
        let h = content_hash("t", b"same");
        let old = entry_value(h, 100);
        assert!(is_redelivery(old, h, 100 + WINDOW - 1));
        assert!(!is_redelivery(old, h, 100 + WINDOW));
        // Sequence numbers wrap in the entry without breaking the age.
        let wrapped = entry_value(h, SEQ_MOD - 2);
        assert!(is_redelivery(wrapped, h, SEQ_MOD + 5));
    }

    #[test]
    fn qos0_messages_take_a_sequence_number_and_no_entry() {
        let mut l = Ledger::new("z", 0);
        let (v, c) = l.admit(false, 0, 1, None);
        assert_eq!((v, c), (Verdict::Store(1), None));
        assert!(!l.needs_lookup(true, 0));
    }

    #[test]
    fn entries_are_non_negative_and_keep_their_hash() {
        for (h, s) in [(u64::MAX, u64::MAX), (0, 0), (12345, 1 << 40)] {
            let e = entry_value(h, s);
            assert!(e >= 0);
            assert!(is_redelivery(e, h, s));
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: entries written by one build are read by the next.
        assert_eq!(content_hash("", b""), 0xaf63_bd4c_8601_b7df);
        assert_ne!(content_hash("ab", b"c"), content_hash("a", b"bc"));
    }
}
