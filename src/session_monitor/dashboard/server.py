"""The dashboard's web server: a Starlette app served by uvicorn in a daemon thread.

The pipeline thread calls :meth:`Dashboard.publish` for every event. That call only
appends to a bounded inbox (oldest dropped when full) and, at most once per batch,
wakes the server's event loop; it never blocks and never raises. On the loop thread
the inbox is drained into the :class:`~session_monitor.dashboard.feed.Feed` history
and into a bounded ring of JSON batches that every open page reads at its own pace
over Server-Sent Events. A page that falls behind the ring (a slow or sleeping
client) is sent a fresh snapshot instead of the batches it missed, so a slow client
costs no memory. Who may connect is decided in :mod:`.access`.
"""

from __future__ import annotations

import asyncio
import errno
import html
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from session_monitor.dashboard.access import LOOPBACK_NAMES, Guard, is_loopback, json_error, new_token
from session_monitor.dashboard.feed import PAGE_EVENT_TYPES, Feed, page_message
from session_monitor.errors import ConfigError
from session_monitor.events import Event

__all__ = ["ANNOTATION_LABELS", "Dashboard", "is_loopback", "new_token"]

logger = logging.getLogger(__name__)

ANNOTATION_LABELS = ("rupture", "false_alarm")
STATIC_DIR = Path(__file__).with_name("static")
INBOX_MAX = 20_000  #: events waiting for the loop thread; the oldest are dropped past this
RING_MAX = 512  #: JSON batches kept for pages that are a little behind ...
RING_MAX_CHARS = 4_000_000  #: ... and at most this much text; a page further behind gets a snapshot
LEVEL_INTERVAL_S = 0.25  #: wall seconds between two level messages of one speaker (~4 Hz)
KEEPALIVE_S = 15.0
TICK_S = 0.25  #: the loop also drains the inbox this often, in case a wake-up was lost
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
NOTE_MAX_CHARS = 500
BODY_MAX_BYTES = 4096

