"""``companion predict``: the closed form on your own data, model and graph, and with
``--train`` the trained network beside it (:mod:`companion.predict`, imported only when the
command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``companion predict``: predict, optionally train, write the files, print a summary."""
    from companion import predict  # the science, imported only for this command

    output = args.output or str(Path(args.data).with_suffix(".json").name)
    predict.check_outputs(output, kernel=args.save_kernel)  # before anything runs
    graph = args.edges if args.edges is not None else args.topology
    memory = None if args.memory_gib is None else int(args.memory_gib * 2**30)
    result = predict.predict(
        args.data,
        args.model,
        width=args.width,
        depth=args.depth,
        activation=args.activation,
        parameterization=args.parameterization,
        graph=graph,
        num_agents=args.agents,
        rule=args.rule,
        algorithm=args.algorithm,
        lr=args.lr,
        lr_fraction=args.lr_fraction,
        steps=args.steps,
        save_every=args.save_every,
        seed=args.seed,
        partition_rule=args.partition_rule,
        alpha=args.alpha,
        allow_unstable=args.allow_unstable,
        train=args.train,
        memory=memory,
    )
    written = result.write(output, kernel=args.save_kernel)
    s, run = result.settings, result.predicted
    print(
        f"{s['algorithm']} on {s['graph']}, Q = {s['num_agents']}, lr = {s['lr']:.4g} "
        f"({s['lr_fraction']:.3g} of the exact threshold {s['threshold']:.4g}), "
        f"{s['steps']} steps: predicted L(theta_bar) {run.average_loss[0]:.4g} -> "
        f"{run.average_loss[-1]:.4g}"
    )
    agreement = result.agreement()
    if agreement is not None:
        print(f"trained check, closed form against {predict.RIVAL} (the rival):")
        for metric, ours in agreement["closed form"].items():
            rival = agreement["rival"][metric]
            if ours is not None and rival is not None:
                print(f"    {metric}: {ours:.4g} (rival {rival:.4g})")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def add_parser(sub) -> None:
    """The ``predict`` subcommand."""
    cmd = sub.add_parser(
        "predict",
        help="predict peer-to-peer training on your own data, model and graph",
        description="Predict the curves of peer-to-peer training (closed form, no training) "
        "on your data set: an .npz with x (n, d), y ((n,) integer labels, one-hot rows, or "
        "(n, C) float targets), optionally x_test, y_test and partition (the agent of each "
        "sample; without it --partition-rule splits the rows). Writes the curves and "
        "settings (JSON), a figure (PNG beside it) and, with --save-kernel, the arrays the "
        "prediction used. --train also trains the network and compares.",
    )
    cmd.add_argument("data", help="the data set (.npz)")
    graph = cmd.add_mutually_exclusive_group()
    graph.add_argument("--topology", default="cycle", help="a named graph (default cycle)")
    graph.add_argument("--edges", help="an edge-list file: one edge 'i j' per line, nodes 0..Q-1")
    step = cmd.add_mutually_exclusive_group()
    step.add_argument("--lr", type=float, help="the step size")
    step.add_argument(
        "--lr-fraction",
        type=float,
        help="the step size, a fraction of the exact threshold (default 0.5)",
    )
    for flag, kind, default, text in [
        ("--model", str, "mlp", "mlp or affine"),
        ("--width", int, 512, "hidden width of the MLP"),
        ("--depth", int, 2, "hidden layers of the MLP"),
        ("--activation", str, "relu", "relu, erf or gelu"),
        ("--parameterization", str, "ntk", "ntk or standard"),
        ("--agents", int, None, "agents Q (default: the file's partition)"),
        ("--rule", str, "metropolis", "mixing rule: metropolis, lazy, max_degree, ..."),
        ("--algorithm", str, "dgd", "dgd, atc or cta"),
        ("--steps", int, 200, "gradient steps"),
        ("--save-every", int, None, "steps between saved rows (default: about 100 rows)"),
        ("--seed", int, 0, "seeds theta_0, the dirichlet partition and random graphs"),
        ("--partition-rule", str, "contiguous", "without a partition: contiguous or dirichlet"),
        ("--alpha", float, 0.5, "the dirichlet rule's alpha"),
        ("--memory-gib", float, None, "memory the closed form may use (default: half of RAM)"),
        ("--save-kernel", str, None, "also write the arrays the prediction used (.npz)"),
    ]:
        cmd.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    cmd.add_argument("--train", action="store_true", help="also train the network and compare")
    cmd.add_argument(
        "--allow-unstable", action="store_true", help="allow a step at or above the threshold"
    )
    cmd.add_argument("-o", "--output", help="the curves (.json; default: DATA's name, .json)")
    cmd.set_defaults(func=run)
