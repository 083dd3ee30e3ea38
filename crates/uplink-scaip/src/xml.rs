//! The SCAIP body: `<mrq>` (our request) and `<mrs>` (the centre's response), SS 91100 §6.2/§6.3
//! as paraphrased in `../shared/reference/scaip.md`.
//!
//! Generation is strict: elements in the order of the standard's tables, codes zero-padded to
//! the widths of the standard's examples, texts cut to their limits on character boundaries,
//! XML-escaped, no declaration and no namespace (as the examples of §9.1 and the public
//! simulators send). Parsing is lenient where the field is lenient: unpadded codes (`stc`=`1`),
//! any namespace or prefix, an XML declaration, whitespace, unknown elements (later versions
//! add tags) — and strict where a wrong answer would be dangerous: a response without `ref`
//! or `snu`, or with a `snu` that is not a number, is an error, never "OK".

use std::fmt::Write as _;

/// The content type SCAIP bodies travel with (SS 91100 §9.1), over SIP and over HTTPS.
pub const CONTENT_TYPE: &str = "application/scaip+xml";

/// The most characters a `ref` may have.
pub const REF_MAX: usize = 16;
/// The most bytes a body we accept may have (a SCAIP body is well under 1300 bytes; a far
/// larger one is garbage or an attack, and parsing it is not worth the memory).
pub const BODY_MAX: usize = 64 * 1024;

/// Why a body is not a SCAIP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The body is larger than [`BODY_MAX`].
    #[error("SCAIP body of {0} bytes is larger than the {BODY_MAX} bytes accepted")]
    TooLarge(usize),
    /// Not well-formed XML (or not UTF-8).
    #[error("SCAIP body is not well-formed XML: {0}")]
    NotXml(String),
    /// The root element is not the one expected.
    #[error("SCAIP body has root <{found}>, expected <{expected}>")]
    WrongRoot {
        /// What we wanted.
        expected: &'static str,
        /// What came.
        found: String,
    },
    /// A mandatory element is missing.
    #[error("SCAIP <{message}> lacks the mandatory <{tag}>")]
    Missing {
        /// `mrq` or `mrs`.
        message: &'static str,
        /// The element.
        tag: &'static str,
    },
    /// An element has a value that does not fit its type.
    #[error("SCAIP <{tag}> has an invalid value {value:?}: {why}")]
    Invalid {
        /// The element.
        tag: &'static str,
        /// The value (codes and references only; never personal text).
        value: String,
        /// What is expected.
        why: &'static str,
    },
}

/// `mty`: what a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    /// `ME`: a new event (the default when `mty` is omitted).
    #[default]
    Event,
    /// `RE`: reset — the sender gives up on this `ref` (no answer in time) and acts otherwise.
    Reset,
    /// `IN`: new information about an event already sent (same `ref`).
    Information,
    /// `PI`: heartbeat.
    Heartbeat,
}

impl MessageType {
    /// The two-letter code.
    pub const fn code(self) -> &'static str {
        match self {
            MessageType::Event => "ME",
            MessageType::Reset => "RE",
            MessageType::Information => "IN",
            MessageType::Heartbeat => "PI",
        }
    }

    fn parse(s: &str) -> Result<Self, XmlError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ME" => Ok(MessageType::Event),
            "RE" => Ok(MessageType::Reset),
            "IN" => Ok(MessageType::Information),
            "PI" => Ok(MessageType::Heartbeat),
            _ => Err(XmlError::Invalid {
                tag: "mty",
                value: s.chars().take(8).collect(),
                why: "expected ME, RE, IN or PI",
            }),
        }
    }
}

/// A request reference: 1–16 of `[A-Za-z0-9]`, new for each event and kept for its resends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(String);

