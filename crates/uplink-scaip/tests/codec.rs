//! Property tests of the SCAIP codec: what we generate, we (and a centre) read back exactly;
//! nothing a centre sends makes the parser panic (ARCHITECTURE invariant 6).
#![allow(clippy::unwrap_used)]

use hearth_uplink_scaip::xml::{Geo, MessageType, Mrq, Mrs, Ref, Snu};
use proptest::prelude::*;

fn reference() -> impl Strategy<Value = Ref> {
    "[A-Za-z0-9]{1,16}".prop_map(|s| Ref::new(&s).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    // Printable text with XML's special characters and non-ASCII letters, no blanks at the
    // ends (the parser trims), at most the 32 characters a text field may have.
    "[a-zA-Z0-9&<>]([a-zA-Z0-9æøåÆØÅ&<>\"' ]{0,29}[a-zA-Z0-9&<>])?".prop_map(|s| s)
}

fn mrq() -> impl Strategy<Value = Mrq> {
    (
        reference(),
        prop_oneof![
            Just(MessageType::Event),
            Just(MessageType::Reset),
            Just(MessageType::Information),
            Just(MessageType::Heartbeat)
        ],
        "[0-9]{1,32}",
        0u16..10000,
        proptest::option::of(0u16..1000),
        proptest::option::of(text()),
        proptest::collection::vec("sip:[a-z0-9]{1,10}@[a-z]{1,8}\\.no", 0..3),
        proptest::option::of(0u16..1000),
        proptest::option::of(0u16..1000),
        any::<bool>(),
        proptest::option::of(("[0-9.,]{1,20}", "[0-9T:+-]{1,25}")),
    )
        .prop_map(
            |(r, mty, cid, dty, dco, dte, crd, stc, lco, hbo, geo)| Mrq {
                reference: Some(r),
                message_type: mty,
                caller_id: cid,
                device_type: dty,
                component: dco,
                device_text: dte,
                callers: crd,
                status: stc,
                location: lco,
                heartbeat_offer: hbo,
                geo: geo.map(|(p, t)| Geo {
                    position: Some(p),
                    time: Some(t),
                    gga: None,
                }),
                ..Mrq::default()
            },
        )
}

proptest! {
    #[test]
    fn every_request_we_generate_reads_back_the_same(m in mrq()) {
        let xml = m.to_xml().unwrap();
        prop_assert!(xml.len() < 1000, "bodies stay under 1000 bytes (TR §7.6): {}", xml.len());
        prop_assert_eq!(Mrq::parse(xml.as_bytes()).unwrap(), m);
    }

    #[test]
    fn every_response_reads_back_the_same(
        r in reference(),
        snu in 0u16..100,
        mre in proptest::option::of(0u8..4),
        cre in proptest::option::of(1u8..63),
        hbi in proptest::option::of(1u16..1441),
    ) {
        let mut m = Mrs::new(r, Snu::from_code(snu));
        m.voice_mode = mre;
        m.call_mode = cre;
        m.heartbeat_minutes = hbi;
        prop_assert_eq!(Mrs::parse(m.to_xml().as_bytes()).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Mrs::parse(&bytes);
        let _ = Mrq::parse(&bytes);
    }

    #[test]
    fn arbitrary_mrs_shaped_text_never_panics(
        inner in proptest::collection::vec(
            prop_oneof![
                "<ref>[A-Za-z0-9-]{0,20}</ref>",
                "<snu>[0-9a-z ]{0,6}</snu>",
                "<hbi>[0-9-]{0,6}</hbi>",
                "<mre>[0-9]{0,4}</mre>",
                "<cre>[0-9]{0,4}</cre>",
                "<x>[<>&;a-z]{0,5}</x>",
                "&[a-z#0-9]{0,6};",
            ],
            0..8,
        )
    ) {
        let body = format!("<mrs>{}</mrs>", inner.concat());
        let _ = Mrs::parse(body.as_bytes());
    }
}

#[test]
fn a_huge_body_is_refused_before_parsing() {
    let body = format!("<mrs>{}</mrs>", "x".repeat(70_000));
    assert!(Mrs::parse(body.as_bytes()).is_err());
}

#[test]
fn entity_expansion_is_refused() {
    // A "billion laughs" document: roxmltree refuses entity definitions beyond its limits.
    let body = "<!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">]><mrs><ref>&g;</ref><snu>0</snu></mrs>";
    assert!(Mrs::parse(body.as_bytes()).is_err());
}
