//! MLLP framing (HL7 v2 Appendix C, minimal lower layer protocol), sans-I/O.
//!
//! A frame is `0x0B` + message + `0x1C 0x0D`. [`frame`] builds one; [`Deframer`] takes bytes in
//! whatever chunks the connection delivers and yields complete frames.
//!
//! [`Deframer::next_frame`] returns `None` while a frame is still incomplete (read more bytes),
//! `Some(Ok(payload))` for a complete frame, and `Some(Err(_))` for malformed input — bytes
//! outside a frame, a `0x1C` not followed by `0x0D`, a `0x0B` inside a frame, or a frame longer
//! than the configured maximum. After an error it resynchronises on the next `0x0B`, so one bad
//! frame does not poison the connection; the caller decides whether to drop the connection.
//! It never holds more than `max_len` + 1 bytes of an unfinished frame plus the bytes pushed
//! since the last call, and never panics (tests `tests/mllp.rs`:
//! `arbitrary_chunking_yields_the_same_frames`, `arbitrary_bytes_never_panic_and_stay_bounded`).

use crate::Message;

/// Start block.
pub const SB: u8 = 0x0B;
/// End block.
pub const EB: u8 = 0x1C;
/// Carriage return that ends a frame after [`EB`].
pub const CR: u8 = 0x0D;
/// Default largest accepted payload: 1 MiB (an ACK is a few hundred bytes).
pub const DEFAULT_MAX_LEN: usize = 1 << 20;

/// Frame a message for MLLP.
pub fn frame(message: &Message) -> Vec<u8> {
    frame_bytes(message.as_bytes())
}

/// Frame raw payload bytes for MLLP.
pub fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 3);
    v.push(SB);
    v.extend_from_slice(payload);
    v.push(EB);
    v.push(CR);
    v
}

/// Malformed MLLP input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeframeError {
    /// Bytes between frames (not a start block).
    #[error("{count} byte(s) outside an MLLP frame (expected 0x0B), first 0x{first:02X}")]
    OutsideFrame {
        /// How many contiguous bytes were skipped.
        count: usize,
        /// The first of them.
        first: u8,
    },
    /// An end block `0x1C` followed by something other than `0x0D`.
    #[error("MLLP end block 0x1C followed by 0x{found:02X} instead of 0x0D; frame dropped")]
    BadTrailer {
        /// The byte after the end block.
        found: u8,
    },
    /// A start block inside a frame: the previous frame never ended.
    #[error(
        "MLLP start block inside a frame after {dropped} byte(s); the unfinished frame was dropped"
    )]
    UnexpectedStart {
        /// Bytes of the unfinished frame.
        dropped: usize,
    },
    /// The frame grew beyond the maximum; it is skipped up to its end block.
    #[error("MLLP frame longer than {max} bytes; skipped")]
    Oversize {
        /// The configured maximum.
        max: usize,
    },
    /// The input ended inside a frame ([`Deframer::finish`]).
    #[error("input ended inside an MLLP frame after {len} byte(s)")]
    Truncated {
        /// Bytes of the unfinished frame.
        len: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// After a start block; `frame` holds the payload so far.
    InFrame,
    /// Skipping an oversize frame up to its end.
    Discarding,
}

/// Incremental MLLP deframer.
#[derive(Debug, Clone)]
pub struct Deframer {
    max_len: usize,
    state: State,
    input: Vec<u8>,
    pos: usize,
    frame: Vec<u8>,
    /// Discarding: the previous byte was an end block.
    after_eb: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LEN)
    }
}

