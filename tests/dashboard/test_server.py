"""The therapist dashboard in a real browser (headless Debian Chromium via Playwright).

Until the rupture model exists the Dashboard is driven directly with hand-made typed
events: a calm stretch, a rising withdrawal signal with evidence and an alert, then
the alert off. A background ticker publishes the current signal every 0.1 s of wall
time, as a live session does, so the page never goes stale unless a test stops it.
Every wait is bounded (Playwright timeouts, socket timeouts, thread joins); every
connection is to 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Self

import pytest

from session_monitor.dashboard import Dashboard
from session_monitor.dashboard.feed import SPARK_WINDOW_S, TIMELINE_MAX_POINTS, Feed, page_message
from session_monitor.dashboard.server import RING_MAX, RING_MAX_CHARS
from session_monitor.errors import ConfigError
from session_monitor.events import (
    Alert,
    Annotation,
    Health,
    Marker,
    MiFigures,
    Prosody,
    SessionEvent,
    Signal,
    Speech,
    Transcript,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the tests that need it take the `browser` fixture, which skips
    expect = None

WAIT_MS = 8_000
SCREENSHOT_COPY = "/tmp/dashboard_mid_rupture.png"

EVIDENCE = (
    {"marker": "minimal_response", "kind": "withdrawal", "strength": 0.8, "speaker": "patient",
     "explanation": "patient: 'I guess' after your question"},
    {"marker": "response_latency", "kind": "withdrawal", "strength": 0.7, "speaker": "patient",
     "explanation": "3.4 s silence after your question"},
    {"marker": "shifting_topic", "kind": "withdrawal", "strength": 0.5, "speaker": "patient",
     "explanation": "patient changed the subject"},
)


class Ticker:
    """Publishes the current signal every ``interval_s`` wall seconds, advancing session time."""

    def __init__(self, dash: Dashboard, *, t0: float, step_s: float = 0.2, interval_s: float = 0.1):
        self.dash, self.t, self.step_s, self.interval_s = dash, t0, step_s, interval_s
        self._values = (0.1, 0.08, 0.03, ())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set(self, likelihood: float, withdrawal: float, confrontation: float, evidence=()) -> None:
        with self._lock:
            self._values = (likelihood, withdrawal, confrontation, tuple(evidence))

    def publish(self, event_type, **fields) -> None:
        """Publish another event at the ticker's current session time."""
        with self._lock:
            self.dash.publish(event_type(t=self.t, **fields))

    def burst(self, seconds: float, start: tuple, end: tuple, evidence=()) -> None:
        """Publish ``seconds`` of signal ramping from ``start`` to ``end`` at once, as a fast replay does."""
        with self._lock:
            n = max(1, int(seconds / self.step_s))
            for i in range(1, n + 1):
                self.t += self.step_s
                values = [a + (b - a) * i / n for a, b in zip(start, end)]
                self.dash.publish(Signal(t=self.t, likelihood=values[0], withdrawal=values[1],
                                         confrontation=values[2], evidence=tuple(evidence)))
            self._values = (*end, tuple(evidence))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                self.t += self.step_s
                lik, wd, cf, ev = self._values
                self.dash.publish(Signal(t=self.t, likelihood=lik, withdrawal=wd, confrontation=cf, evidence=ev))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)


def publish_calm_stretch(dash: Dashboard, *, until_s: float = 120.0) -> None:
    """A session start and ``until_s`` seconds of calm signal, health, levels and talk."""
    dash.publish(SessionEvent(t=0.0, state="started", source="demo_session.flac", sample_rate=16000, channels=2))
    n = int(until_s / 0.2)
    for i in range(n + 1):
        t = i * 0.2
        wobble = 0.04 * ((i % 25) / 25)
        dash.publish(Signal(t=t, likelihood=0.08 + wobble, withdrawal=0.07 + wobble, confrontation=0.03))
        if i % 5 == 0:
            for speaker, db in (("therapist", -28.0), ("patient", -34.0)):
                dash.publish(Prosody(t=t, speaker=speaker, intensity_db=db, intensity_z=0.1,
                                     f0_semitones=0.0, speaking=True))
    dash.publish(Speech(t=until_s, speaker="patient", start=until_s - 2, end=until_s))  # not shown: filtered
    dash.publish(Transcript(t=until_s - 8, speaker="therapist", start=until_s - 12, end=until_s - 9,
                            text="How did the week go with the exercises we planned?"))
    dash.publish(Transcript(t=until_s - 3, speaker="patient", start=until_s - 7, end=until_s - 4,
                            text="It was fine. I did most of them, I think."))
    dash.publish(Health(t=until_s, overflows=0, asr_queue=0, asr_lag_s=0.6, audio_ok=True))