impl Ref {
    /// Check a reference.
    pub fn new(s: &str) -> Result<Self, XmlError> {
        let s = s.trim();
        if s.is_empty() || s.len() > REF_MAX || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(XmlError::Invalid {
                tag: "ref",
                value: s.chars().take(20).collect(),
                why: "expected 1 to 16 characters of A-Z, a-z, 0-9",
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// A reference built from the right alphabet and length by construction.
    pub(crate) fn trusted(s: String) -> Self {
        debug_assert!(Self::new(&s).is_ok());
        Self(s)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `lge`: where a mobile device is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Geo {
    /// `geo`: `lat,lon` in decimal degrees.
    pub position: Option<String>,
    /// `tim`: when the position was taken (`YYYY-MM-DDThh:mm:ss+01`).
    pub time: Option<String>,
    /// `gga`: an NMEA GGA sentence.
    pub gga: Option<String>,
}

/// `<mrq>`: a request from the local unit (us) to the centre.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mrq {
    /// `ref` (mandatory).
    pub reference: Option<Ref>,
    /// `ver`, e.g. `01.00`.
    pub version: Option<String>,
    /// `sco`: 0 local unit, 1–3 grouped equipment.
    pub scope: Option<u8>,
    /// `cha`: 1 when a callback is requested.
    pub callback: Option<u8>,
    /// `mty`.
    pub message_type: MessageType,
    /// `hbo`=`001`: the centre may set our heartbeat interval.
    pub heartbeat_offer: bool,
    /// `cid` (mandatory): the account, 1–32 digits.
    pub caller_id: String,
    /// `dty` (mandatory): device type.
    pub device_type: u16,
    /// `did`: device id, 1–16 ASCII characters.
    pub device_id: Option<String>,
    /// `dco`: device component (button 1–5 = 002–006).
    pub component: Option<u16>,
    /// `dte`: device text, ≤ 32 characters.
    pub device_text: Option<String>,
    /// `stt`: status text, ≤ 32 characters.
    pub status_text: Option<String>,
    /// `lte`: location text, ≤ 32 characters.
    pub location_text: Option<String>,
    /// `crd`: how the centre reaches us, once per medium (`sip:…`, `gsm:+47…`, `no-voice:`).
    pub callers: Vec<String>,
    /// `stc`: status code; `None` means alarm.
    pub status: Option<u16>,
    /// `pri`: priority 0–9.
    pub priority: Option<u8>,
    /// `lco`: location code.
    pub location: Option<u16>,
    /// `lva`: location value.
    pub location_value: Option<String>,
    /// `lge`: geographic position.
    pub geo: Option<Geo>,
    /// `ico`: information code.
    pub info_code: Option<u16>,
    /// `ite`: information text, ≤ 128 characters.
    pub info_text: Option<String>,
}

/// `snu`: the centre's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Snu {
    /// 0: OK, the event is handled.
    Ok,
    /// 4: hold; resend the same request after 5–20 s.
    Hold,
    /// 5: not treated; take the next action (the alternative receiver).
    NotTreated,
    /// 6: busy; take the next action.
    Busy,
    /// Any other number: an error in our message or at the centre (1 too long, 2 invalid
    /// format, 3 wrong data, 7 missing tag, 10 no ref, 99 other).
    Error(u16),
}

impl Snu {
    /// The number.
    pub const fn code(self) -> u16 {
        match self {
            Snu::Ok => 0,
            Snu::Hold => 4,
            Snu::NotTreated => 5,
            Snu::Busy => 6,
            Snu::Error(n) => n,
        }
    }

    /// From the number.
    pub const fn from_code(n: u16) -> Self {
        match n {
            0 => Snu::Ok,
            4 => Snu::Hold,
            5 => Snu::NotTreated,
            6 => Snu::Busy,
            n => Snu::Error(n),
        }
    }
}

/// `<mrs>`: the centre's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrs {
    /// `ref`, copied from the request.
    pub reference: Ref,
    /// `snu`.
    pub status: Snu,
    /// `ste`: status text.
    pub status_text: Option<String>,
    /// `cve`: the version to use.
    pub version: Option<String>,
    /// `mre`: voice mode (0 none, 1 duplex, 2 microphone only, 3 speaker only).
    pub voice_mode: Option<u8>,
    /// `cre`: 1–60 callback within that many minutes (auto-answer), 61 call the predefined
    /// receiver, 62 call `tnu`.
    pub call_mode: Option<u8>,
    /// `tnu`: the number to call.
    pub transfer_number: Option<String>,
    /// `hbi`: heartbeat interval in minutes, 1–1440.
    pub heartbeat_minutes: Option<u16>,
}

impl Mrs {
    /// A response with only `ref` and `snu`.
    pub fn new(reference: Ref, status: Snu) -> Self {
        Self {
            reference,
            status,
            status_text: None,
            version: None,
            voice_mode: None,
            call_mode: None,
            transfer_number: None,
            heartbeat_minutes: None,
        }
    }
}

/// Write `<tag>text</tag>`, escaped.
fn element(out: &mut String, tag: &str, text: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

fn code(out: &mut String, tag: &str, width: usize, n: u16) {
    let _ = write!(out, "<{tag}>{n:0width$}</{tag}>");
}

/// At most `max` characters of `s` (never splitting a character), so a long device name never
/// makes the centre answer "too long".
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 text; drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

impl Mrq {
    /// The body, strictly: the standard's element order, zero-padded codes (`dty` 4 digits,
    /// `stc`, `dco`, `lco`, `ico` 3 — the widths of the standard's and the simulators'
    /// examples), texts cut to their limits. A request without a `ref` is an error.
    pub fn to_xml(&self) -> Result<String, XmlError> {
        let reference = self.reference.as_ref().ok_or(XmlError::Missing {
            message: "mrq",
            tag: "ref",
        })?;
        let cid = self.caller_id.trim();
        if cid.is_empty() || cid.len() > 32 || !cid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(XmlError::Invalid {
                tag: "cid",
                value: cid.chars().take(40).collect(),
                why: "expected 1 to 32 digits (the centre's account number for this home)",
            });
        }
        let mut out = String::with_capacity(256);
        out.push_str("<mrq>");
        element(&mut out, "ref", reference.as_str());
        if let Some(v) = &self.version {
            element(&mut out, "ver", cut(v, 5));
        }
        if let Some(v) = self.scope {
            let _ = write!(out, "<sco>{}</sco>", v.min(9));
        }
        if let Some(v) = self.callback {
            let _ = write!(out, "<cha>{}</cha>", v.min(9));
        }
        if self.message_type != MessageType::Event {
            element(&mut out, "mty", self.message_type.code());
        }
        if self.heartbeat_offer {
            element(&mut out, "hbo", "001");
        }
        element(&mut out, "cid", cid);
        code(&mut out, "dty", 4, self.device_type);
        if let Some(v) = &self.device_id {
            let ascii: String = v.chars().filter(|c| c.is_ascii_graphic()).collect();
            element(&mut out, "did", cut(&ascii, 16));
        }
        if let Some(v) = self.component {
            code(&mut out, "dco", 3, v);
        }
        for (tag, text) in [
            ("dte", &self.device_text),
            ("stt", &self.status_text),
            ("lte", &self.location_text),
        ] {
            if let Some(t) = text {
                element(&mut out, tag, cut(t, 32));
            }
        }
        for c in &self.callers {
            element(&mut out, "crd", cut(c, 64));
        }
        if let Some(v) = self.status {
            code(&mut out, "stc", 3, v);
        }
        if let Some(v) = self.priority {
            let _ = write!(out, "<pri>{}</pri>", v.min(9));
        }
        if let Some(v) = self.location {
            code(&mut out, "lco", 3, v);
        }
        if let Some(v) = &self.location_value {
            element(&mut out, "lva", cut(v, 32));
        }
        if let Some(g) = &self.geo {
            out.push_str("<lge>");
            for (tag, text) in [("geo", &g.position), ("tim", &g.time), ("gga", &g.gga)] {
                if let Some(t) = text {
                    element(&mut out, tag, cut(t, 96));
                }
            }
            out.push_str("</lge>");
        }
        if let Some(v) = self.info_code {
            code(&mut out, "ico", 3, v);
        }
        if let Some(v) = &self.info_text {
            element(&mut out, "ite", cut(v, 128));
        }
        out.push_str("</mrq>");
        Ok(out)
    }

    /// Parse a request (the centre's side: our reference receiver, tests). Lenient like
    /// [`Mrs::parse`]: unpadded codes, namespaces and unknown elements are accepted.
    pub fn parse(body: &[u8]) -> Result<Self, XmlError> {
        let text = as_text(body)?;
        let doc = roxmltree::Document::parse(text).map_err(|e| XmlError::NotXml(e.to_string()))?;
        let root = root_named(&doc, "mrq")?;
        let mut m = Mrq::default();
        for child in root.children().filter(|n| n.is_element()) {
            let tag = child.tag_name().name();
            let value = || child.text().unwrap_or("").trim().to_owned();
            match tag {
                "ref" => m.reference = Some(Ref::new(&value())?),
                "ver" => m.version = Some(value()),
                "sco" => m.scope = Some(number(&value(), "sco")?),
                "cha" => m.callback = Some(number(&value(), "cha")?),
                "mty" => m.message_type = MessageType::parse(&value())?,
                "hbo" => m.heartbeat_offer = number::<u16>(&value(), "hbo")? == 1,
                "cid" => m.caller_id = value(),
                "dty" => m.device_type = number(&value(), "dty")?,
                "did" => m.device_id = Some(value()),
                "dco" => m.component = Some(number(&value(), "dco")?),
                "dte" => m.device_text = Some(value()),
                "stt" => m.status_text = Some(value()),
                "lte" => m.location_text = Some(value()),
                "crd" => m.callers.push(value()),
                "stc" => m.status = Some(number(&value(), "stc")?),
                "pri" => m.priority = Some(number(&value(), "pri")?),
                "lco" => m.location = Some(number(&value(), "lco")?),
                "lva" => m.location_value = Some(value()),
                "ico" => m.info_code = Some(number(&value(), "ico")?),
                "ite" => m.info_text = Some(value()),
                "lge" => {
                    let mut g = Geo::default();
                    for n in child.children().filter(|n| n.is_element()) {
                        let v = Some(n.text().unwrap_or("").trim().to_owned());
                        match n.tag_name().name() {
                            "geo" => g.position = v,
                            "tim" => g.time = v,
                            "gga" => g.gga = v,
                            _ => {}
                        }
                    }
                    m.geo = Some(g);
                }
                _ => {}
            }
        }
        if m.reference.is_none() {
            return Err(XmlError::Missing {
                message: "mrq",
                tag: "ref",
            });
        }
        if m.caller_id.is_empty() {
            return Err(XmlError::Missing {
                message: "mrq",
                tag: "cid",
            });
        }
        if !root.children().any(|n| n.has_tag_name("dty")) {
            return Err(XmlError::Missing {
                message: "mrq",
                tag: "dty",
            });
        }
        Ok(m)
    }
}

impl Mrs {
    /// The body, strictly (the reference receiver's answers).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("<mrs>");
        element(&mut out, "ref", self.reference.as_str());
        let _ = write!(out, "<snu>{}</snu>", self.status.code());
        if let Some(t) = &self.status_text {
            element(&mut out, "ste", cut(t, 128));
        }
        if let Some(v) = &self.version {
            element(&mut out, "cve", cut(v, 5));
        }
        if let Some(v) = self.voice_mode {
            let _ = write!(out, "<mre>{v}</mre>");
        }
        if let Some(v) = self.call_mode {
            let _ = write!(out, "<cre>{v:02}</cre>");
        }
        if let Some(v) = &self.transfer_number {
            element(&mut out, "tnu", cut(v, 64));
        }
        if let Some(v) = self.heartbeat_minutes {
            let _ = write!(out, "<hbi>{v}</hbi>");
        }
        out.push_str("</mrs>");
        out
    }

    /// Parse the centre's response, leniently in form and strictly in meaning: `ref` and a
    /// numeric `snu` are required; unpadded numbers, namespaces, a declaration and unknown
    /// elements are fine; an out-of-range `hbi` is ignored (the interval stays) rather than
    /// failing the whole answer.
    pub fn parse(body: &[u8]) -> Result<Self, XmlError> {
        let text = as_text(body)?;
        let doc = roxmltree::Document::parse(text).map_err(|e| XmlError::NotXml(e.to_string()))?;
        let root = root_named(&doc, "mrs")?;
        let mut reference = None;
        let mut status = None;
        let mut m = Mrs::new(Ref(String::new()), Snu::Ok);
        for child in root.children().filter(|n| n.is_element()) {
            let value = child.text().unwrap_or("").trim().to_owned();
            match child.tag_name().name() {
                "ref" => reference = Some(Ref::new(&value)?),
                "snu" => status = Some(Snu::from_code(number(&value, "snu")?)),
                "ste" => m.status_text = Some(value),
                "cve" => m.version = Some(value),
                "mre" => m.voice_mode = Some(number(&value, "mre")?),
                "cre" => m.call_mode = Some(number(&value, "cre")?),
                "tnu" => m.transfer_number = Some(value),
                "hbi" => {
                    m.heartbeat_minutes = number::<u16>(&value, "hbi")
                        .ok()
                        .filter(|n| (1..=1440).contains(n))
                }
                _ => {}
            }
        }
        m.reference = reference.ok_or(XmlError::Missing {
            message: "mrs",
            tag: "ref",
        })?;
        m.status = status.ok_or(XmlError::Missing {
            message: "mrs",
            tag: "snu",
        })?;
        Ok(m)
    }
}

fn as_text(body: &[u8]) -> Result<&str, XmlError> {
    if body.len() > BODY_MAX {
        return Err(XmlError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|e| XmlError::NotXml(e.to_string()))?;
    // A byte-order mark is allowed before the document.
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn root_named<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    expected: &'static str,
) -> Result<roxmltree::Node<'a, 'i>, XmlError> {
    let root = doc.root_element();
    // Any namespace or prefix: the informative schema's namespace is not used in practice.
    if root.tag_name().name().eq_ignore_ascii_case(expected) {
        Ok(root)
    } else {
        Err(XmlError::WrongRoot {
            expected,
            found: root.tag_name().name().chars().take(32).collect(),
        })
    }
}

/// A code or number, leniently: surrounding blanks and leading zeros (or their absence) are
/// fine; anything else is an error naming the element.
fn number<T: std::str::FromStr>(s: &str, tag: &'static str) -> Result<T, XmlError> {
    s.trim().parse().map_err(|_| XmlError::Invalid {
        tag,
        value: s.chars().take(16).collect(),
        why: "expected a number",
    })
}

/// Which root a body has, without parsing it fully (`mrq` or `mrs`), so an inbound message
/// can be routed.
pub fn root_of(body: &[u8]) -> Option<&'static str> {
    let text = as_text(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    match doc.root_element().tag_name().name() {
        n if n.eq_ignore_ascii_case("mrq") => Some("mrq"),
        n if n.eq_ignore_ascii_case("mrs") => Some("mrs"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn alarm() -> Mrq {
        Mrq {
            reference: Some(Ref::new("1234").unwrap()),
            caller_id: "123456".into(),
            device_type: 1,
            status: Some(1),
            ..Mrq::default()
        }
    }

    #[test]
    fn the_standards_example_is_generated_byte_for_byte() {
        assert_eq!(
            alarm().to_xml().unwrap(),
            "<mrq><ref>1234</ref><cid>123456</cid><dty>0001</dty><stc>001</stc></mrq>"
        );
    }

    #[test]
    fn unpadded_codes_namespaces_and_declarations_are_read() {
        let m = Mrq::parse(
            b"<?xml version=\"1.0\"?>\n<s:mrq xmlns:s=\"http://www.hi.se/2012/XScaipXML\">\
              <s:ref>A1</s:ref><s:cid> 42 </s:cid><s:dty>2</s:dty><s:stc>102</s:stc>\
              <s:future>x</s:future></s:mrq>",
        )
        .unwrap();
        assert_eq!(m.device_type, 2);
        assert_eq!(m.status, Some(102));
        assert_eq!(m.caller_id, "42");
        let r = Mrs::parse(b"<mrs><ref>A1</ref><snu> 00 </snu><hbi>5</hbi></mrs>").unwrap();
        assert_eq!(r.status, Snu::Ok);
        assert_eq!(r.heartbeat_minutes, Some(5));
    }

    #[test]
    fn an_answer_without_ref_or_snu_is_never_ok() {
        assert!(matches!(
            Mrs::parse(b"<mrs><snu>0</snu></mrs>"),
            Err(XmlError::Missing { tag: "ref", .. })
        ));
        assert!(matches!(
            Mrs::parse(b"<mrs><ref>1</ref></mrs>"),
            Err(XmlError::Missing { tag: "snu", .. })
        ));
        assert!(matches!(
            Mrs::parse(b"<mrs><ref>1</ref><snu>ok</snu></mrs>"),
            Err(XmlError::Invalid { tag: "snu", .. })
        ));
        assert!(matches!(
            Mrs::parse(b"<mrq><ref>1</ref><snu>0</snu></mrq>"),
            Err(XmlError::WrongRoot { .. })
        ));
        assert!(matches!(
            Mrs::parse(b"<mrs><ref>1</ref>"),
            Err(XmlError::NotXml(_))
        ));
    }

    #[test]
    fn texts_are_escaped_and_cut_on_character_boundaries() {
        let mut m = alarm();
        m.device_text = Some("Bad & <kjøkken> \"dør\" ".repeat(4));
        m.status = None;
        let xml = m.to_xml().unwrap();
        let back = Mrq::parse(xml.as_bytes()).unwrap();
        let dte = back.device_text.unwrap();
        assert_eq!(dte.chars().count(), 32);
        assert!(xml.contains("&amp;") && xml.contains("&lt;"));
        assert_eq!(back.status, None, "an omitted stc means alarm");
    }

    #[test]
    fn a_bad_account_number_is_refused_before_sending() {
        let mut m = alarm();
        m.caller_id = "12a".into();
        assert!(matches!(
            m.to_xml(),
            Err(XmlError::Invalid { tag: "cid", .. })
        ));
        m.reference = None;
        assert!(matches!(
            m.to_xml(),
            Err(XmlError::Missing { tag: "ref", .. })
        ));
    }

    #[test]
    fn references_are_checked() {
        assert!(Ref::new("ABCdef0123456789").is_ok());
        assert!(Ref::new("ABCdef01234567890").is_err());
        assert!(Ref::new("a-b").is_err());
        assert!(Ref::new("").is_err());
    }

    #[test]
    fn roots_are_told_apart() {
        assert_eq!(root_of(b"<mrs><ref>1</ref><snu>0</snu></mrs>"), Some("mrs"));
        assert_eq!(root_of(b"<MRQ/>"), Some("mrq"));
        assert_eq!(root_of(b"<scaip/>"), None);
        assert_eq!(root_of(b"\xff"), None);
    }
}
