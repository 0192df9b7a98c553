# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproducibility report
#
# Every chapter of this book ends by recording the numbers it stands on with
# `companion.report.record`: an identifier, the measured value, the bound it must respect
# (or an explicit verdict), a one-sentence statement and, where there is one, what the
# paper says. This page is generated from those records after all other chapters have
# run. It lists every claim with our number next to the paper's, collects them into one
# machine-readable file, `_build/results/report.json`, and checks that none of the claims
# the book promises is missing. Nothing here is typed by hand: a claim that a chapter did
# not record appears below as **missing**, and a claim whose number misses its bound
# appears as **failed**.

# %% tags=["parameters"]
quick = False  # small sizes for CI (this page has nothing to shrink)

# %% [markdown]
# We import the package; `COMPANION_RESULTS_DIR`, when set, points the page at another
# folder of records (the tests use it with fixture files).

# %%
import json
import os
import re

import pandas as pd
from IPython.display import Markdown, display

from companion import chapters, report

results = report.results_dir()
print(f"reading claims from {results.name}/")

# %% [markdown]
# ## Required claims
#
# These identifiers are the book's contract with its readers (issue 5): the exactness of
# the closed forms for the affine model and the linearized network, the equivalence of ATC
# on the complete graph with centralized gradient descent, the agreement of our flow with
# `neural_tangents`, the conservativeness of the DGD stability bound, and the two width
# sweeps, of the prediction error and of the NTK's distance to its infinite-width limit.

# %%
required = [
    "affine.max_rel_err",
    "linearized.max_rel_err",
    "atc_complete_vs_centralized.max_rel_err",
    "flow_single_agent_vs_neural_tangents.max_rel_err",
    "stability.bound_is_conservative",
    "network.rel_err_by_width",
    "ntk.rel_dist_to_analytic_by_width",
    "ntk.width_slope",
]

# %% [markdown]
# We gather the records of every chapter in the order of the table of contents, this one
# excepted, and look for the required identifiers among them.

# %%
slugs = [c.slug for c in chapters.chapters()]
this = os.environ.get("COMPANION_CHAPTER", "10_report")
others = [s for s in slugs if s != this]
recorded = report.gather(others)
found = {c["id"] for c in recorded}
missing = [claim for claim in required if claim not in found]
print(
    f"{len(recorded)} claims recorded by {len({c['chapter'] for c in recorded})} chapters"
)

# %% [markdown]
# A missing claim means a chapter did not run, failed before its summary cell, or renamed
# an identifier. It is not an error of this page, so the page goes on, shows it in red,
# and records a failing claim of its own, `report.all_required_present`.

# %%
if missing:
    lines = "\n".join(f"- `{claim}`" for claim in missing)
    display(
        Markdown(
            f"<span style='color:#b00020'>**MISSING CLAIMS ({len(missing)}):**</span>\n\n{lines}"
        )
    )
else:
    display(Markdown(f"All {len(required)} required claims are present."))
own = report.record(
    "report.all_required_present",
    not missing,
    statement="every required claim id was recorded by some chapter"
    + (f"; missing: {', '.join(missing)}" if missing else ""),
)

# %% [markdown]
# ## The report file
#
# `report.json` is a list of objects with the fields `id`, `chapter`, `statement`,
# `value`, `bound` and `passed`, plus `paper` where the chapter stated what the paper
# says. It is written next to the chapters' own records.

# %%
claims = recorded + [own]
fields = ("id", "chapter", "statement", "value", "bound", "passed")
entries = [
    {
        **{f: c.get(f) for f in fields},
        **({"paper": c["paper"]} if c.get("paper") else {}),
    }
    for c in claims
]
(results / "report.json").write_text(json.dumps(entries, indent=2))
print(f"wrote {len(entries)} claims to {results.name}/report.json")

# %% [markdown]
# ## Every claim
#
# One row per claim: what the paper says, our number, the bound it must respect, and the
# verdict. Values recorded as a mapping (errors by width) are listed in full; failing rows
# are shaded.


# %%
def show(value):
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


table = pd.DataFrame(
    {
        # Verdict first and prose last: the page is narrow and wide tables scroll.
        "passed": "pass" if c["passed"] else "FAIL",
        "claim": c["id"],
        "ours": show(c["value"]),
        "bound": "" if c["bound"] is None else f"<= {c['bound']:.3g}",
        "chapter": c["chapter"],
    }
    for c in claims
)

# %% [markdown]
# The table itself:


# %%
def shade(row):
    return ["background-color: #f8d7da" if row["passed"] == "FAIL" else ""] * len(row)


table.drop(columns="chapter").style.apply(shade, axis=1).hide(axis="index")

# %% [markdown]
# What each claim means, in the words of the chapter that recorded it, and what the paper
# says where the chapter stated it:


# %%
def plain(text):
    """Backslash-escapes Markdown punctuation so statements render as written."""
    return re.sub(r"([\\`*_{}\[\]<>()#+.!|$~-])", r"\\\1", text)


display(
    Markdown(
        "\n".join(
            f"- **{plain(c['id'])}** ({plain(c['chapter'])}): {plain(c['statement'])}"
            + (f" *Paper:* {plain(c['paper'])}." if c.get("paper") else "")
            for c in claims
        )
    )
)

# %% [markdown]
# ## By chapter
#
# The count of claims and of passes for each chapter:

# %%
table.assign(passes=table["passed"] == "pass").groupby("chapter", sort=False).agg(
    claims=("claim", "size"), passed=("passes", "sum")
)

# %% [markdown]
# ## Summary
#
# The cell below is checked on every build: it prints the number of claims, how many
# passed, and the identifiers of those that did not.

# %% tags=["nbval-check-output"]
failures = [c["id"] for c in claims if not c["passed"]]
print(f"claims: {len(claims)}")
print(f"passed: {len(claims) - len(failures)}")
print(f"required present: {not missing}")
print(f"failures: {', '.join(failures) if failures else 'none'}")

# %% [markdown]
# ## In this chapter we
#
# - gathered every claim recorded by the executed chapters and wrote them, with their
#   bounds and verdicts, to `_build/results/report.json`;
# - checked that every claim the book promises is present, recording
#   `report.all_required_present` so that a missing one fails loudly;
# - put each of our numbers next to what the paper says about it, in one table.
