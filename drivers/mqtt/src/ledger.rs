//! Commit-then-ack bookkeeping for one MQTT session, without I/O (STYLE rule 4).
//!
//! The broker redelivers a QoS 1 message whose PUBACK it did not get (hearth crashed after the
//! commit, or the link dropped before the ack left), with the DUP flag and the packet id it had.
//! Such a message is already stored and must not be stored again, but it must be acknowledged.
//!
//! The ledger remembers, per packet id, a hash of topic and payload and the message's sequence
//! number. Each batch's entries are committed as one journal entry of the source (an outbox
//! journal row, in the same transaction as the records), so they are exactly as durable as what
//! they describe, and a commit costs one row, not one per message. A DUP message is a
//! redelivery when its packet id's entry has the same hash and is recent: a packet id is reused
//! by the broker only after our PUBACK arrived, and mosquitto hands them out in turn, so an
//! entry older than [`WINDOW`] messages belongs to an earlier use of the id. Journal entries
//! older than that are dropped as new ones are written.

use std::collections::HashMap;

use hearth_driver_api::JournalEntry;

/// How many messages back an entry may be and still be the original of a redelivery. Larger
/// than any receive window (≤ 65 535 unacknowledged messages).
pub const WINDOW: u64 = 65_536;

/// Bytes per journal entry: packet id (u16), hash (u64), sequence number (u64), little-endian.
const ENTRY: usize = 18;

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

/// What to do with an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it with this sequence number (and then acknowledge it).
    Store(u64),
    /// Already stored: acknowledge it only.
    AckOnly,
}

/// The ledger of one source.
#[derive(Debug)]
pub struct Ledger {
    journal: String,
    seq: u64,
    /// Packet id → (hash, sequence number) of its latest stored message, committed or about
    /// to be.
    known: HashMap<u16, (u64, u64)>,
    /// This batch's entries, for its journal entry.
    batch: Vec<u8>,
    batch_first: u64,
}

impl Ledger {
    /// A ledger for `source`, resuming after the committed sequence number `seq`, with the
    /// source's committed journal (oldest first).
    pub fn new(source: &str, seq: u64, journal: &[(i64, Vec<u8>)]) -> Self {
        let mut known = HashMap::new();
        for (_, entries) in journal {
            for e in entries.chunks_exact(ENTRY) {
                let pkid = u16::from_le_bytes([e[0], e[1]]);
                let mut h = [0u8; 8];
                h.copy_from_slice(&e[2..10]);
                let mut s = [0u8; 8];
                s.copy_from_slice(&e[10..18]);
                known.insert(pkid, (u64::from_le_bytes(h), u64::from_le_bytes(s)));
            }
        }
        Ledger {
            journal: Self::journal_key(source),
            seq,
            known,
            batch: Vec::new(),
            batch_first: seq + 1,
        }
    }

    /// The cursor key of the sequence number.
    pub fn seq_key(source: &str) -> String {
        format!("mqtt:{source}:seq")
    }

    /// The outbox journal holding the ledger of `source`.
    pub fn journal_key(source: &str) -> String {
        format!("mqtt:{source}")
    }

    /// The last sequence number handed out.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Decides about a message with packet id `pkid` (0 for QoS 0) and content `hash`.
    pub fn admit(&mut self, dup: bool, pkid: u16, hash: u64) -> Verdict {
        if dup
            && pkid != 0
            && self
                .known
                .get(&pkid)
                .is_some_and(|&(h, s)| h == hash && self.seq.saturating_sub(s) < WINDOW)
        {
            return Verdict::AckOnly;
        }
        self.seq += 1;
        if pkid != 0 {
            // QoS 1; QoS 0 has nothing to acknowledge and is never redelivered.
            self.known.insert(pkid, (hash, self.seq));
            self.batch.extend_from_slice(&pkid.to_le_bytes());
            self.batch.extend_from_slice(&hash.to_le_bytes());
            self.batch.extend_from_slice(&self.seq.to_le_bytes());
        }
        Verdict::Store(self.seq)
    }