@pytest.fixture
def annotations():
    return []


@pytest.fixture
def dash(annotations):
    dashboard = Dashboard(host="127.0.0.1", port=0, on_annotation=lambda label, note: annotations.append((label, note)),
                          title="replay: demo_session.flac")
    dashboard.start()
    try:
        yield dashboard
    finally:
        dashboard.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    try:
        yield tab
    finally:
        context.close()


def indicator(page):
    return page.locator("#indicator")


def background(page) -> str:
    """The indicator's background colour once its colour transition has finished."""
    page.wait_for_function("() => document.getElementById('indicator').getAnimations().length === 0")
    return page.eval_on_selector("#indicator", "el => getComputedStyle(el).backgroundColor")


def spark_path(page) -> str:
    return page.get_attribute("#spark-line", "d") or ""


def http_get(url: str, *, headers: dict | None = None, read: int | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read(read) if read else response.read()
            return response.status, dict(response.headers), body
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# -- the page in a browser ------------------------------------------------------------


def test_page_loads_with_history_from_the_running_server(dash, page):
    publish_calm_stretch(dash)
    with Ticker(dash, t0=120.0):
        page.goto(dash.url)
        expect(indicator(page)).to_have_attribute("data-state", "calm")
        expect(page.locator("#ind-word")).to_have_text("calm")
        expect(page.locator("#likelihood")).to_have_text("10%")
        expect(page.locator("#title")).to_have_text("replay: demo_session.flac")
        expect(page.locator("#transcript")).to_contain_text("I did most of them")
        expect(page.locator("#audio")).to_have_text("audio ok")
        expect(page.locator("#levels")).to_contain_text("patient")
        points = int(page.get_attribute("#spark", "data-points"))
        assert 500 <= points <= SPARK_WINDOW_S / 0.1 + 50, points  # 2 min of history at 5 Hz, bounded


def test_indicator_and_sparkline_follow_a_rupture(dash, page, tmp_path):
    publish_calm_stretch(dash)
    with Ticker(dash, t0=120.0) as ticker:
        page.goto(dash.url)
        expect(indicator(page)).to_have_attribute("data-state", "calm")
        calm_colour, calm_path = background(page), spark_path(page)

        ticker.burst(30.0, (0.1, 0.08, 0.03), (0.52, 0.55, 0.08), EVIDENCE[1:2])  # rising withdrawal: watch
        expect(indicator(page)).to_have_attribute("data-state", "watch")
        expect(page.locator("#ind-word")).to_have_text("watch")
        expect(page.locator("#likelihood")).to_have_text("52%")

        ticker.publish(Marker, speaker="patient", kind="withdrawal", marker="minimal_response", strength=0.8,
                       start=ticker.t - 1, end=ticker.t, explanation=EVIDENCE[0]["explanation"])
        ticker.publish(Transcript, speaker="patient", start=ticker.t - 1, end=ticker.t, text="I guess.")
        ticker.publish(Alert, state="on", kind="withdrawal")
        ticker.burst(20.0, (0.52, 0.55, 0.08), (0.82, 0.86, 0.12), EVIDENCE)
        expect(indicator(page)).to_have_attribute("data-state", "rupture")
        expect(page.locator("#ind-word")).to_have_text("rupture")
        expect(page.locator("#likelihood")).to_have_text("82%")
        expect(page.locator("#ind-note")).to_have_text("withdrawal alert on")
        expect(page.locator("#evidence")).to_contain_text("3.4 s silence after your question")
        expect(page.locator("#bar-withdrawal .bar-value")).to_have_text("0.86")
        expect(page.locator("#spark rect.band")).to_have_count(1)
        rupture_colour, rupture_path = background(page), spark_path(page)
        assert rupture_colour != calm_colour
        assert rupture_path != calm_path and rupture_path.count("L") > 100

        shot = tmp_path / "dashboard_mid_rupture.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        shutil.copyfile(shot, SCREENSHOT_COPY)

        ticker.publish(Alert, state="off", kind="withdrawal")
        ticker.set(0.15, 0.12, 0.05)
        expect(indicator(page)).to_have_attribute("data-state", "calm")
        expect(page.locator("#likelihood")).to_have_text("15%")
        assert background(page) == calm_colour


def test_markers_weaker_than_the_display_floor_are_not_shown(page):
    """``display.min_marker_strength``: a tiny graded marker and a tiny evidence item are not on
    the page; the strong ones are."""
    weak = {"marker": "defending_self", "kind": "confrontation", "strength": 0.01, "speaker": "patient",
            "explanation": "sustain talk (p=0.26) after your question: patient: it was fine"}
    with Dashboard(port=0, on_annotation=lambda label, note: None, min_marker_strength=0.05) as dash:
        publish_calm_stretch(dash)
        with Ticker(dash, t0=120.0) as ticker:
            ticker.publish(Marker, speaker="patient", kind="confrontation", marker="defending_self",
                           strength=0.01, start=ticker.t - 1, end=ticker.t, explanation=weak["explanation"])
            ticker.publish(Marker, speaker="patient", kind="withdrawal", marker="minimal_response", strength=0.8,
                           start=ticker.t - 1, end=ticker.t, explanation=EVIDENCE[0]["explanation"])
            ticker.set(0.3, 0.3, 0.02, (weak, EVIDENCE[1]))
            page.goto(dash.url)
            expect(page.locator("#evidence")).to_contain_text("3.4 s silence after your question")
            expect(page.locator("#evidence li")).to_have_count(1)
            expect(page.locator("#spark rect.mark-withdrawal")).to_have_count(1)
            expect(page.locator("#spark rect.mark-confrontation")).to_have_count(0)
    assert page_message(Marker(t=1.0, speaker="patient", kind="confrontation", marker="defending_self",
                               strength=0.01, start=0.0, end=1.0, explanation="x")) is not None  # floor 0: shown


def test_stale_state_appears_when_events_stop(dash, page):
    publish_calm_stretch(dash)
    with Ticker(dash, t0=120.0) as ticker:
        ticker.set(0.7, 0.72, 0.1, EVIDENCE)
        page.goto(dash.url)
        expect(indicator(page)).to_have_attribute("data-state", "watch")
    stopped = time.monotonic()  # the stream is paused: no more signals
    expect(indicator(page)).to_have_attribute("data-state", "stale", timeout=3_500)
    assert time.monotonic() - stopped < 3.5
    expect(page.locator("#ind-word")).to_have_text("stale")
    expect(page.locator("#likelihood")).to_have_text("—")  # the old 70% is not shown as current
    expect(page.locator("#ind-note")).to_contain_text("no update")
    expect(page.locator("#evidence")).not_to_contain_text("3.4 s silence")  # old evidence is not current

    fresh = page.context.new_page()  # a page opened while paused starts stale, too
    fresh.goto(dash.url)
    expect(fresh.locator("#indicator")).to_have_attribute("data-state", "stale", timeout=3_000)
    expect(fresh.locator("#likelihood")).to_have_text("—")


def test_audio_lost_is_shown(dash, page):
    publish_calm_stretch(dash)
    page.goto(dash.url)
    expect(page.locator("#audio")).to_have_text("audio ok")
    dash.publish(Health(t=121.0, overflows=3, audio_ok=False, message="capture device lost; retrying"))
    expect(page.locator("#audio")).to_have_text("⚠ AUDIO LOST")
    expect(page.locator("#dropped")).to_contain_text("dropped 3")
    expect(indicator(page)).to_have_attribute("data-state", "stale", timeout=3_500)
    expect(page.locator("#ind-word")).to_have_text("no audio")
    expect(page.locator("#ind-note")).to_contain_text("audio lost")


def test_mi_figures_reach_the_page(dash, page):
    # through the running server, as the pipeline publishes them (the feed alone was tested
    # while the server still dropped the event type: the page never showed a figure)
    publish_calm_stretch(dash)
    figures = page.locator("#figures")
    page.goto(dash.url)
    expect(figures).to_have_text("MI figures: waiting for the first classified turn")
    dash.publish(MiFigures(t=20.9, reflections=3, questions=2, reflection_to_question=1.5,
                           complex_reflection_share=1 / 3, open_question_share=0.5, change_talk=4, sustain_talk=1,
                           change_share=0.8, input_share=0.1))
    expect(figures).to_have_text("reflections : questions 1.5 · complex reflections 33% · open questions 50%"
                                 " · client change talk 4 vs sustain 1 · advice or information in 10% of your turns")
    page.goto(dash.url)  # a page opened later gets them from the snapshot
    expect(figures).to_contain_text("reflections : questions 1.5")


def test_input_problems_are_shown_until_they_clear(dash, page):
    publish_calm_stretch(dash)
    dash.publish(Health(t=20.8, problem="too_quiet", channel=1, speaker="patient",
                        hint="patient is very quiet (speech peaks at -52 dBFS): move its microphone closer"))
    page.goto(dash.url)  # a page opened later gets it from the snapshot
    hints = page.locator("#input-hints .input-hint")
    expect(hints).to_have_count(1)
    expect(hints.first).to_contain_text("move its microphone closer")
    dash.publish(Health(t=21.0, problem="dual_mono", hint="both channels carry the same signal"))
    dash.publish(Health(t=21.5, overflows=0))  # the pipeline's periodic health keeps them
    expect(hints).to_have_count(2)
    dash.publish(Health(t=60.0, problem="too_quiet", channel=1, speaker="patient", hint="cleared", cleared=True))
    expect(hints).to_have_count(1)
    expect(hints.first).to_contain_text("same signal")


def test_both_buttons_call_on_annotation(dash, page, annotations):
    publish_calm_stretch(dash)
    page.goto(dash.url)
    page.get_by_role("button", name="rupture now").click()
    expect(page.locator("#confirm")).to_contain_text("marked rupture")
    page.get_by_role("button", name="false alarm").click()
    expect(page.locator("#confirm")).to_contain_text("marked false alarm")
    assert [label for label, _ in annotations] == ["rupture", "false_alarm"]
    # the program publishes the annotation event itself; the page marks it on the sparkline
    dash.publish(Annotation(t=120.0, label="rupture", source="dashboard"))
    expect(page.locator("#spark text.annot-label")).to_have_text("R")


def test_transcript_toggle_is_remembered(dash, page):
    publish_calm_stretch(dash)
    page.goto(dash.url)
    expect(page.locator("#transcript-box")).to_be_visible()
    page.get_by_role("checkbox", name="transcript").uncheck()
    expect(page.locator("#transcript-box")).to_be_hidden()
    page.reload()
    expect(page.locator("#tog-transcript")).not_to_be_checked()
    expect(page.locator("#transcript-box")).to_be_hidden()
    expect(page.locator("#tog-sound")).not_to_be_checked()  # no sound unless enabled


def test_whole_session_timeline_after_the_session_ends(dash, page, tmp_path):
    publish_calm_stretch(dash, until_s=600.0)
    page.goto(dash.url)
    expect(indicator(page)).to_have_attribute("data-state", "stale", timeout=3_500)
    expect(page.locator("#timeline-box")).to_be_hidden()
    dash.publish(Alert(t=300.0, state="on", kind="withdrawal"))
    for i in range(50):
        dash.publish(Signal(t=600.2 + i * 0.2, likelihood=0.9, withdrawal=0.9, confrontation=0.1))
    dash.publish(Alert(t=610.0, state="off", kind="withdrawal"))
    dash.publish(Annotation(t=605.0, label="rupture", source="dashboard"))
    dash.publish(SessionEvent(t=612.0, state="ended", source="demo_session.flac", sample_rate=16000, channels=2))
    expect(page.locator("#timeline-box")).to_be_visible()
    expect(indicator(page)).to_have_attribute("data-state", "ended")
    expect(page.locator("#ind-note")).to_contain_text("session ended at 10:12")
    expect(page.locator("#timeline .wd-line")).to_have_count(1)
    expect(page.locator("#timeline rect.band")).to_have_count(1)
    expect(page.locator("#timeline text.annot-label")).to_have_text("R")
    assert int(page.get_attribute("#timeline", "data-points")) >= 600  # one point a second
    page.screenshot(path=str(tmp_path / "dashboard_ended.png"))

    late = page.context.new_page()  # a page opened after the end gets the timeline too
    late.goto(dash.url)
    expect(late.locator("#timeline-box")).to_be_visible()
    expect(late.locator("#timeline rect.band")).to_have_count(1)


# -- the server: access, errors, contract ----------------------------------------------


def test_token_is_required_on_every_request():
    with Dashboard(host="127.0.0.1", port=0, token="s3cret-token") as dash:
        base = f"http://127.0.0.1:{dash.port}/"
        assert dash.url == base + "?token=s3cret-token"
        for path in ("", "events", "static/dashboard.js", "static/dashboard.css"):
            status, headers, body = http_get(base + path)
            assert status == 401, path
            assert "error" in json.loads(body)
            assert "access-control-allow-origin" not in {k.lower() for k in headers}
        assert http_get(base + "?token=wrong")[0] == 401
        status, headers, _ = http_get(dash.url)
        assert status == 200
        assert "access-control-allow-origin" not in {k.lower() for k in headers}
        status, headers, body = http_get(base + "events?token=s3cret-token", read=200)
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        assert b"event: snapshot" in body
        bearer = {"Authorization": "Bearer s3cret-token"}
        assert http_get(base + "events", headers=bearer, read=50)[0] == 200
        assert http_get(base + "static/dashboard.js", headers=bearer)[0] == 200

        request = urllib.request.Request(base + "annotate", data=b'{"label":"rupture"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 401


def test_page_works_with_a_token(browser):
    with Dashboard(host="127.0.0.1", port=0, token="s3cret-token") as dash:
        context = browser.new_context()
        try:  # the page, its script and style, its stream and its buttons all carry the token
            tab = context.new_page()
            tab.set_default_timeout(WAIT_MS)
            dash.publish(Signal(t=1.0, likelihood=0.2, withdrawal=0.1, confrontation=0.0))
            tab.goto(dash.url)
            expect(tab.locator("#conn")).to_have_text("live")
            tab.get_by_role("button", name="rupture now").click()
            expect(tab.locator("#confirm")).to_contain_text("marked rupture")
        finally:
            context.close()


def test_annotate_rejects_an_unknown_label(dash, annotations):
    def post(body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(dash.url + "annotate", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    status, body = post(b'{"label": "maybe", "note": ""}')
    assert status == 400
    assert "\n" not in body.decode() and "unknown annotation label" in json.loads(body)["error"]
    assert post(b"not json")[0] == 400
    assert post(b'{"label": "false_alarm", "note": "she was thinking"}')[0] == 204
    assert annotations == [("false_alarm", "she was thinking")]


def test_foreign_host_header_is_refused_without_token(dash):
    """A DNS-rebinding page cannot read the session from a loopback dashboard."""
    connection = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": f"evil.example:{dash.port}"})
        assert connection.getresponse().status == 403
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_non_loopback_host_without_token_is_refused(host):
    with pytest.raises(ConfigError, match=r"not loopback.*--dashboard-token"):
        Dashboard(host=host, port=0, token=None)


def test_loopback_aliases_need_no_token():
    Dashboard(host="localhost", port=0)
    Dashboard(host="127.0.0.2", port=0)


def test_port_in_use_is_a_config_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        dash = Dashboard(host="127.0.0.1", port=port)
        with pytest.raises(ConfigError, match=rf"port {port} .*in use.*--dashboard-port"):
            dash.start()


def test_stop_closes_the_port_and_open_streams():
    dash = Dashboard(port=0)
    dash.start()
    stream = urllib.request.urlopen(dash.url + "events", timeout=5)
    stream.read(20)
    started = time.monotonic()
    dash.stop()
    assert time.monotonic() - started < 5
    stream.close()
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.1", dash.port)) != 0


# -- publish and history: never blocks, never raises, bounded -------------------------


def test_a_stalled_client_costs_no_memory_and_is_resynced(dash):
    """A page that stops reading is not buffered for: it gets a fresh snapshot when it reads again."""
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    try:
        slow.connect(("127.0.0.1", dash.port))
        slow.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        t = 0.0
        for _ in range(300):  # a replay at full speed while the page is asleep: ~15 MB of messages
            for _ in range(100):
                t += 0.1
                evidence = [{**item, "explanation": f"{item['explanation']} ({t:.1f})"} for item in EVIDENCE]
                dash.publish(Signal(t=t, likelihood=0.3, withdrawal=0.2, confrontation=0.1, evidence=evidence))
            time.sleep(0.001)
        deadline = time.monotonic() + 10
        while dash._inbox and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(dash._ring) <= RING_MAX and dash._ring_chars <= RING_MAX_CHARS
        status, _, body = http_get(dash.url + "events", read=100)  # others are served meanwhile
        assert status == 200 and b"event: snapshot" in body

        received = b""
        while received.count(b"event: snapshot") < 2 and time.monotonic() < deadline + 10:
            chunk = slow.recv(1 << 16)
            if not chunk:
                break
            received += chunk
        assert received.count(b"event: snapshot") >= 2
    finally:
        slow.close()



def test_publish_never_raises_before_start_or_after_stop():
    dash = Dashboard(port=0)
    dash.publish(Signal(t=0.0, likelihood=float("nan"), withdrawal=0.1, confrontation=0.0,
                        evidence=("not a dict", {"marker": "x"})))
    dash.publish(object())  # not an event at all
    dash.start()
    dash.stop()
    dash.publish(Signal(t=1.0, likelihood=0.2, withdrawal=0.1, confrontation=0.0))


def test_history_stays_bounded_over_a_long_session():
    """180 minutes at 10 signals/s: the page history keeps 5 minutes, the timeline 2,400 points."""
    feed = Feed()
    feed.apply(page_message(SessionEvent(t=0.0, state="started", source="x", sample_rate=16000, channels=2)), 0.0)
    for i in range(180 * 60 * 10):
        t = i * 0.1
        feed.apply(page_message(Signal(t=t, likelihood=(i % 600) / 600, withdrawal=0.2, confrontation=0.1,
                                       evidence=EVIDENCE)), 0.0)
        if i % 3000 == 0:
            feed.apply(page_message(Alert(t=t, state="on" if i % 6000 == 0 else "off", kind="withdrawal")), 0.0)
            feed.apply(page_message(Transcript(t=t, speaker="patient", start=t, end=t, text="word " * 100)), 0.0)
    assert len(feed.spark) <= SPARK_WINDOW_S / 0.1 + 1
    assert feed.spark[0][0] >= feed.now_t - SPARK_WINDOW_S
    assert len(feed.timeline) <= TIMELINE_MAX_POINTS
    assert max(p[1] for p in feed.timeline.to_page()["points"]) > 0.99  # peaks survive downsampling
    snapshot = json.dumps(feed.snapshot(0.0, title="x"))
    assert len(snapshot) < 400_000
    assert len(feed.transcript) <= 6 and all(len(m["text"]) <= 240 for m in feed.transcript)
    assert len(feed.latest["evidence"]) <= 5
