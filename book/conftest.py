"""nbval re-executes the chapters in one pytest run. Each kernel is told which chapter it
runs, as `companion book` tells it, so its claims are filed under the chapter's name and the
report page, re-executed last, gathers them."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Runs before the notebook's kernel starts (at its first cell), so the kernel inherits it.
    os.environ["COMPANION_CHAPTER"] = item.path.stem