    /// The journal entry of the batch admitted since the last call (None when it stored no
    /// QoS 1 message); it drops entries older than [`WINDOW`] messages.
    pub fn take_journal(&mut self) -> Option<JournalEntry> {
        let first = self.batch_first;
        self.batch_first = self.seq + 1;
        if self.batch.is_empty() {
            return None;
        }
        let keep_from = self.seq.saturating_sub(WINDOW);
        Some(JournalEntry {
            source: self.journal.clone(),
            seq: i64::try_from(first).unwrap_or(i64::MAX),
            entries: std::mem::take(&mut self.batch),
            keep_from: i64::try_from(keep_from).unwrap_or(i64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(l: &mut Ledger) -> Vec<(i64, Vec<u8>)> {
        l.take_journal()
            .map(|j| vec![(j.seq, j.entries)])
            .unwrap_or_default()
    }

    #[test]
    fn a_redelivery_of_a_committed_message_is_acknowledged_only() {
        let mut l = Ledger::new("z", 0, &[]);
        let h = content_hash("zigbee2mqtt/leak", b"{\"water_leak\":true}");
        assert_eq!(l.admit(false, 7, h), Verdict::Store(1));
        // Same process: remembered.
        assert_eq!(l.admit(true, 7, h), Verdict::AckOnly);
        let journal = committed(&mut l);
        assert_eq!(journal[0].0, 1);
        assert_eq!(journal[0].1.len(), ENTRY);
        // After a restart: the committed journal decides.
        let mut l = Ledger::new("z", 1, &journal);
        assert_eq!(l.admit(true, 7, h), Verdict::AckOnly);
        // Without the journal (the batch was never committed) it is stored.
        let mut l = Ledger::new("z", 0, &[]);
        assert_eq!(l.admit(true, 7, h), Verdict::Store(1));
    }

    #[test]
    fn a_reused_packet_id_with_other_content_is_a_new_message() {
        let mut l = Ledger::new("z", 0, &[]);
        l.admit(false, 5, content_hash("t", b"a"));
        assert_eq!(l.admit(true, 5, content_hash("t", b"b")), Verdict::Store(2));
    }

    #[test]
    fn an_entry_older_than_the_window_is_an_earlier_use_of_the_packet_id() {
        let h = content_hash("t", b"same");
        let mut l = Ledger::new("z", 0, &[]);
        l.admit(false, 9, h);
        let journal = committed(&mut l);
        let mut l = Ledger::new("z", WINDOW, &journal);
        assert_eq!(l.admit(true, 9, h), Verdict::AckOnly);
        let mut l = Ledger::new("z", WINDOW + 1, &journal);
        assert_eq!(l.admit(true, 9, h), Verdict::Store(WINDOW + 2));
    }

    #[test]
    fn journal_entries_cover_one_batch_and_drop_what_is_out_of_the_window() {
        let mut l = Ledger::new("z", 100_000, &[]);
        for p in 1..=3u16 {
            l.admit(false, p, u64::from(p));
        }
        let j = l.take_journal().unwrap();
        assert_eq!((j.source.as_str(), j.seq), ("mqtt:z", 100_001));
        assert_eq!(j.entries.len(), 3 * ENTRY);
        assert_eq!(j.keep_from, i64::try_from(100_003 - WINDOW).unwrap());
        assert_eq!(l.take_journal(), None, "nothing admitted since");
        l.admit(false, 0, 1); // QoS 0: a sequence number, no entry
        assert_eq!(l.take_journal(), None);
        l.admit(false, 4, 4);
        assert_eq!(l.take_journal().unwrap().seq, 100_005);
    }

    #[test]
    fn the_newest_entry_of_a_packet_id_wins_on_restore() {
        let mut l = Ledger::new("z", 0, &[]);
        l.admit(false, 1, 10);
        let mut journal = committed(&mut l);
        l.admit(false, 1, 20);
        journal.extend(committed(&mut l));
        let mut l = Ledger::new("z", 2, &journal);
        assert_eq!(l.admit(true, 1, 20), Verdict::AckOnly);
        assert_eq!(l.admit(true, 1, 10), Verdict::Store(3));
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: entries written by one build are read by the next.
        assert_eq!(content_hash("", b""), 0xaf63_bd4c_8601_b7df);
        assert_ne!(content_hash("ab", b"c"), content_hash("a", b"bc"));
    }
}
