"""``companion``: list, run and build the book's chapters.

Examples::

    companion list
    companion run dgd -p width 2048 -p steps 500 -o my_dgd.ipynb
    companion run 8 --quick
    companion book            # what `make book` calls: executes only what changed
    companion book --force    # executes every chapter again
    companion book --jobs 1   # one chapter at a time (default: two side by side)
    companion tune --topologies cycle star --fractions 0.5 0.9 --widths 512 --agents 16
    companion tune --data mine.npz --agents 8 --widths 256
    companion predict mine.npz --agents 8 --topology star --steps 300 --train -o mine.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
from pathlib import Path

from companion.book import cache, chapters, html, paths, predict_cli


def _list(args: argparse.Namespace) -> int:
    for chapter in chapters.chapters():
        print(f"{chapter.slug}: {chapter.title}")
        if not chapter.parameters:
            print("    (no parameters)")
        for p in chapter.parameters:
            quick = "" if p.quick is chapters.NO_QUICK else f" [quick: {p.quick!r}]"
            limits = (("min", p.low), ("max", p.high))
            bounds = "".join(f" [{k}: {b!r}]" for k, b in limits if b is not None)
            print(f"    {p.name} = {p.default!r}  # {p.comment}{quick}{bounds}")
    return 0


def _run(args: argparse.Namespace) -> int:
    chapter = chapters.find_chapter(args.chapter)
    names = [name for name, _ in args.param]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"parameter given twice: {', '.join(sorted(duplicated))}")
    values = chapter.resolve(dict(args.param), quick=args.quick)
    if args.quick and values.get("quick") is not True:
        raise ValueError("--quick conflicts with -p quick False: give one or the other")
    output = _writable(Path(args.output or f"_build/runs/{chapter.slug}.ipynb").resolve())
    root = paths.project_root()
    config = cache.configuration(values, bool(chapter.parameters))
    # Only a run with the configuration's own values says how long the next one will take.
    plain = values == chapter.resolve({}, quick=args.quick)
    expected = cache.expected(root, chapter.slug, config)
    print(expected if plain else f"{expected}; this run overrides its parameters")
    print(f"running {chapter.slug} with {values or 'its defaults'} ...", flush=True)
    seconds = chapters.run(chapter, values, output)
    if plain:
        cache.record_time(root, chapter.slug, config, seconds, cache.now())
    print(f"done in {seconds:.1f} s: {output}")
    return 0


def _writable(output: Path) -> Path:
    """``output`` if an executed notebook can be written there, checked before the chapter
    runs rather than after."""
    if output.suffix != ".ipynb":
        raise ValueError(f"-o {output}: the executed notebook's name must end in .ipynb")
    if output.is_dir():
        raise ValueError(f"-o {output} is a folder: give the notebook's file name")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output.parent):
            pass
    except OSError as err:
        raise ValueError(
            f"-o {output}: {output.parent} is not a writable folder ({err.strerror}); "
            "choose another path"
        ) from None
    return output


def _tune(args: argparse.Namespace) -> int:
    from companion import tune  # the science, imported only for this command

    given = {name: getattr(args, flag) for name, flag in GRID_FLAGS.items()}
    choices = tune.Choices(**{name: v for name, v in given.items() if v is not None})
    output = Path(args.output)
    if output.suffix != ".csv" or output.is_dir():
        raise ValueError(f"-o {output}: the table's file name must end in .csv")
    default = tune.rivals.FOR_CRITERION.get(args.criterion, "largest_step")
    rival = tune.rivals.validate(args.rival or default)
    yes = args.yes
    if choices.size > tune.GRID_LIMIT and not yes and sys.stdin.isatty():
        answer = input(f"score {choices.size} configurations (> {tune.GRID_LIMIT})? [y/N] ")
        yes = answer.strip().lower() in ("y", "yes")
    family = _family(args)
    options = dict(target=args.target, budget=args.budget, save_every=args.save_every)
    table = tune.predict(
        family, choices, criterion=args.criterion, kernel=args.kernel, yes=yes, **options
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    columns = [f.name for f in dataclasses.fields(tune.Configuration)]
    shown = [*columns, "threshold", "status", args.criterion]
    print(table[list(dict.fromkeys(shown))].head(args.top).to_string())
    print(f"{len(table)} configurations, best first by {args.criterion}: {output}")
    picks = {"closed form": table.iloc[:1], rival: tune.rivals.pick(table, rival)}
    for name, rows in picks.items():
        first = rows.iloc[0]
        tied = f" (first of {len(rows)} it ties)" if len(rows) > 1 else ""
        chosen = ", ".join(f"{c}={first[c]}" for c in columns)
        print(
            f"{name}'s pick{tied}: {chosen}; predicted {args.criterion} {first[args.criterion]:.4g}"
        )
    return 0


def _family(args: argparse.Namespace):
    """Digits, or the user's data file (``--data``), with ReLU MLPs of every width."""
    from companion import tune, userdata

    if args.data is None:
        return tune.digits_family(args.samples, args.test, depth=args.depth, seed=args.seed)
    mine = userdata.load(args.data)

    def partition_for(num_agents: int) -> list:
        rule = dict(rule=args.partition_rule, alpha=args.alpha, seed=args.seed)
        return userdata.partition(mine, num_agents, **rule)

    return tune.mlp_family(mine.dataset(), partition_for, depth=args.depth, init_seed=args.seed)


