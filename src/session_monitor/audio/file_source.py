"""File source: a recorded session decoded in blocks, resampled to 16 kHz.

wav/flac/ogg (and whatever libsndfile reads) go through soundfile; mp3, m4a, mp4
and other containers through PyAV. Any rate, any channel count. The file is never
loaded whole: a 3-hour session streams in blocks of ``block_ms``.

``speed`` paces the blocks against the wall clock: ``1.0`` is real time, ``N`` is N
times faster, ``None`` (``--speed max``) as fast as the pipeline runs.
"""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.audio.source import OneStream
from session_monitor.errors import InputError, reason
from session_monitor.schema import show

__all__ = ["FileSource", "parse_speed"]

logger = logging.getLogger(__name__)

_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".caf", ".rf64"}


def parse_speed(text: str) -> float | None:
    """``realtime`` -> 1.0, ``max`` -> None, ``N`` -> N (> 0)."""
    if text == "realtime":
        return 1.0
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"--speed {text!r} is not valid; use realtime, max or a number above 0 such as 4")
    return value


class FileSource(OneStream):
    """Blocks of a recorded file, shape ``(channels, n)``, float32 at 16 kHz.

    Parameters
    ----------
    path : path to the recording
    block_ms : block length at 16 kHz
    speed : pacing factor, or None for as fast as possible
    """

    live = False

    def __init__(self, path: str | Path, *, block_ms: int = 96, speed: float | None = None) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.block = round(block_ms * SAMPLE_RATE / 1000)
        self.speed = speed
        self.overflows = 0
        self.non_finite = 0  # samples that were NaN or inf, replaced by 0
        self.clipped = 0  # samples at full scale (|x| >= 0.999) before resampling
        self.samples_read = 0
        self.audio_ok = True
        self.message = ""
        self._check_path()
        self._backend = "soundfile" if self.path.suffix.lower() in _SOUNDFILE_SUFFIXES else "av"
        self._subtype = ""
        if self._backend == "soundfile":
            self.native_rate, self.channels, self.frames = self._probe_soundfile()
        else:
            self.native_rate, self.channels, self.frames = self._probe_av()
        if self.frames == 0:
            raise InputError(f"{self.path}: contains no audio samples; choose a recording with sound")
        if self._backend == "soundfile" and self._subtype in ("FLOAT", "DOUBLE"):
            self._check_finite()
        if self._backend == "soundfile":
            self._check_complete()

    def _check_complete(self) -> None:
        """A compressed file cut short (a copy that stopped half-way) is refused before anything starts.

        The header says how many frames there are; seeking to the last one fails on a truncated
        FLAC or Ogg file (one seek, not a decode). Damage the header cannot show ends the session
        later with ``end_reason = "truncated_input"``.
        """
        import soundfile as sf

        try:
            with sf.SoundFile(str(self.path)) as f:
                f.seek(self.frames - 1)
                complete = len(f.read(1, dtype="float32")) == 1
        except (sf.LibsndfileError, RuntimeError):
            complete = False
        if not complete:
            raise InputError(f"{self.path}: is truncated (its header promises {self.frames / self.native_rate:.1f} s "
                             "that the file does not hold); copy the whole recording again or re-export it")

    def _check_finite(self) -> None:
        """A float file with NaN or inf samples is corrupt: refuse it before anything starts."""
        for block in self._native_blocks(seconds=30.0):
            if not np.all(np.isfinite(block)):
                raise InputError(f"{self.path}: contains NaN or infinite samples; the file is damaged - "
                                 "re-export it from the recorder")

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.native_rate

    def _check_path(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file; check the path") from None
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte, no permission
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"{show(self.path, limit=120)}: cannot be opened ({reason}); check the path") from None
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{self.path}: is a folder; give an audio file (wav, flac, ogg, mp3, m4a, mp4)")
        if st.st_size == 0:
            raise InputError(f"{self.path}: is empty (0 bytes); choose a recording with sound")

    def _probe_soundfile(self) -> tuple[int, int, int]:
        import soundfile as sf

        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{self.path}: not a readable audio file ({reason(exc)}); convert it to wav or flac") from None
        self._subtype = info.subtype
        return int(info.samplerate), int(info.channels), int(info.frames)

    def _probe_av(self) -> tuple[int, int, int | None]:
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.audio:
                    raise InputError(f"{self.path}: has no audio stream; give a file with sound")
                stream = container.streams.audio[0]
                rate = int(stream.rate or stream.codec_context.sample_rate or 0)
                channels = int(stream.codec_context.channels or 0)
                frames = None
                if stream.duration is not None and stream.time_base is not None:
                    frames = int(float(stream.duration * stream.time_base) * rate)
                elif container.duration:
                    frames = int(container.duration / 1_000_000 * rate)
        except InputError:
            raise
        except Exception as exc:  # PyAV raises many types for broken containers
            raise InputError(f"{self.path}: cannot be decoded ({reason(exc)}); convert it to wav or flac") from None
        if rate <= 0 or channels <= 0:
            raise InputError(f"{self.path}: audio stream has no sample rate or channels; convert it to wav")
        return rate, channels, frames

    # -- reading ---------------------------------------------------------------------------

    def _native_blocks(self, seconds: float | None = None) -> Iterator[np.ndarray]:
        """Native-rate blocks, shape (n, channels): about 1 s each (one read per pipeline
        block cost 7 % of a replay, half of it in seeks), or ``seconds`` long."""
        native_block = max(1, round(self.block * self.native_rate / SAMPLE_RATE), int(self.native_rate))
        if seconds is not None:
            native_block = int(seconds * self.native_rate)
        if self._backend == "soundfile":
            import soundfile as sf

            try:
                with sf.SoundFile(str(self.path)) as f:
                    while True:
                        data = f.read(native_block, dtype="float32", always_2d=True)
                        if len(data) == 0:
                            return
                        yield data
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise _truncated(f"{self.path}: truncated input: audio is damaged or ends early ({reason(exc)})") from None
        else:
            yield from self._av_blocks()

    def _av_blocks(self) -> Iterator[np.ndarray]:
        import av

        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.audio[0]
                for frame in container.decode(stream):
                    data = frame.to_ndarray()
                    if data.dtype.kind in "iu":
                        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
                    if frame.format.is_planar:
                        data = data.reshape(self.channels, -1).T
                    else:
                        data = data.reshape(-1, self.channels)
                    yield np.ascontiguousarray(data, dtype=np.float32)
        except InputError:
            raise
        except Exception as exc:
            raise _truncated(f"{self.path}: truncated input: audio is damaged or cannot be decoded "
                             f"({reason(exc)})") from None

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield ``(channels, block)`` float32 arrays at 16 kHz, paced by ``speed``."""
        import soxr

        resampler = None
        if self.native_rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(self.native_rate, SAMPLE_RATE, self.channels, dtype="float32")
        pending = np.zeros((0, self.channels), dtype=np.float32)
        produced = 0
        wall0 = time.monotonic()
        for native in self._chunked(self._native_blocks()):
            last = native is None
            if native is not None:
                self.samples_read += native.size
                self.clipped += int(np.count_nonzero(np.abs(native) >= 0.999))
            if resampler is not None:
                data = resampler.resample_chunk(native if native is not None else np.zeros((0, self.channels), np.float32), last=last)
            else:
                data = native if native is not None else np.zeros((0, self.channels), np.float32)
            data = self._sanitize(data)
            pending = np.concatenate([pending, data]) if len(pending) else data
            while len(pending) >= self.block or (last and len(pending)):
                out, pending = pending[: self.block], pending[self.block :]
                if self.speed is not None:
                    due = wall0 + (produced / SAMPLE_RATE) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                produced += len(out)
                yield np.ascontiguousarray(out.T)

    @staticmethod
    def _chunked(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray | None]:
        """The blocks, then None to mark the end (so the resampler can flush)."""
        yield from blocks
        yield None

    def _sanitize(self, data: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(data)):
            bad = ~np.isfinite(data)
            self.non_finite += int(bad.sum())
            data = np.where(bad, 0.0, data).astype(np.float32)
        return data

    def open(self) -> None:
        """Nothing to open: a file is read as :meth:`blocks` asks (the :class:`AudioSource` protocol)."""

    def close(self) -> None:
        pass


def _truncated(message: str) -> InputError:
    """A decoding failure mid-file: the session ends with ``end_reason = "truncated_input"``."""
    error = InputError(message)
    error.end_reason = "truncated_input"  # type: ignore[attr-defined]
    return error


