"""``session-monitor devices``: the capture devices, with channels and rates, and the call-audio sources."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "cmd_devices"]


def add_parser(sub: Any) -> None:
    devices = sub.add_parser("devices", help="list capture devices")
    devices.add_argument("--json", action="store_true", help="print JSON")


def cmd_devices(args: argparse.Namespace) -> int:
    import dataclasses

    from session_monitor.audio.microphone import list_devices
    from session_monitor.audio.pulse_sources import list_sources

    devices = list_devices()
    sources = list_sources()
    if args.json:
        print(json.dumps(devices + [dataclasses.asdict(s) | {"device": s.device} for s in sources], indent=2))
        return 0
    if not devices and not sources:
        print("no capture devices found", file=sys.stderr)
        return 0
    for d in devices:
        print(f"{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_rate']:.0f} Hz, {d['hostapi']})")
    calls = [s for s in sources if s.monitor]
    if calls:
        print("call audio (what an output device plays; for a telehealth call, the call app's output):")
        for s in calls:
            print(f"     {s.device}  ({s.description}, {s.channels} ch, {s.rate_hz} Hz)")
    mics = [s for s in sources if not s.monitor]
    if mics:
        print("PulseAudio/PipeWire inputs:")
        for s in mics:
            print(f"     {s.device}  ({s.description}, {s.channels} ch, {s.rate_hz} Hz)")
    return 0
