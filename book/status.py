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
# # Build status
#
# This page is generated at the end of every build. It lists how long each chapter took to
# execute, whether the build used the small `quick` configuration of CI or the full one,
# and the versions and machine that produced every number in the book. The numbers
# themselves, with their verdicts, are on the page {doc}`15_report`.

# %% tags=["hide-input"]
import json

import pandas as pd

from companion.book import chapters, paths

timings = json.loads((paths.build_dir() / "timings.json").read_text())
mode = "quick (CI sizes)" if timings["quick"] else "full"
print(f"configuration: {mode}")

# %% [markdown]
# ## Execution time per chapter

# %% tags=["hide-input"]
table = pd.DataFrame(
    {
        "chapter": list(timings["chapters"]),
        "seconds": list(timings["chapters"].values()),
    }
)
table.loc[len(table)] = ["total", round(table["seconds"].sum(), 1)]
table

# %% [markdown]
# ## Software and machine

# %% tags=["hide-input"]
pd.DataFrame(chapters.machine().items(), columns=["component", "version"])
