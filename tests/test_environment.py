"""The environment: one hashed lock per supported Python, without TensorFlow.

neural-tangents declares tensorflow and tf2jax for its TensorFlow port, which the book never
uses; the locks leave them out and install neural-tangents without its declared
dependencies. These tests check the locks, the import list that replaces ``pip check``, and
how the Makefile finds an interpreter.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ("3.11", "3.12", "3.13")
LOCKS = {v: ROOT / "requirements" / f"py{v.replace('.', '')}.lock" for v in SUPPORTED}
#: What only TensorFlow and tf2jax pull in (the 1.9 GB the light environment saves).
TENSORFLOW_ONLY = {
    "tensorflow", "tf2jax", "keras", "tensorboard", "tensorboard-data-server", "h5py",
    "grpcio", "libclang", "flatbuffers", "gast", "astunparse", "google-pasta", "dm-tree",
    "tensorflow-io-gcs-filesystem", "termcolor", "namex", "optree", "absl-py", "protobuf",
    "wrapt", "werkzeug", "markdown",
}  # fmt: skip


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _entries(lock: Path) -> list[tuple[str, list[str]]]:
    """Each requirement line of ``lock`` with the hash lines that follow it."""
    entries: list[tuple[str, list[str]]] = []
    for line in lock.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(" "):
            entries[-1][1].append(line.strip().rstrip(" \\"))
        else:
            entries.append((line.rstrip(" \\"), []))
    return entries


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for requirement, _ in _entries(lock):
        name, version = requirement.split("==")
        pins[_normal(name)] = version
    return pins


def _no_deps() -> dict[str, str]:
    lines = (ROOT / "requirements" / "no-deps.in").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {_normal(name): version for name, version in pins}


@pytest.mark.parametrize("version", SUPPORTED)
def test_each_lock_pins_every_package_exactly_with_its_hashes(version):
    entries = _entries(LOCKS[version])
    assert len(entries) > 100
    for requirement, hashes in entries:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", requirement), requirement
        assert hashes, f"{requirement} has no hash"
        for line in hashes:
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", line), (requirement, line)


@pytest.mark.parametrize("version", SUPPORTED)
def test_each_lock_holds_the_stack_that_works_and_no_tensorflow(version):
    pins = _pins(LOCKS[version])
    assert pins["jax"] == pins["jaxlib"] == "0.4.35"
    assert pins["neural-tangents"] == "0.6.5"
    assert "frozendict" in pins and "setuptools" in pins
    assert int(pins["jupyter-book"].split(".")[0]) < 2
    assert not TENSORFLOW_ONLY & set(pins), TENSORFLOW_ONLY & set(pins)


#: Pinned on one Python only, and why: papermill requires aiohttp on 3.12 alone.
ONE_PYTHON_ONLY = {
    "3.12": {"aiohttp", "aiohappyeyeballs", "aiosignal", "frozenlist", "multidict", "propcache",
             "yarl"},
}  # fmt: skip


def test_every_python_runs_the_same_versions():
    """A package pinned in two locks has one version: the numbers cannot depend on which."""
    reference = _pins(LOCKS[SUPPORTED[0]])
    for version in SUPPORTED[1:]:
        pins = _pins(LOCKS[version])
        assert set(reference) ^ set(pins) == ONE_PYTHON_ONLY.get(version, set()), version
        changed = {n: (reference[n], pins[n]) for n in set(reference) & set(pins)}
        assert {n: v for n, v in changed.items() if v[0] != v[1]} == {}, version


def test_no_deps_packages_are_in_every_lock_and_nothing_else_declares_them():
    """neural-tangents is pinned, but what it declares for its TensorFlow port is not."""
    assert _no_deps() == {"neural-tangents": "0.6.5"}
    declared = importlib.metadata.requires("neural-tangents") or []
    assert any(r.startswith("tensorflow") for r in declared)  # why it needs --no-deps
    assert importlib.util.find_spec("tensorflow") is None
    assert importlib.util.find_spec("tf2jax") is None
    for lock in LOCKS.values():
        assert _no_deps().items() <= _pins(lock).items()


def test_the_makefile_installs_with_hashes_and_checks_imports_instead_of_pip_check():
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps --require-hashes -r $(LOCK)" in makefile
    assert "requirements/py$(subst .,,$(PY_VERSION)).lock" in makefile
    recipes = [line for line in makefile.splitlines() if line.startswith("\t")]
    assert not [line for line in recipes if "pip check" in line]
    assert "requirements/imports.txt" in makefile


def _third_party_imports() -> set[str]:
    """Top-level packages imported anywhere in the package, chapters, tests and benchmarks."""
    found = set()
    for folder in ("src", "book", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"companion", "benchmarks"}


def _import_list() -> list[str]:
    lines = (ROOT / "requirements" / "imports.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_the_import_list_covers_every_third_party_import():
    listed = {module.split(".")[0] for module in _import_list()}
    assert _third_party_imports() - listed == set()
    assert _import_list()[0] == "companion"  # first: it defers neural-tangents' port


def test_everything_the_book_imports_imports_without_tensorflow():
    """The check that replaces ``pip check``, in a fresh process."""
    code = (
        "import importlib, sys\n"
        "for m in sys.argv[1:]: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf2jax')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *_import_list()],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
    assert "tensorflow" not in done.stderr.lower(), done.stderr[-3000:]


def test_the_tensorflow_port_says_what_to_install():
    import neural_tangents as nt

    with pytest.raises(AttributeError, match=r"pip install tensorflow tf2jax"):
        nt.experimental.empirical_ntk_fn_tf  # noqa: B018
    with pytest.raises(AttributeError, match=r"needs TensorFlow"):  # and again, not KeyError
        nt.experimental.empirical_ntk_fn_tf  # noqa: B018


def _make_python(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = None if path is None else {"PATH": path}
    return subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "-s", "python", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_make_says_which_python_and_lock_it_uses():
    done = _make_python(f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Python {version}: {sys.executable}" in done.stdout
    assert f"lock requirements/py{version.replace('.', '')}.lock" in done.stdout


@pytest.mark.bad_input
def test_make_names_an_unsupported_python_and_the_fix(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\necho "Python 3.10.13"\necho 3.10\n')
    old.chmod(0o755)
    done = _make_python(f"PYTHON={old}")
    assert done.returncode != 0
    assert f"PYTHON={old} is not a supported Python" in done.stderr
    assert "Python 3.10.13" in done.stderr and "PYTHON=/path/to/python3.12" in done.stderr


@pytest.mark.bad_input
def test_make_says_when_no_supported_python_is_on_path(tmp_path):
    done = _make_python(path=str(tmp_path))
    assert done.returncode != 0
    assert "No supported Python found" in done.stderr
    assert "python3.11 python3.12 python3.13 python3" in done.stderr


def test_requires_python_allows_every_supported_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"
    classifiers = {c.rsplit(" ", 1)[-1] for c in project["classifiers"] if "Python :: 3." in c}
    assert classifiers == set(SUPPORTED)
    makefile = (ROOT / "Makefile").read_text()
    assert f"SUPPORTED := {' '.join(SUPPORTED)}" in makefile


def test_environment_yml_agrees_with_the_locks():
    """conda brings its own Python 3.11, so the 3.11 lock; conda's pip section installs with
    dependencies, so the no-deps pins go in by hand."""
    text = (ROOT / "environment.yml").read_text()
    env = yaml.safe_load(text)
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {_normal(name): version for name, version in (p.split("==") for p in pip)}
    expected = _pins(LOCKS[SUPPORTED[0]])
    for name, version in _no_deps().items():
        del expected[name]
        assert f"pip install --no-deps {name}=={version}" in text
    assert conda_pins == expected


def _reuse_hashes():
    path = ROOT / "requirements" / "reuse_hashes.py"
    spec = importlib.util.spec_from_file_location("reuse_hashes", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hashes_copied_from_a_lock_give_its_entries_back(tmp_path):
    """What `make lock` writes for pins already hashed: pip-compile's entries, its order."""
    lock = LOCKS[SUPPORTED[0]]
    no_deps = _no_deps()
    pins = [r for r, _ in _entries(lock) if _normal(r.split("==")[0]) not in no_deps]
    (tmp_path / "pins.txt").write_text("\n".join(pins) + "\n")
    out = tmp_path / "hashed.txt"
    assert _reuse_hashes().main(str(tmp_path / "pins.txt"), str(out), str(lock)) == 0
    body = lock.read_text().split("\n# Installed without")[0].splitlines()[4:]
    assert out.read_text().strip() == "\n".join(body).strip()


def test_a_release_in_no_lock_is_left_to_pip_compile(tmp_path, capsys):
    (tmp_path / "pins.txt").write_text("jax==0.4.35\nnumpy==1.0.0\n")
    out = tmp_path / "hashed.txt"
    assert _reuse_hashes().main(str(tmp_path / "pins.txt"), str(out), str(LOCKS["3.11"])) == 1
    assert capsys.readouterr().out.split() == ["numpy==1.0.0"]
    assert not out.exists()
