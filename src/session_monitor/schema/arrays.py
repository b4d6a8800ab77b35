"""Numeric arrays in an input file (a voice enrolment ``.npz``): shapes, kinds and finiteness declared."""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError, SessionMonitorError
from session_monitor.schema.specs import Problem, Spec, show

__all__ = ["Array", "load_arrays"]


@dataclasses.dataclass(frozen=True)
class Array(Spec):
    """A numpy array of ``shape`` (``None`` for any length on that axis; ``()`` a scalar).

    ``kinds`` are numpy dtype kinds allowed (``"f"`` float, ``"i"``/``"u"`` integers);
    ``finite`` refuses NaN and infinities; ``lo`` is a lower bound on every element.
    """

    shape: tuple[int | None, ...] = ()
    kinds: str = "fiu"
    finite: bool = True
    lo: float | None = None

    @property
    def expected(self) -> str:  # type: ignore[override]
        dims = "x".join("N" if d is None else str(d) for d in self.shape) or "scalar"
        return f"a numeric array of shape {dims}"

    def check(self, value: Any, at: str) -> Any:
        import numpy as np

        if not isinstance(value, np.ndarray) or value.dtype.kind not in self.kinds:
            kind = getattr(getattr(value, "dtype", None), "name", type(value).__name__)
            raise Problem(at, f"{at} holds {kind}; it must be {self.expected}")
        if value.ndim != len(self.shape) or any(d is not None and d != n for d, n in zip(self.shape, value.shape)):
            raise Problem(at, f"{at} has shape {value.shape}; it must be {self.expected}")
        if self.finite and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise Problem(at, f"{at} holds NaN or infinite values")
        if self.lo is not None and value.size and float(np.min(value)) < self.lo:
            raise Problem(at, f"{at} holds values below {self.lo:g}")
        return value


def load_arrays(path: str | os.PathLike[str], *, what: str,
                error: type[SessionMonitorError] = InputError) -> dict[str, Any]:
    """The arrays of a ``.npz`` file (never unpickling objects); every failure is ``error`` in one line."""
    import numpy as np

    name = show(Path(path), limit=120)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise error(f"{name}: no such {what}; check the path") from None
    except IsADirectoryError:
        raise error(f"{name}: is a folder, not a {what}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise error(f"{name}: not a {what} ({type(exc).__name__})") from None
