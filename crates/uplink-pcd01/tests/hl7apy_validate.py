"""Validate PCD-01 golden messages with hl7apy in strict mode for HL7 v2.6.

Usage: python hl7apy_validate.py FILE.hl7...
Exit status 0 when every message parses and validates; prints one line per file.
Called by tests/hl7apy.rs; hl7apy is an implementation nobody on the hearth project wrote.
"""
import importlib.metadata
import re
import sys

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from hl7apy.validation import Validator


VERSION = importlib.metadata.version("hl7apy")


def walk(element, depth=0):
    yield depth, element
    for child in getattr(element, "children", []):
        if hasattr(child, "children") and child.classname in ("Group", "Segment"):
            yield from walk(child, depth + 1)


def check(path):
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    assert "\n" not in text, "segments must be separated by CR only"
    msg = parse_message(
        text,
        validation_level=VALIDATION_LEVEL.STRICT,
        find_groups=True,
        force_validation=True,
    )
    # force_validation already ran the validator; run it again explicitly so a change of the
    # parse_message default cannot silently skip it.
    Validator.validate(msg, reference=msg.reference)
    assert msg.name == "ORU_R01", f"structure {msg.name}, expected ORU_R01"
    assert msg.version == "2.6", f"version {msg.version}"
    top = [c.name for c in msg.children]
    assert top == ["MSH", "ORU_R01_PATIENT_RESULT"], f"top-level children {top}"
    # Every segment but MSH must sit inside the ORU_R01 groups (no unexpected segments).
    names = []
    for _, el in walk(msg):
        if el.classname == "Segment":
            names.append((el.name, el.parent.name))
    for seg, parent in names:
        expected = {
            "MSH": "ORU_R01",
            "PID": "ORU_R01_PATIENT",
            "OBR": "ORU_R01_ORDER_OBSERVATION",
            "OBX": "ORU_R01_OBSERVATION",
        }[seg]
        assert parent == expected, f"{seg} placed in {parent}, expected {expected}"
    # The parser must read back exactly what was sent. hl7apy 1.3.5 re-escapes only the
    # H N F S T R E sequences and turns the backslashes of a hex escape \X0D\ into \E\; undo
    # that quirk of its serialiser before comparing (the parse itself keeps \X0D\ intact).
    again = msg.to_er7(trailing_children=False)
    again = re.sub(r"\\E\\X([0-9A-Fa-f]+)\\E\\", r"\\X\1\\", again)
    assert again == text.rstrip("\r"), "re-encoding differs:\n" + again.replace("\r", "\n")
    obx = [s for s, _ in names if s == "OBX"]
    return f"{len(names)} segments, {len(obx)} OBX"


def self_check(path):
    """The validator must reject a broken message (OBR-4 removed), or passing proves nothing."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    segments = text.split("\r")
    for i, seg in enumerate(segments):
        if seg.startswith("OBR|"):
            fields = seg.split("|")
            fields[4] = ""
            segments[i] = "|".join(fields)
    try:
        parse_message("\r".join(segments), validation_level=VALIDATION_LEVEL.STRICT,
                      find_groups=True, force_validation=True)
    except Exception:
        return
    raise SystemExit("hl7apy accepted a message without OBR-4: strict validation is not active")


def main(paths):
    if paths:
        self_check(paths[0])
    failed = 0
    for path in paths:
        try:
            summary = check(path)
            print(f"OK {path}: {summary} (hl7apy {VERSION}, strict, v2.6)")
        except Exception as e:  # report every file, then fail
            failed += 1
            print(f"FAIL {path}: {type(e).__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
