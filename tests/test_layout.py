"""The package layout: what may import what, no cycles, small modules (read from the source with ast).

The rules are the ones written in ``session_monitor/__init__.py``'s docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "session_monitor"

#: Shared values every stage may use; they import nothing else of the package.
SHARED = {"errors", "events", "event_log", "mi_text", "quotes", "shorten", "talk_time", "schema", "settings"}
STAGES = {"audio", "speech", "prosody", "speakers", "rupture"}
#: What a stage may never import.
ABOVE_STAGES = {"session", "clinician", "report", "dashboard", "cli", "batch"}
#: Size limits: "no module over ~400 lines, no folder over ~12 modules".
MAX_LINES = 420
MAX_MODULES = 12


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["session_monitor", *parts])


def _imports(path: Path) -> set[str]:
    """Every session_monitor module ``path`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("session_monitor")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("session_monitor"):
                continue
            submodules = {f"{module}.{a.name}" for a in node.names if _exists(f"{module}.{a.name}")}
            # "from session_monitor.cli import tune" imports the module cli.tune, not cli's own names
            out |= submodules if len(submodules) == len(node.names) else submodules | {module}
    out.discard(me)
    return {m for m in out if m != "session_monitor"}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _top(module: str) -> str:
    """The folder (or shared module) a module belongs to: ``session_monitor.speech.turns`` -> ``speech``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = {
    _module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
    if p.relative_to(PACKAGE).parts[0] != "__pycache__"
}
GRAPH = {m: _imports(p) for m, p in MODULES.items()}
#: The package's own __init__ and __main__ are the public API and the entry point: above every rule.
CHECKED = {m: deps for m, deps in GRAPH.items() if m not in ("session_monitor", "session_monitor.__main__")}


def _violations(rule) -> list[str]:
    return [f"{m} imports {d}" for m, deps in sorted(CHECKED.items()) for d in sorted(deps) if rule(_top(m), _top(d))]


def test_the_parser_sees_the_imports():
    """The checks below would pass vacuously if the reader found nothing."""
    assert "session_monitor.speech.activity" in GRAPH["session_monitor.session.pipeline"]
    assert "session_monitor.cli.tune" in GRAPH["session_monitor.cli.main"]
    assert len(MODULES) > 40


def test_shared_values_import_only_each_other():
    assert _violations(lambda me, dep: me in SHARED and dep not in SHARED) == []


def test_audio_imports_only_shared_values():
    assert _violations(lambda me, dep: me == "audio" and dep not in SHARED | {"audio"}) == []


def test_rupture_model_needs_no_signal_processing():
    banned = {"audio", "speech", "prosody", "speakers", "session"}
    assert _violations(lambda me, dep: me == "rupture" and dep in banned) == []


def test_stages_never_import_what_runs_them():
    assert _violations(lambda me, dep: me in STAGES and dep in ABOVE_STAGES) == []


def test_report_and_dashboard_read_events_only():
    assert _violations(lambda me, dep: me in ("report", "dashboard") and dep not in SHARED | {me}) == []


def test_nothing_imports_the_command_line():
    assert _violations(lambda me, dep: dep == "cli" and me != "cli") == []


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(CHECKED.get(m, ())):
            if d not in CHECKED:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(CHECKED):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines; split it by concept"


def test_folders_stay_small():
    for folder in [PACKAGE, *sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES, f"{folder.name}/ has {len(modules)} modules"


def test_every_module_has_a_test_module_named_for_it_or_its_folder():
    """Tests mirror the package: tests/<folder>/ exists for every stage folder."""
    tests = Path(__file__).resolve().parent
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        assert (tests / folder.name).is_dir(), f"tests/{folder.name}/ is missing"
