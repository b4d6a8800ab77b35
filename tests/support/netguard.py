"""Run session-monitor with a socket guard: any non-loopback connection or name lookup fails
and is recorded.

Usage: python tests/netguard.py LOG -- session-monitor arguments...
Writes one line per blocked attempt to LOG (empty when the run stayed offline).
"""

from __future__ import annotations

import ipaddress
import socket
import sys

_LOG = None


def _blocked(what: str) -> None:
    with open(_LOG, "a") as f:
        f.write(what + "\n")
    raise OSError(f"network access blocked by test guard: {what}")


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install(log: str) -> None:
    global _LOG
    _LOG = log
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not _is_local(address):
            _blocked(f"connect {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _is_local(address):
            _blocked(f"connect_ex {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1", "") and not _is_local((host, 0)):
            _blocked(f"getaddrinfo {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo


if __name__ == "__main__":
    log, sep, *args = sys.argv[1:]
    assert sep == "--"
    install(log)
    from session_monitor.cli.main import main

    sys.exit(main(args))
