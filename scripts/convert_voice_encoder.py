"""Convert the GE2E voice encoder of the PyPI package Resemblyzer to ONNX, once.

The run-time encoder (:mod:`session_monitor.speakers.encoder`) needs no torch: it runs the
weights with onnxruntime (already a dependency; twice as fast as the same network in numpy
on one core, docs/attribution.md). This script makes them, reproducibly:

1. a throwaway virtual environment under /tmp gets the pinned ``torch`` (CPU build),
   ``Resemblyzer``, ``librosa`` and ``onnx`` from PyPI (nothing of it goes into the
   project's venv);
2. inside it, the encoder with the checkpoint ``resemblyzer/pretrained.pt`` from the wheel,
   preceded by librosa's 40-band mel filterbank that Resemblyzer computes its input with,
   is exported (TorchScript exporter, opset 17; the weights unchanged, float32) to
   ``src/session_monitor/speakers/voice_encoder/ge2e.onnx``: input the power spectrum
   ``(batch, frames, 201)``, output the unit-length embedding ``(batch, 256)``. The same
   wheel and pins give the same bytes. The package's Apache-2.0 ``LICENSE`` goes beside it;
3. the original encoder (torch) embeds a few windows of ``../shared/data/voices`` and
   the results go to ``tests/speakers/data/ge2e_reference.npz``: the test that the numpy
   encoder reproduces it.

Usage: python scripts/convert_voice_encoder.py [--venv DIR] [--voices DIR]
(``--venv`` reuses an environment made by an earlier run; default: a new one, removed after.)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "session_monitor" / "speakers" / "voice_encoder"
REFERENCE = ROOT / "tests" / "speakers" / "data" / "ge2e_reference.npz"
PINS = ["torch==2.13.0", "Resemblyzer==0.1.4", "librosa==0.11.0", "numpy==2.4.6", "soundfile==0.14.0", "onnx==1.23.2",
        "setuptools==80.9.0"]  # webrtcvad (a dependency of Resemblyzer) imports pkg_resources
#: Windows the reference embeddings are made of: (file, start s, length s); women and men.
REFERENCE_WINDOWS = [
    ("103-1240-0000.flac", 2.0, 1.0), ("103-1240-0000.flac", 5.0, 1.6),
    ("1034-121119-0000.flac", 2.0, 1.0), ("1034-121119-0000.flac", 6.0, 0.6),
    ("1069-133699-0000.flac", 3.0, 1.2), ("1040-133433-0000.flac", 4.0, 1.6),
]


def write_npz(path: Path, arrays: dict) -> None:
    """``np.savez`` with fixed member dates and order: the same arrays give the same bytes."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def inner(voices: Path) -> None:
    """Runs in the throwaway environment (torch and resemblyzer importable)."""
    import librosa
    import numpy as np
    import resemblyzer
    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import wav_to_mel_spectrogram

    torch.set_num_threads(1)
    torch.manual_seed(0)
    package = Path(resemblyzer.__file__).parent
    checkpoint = package / "pretrained.pt"
    encoder = VoiceEncoder("cpu", verbose=False).eval()  # loads pretrained.pt
    filterbank = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).T.copy())

    class PowerToEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.register_buffer("filterbank", filterbank)

        def forward(self, power):
            return self.encoder(power @ self.filterbank)

    TARGET.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(PowerToEmbedding().eval(), (torch.rand(1, 100, 201),), str(TARGET / "ge2e.onnx"),
                      input_names=["power"], output_names=["embedding"],
                      dynamic_axes={"power": {0: "batch", 1: "frames"}}, dynamo=False, opset_version=17)
    dist = next(package.parent.glob("[Rr]esemblyzer-*.dist-info"))
    shutil.copyfile(dist / "LICENSE", TARGET / "LICENSE")
    print(json.dumps({"checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                      "onnx_sha256": hashlib.sha256((TARGET / "ge2e.onnx").read_bytes()).hexdigest()}))

    embeds, specs = [], []
    for name, start, length in REFERENCE_WINDOWS:
        wav, rate = sf.read(voices / name, dtype="float32")
        assert rate == 16000
        seg = wav[round(start * rate) : round((start + length) * rate)]
        mel = wav_to_mel_spectrogram(seg)
        with torch.no_grad():
            embeds.append(encoder(torch.from_numpy(mel[None])).numpy()[0])
        specs.append([start, length])
    write_npz(REFERENCE, {"files": np.array([w[0] for w in REFERENCE_WINDOWS]),
                          "windows": np.array(specs, dtype=np.float64),
                          "embeddings": np.array(embeds, dtype=np.float32)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, help="reuse this throwaway environment (made if missing)")
    ap.add_argument("--voices", type=Path, default=ROOT.parent / "shared" / "data" / "voices")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.voices)
        return 0
    if not args.voices.is_dir():
        sys.exit(f"convert_voice_encoder: {args.voices}: no such folder; give --voices DIR (shared/data/voices)")
    venv = args.venv or Path(tempfile.mkdtemp(prefix="ge2e-venv-", dir="/tmp"))
    try:
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
        subprocess.run([str(python), __file__, "--inner", "--voices", str(args.voices)], check=True)
    finally:
        if args.venv is None:
            shutil.rmtree(venv, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
