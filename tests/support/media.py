"""Writing test recordings in compressed formats with PyAV (no ffmpeg program needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_compressed(path: Path, audio: np.ndarray | None, rate: int, *, codec: str, video: bool = False) -> Path:
    """Encode ``audio`` (shape (n, channels), float32) into ``path``; optionally add a
    video stream (mpeg4, 2 s of grey frames) so the file is a real video."""
    import av

    with av.open(str(path), "w") as container:
        vstream = None
        if video:
            vstream = container.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = None
        if audio is not None:
            channels = audio.shape[1]
            astream = container.add_stream(codec, rate=rate)
            astream.layout = "mono" if channels == 1 else "stereo"
        if vstream is not None:
            for i in range(20):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, 10)
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if astream is not None:
            fmt = "fltp"
            step = 1024 * 4
            for i in range(0, len(audio), step):
                chunk = np.ascontiguousarray(audio[i : i + step].T, dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=astream.layout.name)
                frame.sample_rate = rate
                frame.pts = i
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path
