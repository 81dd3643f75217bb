"""Saving a fit: the ``bayesblup fit`` out folder (summary.json, genetic_values.csv, posterior.nc, ...)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_folder

__all__ = ["save", "write_fit"]


def save(
    fit,
    out_dir: str | Path,
    *,
    force: bool = False,
    extra_summary: dict | None = None,
    predictions: pd.DataFrame | None = None,
    cv=None,
    plots: bool = False,
    reference: dict[str, float] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write summary.json, genetic_values.csv, posterior.nc (and marker_effects.csv, predictions.csv).

    ``tables`` maps further file names to tables written as CSV (e.g. ``prior_sensitivity.csv``).

    With ``plots``, also the PNGs of :func:`bayesblup.plots.write_plots` (``reference``: point
    estimates of h2 drawn on the h2 plot).

    Files are written to a temporary folder beside ``out_dir`` and renamed onto it only when all
    succeeded (:func:`bayesblup.files.atomic_folder`). An existing ``out_dir`` is kept unless
    ``force``, and so is one that appears while writing (made by another run or program); with
    ``force`` it is replaced.
    """
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, force=force) as tmp:
        write_fit(
            fit, tmp, extra_summary=extra_summary, predictions=predictions, cv=cv, plots=plots, reference=reference,
            tables=tables,
        )  # fmt: skip
    return out_dir


def write_fit(
    fit,
    folder: Path,
    *,
    extra_summary: dict | None = None,
    predictions: pd.DataFrame | None = None,
    cv=None,
    plots: bool = False,
    reference: dict[str, float] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Write the files of :func:`save` into ``folder``, a new empty folder (from :func:`atomic_folder`)."""
    folder = Path(folder)
    t0 = time.perf_counter()
    summary = fit.to_dict() | (extra_summary or {})
    fit.genetic_values.to_csv(folder / "genetic_values.csv", index=False, float_format="%.10g")
    if fit.marker_effects is not None:
        fit.marker_effects.to_csv(folder / "marker_effects.csv", index=False, float_format="%.10g")
    if predictions is not None:
        predictions.to_csv(folder / "predictions.csv", index=False, float_format="%.10g")
    if cv is not None:  # per fold, and every held-out record's prediction
        cv.folds.to_csv(folder / "cv.csv", index=False, float_format="%.10g")
        cv.predictions.to_csv(folder / "cv_predictions.csv", index=False, float_format="%.10g")
        summary["cross_validation"] = cv.to_dict()
    for name, table in (tables or {}).items():
        table.to_csv(folder / name, index=False, float_format="%.10g")
    _drop_unserialisable(fit.datatree).to_netcdf(folder / "posterior.nc", engine="h5netcdf")
    if plots:
        from ..plots import write_plots

        summary["plots"] = [path.name for path in write_plots(fit, folder, reference=reference)]
    # summary.json goes last, so that it can say how long writing took.
    timings = dict(summary["timings"])
    timings["write_s"] = time.perf_counter() - t0
    phases = sum(v for k, v in fit.timings.items() if k != "draws_s")  # draws_s is part of sampling_s
    timings["total_s"] = timings.get("total_s", phases) + timings["write_s"]
    summary["timings"] = timings
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _drop_unserialisable(datatree):
    """A copy without groups netCDF cannot store (find_MAP's optimizer object)."""
    tree = datatree.copy()
    for name in ("optimizer_result",):
        if name in tree.children:
            del tree[name]
    return tree
