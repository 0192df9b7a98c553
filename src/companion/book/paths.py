"""Where the book lives and where generated files go.

Chapters run from the repository root (papermill), from ``book/`` (Jupyter, nbval) or from
anywhere below; every generated path is resolved against the folder that holds
``_toc.yml`` so they all agree.
"""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that
    holds ``_toc.yml``.

    Example:
      >>> (project_root() / "_toc.yml").is_file()
      True
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"no _toc.yml at or above {here}: run this from inside the companion repository"
    )


def build_dir(start: Path | None = None) -> Path:
    """``_build/`` of the project (created on demand by the writers, not here)."""
    return project_root(start) / "_build"
