"""The book pipeline: chapter parameters, the command line and recorded claims."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from companion.book import chapters, cli, report

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_declares_quick_and_comments_every_parameter():
    found = chapters.chapters(ROOT)
    assert found, "no chapters found through _toc.yml"
    for chapter in found:
        if not chapter.parameters:
            continue
        names = [p.name for p in chapter.parameters]
        assert names[0] == "quick" and chapter.parameters[0].default is False, chapter.slug
        for p in chapter.parameters:
            assert p.comment, f"{chapter.slug}: parameter {p.name} has no comment"
            values = p.default if isinstance(p.default, list) else [p.default]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if values and numeric:
                assert p.low is not None, f"{chapter.slug}: {p.name} declares no [min: ...]"


def test_every_toc_chapter_has_a_source():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.py").is_file() or (ROOT / f"{f}.md").is_file(), f


def test_find_chapter_by_slug_number_and_name():
    assert chapters.find_chapter("01_graphs", ROOT).slug == "01_graphs"
    assert chapters.find_chapter("1", ROOT).slug == "01_graphs"
    assert chapters.find_chapter("graphs", ROOT).slug == "01_graphs"
    with pytest.raises(ValueError, match="no chapter 'nope'; chapters are: 01_graphs"):
        chapters.find_chapter("nope", ROOT)


def test_resolve_types_and_refuses_unknown_names():
    chapter = chapters.find_chapter("graphs", ROOT)
    assert chapter.resolve({"steps": "7"}) == {"steps": 7}
    with pytest.raises(ValueError, match="no parameter 'stepz'; valid parameters: quick, "):
        chapter.resolve({"stepz": "7"})
    with pytest.raises(ValueError, match="'steps' expects int"):
        chapter.resolve({"steps": "7.5"})


def test_quick_fills_only_the_parameters_not_given():
    chapter = chapters.find_chapter("graphs", ROOT)
    assert chapter.resolve({}, quick=True) == {"quick": True, "num_agents": 9, "steps": 30}
    given = chapter.resolve({"num_agents": "25"}, quick=True)
    assert given == {"quick": True, "num_agents": 25, "steps": 30}


def test_list_quick_values_are_read_and_no_annotation_is_left_in_a_comment(tmp_path):
    source = tmp_path / "lists.py"
    cell = (
        '# %% tags=["parameters"]\nquick = False  # ok\n'
        "widths = [64, 128]  # w [quick: [8, 16]] [min: 1]\n"
        'names = ["a", "b"]  # n [quick: ["a"]]\n'
    )
    source.write_text(cell)
    widths, names = chapters.load_chapter(source).parameters[1:]
    assert (widths.quick, widths.low, widths.comment) == ([8, 16], 1, "w")
    assert (names.quick, names.comment) == (["a"], "n")
    for chapter in chapters.chapters():
        for parameter in chapter.parameters:
            assert "[" not in parameter.comment, (chapter.slug, parameter.name)


def test_a_comment_may_start_above_its_parameter_and_no_chapter_needs_fmt_off(tmp_path):
    source = tmp_path / "above.py"
    cell = (
        '# %% tags=["parameters"]\nquick = False  # ok\n'
        "# hidden widths of the sweep [quick: [8, 16]]\n"
        "widths = [64, 128]  # [min: 1]\n"
        "steps = 5  # s [quick: 2]\n"
    )
    source.write_text(cell)
    quick, widths, steps = chapters.load_chapter(source).parameters
    assert (quick.comment, steps.comment, steps.quick) == ("ok", "s", 2)
    assert (widths.comment, widths.quick, widths.low) == ("hidden widths of the sweep", [8, 16], 1)
    for chapter in chapters.chapters():
        assert "# fmt: off" not in chapter.path.read_text(), chapter.slug


@pytest.mark.bad_input
def test_quick_values_are_typed_like_their_defaults(tmp_path):
    source = tmp_path / "bad.py"
    cell = '# %% tags=["parameters"]\nquick = False  # ok\nsteps = 5  # n [quick: 2.5]\n'
    source.write_text(cell)
    with pytest.raises(ValueError, match="the quick value 2.5 of 'steps' is not a int"):
        chapters.load_chapter(source)


@pytest.mark.bad_input
def test_parameters_cell_must_be_flat(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text('# %% tags=["parameters"]\nquick = False  # ok\nprint(quick)\n')
    with pytest.raises(ValueError, match="may only hold 'name = value  # comment'"):
        chapters.load_chapter(source)


def test_cli_list_prints_parameters(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_graphs: Graphs and mixing matrices" in out
    assert "num_agents = 16  # agents Q" in out
    assert "[quick: 9]" in out


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "graphs", "-p", "width", "3"], "no parameter 'width'; valid parameters"),
        (["run", "graphs", "-p", "steps", "many"], "'steps' expects int (default 60)"),
        (["run", "graphs", "-p", "steps", "3", "-p", "steps", "4"], "given twice: steps"),
        (["run", "chapter-that-does-not-exist"], "no chapter"),
        (["run", "99"], "no chapter '99'; chapters are: 01_graphs"),
        (["run", "graphs", "-p", "num_agents", "-3"], "'num_agents' must be at least 2, got -3"),
        (["run", "graphs", "--quick", "-p", "num_agents", "-3"], "must be at least 2, got -3"),
        (["run", "dgd", "-p", "steps", "0"], "'steps' must be at least 1, got 0"),
        (["run", "dgd", "-p", "width", "-512"], "'width' must be at least 1, got -512"),
        (["run", "ntk", "-p", "sweep_widths", "[64, -1]"], "at least 1, got -1 in [64, -1]"),
        (["run", "ntk", "-p", "sweep_widths", "[64,"], "'sweep_widths' expects list"),
        (["run", "networks", "-p", "seed", "-1"], "'seed' must be at least 0, got -1"),
        (["run", "affine", "-p", "lr_scale", "-0.5"], "'lr_scale' must be at least 0.0, got -0.5"),
        (["run", "affine", "-p", "lr_scale", "fast"], "'lr_scale' expects float"),
        (["run", "graphs", "-p", "quick", "maybe"], "'quick' expects bool"),
        (["run", "graphs", "--quick", "-p", "quick", "false"], "--quick conflicts with -p quick"),
        (["run", "graphs", "-o", "/proc/no/such/out.ipynb"], "is not a writable folder"),
        (["run", "graphs", "-o", "book"], "the executed notebook's name must end in .ipynb"),
        (["run", "graphs", "-o", "out.txt"], "must end in .ipynb"),
        (["run", "graphs", "-o", "_toc.yml/out.ipynb"], "is not a writable folder"),
        (["run", "report", "-p", "quick", "1", "-p", "steps", "3"], "no parameter 'steps'"),
    ],
)
def test_cli_refuses_bad_runs_with_a_clear_message(capsys, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_quick_never_overrides_an_explicit_value_and_the_notebook_shows_it(
    tmp_path, monkeypatch, capsys
):
    root = _toy_project(tmp_path, "print(f'ran with steps={steps}')")
    (root / "book" / "01_toy.py").write_text(
        (root / "book" / "01_toy.py").read_text().replace("# how many", "# how many [quick: 1]")
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path / "results"))
    output = tmp_path / "out.ipynb"
    assert cli.main(["run", "toy", "--quick", "-p", "steps", "7", "-o", str(output)]) == 0
    assert "'steps': 7" in capsys.readouterr().out
    cells = json.loads(output.read_text())["cells"]
    injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    assert "steps = 7" in "".join(injected["source"])
    assert "quick = True" in "".join(injected["source"])
    printed = "".join(t for c in cells for o in c.get("outputs", []) for t in o.get("text", []))
    assert "ran with steps=7" in printed


def test_record_writes_and_gathers(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("COMPANION_CHAPTER", "99_demo")
    report.record("demo.err", 2e-3, kind="exact", bound=1e-3, statement="too large")
    report.record("demo.flag", True, kind="theorem", statement="a boolean claim")
    report.record(
        "demo.map", {64: 0.3, 128: 0.2}, kind="theorem", statement="by width", passed=True
    )
    stored = json.loads((tmp_path / "99_demo.json").read_text())
    assert [c["id"] for c in stored] == ["demo.err", "demo.flag", "demo.map"]
    assert [c["kind"] for c in stored] == ["exact", "theorem", "theorem"]
    assert [c["passed"] for c in stored] == [False, True, True]
    assert stored[2]["value"] == {"64": 0.3, "128": 0.2}
    assert report.gather(["99_demo", "absent"], str(tmp_path)) == stored


@pytest.mark.parametrize(
    ("own", "low", "control", "passed"),
    [
        (0.05, 0.1, 0.5, True),
        (0.05, 0.1, 0.08, False),  # the deliberately wrong control passes too
        (0.5, 0.1, 0.9, False),  # misses its own bound
        (0.05, -0.01, 0.5, False),  # the margin's interval reaches zero
    ],
)
def test_an_empirical_claim_passes_only_beyond_its_rival_and_control(
    tmp_path, monkeypatch, own, low, control, passed
):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    entry = report.record(
        "demo.fit",
        own,
        kind="empirical",
        bound=0.1,
        statement="s",
        rival="the graph does not matter",
        rival_value=0.3,
        margin=0.2,
        margin_interval=[low, 0.3],
        control_value=control,
        control="a wrong prediction",
    )
    assert entry["passed"] is passed
    assert entry["control_passed"] is (control <= 0.1)
    assert entry["rival_value"] == 0.3 and entry["margin_interval"] == [low, 0.3]


@pytest.mark.bad_input
def test_record_refuses_what_it_cannot_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="needs a bound"):
        report.record("x", 1.0, kind="exact", statement="s")
    with pytest.raises(ValueError, match="cannot compare"):
        report.record("x", float("nan"), kind="exact", bound=1.0, statement="s")
    with pytest.raises(ValueError, match="unknown kind 'emprical'"):
        report.record("x", 1.0, kind="emprical", bound=1.0, statement="s")
    with pytest.raises(ValueError, match="needs rival=, rival_value=, margin="):
        report.record("x", 1.0, kind="empirical", bound=1.0, statement="s")
    with pytest.raises(ValueError, match="finite \\[low, high\\] pair"):
        report.record(
            "x", 1.0, kind="empirical", bound=1.0, statement="s", rival="r",
            rival_value=2.0, margin=1.0, margin_interval=[1.0],
        )  # fmt: skip
    with pytest.raises(ValueError, match="only empirical claims are judged against one"):
        report.record("x", 1.0, kind="theorem", bound=1.0, statement="s", rival="r")


def _toy_project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n      - file: book/01_toy\n"
    )
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "01_toy.py").write_text(
        '# %% [markdown]\n# # Toy\n\n# %% tags=["parameters"]\nquick = False  # small\n'
        f"steps = 3  # how many\n\n# %%\n{body}\n"
    )
    return tmp_path


def test_a_failing_chapter_names_itself_and_the_cell(tmp_path):
    root = _toy_project(tmp_path, "x = 1\n\n# %%\nraise RuntimeError(f'boom after {steps}')")
    chapter = chapters.find_chapter("toy", root)
    out = tmp_path / "out.ipynb"
    with pytest.raises(chapters.ChapterFailed) as err:
        chapters.run(chapter, chapter.resolve({"steps": "5"}), out, root=root)
    message = str(err.value)
    assert "chapter 01_toy failed in cell" in message
    assert "RuntimeError: boom after 5" in message
    assert "raise RuntimeError" in message, "the failing cell's source is shown"


def test_build_book_stops_at_a_failing_chapter_and_keeps_the_old_html(tmp_path):
    root = _toy_project(tmp_path, "assert quick, 'only quick works here'")
    old = root / "_build" / "html"
    old.mkdir(parents=True)
    (old / "index.html").write_text("previous build")
    with pytest.raises(chapters.ChapterFailed, match="only quick works here"):
        chapters.build_book(quick=False, root=root, log=lambda *a, **k: None)
    assert (old / "index.html").read_text() == "previous build"
    timings = json.loads((root / "_build" / "timings.json").read_text())
    assert timings == {"quick": False, "chapters": {}}


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-c", "import companion.ntk, companion.models, companion.simulate"],
        [sys.executable, "-m", "companion.book.cli", "list"],
    ],
    ids=["import", "companion list"],
)
def test_start_up_prints_nothing_from_tensorflow(argv, start_up_noise):
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not start_up_noise(done.stderr), done.stderr[-2000:]


def test_a_chapter_run_twice_records_bit_identical_claims(tmp_path, monkeypatch, start_up_noise):
    """Seeds fix every number: two executions of the same chapter agree to the last bit."""
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "01_graphs.py").write_text((ROOT / "book" / "01_graphs.py").read_text())
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n      - file: book/01_graphs\n"
    )
    chapter = chapters.find_chapter("graphs", tmp_path)
    monkeypatch.setenv("COMPANION_CHAPTER", "unset")
    recorded = []
    for attempt in ("first", "second"):
        results = tmp_path / attempt
        monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
        chapters.run(chapter, chapter.resolve({}, quick=True), results / "out.ipynb", root=tmp_path)
        recorded.append((results / "01_graphs.json").read_text())
    assert json.loads(recorded[0]), "the chapter recorded claims"
    assert recorded[0] == recorded[1]
    log = (tmp_path / "_build" / "logs" / "01_graphs.log").read_text()
    assert not start_up_noise(log), "the chapter kernel's stderr shows start-up noise"


def test_every_figure_cell_shows_its_figure_alone():
    """A cell captioned as a figure must display nothing else (printed text is a stream, not
    a display): Jupyter Book gives every displayed output the figure's name, so a table
    after the figure duplicates the label."""
    for chapter in chapters.chapters(ROOT):
        if chapter.path.suffix != ".py":
            continue
        notebook = jupytext.read(chapter.path)
        for cell in notebook.cells:
            if cell.cell_type != "code" or "figure" not in cell.metadata.get("mystnb", {}):
                continue
            name = cell.metadata["mystnb"]["figure"].get("name")
            body = ast.parse(cell.source).body
            shown = [n for n in ast.walk(ast.Module(body, [])) if _calls(n, "display")]
            last = body[-1]
            ends_on_value = isinstance(last, ast.Expr) and not _calls(last.value, "print")
            assert not ends_on_value and not shown, (
                f"{chapter.slug}: figure {name} ends on an expression or displays "
                "something beside the figure; show it in a cell of its own"
            )


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