class Dashboard:
    """A local web page showing the live rupture indicator; see the module docstring.

    Parameters
    ----------
    host : str
        Address to bind; 127.0.0.1 unless a token is given.
    port : int
        TCP port; 0 picks a free one (read :attr:`port` or :attr:`url` after start).
    token : str or None
        Required on every request when set; required to bind a non-loopback host.
    on_annotation : callable(label, note) or None
        Called on a server thread when the therapist presses "rupture now"
        (``"rupture"``) or "false alarm" (``"false_alarm"``); the program publishes
        the resulting ``annotation`` event itself.
    title : str
        Shown in the page header, e.g. ``"replay: demo_session.flac"``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        on_annotation: Callable[[str, str], None] | None = None,
        title: str = "session-monitor",
        min_marker_strength: float = 0.0,
    ):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"dashboard port {port!r} is out of range; use 0..65535 (0 picks a free port)")
        if token is not None and not token.strip():
            raise ConfigError("dashboard token is empty: give a non-empty --dashboard-token")
        if not is_loopback(host) and token is None:
            raise ConfigError(
                f"dashboard host {host} is not loopback: give --dashboard-token or bind 127.0.0.1"
            )
        self.host = host
        self.port = port
        self.token = token
        self.title = title
        self.min_marker_strength = min_marker_strength  # weaker markers are not shown
        self._on_annotation = on_annotation
        self._feed = Feed()
        self._inbox: deque[tuple[float, Event]] = deque(maxlen=INBOX_MAX)
        self._level_wall: dict[str, float] = {}
        self._ring: deque[tuple[int, str]] = deque()
        self._ring_chars = 0
        self._seq = 0
        self._clients: set[asyncio.Event] = set()
        self._wake_pending = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.dropped_events = 0
        self._page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        self._app = self._build_app()

    # -- the pipeline side -------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Hand one event to the dashboard; never blocks, never raises."""
        try:
            kind = event.type
            if kind not in PAGE_EVENT_TYPES:
                return
            now = time.monotonic()
            if kind == "prosody":
                if now - self._level_wall.get(event.speaker, -1e9) < LEVEL_INTERVAL_S:
                    return
                self._level_wall[event.speaker] = now
            if len(self._inbox) == INBOX_MAX:
                self.dropped_events += 1
            self._inbox.append((now, event))
            loop = self._loop
            if loop is not None and not self._wake_pending:
                self._wake_pending = True
                loop.call_soon_threadsafe(self._drain)
        except Exception:  # a closed loop, a malformed event: the pipeline goes on
            logger.debug("dashboard dropped an event", exc_info=True)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The page's address, with ``?token=`` when a token is in use."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        query = f"?token={quote(self.token, safe='')}" if self.token else ""
        return f"http://{host}:{self.port}/{query}"

    def start(self) -> None:
        """Bind the port and serve in a daemon thread; returns once the socket listens.

        Raises
        ------
        ConfigError
            The port is in use or the address cannot be bound.
        """
        if self._thread is not None:
            return
        sock = self._bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="session-monitor-dashboard", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                sock.close()
                self._thread = None
                raise ConfigError(f"dashboard could not start on {self.host}:{self.port}: {self._error!r}")
            time.sleep(0.01)
        logger.info("dashboard listening on %s", self.url)

    def stop(self) -> None:
        """Close every page's stream and shut the server down (waits up to ~7 s)."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self._closing = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # the loop already closed
                pass
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2.0)
            if thread.is_alive():
                logger.warning("dashboard server did not stop in time; leaving its daemon thread")
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host.strip("[]"), self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"dashboard port {self.port} on {self.host} is in use: "
                    "choose another with --dashboard-port (0 picks a free one)"
                ) from None
            raise ConfigError(
                f"dashboard cannot listen on {self.host}:{self.port} ({exc.strerror}): "
                "check --dashboard-host and --dashboard-port"
            ) from None
        sock.setblocking(False)
        return sock

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # noqa: BLE001 - reported by start() or logged
            self._error = exc
            logger.error("dashboard server stopped: %r", exc)

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(self._tick())
        try:
            await self._server.serve(sockets=[sock])
        finally:
            ticker.cancel()
            self._loop = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._drain()

    # -- the loop side -----------------------------------------------------------------

    def _drain(self) -> None:
        self._wake_pending = False
        batch: list[dict[str, Any]] = []
        while True:
            try:
                wall_s, event = self._inbox.popleft()
            except IndexError:
                break
            try:
                message = page_message(event, min_marker_strength=self.min_marker_strength)
                if message is not None:
                    batch.extend(self._feed.apply(message, wall_s))
            except Exception:
                # its type and time only: an event's words must not reach a log
                logger.warning("dashboard could not show a %s event at %.1f s", getattr(event, "type", "?"),
                               getattr(event, "t", float("nan")), exc_info=True)
        if batch:
            self._seq += 1
            data = json.dumps(batch, separators=(",", ":"), ensure_ascii=False)
            self._ring.append((self._seq, data))
            self._ring_chars += len(data)
            while len(self._ring) > RING_MAX or (self._ring_chars > RING_MAX_CHARS and len(self._ring) > 1):
                self._ring_chars -= len(self._ring.popleft()[1])
            self._wake_all()

    def _wake_all(self) -> None:
        for wake in self._clients:
            wake.set()

    def _snapshot_frame(self) -> str:
        snapshot = self._feed.snapshot(time.monotonic(), title=self.title)
        data = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False)
        return f"retry: 1000\nevent: snapshot\ndata: {data}\n\n"

    async def _stream(self):
        wake = asyncio.Event()
        self._clients.add(wake)
        try:
            self._drain()
            seq = self._seq
            yield self._snapshot_frame()
            while not self._closing:
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                wake.clear()
                if self._closing:
                    break
                if self._ring and self._ring[0][0] > seq + 1:  # fell behind the ring
                    seq = self._seq
                    yield self._snapshot_frame()
                    continue
                pending = [data for s, data in self._ring if s > seq]
                seq = self._seq
                if pending:
                    yield "".join(f"data: {data}\n\n" for data in pending)
        finally:
            self._clients.discard(wake)

    # -- routes ------------------------------------------------------------------------

    def _build_app(self) -> Any:
        routes = [
            Route("/", self._index, methods=["GET"]),
            Route("/events", self._events, methods=["GET"]),
            Route("/annotate", self._annotate, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ]
        allowed = LOOPBACK_NAMES | {self.host.strip("[]").lower()}
        return Guard(Starlette(routes=routes), token=self.token, allowed_hosts=allowed)

    async def _index(self, request: Request) -> Response:
        query = f"?token={quote(self.token, safe='')}" if self.token else ""
        page = self._page.replace("__TITLE__", html.escape(self.title)).replace("__QUERY__", html.escape(query))
        return HTMLResponse(page)

    async def _events(self, request: Request) -> Response:
        return StreamingResponse(
            self._stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    async def _annotate(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return json_error(415, "send the annotation as JSON (Content-Type: application/json)")
        body = await _read_capped(request, BODY_MAX_BYTES)
        if body is None:
            return json_error(413, f"annotation is larger than {BODY_MAX_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return json_error(400, 'annotation is not valid JSON; send {"label": "rupture", "note": ""}')
        label = data.get("label") if isinstance(data, dict) else None
        if label not in ANNOTATION_LABELS:
            return json_error(400, f"unknown annotation label {label!r}; use one of {', '.join(ANNOTATION_LABELS)}")
        note = data.get("note", "")
        if not isinstance(note, str):
            return json_error(400, "annotation note must be a string")
        if self._on_annotation is not None:
            try:
                await run_in_threadpool(self._on_annotation, label, note[:NOTE_MAX_CHARS])
            except Exception as exc:
                logger.exception("annotation %r could not be recorded", label)
                return json_error(500, f"annotation could not be recorded: {exc}")
        return Response(status_code=204)


async def _read_capped(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``max_bytes``.

    A declared ``Content-Length`` above the cap is refused before a byte is read; a
    body without one (chunked) is read only up to the cap. Memory stays bounded by
    ``max_bytes`` plus one chunk, whatever the client sends.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                return None
        except ValueError:
            return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)
