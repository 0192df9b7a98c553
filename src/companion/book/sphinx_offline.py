"""Sphinx hook for the built book: keep every page free of duplicate inline scripts.

Jupyter Book 1 emits sphinx-thebe's inline configuration script twice on every page, which
the browser reports as a ``SyntaxError`` (a redeclared ``const``). Dropping repeated
entries of ``script_files`` before rendering removes it.
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app, pagename, templatename, context: dict[str, Any], doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[str] = set()
    unique = []
    for script in scripts:
        # Inline scripts are registered with filename None or "": compare their bodies.
        key = script.attributes.get("body") or str(script.filename)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app) -> dict[str, Any]:
    """Registers the hook with Sphinx."""
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
