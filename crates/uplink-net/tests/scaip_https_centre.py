#!/usr/bin/env python3
"""A SCAIP-over-HTTPS response centre written from docs/protocols/scaip-https.md alone.

Python 3 standard library only (http.server + ssl + xml.etree). It is the third
implementation of the specification (hearth's unit and hearth's reference receiver are the
other two) and is used by crates/uplink-net/tests/scaip_https.rs.

    scaip_https_centre.py --cert server.pem --key server.key [--client-ca ca.pem]
        [--token TOKEN] [--hold N] [--snu N] [--record FILE] [--port 0]

Prints "PORT <n>" on stdout once it listens. Every request it reads is appended to the record
file as one JSON object per line: ref, cid, mty, dty, stc, status (HTTP), snu, repeat (whether
the (cid, ref) was seen before), events (distinct events so far), time (Unix seconds).
"""

import argparse
import http.server
import json
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET

MAX_BODY = 64 * 1024  # spec §8: bodies must be smaller than 64 KiB
CONTENT_TYPE = "application/scaip+xml"


def local(tag):
    """The element name without a namespace (spec §4: a receiver ignores one)."""
    return tag.rsplit("}", 1)[-1]


def parse_mrq(body):
    """The request's elements as a dict of name -> text, or None if it is not an <mrq>."""
    try:
        root = ET.fromstring(body.decode("utf-8"))
    except (ET.ParseError, UnicodeDecodeError):
        return None
    if local(root.tag).lower() != "mrq":
        return None
    fields = {}
    for child in root:
        fields.setdefault(local(child.tag), (child.text or "").strip())
    return fields


def valid_ref(ref):
    return ref is not None and 1 <= len(ref) <= 16 and ref.isascii() and ref.isalnum()


def code(value):
    """A numeric code with or without leading zeros (spec §4), or None."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Centre:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        # (cid, ref) -> {"seen": n, "state": "hold" | "handled" | "reset"}
        self.events = {}
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None

    def record(self, entry):
        entry["time"] = time.time()
        if self.record_file:
            self.record_file.write(json.dumps(entry) + "\n")
            self.record_file.flush()

    def answer(self, fields):
        """The snu for a readable request (spec §5, §6), and whether it repeats a known ref."""
        key = (fields.get("cid"), fields["ref"])
        mty = (fields.get("mty") or "ME").upper()
        with self.lock:
            event = self.events.get(key)
            repeat = event is not None
            if event is None:
                event = {"seen": 0, "state": "new"}
                self.events[key] = event
            event["seen"] += 1
            if mty == "RE":
                # §6.4: the unit gave up on us for this ref; close the case.
                event["state"] = "reset"
                snu = 0
            elif mty == "PI":
                snu = 0
            elif self.args.snu is not None:
                snu = self.args.snu
            elif event["state"] == "handled":
                snu = 0  # §5: a repeat of a handled event is answered again, not a new case
            elif event["seen"] <= self.args.hold:
                event["state"] = "hold"
                snu = 4
            else:
                event["state"] = "handled"
                snu = 0
            distinct = len(self.events)
        return snu, repeat, distinct


def make_handler(centre):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # spec §2; keeps connections alive

        def log_message(self, fmt, *args):  # no request logging (no tokens, no health data)
            pass

        def send(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if body:
                self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self):
            self.send(405, headers=[("Allow", "POST")])

        do_PUT = do_DELETE = do_GET

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length >= MAX_BODY:
                self.send(413, headers=[("Connection", "close")])
                self.close_connection = True
                return
            body = self.rfile.read(length)
            if self.path.rstrip("/") != "/scaip" and not self.path.endswith("/scaip"):
                self.send(404)
                return
            token = centre.args.token
            if token is not None:
                auth = self.headers.get("Authorization") or ""
                scheme, _, presented = auth.strip().partition(" ")
                if scheme.lower() != "bearer" or presented.strip() != token:
                    centre.record({"status": 401})
                    self.send(401, headers=[("WWW-Authenticate", "Bearer")])
                    return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != CONTENT_TYPE:
                centre.record({"status": 415})
                self.send(415)
                return
            fields = parse_mrq(body)
            if fields is None or not valid_ref(fields.get("ref")):
                centre.record({"status": 400})
                self.send(400)
                return
            ref = fields["ref"]
            missing = [t for t in ("cid", "dty") if not fields.get(t)]
            if missing:
                snu, repeat, distinct = 7, False, len(centre.events)  # 7: a tag is missing
            else:
                snu, repeat, distinct = centre.answer(fields)
            mrs = "<mrs><ref>%s</ref><snu>%d</snu>" % (ref, snu)
            if (fields.get("mty") or "").upper() == "PI" and code(fields.get("hbo")) == 1:
                if centre.args.hbi:
                    mrs += "<hbi>%d</hbi>" % centre.args.hbi
            mrs += "</mrs>"
            # Recorded before the answer goes out: a unit that has its answer finds the record.
            centre.record(
                {
                    "status": 200,
                    "ref": ref,
                    "cid": fields.get("cid"),
                    "mty": (fields.get("mty") or "ME").upper(),
                    "dty": code(fields.get("dty")),
                    "stc": code(fields.get("stc")),
                    "snu": snu,
                    "repeat": repeat,
                    "events": distinct,
                }
            )
            self.send(200, mrs.encode("utf-8"))

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="require client certificates signed by this CA")
    p.add_argument("--token", help="require Authorization: Bearer TOKEN")
    p.add_argument("--hold", type=int, default=0, help="answer snu=4 to the first N requests of an event")
    p.add_argument("--snu", type=int, help="answer this snu to every event")
    p.add_argument("--hbi", type=int, default=0, help="heartbeat interval to hand out (minutes)")
    p.add_argument("--record", help="append a JSON line per request here")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # spec §2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    centre = Centre(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(centre))
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