#: companion.tune.Choices fields and the flags that set them.
GRID_FLAGS = {
    "topologies": "topologies",
    "rules": "rules",
    "algorithms": "algorithms",
    "lr_fractions": "fractions",
    "widths": "widths",
    "num_agents": "agents",
}


def _tune_parser(sub) -> None:
    tune = sub.add_parser(
        "tune",
        help="score a grid of design choices by the closed form alone, best first",
        description="Score every combination of the choices below by its closed form "
        "(no training) on digits, or on your own data (--data FILE.npz, the format of "
        "'companion predict'), and write the table, best first. The book's chapter "
        "'Tuning without training' measures how far to trust the ranking.",
    )
    for flag, kind, text in [
        ("topologies", str, "graphs (default cycle star complete)"),
        ("rules", str, "mixing rules: metropolis, lazy, ... (default metropolis)"),
        ("algorithms", str, "dgd, atc, cta (default all three)"),
        ("fractions", float, "step sizes, fractions of the exact threshold (default 0.25 0.5 0.9)"),
        ("widths", int, "hidden widths (default 512)"),
        ("agents", int, "numbers of agents (default 16)"),
    ]:
        tune.add_argument(f"--{flag}", nargs="+", type=kind, help=text)
    for flag, kind, default, text in [
        ("--samples", int, 64, "training digits, split across the agents (digits only)"),
        ("--test", int, 100, "held-out digits (digits only)"),
        ("--depth", int, 2, "hidden layers of the ReLU MLP"),
        ("--target", float, 0.05, "the global loss L(theta_bar) to reach"),
        ("--budget", int, 200, "steps per run"),
        ("--save-every", int, 10, "steps between recorded losses"),
        ("--seed", int, 0, "seeds the data, the partitions and theta_0"),
        ("--top", int, 10, "rows to print"),
        (
            "--criterion",
            str,
            "messages_to_target",
            "sort by: messages_to_target, steps_to_target, final_loss, test_loss, test_accuracy",
        ),
        ("--kernel", str, "empirical", "the network's NTK at theta_0, or 'infinite'"),
    ]:
        tune.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    tune.add_argument(
        "--rival",
        help="the ranking without dynamics whose pick is printed beside the closed form's: "
        "largest_step, largest_fraction, spectral_gap, cheapest_step, random (default "
        "cheapest_step for messages_to_target, else largest_step)",
    )
    tune.add_argument(
        "--data", help="your own data set (.npz: x, y, optional x_test, y_test, partition)"
    )
    tune.add_argument(
        "--partition-rule",
        default="contiguous",
        help="with --data and no partition in the file: contiguous or dirichlet",
    )
    tune.add_argument("--alpha", type=float, default=0.5, help="the dirichlet rule's alpha")
    tune.add_argument("--yes", action="store_true", help="score a grid above the size limit")
    tune.add_argument("-o", "--output", default="_build/tune.csv", help="the table (.csv)")
    tune.set_defaults(func=_tune)


def _book(args: argparse.Namespace) -> int:
    chapters.build_book(quick=args.quick, force=args.force, jobs=args.jobs)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(prog="companion", description=(__doc__ or "").splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every chapter with its parameters").set_defaults(func=_list)
    run = sub.add_parser("run", help="execute one chapter")
    run.add_argument("chapter", help="slug (03_dgd), number (3) or name (dgd)")
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable); see 'companion list'",
    )
    run.add_argument("--quick", action="store_true", help="small sizes, as in CI")
    run.add_argument("-o", "--output", help="executed notebook (default _build/runs/SLUG.ipynb)")
    run.set_defaults(func=_run)
    book = sub.add_parser(
        "book",
        help="execute the chapters that changed and build the HTML",
        description="Execute every chapter whose source, parameters, package source, lock "
        "or Python version changed since its last execution (the others come from the "
        "cache in _build/cache), then build the HTML unless it is current.",
    )
    book.add_argument("--quick", action="store_true", help="small sizes, as in CI")
    book.add_argument("--force", action="store_true", help="execute every chapter again")
    book.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=min(2, os.cpu_count() or 1),
        help="chapters executed side by side, each in a process of its own (default: 2, or 1 "
        "on one core); every kernel uses all the cores, so more jobs than cores rarely helps",
    )
    book.set_defaults(func=_book)
    _tune_parser(sub)
    predict_cli.add_parser(sub)
    return top


def _jobs(text: str) -> int:
    """``--jobs``: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expects a whole number of at least 1, got {text!r}")
    return int(text)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every clean-up on the way out runs."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``companion`` console script."""
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminated)
    # A shell starts background jobs of scripts with SIGINT ignored, and Python keeps that;
    # Ctrl-C (or kill -INT) must still unwind through the clean-ups below.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, chapters.ChapterFailed, html.BuildFailed) as err:
        print(f"companion: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "companion: interrupted; the previous executed notebooks, claims and HTML are "
            "unchanged",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


if __name__ == "__main__":
    sys.exit(main())
