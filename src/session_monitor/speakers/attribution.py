"""Who is speaking on a single microphone: online speaker attribution.

For mono input the VAD labels its speech ``unknown``. :class:`MonoAttribution` sits
between the VAD and everything after it and relabels its events as the session
runs, so that no later stage changes:

- each VAD speech segment is cut into chunks of ``attribution.chunk_s`` seconds
  (the rest of the segment is judged on its own when at least ``min_chunk_s``
  long); each chunk is scored against two voice models (:mod:`speakers`) as soon
  as its audio is in;
- a segment's ``speech_onset`` is held back until its first chunk is decided (once
  ``lookahead_chunks`` later chunks of the segment are in, so at most
  ``(1 + lookahead_chunks) * chunk_s`` after the onset, or at the segment's end),
  then released with the attributed speaker and ``t`` = the time of the decision;
- a later chunk that is confidently the other voice splits the segment: a
  ``speech`` event ends the first speaker's part at the change point (found on the
  per-frame likelihood ratio) and a ``speech_onset`` starts the other's, so
  turn-taking (gaps, overlaps, talk share) sees the change;
- ``speech`` events carry ``speaker_confidence``; a part whose first chunk is below
  ``min_confidence`` is ``unknown`` rather than guessed;
- utterances for the transcriber are split at speaker changes, one job a speaker.

:class:`RoleProsody` stands in for the mono channel's prosody tracker: one
:class:`~session_monitor.prosody.tracker.ProsodyTracker` per role, each fed the whole
signal and told it is speaking only for the blocks attributed to its role, so each
role keeps its own baselines. Blocks of a segment whose speaker is not decided yet
are held (at most ``(1 + lookahead_chunks) * chunk_s`` plus a block) and their
``prosody`` events are released with ``t`` = the time of the decision.

Without an enrolled voice, cluster 0 is the first voice heard, and
``attribution.unenrolled_therapist`` says whether that is the therapist
(``first``, the default: the therapist usually opens the session) or the patient
(``second``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.events import Event, Prosody, Speech, SpeechOnset, Transcript
from session_monitor.prosody.tracker import ProsodyTracker, SegmentProsody
from session_monitor.settings.sections import AttributionSettings, ProsodySettings
from session_monitor.speakers.clustering import Decision, TwoSpeakers
from session_monitor.speakers.voice_features import HOP, WIN, MfccStream, speech_frames
from session_monitor.speakers.voice_features import warm_up as warm_up_features
from session_monitor.speech.activity import UtteranceReady
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["MonoAttribution", "RoleProsody"]

logger = logging.getLogger(__name__)

ROLES = ("therapist", "patient")
_RUNS_KEPT_S = 120.0  # run history for utterance splitting and lookups
_FEATURES_KEPT_S = 30.0


@dataclass
class _Run:
    """A stretch of one segment attributed to one speaker (samples)."""

    start: int
    label: str
    cluster: int | None
    support: list[float] = field(default_factory=list)
    end: int | None = None

    @property
    def confidence(self) -> float:
        return float(np.mean(self.support)) if self.support else 0.0


class MonoAttribution:
    """Relabels one mono channel's VAD events with the attributed speaker.

    Parameters
    ----------
    settings : AttributionSettings
    noise : NoiseFloor
        The channel's noise floor, tracked here over every block as the VAD tracks it
        (:meth:`NoiseFloor.of_speech`): a 10 ms frame less than ``voice_margin_db`` above it
        is not used as voice, whatever the recording's level.
    speakers : TwoSpeakers
        The voice models (with or without an enrolled therapist).
    """

    def __init__(self, settings: AttributionSettings, *, noise: NoiseFloor, speakers: TwoSpeakers) -> None:
        self.s = settings
        self.noise = noise
        self.speakers = speakers
        first_is_therapist = speakers.enrolled is not None or settings.unenrolled_therapist == "first"
        self.cluster_roles = ROLES if first_is_therapist else ROLES[::-1]
        self.features = MfccStream(keep_s=_FEATURES_KEPT_S)
        warm_up_features()
        self._chunk = round(settings.chunk_s * SAMPLE_RATE)
        self._min_chunk = round(settings.min_chunk_s * SAMPLE_RATE)
        self._seg_start: int | None = None
        self._cursor = 0
        self._run: _Run | None = None
        self._pending: list[tuple[int, int, int | None]] = []  # learnt, undecided chunks (a, b, number)
        self._chunk_end: int | None = None  # end of the open segment's last chunk
        self._runs: deque[_Run] = deque()
        self.position = 0
        self.chunks = 0

    # -- the stage ----------------------------------------------------------------------------------

    @property
    def floor_db(self) -> float:
        """Level (dBFS) a 10 ms frame needs to count as voice: ``voice_margin_db`` above the
        tracked noise floor (no floor before there is an estimate)."""
        floor = self.noise.above(self.s.voice_margin_db)
        return -np.inf if floor is None else floor

    def process(self, frame: Frame | None, items: list[Any]) -> list[Any]:
        """Take one block's audio (None at the end) and the VAD's output for it; return them relabelled."""
        if frame is not None:
            self.noise.add_samples(frame.samples)
            self.features.add(frame.samples)
            self.position = frame.end_sample
        t_now = self.position / SAMPLE_RATE
        out: list[Any] = []
        for item in items:
            if isinstance(item, SpeechOnset):
                self._seg_start = round(item.start * SAMPLE_RATE)
                self._cursor = self._seg_start
                self._chunk_end = None
                self._run = None
                self._pending = []
            elif isinstance(item, Speech) and self._seg_start is not None:
                end = round(item.end * SAMPLE_RATE)
                out += self._judge_until(end, item.t, final=True)
                out += self._close_segment(end, item)
            elif isinstance(item, UtteranceReady):
                out += self._split_utterance(item)
            else:
                out.append(item)
        if self._seg_start is not None:
            out += self._judge_until(self.position, t_now, final=False)
        return out

    def undecided_from(self) -> int | None:
        """First sample of the open segment whose speaker is not decided yet, or None."""
        if self._seg_start is None:
            return None
        return self._pending[0][0] if self._pending else self._cursor

    def label_at(self, start: int, end: int) -> str | None:
        """Speaker of most of samples ``[start, end)`` (None: nobody attributed there)."""
        best, best_n = None, 0
        runs = list(self._runs) + ([self._run] if self._run is not None else [])
        decided = self.undecided_from()
        for run in reversed(runs):
            run_end = run.end if run.end is not None else (decided if decided is not None else self.position)
            if run_end <= start:
                if run.end is not None:
                    break
                continue
            n = min(end, run_end) - max(start, run.start)
            if n > best_n:
                best, best_n = run.label, n
        return best

    def confidence_of(self, speaker: str, start_s: float, end_s: float) -> float | None:
        """Mean confidence of ``speaker``'s runs overlapping ``[start_s, end_s]`` (None if none)."""
        a, b = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
        values = [r.confidence for r in self._runs
                  if r.label == speaker and r.end is not None and r.end > a and r.start < b]
        return float(np.mean(values)) if values else None

    def annotate(self, transcript: Transcript) -> Transcript:
        conf = self.confidence_of(transcript.speaker, transcript.start, transcript.end)
        return replace(transcript, speaker_confidence=None if conf is None else round(conf, 3))

    # -- chunks -----------------------------------------------------------------------------------------------

    def _judge_until(self, limit: int, t: float, *, final: bool) -> list[Event]:
        """Learn the chunks complete before ``limit``; decide those ``lookahead_chunks`` behind
        (all of them when the segment ends at ``limit``)."""
        out: list[Event] = []
        ready = self.features.available_until()
        while self._cursor + self._chunk <= limit and self._cursor + self._chunk <= ready:
            self._add_chunk(self._cursor, self._cursor + self._chunk)
            self._cursor += self._chunk
            out += self._decide_pending(t, keep=self.s.lookahead_chunks)
        if final:
            if limit > self._cursor:
                if limit - self._cursor >= self._min_chunk or (self._run is None and not self._pending):
                    self._add_chunk(self._cursor, limit)
                elif self._pending:  # a short rest goes with the chunk before it
                    a, _, number = self._pending[-1]
                    self._pending[-1] = (a, limit, number)
                self._cursor = limit
            out += self._decide_pending(t, keep=0)
        return out

    def _add_chunk(self, a: int, b: int) -> None:
        coeffs, db = self.features.get(a, b)
        frames = speech_frames(coeffs, db, floor_db=self.floor_db)
        self._pending.append((a, b, self.speakers.add(frames, continues=a == self._chunk_end)))
        self._chunk_end = b
        self.chunks += 1

    def _decide_pending(self, t: float, *, keep: int) -> list[Event]:
        out: list[Event] = []
        while len(self._pending) > keep:
            a, b, number = self._pending.pop(0)
            out += self._judge(a, b, None if number is None else self.speakers.decision(number), t)
        return out

    def _judge(self, a: int, b: int, decision: Decision | None, t: float) -> list[Event]:
        """Label samples ``[a, b)`` of the open segment; the events this starts or ends."""
        assert self._seg_start is not None
        if decision is None:  # too little voice to judge
            if self._run is None:
                self._run = _Run(self._seg_start, "unknown", None, [0.0])
                return [SpeechOnset(t=t, speaker="unknown", start=self._seg_start / SAMPLE_RATE)]
            return []
        role, conf = self.cluster_roles[decision.cluster], decision.confidence
        label = role if conf >= self.s.min_confidence else "unknown"
        run = self._run
        if run is None:
            self._run = _Run(self._seg_start, label, decision.cluster if label != "unknown" else None, [conf])
            return [SpeechOnset(t=t, speaker=label, start=self._seg_start / SAMPLE_RATE)]
        if label == run.label or label == "unknown" or conf < self.s.change_confidence:
            run.support.append(conf if run.cluster in (None, decision.cluster) else 1.0 - conf)
            return []
        cut = self._change_point(run, a, b, decision.cluster) if decision.voices == 2 else a
        return self._switch(cut, label, decision.cluster, conf, t)

    def _switch(self, cut: int, label: str, cluster: int | None, conf: float, t: float) -> list[Event]:
        run = self._run
        assert run is not None
        cut = max(cut, run.start + HOP)
        run.end = cut
        self._keep(run)
        self._run = _Run(cut, label, cluster, [conf])
        return [
            Speech(t=t, speaker=run.label, start=run.start / SAMPLE_RATE, end=cut / SAMPLE_RATE,
                   speaker_confidence=round(run.confidence, 3)),
            SpeechOnset(t=t, speaker=label, start=cut / SAMPLE_RATE),
        ]

    def _change_point(self, run: _Run, a: int, b: int, new_cluster: int) -> int:
        """Where the voice changed, searched from half a chunk before ``a`` to ``b``
        (:meth:`_likeliest_cut` on the voice models)."""
        lo = max(run.start + self._min_chunk, a - self._chunk // 2)
        cut = self._likeliest_cut(lo, b, new_cluster, self.speakers.frame_llr)
        return a if cut is None else cut

    def _likeliest_cut(self, lo: int, hi: int, new_cluster: int,
                       frame_llr: Callable[[np.ndarray], np.ndarray | None]) -> int | None:
        """The sample in ``[lo, hi)`` where the voice changed to ``new_cluster``, or None.

        The cut maximizes the summed per-frame log-likelihood ratio for the old voice
        before it and for the new voice after it (frames too quiet to judge count 0);
        ``frame_llr(coeffs)`` gives voice 0 against voice 1 per MFCC frame, None without
        models.
        """
        coeffs, db = self.features.get(lo, hi)
        llr = frame_llr(coeffs)
        if llr is None or len(llr) < 3:
            return None
        top = float(np.percentile(db, 95))
        llr = np.where((db >= self.floor_db) & (db >= top - 30.0), llr, 0.0)
        if new_cluster == 0:
            llr = -llr
        # sum(llr[:j]) - sum(llr[j:]) = 2 * cumsum[j] - total: the cut maximizes cumsum
        j = int(np.argmax(np.cumsum(llr)[:-1])) + 1
        return int(np.ceil((lo - WIN // 2) / HOP)) * HOP + WIN // 2 + j * HOP

    def _close_segment(self, end: int, vad_speech: Speech) -> list[Event]:
        run = self._run
        self._seg_start = None
        self._run = None
        if run is None:  # nothing was judged (cannot happen: final judges the rest)
            return [vad_speech]
        run.end = max(end, run.start + HOP)
        self._keep(run)
        return [replace(vad_speech, speaker=run.label, start=run.start / SAMPLE_RATE, end=run.end / SAMPLE_RATE,
                        speaker_confidence=round(run.confidence, 3))]

    def _keep(self, run: _Run) -> None:
        self._runs.append(run)
        horizon = self.position - int(_RUNS_KEPT_S * SAMPLE_RATE)
        while self._runs and self._runs[0].end is not None and self._runs[0].end < horizon:
            self._runs.popleft()

    # -- utterances ---------------------------------------------------------------------------------------------

    def _split_utterance(self, utt: UtteranceReady) -> list[UtteranceReady]:
        """One utterance per speaker: cut at speaker changes (in the middle of a silence between runs)."""
        runs = [r for r in self._runs if r.end is not None and r.end > utt.start_sample and r.start < utt.end_sample]
        if not runs:
            return [utt]
        pieces: list[list[Any]] = []  # [label, start, end]
        for r in runs:
            if pieces and pieces[-1][0] == r.label:
                pieces[-1][2] = r.end
            else:
                if pieces:
                    mid = (pieces[-1][2] + r.start) // 2 if r.start > pieces[-1][2] else r.start
                    pieces[-1][2] = mid
                    pieces.append([r.label, mid, r.end])
                else:
                    pieces.append([r.label, r.start, r.end])
        pieces[0][1] = utt.start_sample
        pieces[-1][2] = utt.end_sample
        return [replace(utt, speaker=label, start_sample=int(s), end_sample=int(e)) for label, s, e in pieces]


class RoleProsody:
    """The mono channel's prosody, one tracker per role (same interface as a tracker).

    ``process(frame, speaking=...)`` feeds every block to both role trackers, with
    ``speaking`` true only for the role the block is attributed to; blocks whose
    speaker is not decided yet wait (see the module notes).
    """

    def __init__(self, settings: ProsodySettings, attribution: MonoAttribution) -> None:
        self.attribution = attribution
        shared: dict[str, Any] = {}
        self.trackers = {role: _SharedAnalysisTracker(settings, speaker=role, shared=shared) for role in ROLES}
        self._held: deque[tuple[Frame, bool]] = deque()

    @property
    def level_db(self) -> float:
        return max(t.level_db for t in self.trackers.values())

    def process(self, frame: Frame, *, speaking: bool) -> list[Prosody]:
        self._held.append((frame, speaking))
        return self._release(frame.end_s)

    def _release(self, now_s: float) -> list[Prosody]:
        horizon = self.attribution.undecided_from()
        out: list[Prosody] = []
        while self._held:
            frame, speaking = self._held[0]
            if horizon is not None and frame.end_sample > horizon:
                break
            self._held.popleft()
            label = self.attribution.label_at(frame.start_sample, frame.end_sample) if speaking else None
            late = frame.end_s < now_s
            for role, tracker in self.trackers.items():
                for ev in tracker.process(frame, speaking=speaking and label == role, analyse_f0=speaking):
                    out.append(replace(ev, t=now_s) if late else ev)
        return out

    def summarize(self, start_s: float, end_s: float) -> SegmentProsody:
        self._release(self.attribution.position / SAMPLE_RATE)  # events of a final flush are dropped
        label = self.attribution.label_at(round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE))
        return self.trackers[label if label in self.trackers else ROLES[0]].summarize(start_s, end_s)


class _SharedAnalysisTracker(ProsodyTracker):
    """A role's tracker that reuses the other role's analysis of the same audio.

    Both role trackers get the same blocks in the same order, so their per-hop
    intensity and F0 are identical; only the baselines (which hops count as the
    role's speech) differ. Sharing ``_analyse`` halves the cost of per-role prosody.
    """

    def __init__(self, settings: ProsodySettings, *, speaker: str, shared: dict[str, Any]) -> None:
        super().__init__(settings, speaker=speaker)
        self._shared = shared

    def _analyse(self, buf: np.ndarray, n_hops: int, with_f0: bool) -> tuple[np.ndarray, np.ndarray]:
        key = (self._next_hop, n_hops, with_f0)
        if self._shared.get("key") == key:
            return self._shared["value"]
        value = super()._analyse(buf, n_hops, with_f0)
        self._shared["key"], self._shared["value"] = key, value
        return value
