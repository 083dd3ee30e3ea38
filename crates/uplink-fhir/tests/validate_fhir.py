"""Validate FHIR R4 JSON files with the independent `fhir.resources` models.

fhir.resources >= 7 ships FHIR R5 at the top level and R4B under `fhir.resources.R4B` (no plain
R4 package); R4B (4.3.0) is R4 (4.0.1) plus fixes and keeps R4's JSON for every element hearth
writes (Bundle, Observation, Device), so the R4B models are the ones to use.

Usage: python validate_fhir.py FILE_OR_DIR...   (exit 0 when every file validates)
"""
import json
import pathlib
import sys

from importlib.metadata import version

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle


def validate(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    Bundle.model_validate(data)
    # Validate each entry's resource with its own class as well (explicit, not only via the
    # polymorphic Bundle.entry.resource).
    for i, entry in enumerate(data.get("entry", [])):
        resource = entry["resource"]
        cls = get_fhir_model_class(resource["resourceType"])
        try:
            cls.model_validate(resource)
        except Exception as e:  # noqa: BLE001 - report and go on
            raise ValueError(f"entry {i} ({resource['resourceType']}): {e}") from e


def main(args):
    files = []
    for a in args:
        p = pathlib.Path(a)
        files.extend(sorted(p.glob("*.json")) if p.is_dir() else [p])
    print(f"fhir.resources {version('fhir.resources')} (R4B models), {len(files)} files")
    failed = 0
    for f in files:
        try:
            validate(f)
            print(f"OK   {f.name}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {f.name}: {e}")
    if not files:
        print("FAIL no files given")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
