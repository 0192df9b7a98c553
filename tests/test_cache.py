"""The execution cache: a build executes a chapter only when its key changed.

A toy book of two chapters and a summary page (which reads the others' claims) is built
once per module; each test works on a copy. Every execution appends the chapter's slug to
a log, so "executed nothing" is observed, not inferred from wall time. Executions are done
by a stand-in for ``chapters.run`` that writes what the toy chapter's kernel would (the
notebook, the same claims through ``report.record``), because a kernel takes seconds to
start; the interruption test runs real kernels. The HTML build is a stub that counts
its calls (the real one is exercised by tests/test_interrupt.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from companion.book import cache, chapters, cli, report

CHAPTER = """# %% [markdown]
# # {title}
#
# Prose.

# %% tags=["parameters"]
quick = False  # small sizes
value = 1.0  # the recorded value [quick: 2.0] [min: 0.0]

# %%
import os
from pathlib import Path

from companion.book import report

with Path(os.environ["TOY_LOG"]).open("a") as log:
    log.write("{slug}\\n")
if os.environ.get("TOY_INTERRUPT") == "{slug}":
    raise KeyboardInterrupt
report.record("{slug}.value", value, kind="exact", bound=10.0, statement="a toy claim")
"""
STATED = "a toy claim"
SUMMARY = "# ---\n# jupyter:\n#   companion:\n#     after_others: [claims]\n# ---\n\n"
SLUGS = ("01_a", "02_b", "03_summary")


def _toy(root: Path, package: Path) -> None:
    (root / "book").mkdir(parents=True)
    toc = "".join(f"      - file: book/{slug}\n" for slug in SLUGS)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nparts:\n  - chapters:\n{toc}")
    for slug in SLUGS:
        text = CHAPTER.format(slug=slug, title=slug)
        (root / "book" / f"{slug}.py").write_text(SUMMARY + text if "summary" in slug else text)
    (root / "requirements.lock").write_text("numpy==1.0\n")
    package.mkdir()
    (package / "module.py").write_text("x = 1\n")


class Toy:
    """A copy of the built toy book, with its environment in place."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, kernels: bool = False):
        self.root, self.html_builds = root, 0
        monkeypatch.chdir(root)
        monkeypatch.setenv("COMPANION_CHAPTER", "unset")
        monkeypatch.setenv("TOY_LOG", str(root / "executed.log"))
        monkeypatch.setenv("COMPANION_RESULTS_DIR", str(root / "_build" / "results"))
        monkeypatch.setattr(cache, "PACKAGE", root / "package")
        monkeypatch.setattr(chapters, "build_html", self._html)
        if not kernels:
            monkeypatch.setattr(chapters, "run", self._run)

    def _run(self, chapter, parameters: dict, output: Path, *, root: Path | None = None) -> float:
        """What the toy chapter's kernel does, without a kernel."""
        if os.environ.get("TOY_INTERRUPT") == chapter.slug:
            raise KeyboardInterrupt
        with self.path("executed.log").open("a") as log:
            log.write(f"{chapter.slug}\n")
        value = parameters.get("value", chapter.parameters[1].default)
        self.path(f"_build/results/{chapter.slug}.json").unlink(missing_ok=True)
        os.environ["COMPANION_CHAPTER"] = chapter.slug  # restored by the fixture
        report.record(f"{chapter.slug}.value", value, kind="exact", bound=10.0, statement=STATED)
        output.write_text(json.dumps([chapter.path.read_text(), parameters]))
        return 0.5

    def _html(self, root: Path) -> Path:
        self.html_builds += 1
        html = root / "_build" / "html"
        html.mkdir(parents=True, exist_ok=True)
        (html / "index.html").write_text(f"build {self.html_builds}")
        return html

    def build(self, **options) -> list[str]:
        """The slugs a build executed, in order."""
        log = self.root / "executed.log"
        log.write_text("")
        chapters.build_book(root=self.root, log=lambda *a, **k: None, **options)
        return log.read_text().split()

    def path(self, name: str) -> Path:
        return self.root / name

    def entry(self, slug: str) -> bytes:
        return self.path(f"_build/cache/{slug}.full.json").read_bytes()

    def timings(self) -> dict:
        return json.loads(self.path("_build/timings.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cached") / "toy"
    _toy(root, root / "package")
    with pytest.MonkeyPatch.context() as patch:
        assert Toy(root, patch).build() == list(SLUGS)
    return root


@pytest.fixture
def toy(built, tmp_path, monkeypatch) -> Toy:
    shutil.copytree(built, tmp_path / "toy", symlinks=True)
    return Toy(tmp_path / "toy", monkeypatch)


@pytest.fixture
def toy_with_kernels(built, tmp_path, monkeypatch) -> Toy:
    shutil.copytree(built, tmp_path / "toy", symlinks=True)
    return Toy(tmp_path / "toy", monkeypatch, kernels=True)


def test_a_build_with_nothing_changed_executes_nothing_and_keeps_the_html(toy):
    before = {slug: toy.entry(slug) for slug in SLUGS}
    assert toy.build() == []
    assert toy.html_builds == 0, "the HTML was rebuilt though nothing changed"
    assert {slug: toy.entry(slug) for slug in SLUGS} == before
    runs = toy.timings()["chapters"]
    assert list(runs) == list(SLUGS)
    assert all(r["cached"] and r["configuration"] == "full" for r in runs.values())


def test_editing_prose_executes_that_chapter_and_changed_claims_the_summary(toy):
    source = toy.path("book/02_b.py")
    source.write_text(source.read_text().replace("# Prose.", "# Other prose."))
    assert toy.build() == ["02_b"], "the summary's inputs (the claims) did not change"
    assert toy.html_builds == 1
    source.write_text(source.read_text().replace("value = 1.0", "value = 3.0"))
    assert toy.build() == ["02_b", "03_summary"]
    runs = toy.timings()["chapters"]
    assert [s for s, r in runs.items() if not r["cached"]] == ["02_b", "03_summary"]


@pytest.mark.parametrize(
    "change",
    ["package source", "new package file", "lock", "new lock file", "python"],
)
def test_a_change_shared_by_every_key_executes_every_chapter(toy, monkeypatch, change):
    if change == "package source":
        toy.path("package/module.py").write_text("x = 2\n")
    elif change == "new package file":
        toy.path("package/other.py").write_text("y = 1\n")
    elif change == "lock":
        toy.path("requirements.lock").write_text("numpy==2.0\n")
    elif change == "new lock file":
        toy.path("requirements").mkdir()
        toy.path("requirements/py3.12.lock").write_text("numpy==1.0\n")
    else:
        monkeypatch.setattr(cache.platform, "python_version", lambda: "3.99.0")
    assert toy.build() == list(SLUGS)


def test_bytecode_caches_are_not_package_source(toy):
    toy.path("package/__pycache__").mkdir()
    toy.path("package/__pycache__/module.cpython-311.pyc").write_bytes(b"compiled")
    assert toy.build() == []


def test_every_part_of_a_key_changes_it(toy):
    chapter = chapters.find_chapter("a", toy.root)
    env = cache.environment(toy.root)
    base = cache.key(chapter, {}, env, toy.root)
    variants = {
        "parameter": cache.key(chapter, {"value": 2.0}, env, toy.root),
        "quick": cache.key(chapter, chapter.resolve({}, quick=True), env, toy.root),
        "package": cache.key(chapter, {}, cache.Environment("x", env.locks, env.python), toy.root),
        "lock": cache.key(chapter, {}, cache.Environment(env.package, "x", env.python), toy.root),
        "python": cache.key(chapter, {}, cache.Environment(env.package, env.locks, "3"), toy.root),
        "others": cache.key(chapter, {}, env, toy.root, {"claims": {"02_b": None}}),
    }  # fmt: skip
    assert cache.key(chapter, {}, env, toy.root) == base, "a key is a function of its parts"
    assert base not in variants.values() and len(set(variants.values())) == len(variants)


def test_quick_and_full_runs_never_share_a_notebook_and_each_keeps_its_own(toy):
    claims = toy.path("_build/results/01_a.json")
    full = toy.path("book/01_a.ipynb").read_bytes(), claims.read_bytes()
    assert toy.build(quick=True) == list(SLUGS)
    runs = toy.timings()["chapters"]
    assert {r["configuration"] for r in runs.values()} == {"quick"}
    assert json.loads(claims.read_text())[0]["value"] == 2.0
    assert toy.build(quick=True) == []
    assert toy.build() == [], "the full notebooks and claims come back from their copies"
    assert (toy.path("book/01_a.ipynb").read_bytes(), claims.read_bytes()) == full
    assert {r["configuration"] for r in toy.timings()["chapters"].values()} == {"full"}
    assert toy.build(quick=True) == []
    assert json.loads(claims.read_text())[0]["value"] == 2.0


def test_force_executes_every_chapter_and_builds_the_html(toy):
    assert toy.build(force=True) == list(SLUGS)
    assert toy.html_builds == 1


@pytest.mark.parametrize(
    ("damage", "executed"),
    [
        ("no entry", ["02_b"]),
        ("corrupt entry", ["02_b"]),
        ("entry of an older shape", ["02_b"]),
        ("no notebook", []),
        ("edited notebook", []),
        ("edited notebook and its copy", ["02_b"]),
        ("edited claims", []),
        ("no claims", []),
        ("no claims and no copy", ["02_b"]),
    ],
)
def test_a_damaged_entry_executes_again_and_damaged_outputs_come_back(toy, damage, executed):
    claims, notebook = toy.path("_build/results/02_b.json"), toy.path("book/02_b.ipynb")
    original = claims.read_bytes(), notebook.read_bytes()
    entry = toy.path("_build/cache/02_b.full.json")
    copies = (
        toy.path("_build/cache/02_b.full.ipynb"),
        toy.path("_build/cache/02_b.full.claims.json"),
    )
    {
        "no entry": lambda: entry.unlink(),
        "corrupt entry": lambda: entry.write_text("{not json"),
        "entry of an older shape": lambda: entry.write_text('{"key": "k"}'),
        "no notebook": lambda: notebook.unlink(),
        "edited notebook": lambda: notebook.write_text("[]"),
        "edited notebook and its copy": lambda: [p.write_text("[]") for p in (notebook, copies[0])],
        "edited claims": lambda: claims.write_text("[]"),
        "no claims": lambda: claims.unlink(),
        "no claims and no copy": lambda: [p.unlink() for p in (claims, copies[1])],
    }[damage]()
    assert toy.build() == executed
    assert (claims.read_bytes(), notebook.read_bytes()) == original


def test_an_interrupted_build_leaves_the_previous_entry_notebook_and_claims(
    toy_with_kernels, monkeypatch
):
    toy = toy_with_kernels
    source = toy.path("book/02_b.py")
    source.write_text(source.read_text().replace("# Prose.", "# Changed."))
    kept = [toy.path(p) for p in ("_build/cache/02_b.full.json", "book/02_b.ipynb")]
    kept += [toy.path("_build/results/02_b.json"), toy.path("_build/html/index.html")]
    before = [p.read_bytes() for p in kept]
    monkeypatch.setenv("TOY_INTERRUPT", "02_b")
    with pytest.raises(KeyboardInterrupt):
        toy.build()
    assert [p.read_bytes() for p in kept] == before
    assert not list(toy.path("_build/cache").glob("*.tmp"))
    monkeypatch.delenv("TOY_INTERRUPT")
    assert toy.build() == ["02_b"], "the kernel recorded what the stand-in did"
    assert toy.build() == []


def test_run_prints_the_expected_time_of_its_configuration(toy, capsys):
    recorded = json.loads(toy.path("_build/cache/01_a.times.json").read_text())
    assert set(recorded) == {"full"}
    out = toy.path("out.ipynb")
    assert cli.main(["run", "a", "--quick", "-o", str(out)]) == 0
    assert "no recorded quick run of 01_a yet" in capsys.readouterr().out
    assert cli.main(["run", "a", "--quick", "-p", "value", "5", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "expected about" in printed and "its last quick run" in printed
    assert "this run overrides its parameters" in printed


def test_removed_chapters_lose_their_entries(toy):
    toc = toy.path("_toc.yml")
    toc.write_text(toc.read_text().replace("      - file: book/02_b\n", ""))
    assert toy.build() == ["03_summary"], "the summary reads one chapter fewer"
    assert not list(toy.path("_build/cache").glob("02_b.*"))
    assert toy.path("_build/cache/01_a.full.json").is_file()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("after_other: [claims]", "unknown key(s) after_other under 'companion'"),
        ("after_others: [claim]", "after_others lists ['claim']; each must be one of claims"),
    ],
)
def test_a_header_declaration_is_checked(tmp_path, header, message):
    source = tmp_path / "bad.py"
    source.write_text(f"# ---\n# jupyter:\n#   companion:\n#     {header}\n# ---\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        chapters.load_chapter(source)
