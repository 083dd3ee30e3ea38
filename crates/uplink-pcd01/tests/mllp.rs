//! MLLP deframer properties: arbitrary chunking, arbitrary bytes, bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_uplink_pcd01::mllp::{CR, EB, SB, frame_bytes};
use hearth_uplink_pcd01::{DeframeError, Deframer};
use proptest::prelude::*;

/// Payloads never contain the MLLP control bytes (an encoded message cannot: `escape` hex-escapes
/// every control character).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no MLLP control byte", |b| ![SB, EB].contains(b)),
        0..200,
    )
}

fn split_at_cuts(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out.push(bytes[start..].to_vec());
    out
}

proptest! {
    #[test]
    fn arbitrary_chunking_yields_the_same_frames(
        payloads in prop::collection::vec(payload(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame_bytes(p)).collect();
        let mut d = Deframer::new(1024);
        let mut got = Vec::new();
        for chunk in split_at_cuts(&stream, &cuts) {
            d.push(&chunk);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
        }
        let want: Vec<Result<Vec<u8>, DeframeError>> = payloads.into_iter().map(Ok).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        chunks in prop::collection::vec(
            prop::collection::vec(prop_oneof![Just(SB), Just(EB), Just(CR), any::<u8>()], 0..64),
            0..32,
        ),
        max in 0usize..48,
    ) {
        let mut d = Deframer::new(max);
        for chunk in &chunks {
            d.push(chunk);
            while let Some(f) = d.next_frame() {
                if let Ok(frame) = f {
                    prop_assert!(frame.len() <= max);
                    prop_assert!(!frame.contains(&SB) && !frame.contains(&EB));
                }
            }
            // After draining, only an unfinished frame (≤ max) is kept.
            prop_assert!(d.buffered() <= max + 1, "buffered {} > max {}", d.buffered(), max);
        }
        let _ = d.finish();
    }

    /// A valid frame after any garbage is still found (resynchronisation).
    #[test]
    fn a_frame_after_garbage_is_recovered(
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        p in payload(),
    ) {
        let mut d = Deframer::new(1024);
        d.push(&garbage);
        // Close whatever the garbage may have opened, then send a real frame.
        d.push(&[EB, CR]);
        d.push(&frame_bytes(&p));
        let frames: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
        prop_assert_eq!(frames.last(), Some(&Ok(p)));
    }
}

#[test]
fn oversize_frames_are_reported_and_skipped() {
    let mut d = Deframer::new(3);
    d.push(&frame_bytes(b"toolong"));
    d.push(&frame_bytes(b"ok"));
    let got: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
    assert_eq!(
        got,
        vec![Err(DeframeError::Oversize { max: 3 }), Ok(b"ok".to_vec())]
    );
}

#[test]
fn framing_a_message_round_trips() {
    let bytes = b"MSH|^~\\&|X\rMSA|AA|1\r";
    let framed = frame_bytes(bytes);
    assert_eq!(framed[0], SB);
    assert_eq!(&framed[framed.len() - 2..], &[EB, CR]);
    let mut d = Deframer::default();
    d.push(&framed);
    assert_eq!(d.next_frame(), Some(Ok(bytes.to_vec())));
    assert_eq!(d.next_frame(), None);
}
