"""k-fold cross-validation: predictive correlation and the posterior of h2, fold by fold.

For each fold the records of that fold are hidden; their individuals stay in the model as
genotyped individuals without a record, so their genetic values are predicted through G (exactly,
as any unphenotyped individual; :mod:`bayesblup.inference.posterior`). The predictive ability of the fold is
the correlation between those predicted genetic values and the hidden phenotypes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview

__all__ = ["CVResult", "cross_validate", "fold_labels"]


@dataclass(frozen=True)
class CVResult:
    """Per-fold results of :func:`cross_validate`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold: ``fold, n_train, n_test, correlation, h2_mean, h2_q05, h2_q95``.
    predictions : pandas.DataFrame
        ``id, fold, observed, predicted, sd`` for every held-out record.
    """

    folds: pd.DataFrame
    predictions: pd.DataFrame

    @property
    def mean_correlation(self) -> float:
        return float(self.folds["correlation"].mean())

    @property
    def sd_correlation(self) -> float:
        return float(self.folds["correlation"].std(ddof=1))

    def lines(self) -> list[str]:
        out = [f"{'fold':>6}{'n_train':>9}{'n_test':>8}{'correlation':>13}{'h2':>8}{'90% interval':>18}"]
        for row in self.folds.itertuples(index=False):
            interval = f"[{row.h2_q05:.3f}, {row.h2_q95:.3f}]" if pd.notna(row.h2_q05) else "(MAP)"
            out.append(
                f"{row.fold!s:>6}{row.n_train:>9}{row.n_test:>8}{row.correlation:>13.3f}{row.h2_mean:>8.3f}{interval:>18}"
            )
        out.append(f"mean correlation {self.mean_correlation:.3f} (sd over folds {self.sd_correlation:.3f})")
        return out

    def to_dict(self) -> dict:
        return {
            "mean_correlation": self.mean_correlation,
            "sd_correlation": self.sd_correlation,
            "folds": self.folds.to_dict(orient="records"),
        }


def fold_labels(y: pd.Series, folds: pd.Series) -> tuple[pd.Series, np.ndarray, list]:
    """Check the folds against the records: ``(fold label per record, which records are present, the folds)``.

    Raises
    ------
    InputError
        If a record has no fold, an individual's records fall in several folds, or fewer than 2 folds remain.
    """
    y = y.set_axis(y.index.astype(str))
    column = "fold column" if folds.name is None else f"fold column {folds.name}"
    folds = folds.set_axis(folds.index.astype(str))
    if y.index.has_duplicates:  # repeated records: one fold label per record, row for row
        if not folds.index.equals(y.index):
            raise InputError(
                f"cross-validation, {column}: with repeated records, give the fold of each record row for row (the "
                "same index as the trait); take both from the same phenotype table."
            )
        labels = folds
    else:
        if folds.index.has_duplicates:
            dup = folds.index[folds.index.duplicated()].unique()
            raise InputError(
                f"cross-validation, {column}: individuals {preview(dup)} have several fold labels; give one each."
            )
        labels = folds.reindex(y.index)
    present = y.notna().to_numpy()
    absent = y.index[present & labels.isna().to_numpy()]
    if len(absent):
        raise InputError(
            f"cross-validation, {column}: {len(absent)} records have no fold: {preview(absent)}; give every record "
            "with a trait value a fold label."
        )
    # An individual's records must share a fold: otherwise its own records would train its prediction.
    per_individual = labels[present].groupby(level=0).nunique()
    split = per_individual.index[per_individual > 1]
    if len(split):
        raise InputError(
            f"cross-validation, {column}: the records of {len(split)} individuals fall in several folds: "
            f"{preview(split)}. Assign folds to individuals, so that all records of one individual are held out "
            "together."
        )
    try:
        levels = sorted(labels[present].unique())
    except TypeError:  # mixed label types: order as text
        levels = sorted(labels[present].unique(), key=str)
    if len(levels) < 2:
        raise InputError(
            f"cross-validation needs at least 2 folds; the {column} has {len(levels)}: give the records at least "
            "two fold labels."
        )
    return labels, present, levels


def cross_validate(build, y: pd.Series, folds: pd.Series, *, say=None, **fit_options) -> CVResult:
    """Fit once per fold with that fold's records hidden, and score the predictions.

    Parameters
    ----------
    build : callable
        ``build(y_train)`` returns an unfitted model (e.g. ``lambda y: bb.GBLUP(y, G)``); the hidden
        records are NA in ``y_train``, which keeps the rows of ``y`` (minus records already NA), so
        record-aligned covariates and weights stay aligned.
    y : pandas.Series
        Records indexed by ID (repeated IDs for repeated records).
    folds : pandas.Series
        Fold label per ID (e.g. the wheat data's ``set``), or with repeated records per record, row for
        row with ``y``; every record needs one, and all records of an individual the same one. Each
        held-out record is scored against its individual's predicted genetic value.
    say : callable, optional
        Progress output, one line per fold.
    **fit_options
        Passed to ``fit`` (method, chains, draws, tune, seed, ...).

    Examples
    --------
    >>> import bayesblup as bb
    >>> wheat = bb.datasets.load_wheat()
    >>> G = bb.genomic_relationship(wheat.genotypes)
    >>> folds = (wheat.folds + 1) // 2  # the ten folds paired into five, to keep the example quick
    >>> cv = bb.cross_validate(lambda y: bb.GBLUP(y, G), wheat.phenotypes["y1"], folds, method="map")
    >>> cv.folds["n_test"].tolist()
    [107, 134, 120, 115, 123]
    >>> round(cv.mean_correlation, 2)  # the ten folds give 0.53
    0.52
    """
    if not isinstance(y, pd.Series):
        raise InputError(
            "cross_validate takes one trait (a pandas Series indexed by ID); several traits are not cross-validated "
            "yet: validate each trait alone, or hide records by hand and fit the traits jointly."
        )
    y = y.set_axis(y.index.astype(str))
    labels, present, levels = fold_labels(y, folds)
    rows, predictions = [], []
    for level in levels:
        test = (labels == level).to_numpy() & present
        fit = build(y.where(~test)).fit(**fit_options)
        gv = fit.genetic_values.set_index("id")
        predicted = gv.loc[y.index[test], "mean"]
        observed = y[test]
        h2 = fit.summary().loc["h2"]
        rows.append(
            {
                "fold": level,
                "n_train": int((~test & present).sum()),
                "n_test": int(test.sum()),
                "correlation": float(np.corrcoef(predicted, observed)[0, 1]) if test.sum() > 2 else np.nan,
                "h2_mean": float(h2["mean"]),
                "h2_q05": float(h2["q05"]),
                "h2_q95": float(h2["q95"]),
            }
        )
        predictions.append(
            pd.DataFrame(
                {
                    "id": observed.index,
                    "fold": level,
                    "observed": observed.to_numpy(),
                    "predicted": predicted.to_numpy(),
                    "sd": gv.loc[y.index[test], "sd"].to_numpy(),
                }
            )
        )
        if say:
            say(f"fold {level}: {rows[-1]['n_test']} held out, correlation {rows[-1]['correlation']:.3f}")
    return CVResult(folds=pd.DataFrame(rows), predictions=pd.concat(predictions, ignore_index=True))
