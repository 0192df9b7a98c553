"""The HTML book: MathJax staged for offline reading, then Jupyter Book with warnings as
errors, built aside and swapped in only on success."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from companion.book import interrupts
from companion.book.paths import build_dir, project_root

__all__ = ["BuildFailed", "build_html"]


class BuildFailed(RuntimeError):
    """Jupyter Book stopped on an error or a warning; its own output says which."""


def _stage_mathjax(root: Path) -> None:
    """Copies the locally installed MathJax into ``_build/mathjax`` for the HTML build."""
    source = root / "node_modules" / "mathjax" / "es5"
    if not (source / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(
            "MathJax is not installed: run 'npm ci' (or 'make book', which does it)"
        )
    target = build_dir(root) / "mathjax" / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(source / "tex-mml-chtml.js", target)
    for sub in ("output/chtml/fonts/woff-v2", "input/tex/extensions"):
        shutil.copytree(source / sub, target / sub)


def build_html(root: Path | None = None) -> Path:
    """Builds ``_build/html`` from the executed notebooks, warnings as errors.

    Builds into a staging folder and swaps it in only on success, so a failed build leaves
    the previous HTML in place.
    """
    root = root or project_root()
    _stage_mathjax(root)
    staging = build_dir(root) / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", str(root), "--path-output", str(staging), "-W", "-n", "--keep-going"]
    html, old = build_dir(root) / "html", build_dir(root) / "html.old"
    try:
        done = subprocess.run(cmd, cwd=root)
        if done.returncode != 0:
            raise BuildFailed(f"jupyter-book build failed (exit {done.returncode}); see above")
        with interrupts.signals_held():
            shutil.rmtree(old, ignore_errors=True)
            if html.exists():
                html.rename(old)
            (staging / "_build" / "html").rename(html)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return html
