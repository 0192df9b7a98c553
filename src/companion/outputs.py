"""Files written all or nothing: each to a temporary file beside its destination first,
renamed into place only when every one is written, so a failed run leaves no partial
output (and the previous files, if any, as they were)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_paths", "jsonable", "write_all"]


def check_paths(paths: Mapping[str, str | os.PathLike], suffixes: Mapping[str, str]) -> list[Path]:
    """The paths, checked before anything runs: each ends in its suffix (``suffixes``, by
    the same keys, which name the option in messages), is no folder, and its folder can be
    written (created if missing).

    Example:
        >>> check_paths({"-o": "a.txt"}, {"-o": ".json"})
        Traceback (most recent call last):
        ...
        ValueError: -o a.txt: the file name must end in .json
    """
    checked = []
    for option, path in paths.items():
        path = Path(path)
        if path.suffix != suffixes[option]:
            raise ValueError(f"{option} {path}: the file name must end in {suffixes[option]}")
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder: give a file name")
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise ValueError(f"{option} {path}: {folder} is not writable; choose another folder")
        checked.append(path)
    return checked


def write_all(writers: Mapping[Path, Callable[[str], None]]) -> list[Path]:
    """Call each ``writer(temporary_name)``, then rename every temporary file to its path.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> def fails(name):
        ...     raise ValueError("no")
        >>> write_all({folder / "a.txt": lambda n: pathlib.Path(n).write_text("a"),
        ...            folder / "b.txt": fails})
        Traceback (most recent call last):
        ...
        ValueError: no
        >>> sorted(p.name for p in folder.iterdir())
        []
    """
    temporary: list[tuple[str, Path]] = []
    try:
        for path, writer in writers.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            os.close(handle)
            temporary.append((name, path))
            writer(name)
        for name, path in temporary:
            os.replace(name, path)
    finally:
        for name, _ in temporary:
            Path(name).unlink(missing_ok=True)
    return list(writers)


def jsonable(value: Any) -> Any:
    """``value`` with arrays as lists and non-finite floats as None (JSON has neither).

    Example:
        >>> jsonable({"a": np.array([1.0, np.inf]), "b": np.int64(2)})
        {'a': [1.0, None], 'b': 2}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
