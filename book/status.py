# ---
# jupyter:
#   companion:
#     after_others: [executions]
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
# # Build status
#
# This page is generated at the end of a build that executed at least one chapter. It
# lists, for each chapter, when its executed notebook was produced, how long that took, in
# which configuration (the small `quick` one of CI or the full one), and whether the build
# that generated this page executed the chapter or reused its notebook from the execution
# cache. A chapter is executed again only when its source, its parameters, the package's
# source, the lock or the Python version changed; a build that changes nothing executes
# nothing, this page included, so what it shows stays true of the book around it. The
# numbers themselves, with their verdicts, are on the page {doc}`15_report`.

# %% tags=["hide-input"]
import json

import pandas as pd

from companion.book import cache, chapters, paths

timings = json.loads((paths.build_dir() / "timings.json").read_text())
print(f"this page generated: {cache.now()} (UTC)")
print(f"the build asked for: {'quick (CI sizes)' if timings['quick'] else 'full'}")

# %% [markdown]
# ## Execution of each chapter

# %% tags=["hide-input"]
runs = timings["chapters"]
table = pd.DataFrame(
    {
        "chapter": list(runs),
        "configuration": [r["configuration"] for r in runs.values()],
        "executed at (UTC)": [
            r["executed_at"].replace("+00:00", "") for r in runs.values()
        ],
        "seconds": [r["seconds"] for r in runs.values()],
        "from the cache": [
            "yes" if r["cached"] else "no, executed" for r in runs.values()
        ],
    }
)
table.loc[len(table)] = ["total", "", "", round(table["seconds"].sum(), 1), ""]
table

# %% [markdown]
# ## Software and machine

# %% tags=["hide-input"]
pd.DataFrame(chapters.machine().items(), columns=["component", "version"])
