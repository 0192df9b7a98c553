# ---
# jupyter:
#   companion:
#     after_others: [claims]
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
# `companion.book.report.record`: an identifier, the measured value, the bound it must
# respect (or an explicit verdict), a one-sentence statement, the section that establishes
# it and, where the paper states it, what the paper says. This page is generated from those
# records after all other chapters have run. It lists every claim, linked to the section
# that recorded it, collects them into one machine-readable file,
# `_build/results/report.json`, and checks that none of the claims the book promises is
# missing. Nothing here is typed by hand: a claim that a chapter did not record appears
# below as **missing**, and a claim whose number misses its bound appears as **failed**.
# The code of this page is plumbing and is hidden; the source is in the repository. The
# machine and versions that produced the numbers are on the page {doc}`status`.

# %% tags=["parameters"]
quick = False  # small sizes for CI (this page has nothing to shrink)

# %% tags=["hide-input"]
import os

from IPython.display import Markdown, display

from companion.book import chapters, report

slugs = [c.slug for c in chapters.chapters()]
this = os.environ.get("COMPANION_CHAPTER", "15_report")
recorded = report.gather([s for s in slugs if s != this])
print(
    f"{len(recorded)} claims recorded by {len({c['chapter'] for c in recorded})} chapters"
)

# %% [markdown]
# ## Required claims
#
# These identifiers are the book's contract with its readers: the exactness of the closed
# forms for the affine model, the linearized network and the parameters; the equivalence
# of ATC on the complete graph with centralized gradient descent; the agreement of our
# flow with `neural_tangents` and the first-order gap of every algorithm to its flow; the
# conservativeness of the DGD stability bound; the exact biased fixed point of the
# non-interpolating regime and how its bias grows with the step size; the kernel's
# distance to its infinite-width limit and its measured drift during training; and the
# agreement with the real network by width, including whether the graph is predicted. A
# missing claim means a chapter did not run, failed before its summary cell, or renamed an
# identifier; the page then records a failing claim of its own.

# %% tags=["hide-input"]
missing = report.missing(recorded)
if missing:
    lines = "\n".join(f"- `{claim}`" for claim in missing)
    display(Markdown(f"**MISSING CLAIMS ({len(missing)}):**\n\n{lines}"))
else:
    display(Markdown(f"All {len(report.REQUIRED)} required claims are present."))
own = report.record(
    "report.all_required_present",
    not missing,
    kind="exact",
    statement="every required claim id was recorded by some chapter"
    + (f"; missing: {', '.join(missing)}" if missing else ""),
)
claims = recorded + [own]
written = report.write_report(claims)

# %% [markdown]
# ## Every claim, by kind
#
# One row per claim: the verdict, the claim (linked to the section that establishes it),
# our number and the bound it must respect. An empirical claim also shows its rival, the
# strongest cheap explanation that does not use what the claim credits (the graph, the
# closed form's dynamics, the partition, the width), scored by the same metric, and the
# median margin by which we beat it with its 95% bootstrap interval over seeds or
# configurations: the claim passes only if that interval lies above zero. Where a
# deliberately wrong prediction is kept as an extra control, its score is shown last. The
# claims come in four kinds; only the empirical ones carry the paper's scientific weight,
# and observations, whose only comparison is wrong by construction, carry none.
# `report.json` holds the same entries with their statements, kinds and chapters.

# %% tags=["hide-input"]
for kind in report.KINDS:
    of_kind = [c for c in claims if c["kind"] == kind]
    title = f"**{kind.capitalize()} ({len(of_kind)} claims).**"
    display(
        Markdown(
            f"{title}\n\n{kind.capitalize()} claims are "
            f"{report.KIND_MEANINGS[kind]}\n\n{report.claims_table(of_kind)}"
        )
    )

# %% [markdown]
# What each claim means, in the words of the chapter that recorded it, and what the paper
# says where the chapter stated it:

# %% tags=["hide-input"]
display(Markdown(report.claims_glossary(claims)))

# %% [markdown]
# ## Summary
#
# The cell below is checked on every build: it prints the number of claims, how many
# passed, and the identifiers of those that did not.

# %% tags=["nbval-check-output", "hide-input"]
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
# - grouped the claims by kind, with the rival of every empirical claim, our margin over
#   it and that margin's interval beside it;
# - linked each claim to the section of the book that establishes it.
