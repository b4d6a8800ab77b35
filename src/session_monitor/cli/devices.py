"""``session-monitor devices``: the capture devices, with channels and rates."""

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
    from session_monitor.audio.microphone import list_devices

    devices = list_devices()
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no capture devices found", file=sys.stderr)
        return 0
    for d in devices:
        print(f"{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_rate']:.0f} Hz, {d['hostapi']})")
    return 0
