#!/usr/bin/env python3
"""Example hearth external driver: a room thermometer that publishes readings over MQTT.

It follows hearth's external-driver contract (docs/drivers/external.md, version 1):
each reading is one JSON message, published with QoS 1 to <prefix>/<driver>/in, with a
unique message id; hearth acknowledges (PUBACK) only after the reading is stored, and
answers invalid messages on <prefix>/<driver>/error.

Exit status: 0 when every message was acknowledged and hearth answered no error,
1 when the broker could not be reached or not every message was acknowledged in time,
2 when every message was acknowledged but hearth refused at least one (see the printed errors).

Needs paho-mqtt 1.6 (Debian: python3-paho-mqtt) or 2.x. With --dry-run it prints the
messages, one per line, without connecting (and without needing paho-mqtt).
"""

import argparse
import datetime
import json
import random
import sys
import threading
import time
import uuid

CONTRACT_VERSION = 1
# IEEE 11073-10471 temperature sensor (MDC_AI_TYPE_SENSOR_TEMP), the code hearth's
# zigbee2mqtt driver uses for room temperature; unit: degree Celsius in UCUM.
MDC_ROOM_TEMPERATURE = 8519694
UNIT = "Cel"


def now_rfc3339():
    """The current time as RFC 3339 with an offset and milliseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def reading_message(args, celsius):
    """One contract message with one reading. The id is new for every reading; a re-send of
    the same reading must keep it (paho re-sends unacknowledged messages itself)."""
    return {
        "v": CONTRACT_VERSION,
        "id": str(uuid.uuid4()),
        "device": {"id": args.device, "manufacturer": "Example", "model": "RoomTherm"},
        "category": "welfare",
        "readings": [
            {
                "mdc": MDC_ROOM_TEMPERATURE,
                "name": "room temperature",
                "value": round(celsius, 1),
                "unit": UNIT,
                "time": now_rfc3339(),
            }
        ],
    }


def temperatures(count, seed=None):
    """A plausible room temperature, drifting a little."""
    rng = random.Random(seed)
    t = 21.0
    for _ in range(count):
        t = min(26.0, max(16.0, t + rng.uniform(-0.3, 0.3)))
        yield t


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="localhost", help="MQTT broker host (default localhost)")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    p.add_argument("--driver", default="example_thermo",
                   help="driver id, [a-z0-9_-]{1,32} (default example_thermo)")
    p.add_argument("--device", default="TH-0001", help="the thermometer's serial number")
    p.add_argument("--prefix", default="hearth/v1/driver",
                   help="topic prefix (default hearth/v1/driver)")
    p.add_argument("--count", type=int, default=5, help="readings to publish (default 5)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between readings (default 1)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the acknowledgements (default 30)")
    p.add_argument("--linger", type=float, default=1.0,
                   help="seconds to wait for error replies after the last acknowledgement")
    p.add_argument("--dry-run", action="store_true",
                   help="print the messages, one per line, and do not connect")
    return p.parse_args(argv)


def make_client(client_id):
    """A paho client on paho-mqtt 1.6 or 2.x. The callbacks below take the arguments both
    callback APIs share and ignore the rest (2.x adds reason codes and properties)."""
    import paho.mqtt.client as mqtt  # only needed when connecting

    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                           clean_session=False)
    return mqtt.Client(client_id=client_id, clean_session=False)


def run(args):
    input_topic = "%s/%s/in" % (args.prefix.rstrip("/"), args.driver)
    error_topic = "%s/%s/error" % (args.prefix.rstrip("/"), args.driver)

    if args.dry_run:
        for celsius in temperatures(args.count):
            print(json.dumps(reading_message(args, celsius), separators=(",", ":")))
        return 0

    lock = threading.Condition()
    state = {"connected": None, "subscribed": False, "pending": set(), "acked": 0, "errors": 0}

    def on_connect(client, userdata, flags, rc, *_):
        # rc: an int (1.6) or a ReasonCode that compares equal to its value (2.x).
        with lock:
            state["connected"] = rc
            lock.notify_all()
        if rc == 0:
            # Subscribe on every (re)connection; QoS 1 so that no error reply is missed.
            client.subscribe(error_topic, qos=1)

    def on_subscribe(client, userdata, mid, *_):
        with lock:
            state["subscribed"] = True
            lock.notify_all()

    def on_publish(client, userdata, mid, *_):
        # For QoS 1 this runs when the PUBACK arrives: hearth has stored the reading.
        with lock:
            if mid in state["pending"]:
                state["pending"].discard(mid)
                state["acked"] += 1
            else:
                state.setdefault("early", set()).add(mid)
            lock.notify_all()

    def on_message(client, userdata, msg):
        try:
            reply = json.loads(msg.payload)
            text = "hearth refused message %s at %r: %s" % (
                reply.get("id"), reply.get("pointer"), reply.get("error"))
        except ValueError:
            text = "hearth sent an unreadable error reply: %r" % msg.payload[:200]
        print(text, file=sys.stderr, flush=True)
        with lock:
            state["errors"] += 1

    client = make_client("%s-%s" % (args.driver, args.device))
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    try:
        client.connect(args.host, args.port, keepalive=30)
    except OSError as e:
        print("cannot reach the MQTT broker at %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    client.loop_start()
    try:
        with lock:
            lock.wait_for(lambda: state["connected"] is not None and state["subscribed"]
                          or state["connected"] not in (None, 0), timeout=args.timeout)
            if state["connected"] != 0 or not state["subscribed"]:
                print("the broker did not accept the connection (result %r)"
                      % (state["connected"],), file=sys.stderr)
                return 1

        for i, celsius in enumerate(temperatures(args.count)):
            if i > 0:
                time.sleep(args.interval)
            message = reading_message(args, celsius)
            info = client.publish(input_topic, json.dumps(message, separators=(",", ":")), qos=1)
            with lock:
                # The PUBACK may come before we get here; on_publish remembers it.
                if info.mid in state.get("early", set()):
                    state["early"].discard(info.mid)
                    state["acked"] += 1
                else:
                    state["pending"].add(info.mid)
            print("published %s (%.1f %s)" % (message["id"], message["readings"][0]["value"], UNIT),
                  flush=True)

        with lock:
            done = lock.wait_for(lambda: not state["pending"], timeout=args.timeout)
        if not done:
            print("%d of %d messages were not acknowledged within %.0f s; a real driver keeps "
                  "them and re-sends them with the same id" % (
                      len(state["pending"]), args.count, args.timeout), file=sys.stderr)
            return 1
        time.sleep(args.linger)  # error replies are published after the commit, like PUBACKs
        with lock:
            print("%d of %d messages acknowledged, %d refused" % (
                state["acked"], args.count, state["errors"]), flush=True)
            return 2 if state["errors"] else 0
    finally:
        client.disconnect()
        client.loop_stop()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