impl Deframer {
    /// A deframer accepting payloads of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            state: State::Idle,
            input: Vec::new(),
            pos: 0,
            frame: Vec::new(),
            after_eb: false,
        }
    }

    /// Add bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Whether a frame has started and not ended (or an oversize one is being skipped).
    pub fn in_frame(&self) -> bool {
        self.state != State::Idle
    }

    /// Bytes buffered (unprocessed input plus the unfinished frame).
    pub fn buffered(&self) -> usize {
        self.input.len() - self.pos + self.frame.len()
    }

    /// The input ended (connection closed): an error if it ended inside a frame.
    pub fn finish(&mut self) -> Result<(), DeframeError> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let len = self.frame.len();
        self.frame.clear();
        self.input.clear();
        self.pos = 0;
        match state {
            State::Idle => Ok(()),
            State::InFrame | State::Discarding => Err(DeframeError::Truncated { len }),
        }
    }

    /// The next complete frame's payload, an error for malformed input, or `None` when more
    /// bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, DeframeError>> {
        loop {
            let rest = self.input.get(self.pos..).unwrap_or(&[]);
            let &b = rest.first()?;
            match self.state {
                State::Idle => {
                    if b == SB {
                        self.pos += 1;
                        self.state = State::InFrame;
                        self.frame.clear();
                        continue;
                    }
                    let count = rest.iter().position(|&x| x == SB).unwrap_or(rest.len());
                    self.pos += count;
                    return Some(Err(DeframeError::OutsideFrame { count, first: b }));
                }
                State::InFrame => {
                    // Copy payload bytes up to the next control byte of interest.
                    let stop = rest.iter().position(|&x| x == EB || x == SB);
                    let take = stop.unwrap_or(rest.len());
                    let room = self.max_len.saturating_sub(self.frame.len());
                    if take > room {
                        self.pos += take;
                        self.frame.clear();
                        self.state = State::Discarding;
                        self.after_eb = false;
                        return Some(Err(DeframeError::Oversize { max: self.max_len }));
                    }
                    self.frame
                        .extend_from_slice(rest.get(..take).unwrap_or(&[]));
                    self.pos += take;
                    // No control byte yet: the frame continues in a later chunk.
                    let i = stop?;
                    let ctl = rest.get(i).copied();
                    if ctl == Some(SB) {
                        let dropped = self.frame.len();
                        self.frame.clear();
                        self.state = State::Idle;
                        return Some(Err(DeframeError::UnexpectedStart { dropped }));
                    }
                    // End block: need the byte after it.
                    let after = rest.get(i + 1).copied()?;
                    self.state = State::Idle;
                    if after == CR {
                        self.pos += 2;
                        return Some(Ok(std::mem::take(&mut self.frame)));
                    }
                    // Consume the wrong byte too, unless it starts the next frame.
                    self.pos += if after == SB { 1 } else { 2 };
                    self.frame.clear();
                    return Some(Err(DeframeError::BadTrailer { found: after }));
                }
                State::Discarding => {
                    for (i, &x) in rest.iter().enumerate() {
                        if self.after_eb && x == CR {
                            self.pos += i + 1;
                            self.state = State::Idle;
                            self.after_eb = false;
                            break;
                        }
                        if x == SB {
                            self.pos += i;
                            self.state = State::Idle;
                            self.after_eb = false;
                            break;
                        }
                        self.after_eb = x == EB;
                    }
                    if self.state == State::Discarding {
                        self.pos = self.input.len();
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Deframer) -> Vec<Result<Vec<u8>, DeframeError>> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn whole_and_split_frames() {
        let mut d = Deframer::default();
        let mut bytes = frame_bytes(b"MSH|a");
        bytes.extend(frame_bytes(b"MSH|b"));
        let (a, b) = bytes.split_at(9);
        d.push(a);
        assert_eq!(all(&mut d), vec![Ok(b"MSH|a".to_vec())]);
        assert!(d.in_frame());
        d.push(b);
        assert_eq!(all(&mut d), vec![Ok(b"MSH|b".to_vec())]);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn end_block_split_from_its_carriage_return_waits() {
        let mut d = Deframer::default();
        d.push(&[SB, b'x', EB]);
        assert_eq!(d.next_frame(), None);
        d.push(&[CR]);
        assert_eq!(d.next_frame(), Some(Ok(b"x".to_vec())));
    }

    #[test]
    fn malformed_input_is_reported_and_resynchronised() {
        let mut d = Deframer::new(4);
        d.push(b"junk");
        d.push(&[SB, b'a', EB, b'!', SB, b'1', b'2', b'3', b'4', b'5', EB, CR]);
        d.push(&[SB, b'p', SB, b'o', b'k', EB, CR]);
        assert_eq!(
            all(&mut d),
            vec![
                Err(DeframeError::OutsideFrame {
                    count: 4,
                    first: b'j'
                }),
                Err(DeframeError::BadTrailer { found: b'!' }),
                Err(DeframeError::Oversize { max: 4 }),
                Err(DeframeError::UnexpectedStart { dropped: 1 }),
                Ok(b"ok".to_vec()),
            ]
        );
    }

    #[test]
    fn truncated_input_is_an_error_at_finish() {
        let mut d = Deframer::default();
        d.push(&[SB, b'a', b'b']);
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.finish(), Err(DeframeError::Truncated { len: 2 }));
    }
}
