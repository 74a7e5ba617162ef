"""The alternative pain data of the sensitivity analysis (every SD >= 1).

``data/curation/reconstruct_pain.py`` fits the published pooled values twice: once as the
authors must have entered them (``data/pain_scores.csv``) and once with every SD at least 1
(``data/curation/output/plausible_fit.csv``). The sensitivity job reruns every pain analysis
on the second. That file knows only the trials and time points the curation reconstructed;
the data may since hold others (a trial added to the review, a time point read from a trial
report). Those rows were never reconstructed, so they enter the alternative exactly as they
are in the data file, and the result names their trials.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: the row of a trial, arm and time point (the key of data/pain_scores.csv)
ROW_KEY = ["study_id", "arm", "timepoint"]
#: the values an alternative row replaces
VALUE_COLUMNS = ["n", "mean", "sd"]


def _reconstructed(source: pd.Series) -> pd.Series:
    # the same rule as the reproduction report's: a row is reconstructed when its source says so
    return source.fillna("").str.lower().str.contains("reconstructed")


def alternative_pain_scores(data: pd.DataFrame, alternative: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The data's pain rows with each reconstructed row's ``n, mean, sd`` taken from the
    alternative fit's row for the same trial, arm and time point.

    A data row enters unchanged when the alternative has no row for it (a trial or time point
    added after the fit) or when it is no longer reconstructed (a reviewer replaced it by an
    extracted value); alternative rows without a data row (a trial since removed) are unused.
    Returns the rows (``data``'s columns, order and ``_row``) and the trials of each kind:
    ``{"replaced": [...], "as_extracted": [...], "unused": [...]}`` (study ids, sorted), plus
    ``min_sd_replaced``, the smallest SD taken from the alternative (None if none).
    """
    duplicated = alternative.duplicated(ROW_KEY, keep=False)
    if duplicated.any():
        first = alternative[duplicated].iloc[0]
        raise ValueError(
            "the alternative pain scores have two rows for study "
            f"{first['study_id']!r}, arm {first['arm']!r}, time point {first['timepoint']!r}"
        )
    values = alternative.set_index(ROW_KEY)[VALUE_COLUMNS]
    keys = pd.MultiIndex.from_frame(data[ROW_KEY])
    available = keys.isin(values.index)
    replace = available & _reconstructed(data["source"]).to_numpy()
    out = data.copy()
    taken = values.reindex(keys[replace])
    for column in VALUE_COLUMNS:
        out.loc[replace, column] = taken[column].to_numpy()
    data_keys = set(keys)
    unused = sorted({key[0] for key in values.index if key not in data_keys} - set(data["study_id"]))
    trials = {
        "replaced": sorted(set(data.loc[replace, "study_id"])),
        "as_extracted": sorted(set(data.loc[~replace, "study_id"])),
        "unused": unused,
        "min_sd_replaced": float(taken["sd"].min()) if replace.any() else None,
    }
    return out, trials
