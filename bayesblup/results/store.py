"""Saving and loading a fit: the ``bayesblup fit`` out folder (summary.json, genetic_values.csv, posterior.nc, ...)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..files import atomic_folder
from ..names import INDIVIDUAL

__all__ = ["load_fit", "save", "write_fit"]


def save(
    fit,
    out_dir: str | Path,
    *,
    force: bool = False,
    extra_summary: dict | None = None,
    predictions: pd.DataFrame | None = None,
    cv=None,
    plots: Callable[[Path], list[Path]] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write summary.json, genetic_values.csv, posterior.nc (and marker_effects.csv, predictions.csv).

    ``tables`` maps further file names to tables written as CSV (e.g. ``prior_sensitivity.csv``).

    ``plots`` writes figures into the folder and returns their paths, recorded in summary.json (the
    command line passes :func:`bayesblup.plots.write_plots`; results sit below plots in the layers).

    Files are written to a temporary folder beside ``out_dir`` and renamed onto it only when all
    succeeded (:func:`bayesblup.files.atomic_folder`). An existing ``out_dir`` is kept unless
    ``force``, and so is one that appears while writing (made by another run or program); with
    ``force`` it is replaced. :func:`load_fit` reads the folder back.
    """
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, force=force) as tmp:
        write_fit(
            fit, tmp, extra_summary=extra_summary, predictions=predictions, cv=cv, plots=plots,
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
    plots: Callable[[Path], list[Path]] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    """Write the files of :func:`save` into ``folder``, a new empty folder (from :func:`atomic_folder`)."""
    folder = Path(folder)
    t0 = time.perf_counter()
    _check_space(fit, folder)
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
    if plots is not None:
        summary["plots"] = [path.name for path in plots(folder)]
    # summary.json goes last, so that it can say how long writing took.
    timings = dict(summary["timings"])
    timings["write_s"] = time.perf_counter() - t0
    phases = sum(v for k, v in fit.timings.items() if k != "draws_s")  # draws_s is part of sampling_s
    timings["total_s"] = timings.get("total_s", phases) + timings["write_s"]
    if "startup_s" in timings:  # the command line's: Python's start and its imports, before total_s began
        timings["process_s"] = timings["startup_s"] + timings["total_s"]
    summary["timings"] = timings
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")


def _check_space(fit, folder: Path) -> None:
    """Refuse to start writing when the disk cannot hold the outputs.

    posterior.nc holds every array of the fit's DataTree; the CSVs are a fraction of that. Checked before the
    first byte, since HDF5 has been seen to crash (a segmentation fault) rather than fail cleanly on a full disk.
    """
    import shutil

    need = sum(
        int(node.dataset[name].nbytes) for node in fit.datatree.subtree for name in node.dataset.data_vars
    )  # fmt: skip
    need = int(1.2 * need) + 2**20  # the CSVs, summary.json and netCDF's own structure
    free = shutil.disk_usage(folder).free
    if free < need:
        raise InputError(
            f"no space left on the disk of {folder.parent}: the outputs need about {need / 2**20:.0f} MB and "
            f"{free / 2**20:.0f} MB are free; free some space or choose an --out on another disk."
        )


def load_fit(path: str | Path, *, model=None):
    """Read a ``bayesblup fit`` out folder (or :func:`save`'s) back into a fit.

    The fit has the posterior (posterior.nc), ``genetic_values`` and ``marker_effects`` (the CSV
    files), and summary.json as ``fit.stored``, with the further CSV files of the folder (predictions,
    cross-validation, prior sensitivity) under ``fit.stored["tables"]``, by file name.
    ``summary()`` is computed again from the draws; ``diagnostics()`` and ``to_dict()`` give what
    was stored; the plots of :mod:`bayesblup.plots` draw from it.

    Parameters
    ----------
    path : str or Path
        The out folder.
    model : BLUPModel, optional
        The model built again on the same inputs (e.g. ``bb.GBLUP(y, G, prior=...)``), for
        ``fit.predict`` and ``fit.back_solve_markers``. It must match the stored fit: the same model,
        form, trait, scaling, records and individuals in the same order, and the same parameters.

    Returns
    -------
    BLUPFit
        With ``model=None`` unless a model was passed.

    Raises
    ------
    InputError
        If the folder, summary.json, posterior.nc or genetic_values.csv is missing or unreadable, or
        ``model`` does not match.
    """
    from .fit import BLUPFit

    folder = Path(path)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise InputError(f"fit folder {folder} {what}; pass a folder written by `bayesblup fit --out` or fit.save.")
    summary = _read_summary(folder)
    datatree = _read_posterior(folder)
    genetic_values = _read_table(folder / "genetic_values.csv", ("id", "mean", "sd"), required=True)
    ids = genetic_values["id"].to_numpy(dtype=str)
    if "trait" in genetic_values:  # several traits: one row per individual and trait, individuals in order
        ids = pd.unique(ids)
    stored_ids = datatree["genetic_values"][INDIVIDUAL].values.astype(str)
    if not np.array_equal(ids, stored_ids):
        raise InputError(
            f"{folder}/genetic_values.csv and posterior.nc list different individuals: the files come from "
            "different fits; write the folder again."
        )
    marker_effects = _read_table(folder / "marker_effects.csv", ("marker", "mean", "sd"), required=False)
    known = {"genetic_values.csv", "marker_effects.csv"}
    tables = {p.name: pd.read_csv(p, dtype={"id": str}) for p in sorted(folder.glob("*.csv")) if p.name not in known}
    fit = BLUPFit(
        None, datatree, summary["method"], summary["sampler"], genetic_values, marker_effects,
        dict(summary.get("timings") or {}), dict(summary.get("settings") or {}), stored=summary | {"tables": tables},
    )  # fmt: skip
    if model is not None:
        _check_model(model, fit, ids, folder)
        fit.model = model
    return fit


#: What summary.json must hold for load_fit.
_SUMMARY_KEYS = ("model", "form", "trait", "prior", "method", "sampler", "parameters", "diagnostics")


def _read_summary(folder: Path) -> dict:
    path = folder / "summary.json"
    if not path.is_file():
        raise InputError(f"{folder} has no summary.json: pass a folder written by `bayesblup fit --out` or fit.save.")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # unreadable, truncated, not JSON
        raise InputError(f"{path} cannot be read as JSON ({exc}); write the fit again.") from exc
    missing = [key for key in _SUMMARY_KEYS if not isinstance(summary, dict) or key not in summary]
    if missing:
        raise InputError(f"{path} is not a bayesblup summary: it lacks {', '.join(missing)}.")
    return summary


def _read_posterior(folder: Path):
    """posterior.nc, read into memory (the file is closed again)."""
    import xarray as xr

    path = folder / "posterior.nc"
    if not path.is_file():
        raise InputError(f"{folder} has no posterior.nc: the draws are needed; write the fit again.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as exc:  # h5py and xarray raise many kinds on a truncated or foreign file
        raise InputError(f"{path} cannot be read ({type(exc).__name__}: {exc}); write the fit again.") from exc
    missing = [group for group in ("posterior", "genetic_values") if group not in tree.children]
    if missing:
        raise InputError(f"{path} has no group {', '.join(missing)}: it was not written by bayesblup.")
    return tree


def _read_table(path: Path, columns: tuple[str, ...], *, required: bool) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise InputError(f"{path.parent} has no {path.name}; write the fit again.")
        return None
    try:
        table = pd.read_csv(path, dtype={columns[0]: str})
    except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
        raise InputError(f"{path} cannot be read ({exc}); write the fit again.") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path} lacks the column(s) {', '.join(missing)}; write the fit again.")
    return table


def _check_model(model, fit, ids: np.ndarray, folder: Path) -> None:
    """Refuse a model that is not the one the stored fit was fitted with."""
    stored = fit.stored
    here = {
        "model": model.name,
        "form": model.form,
        "trait": model.traits[0] if not model.multi_trait else list(model.traits),
        "scaling": model.scaling,
        "n_records": int(model.n_records),
    }
    for key, value in here.items():
        if stored.get(key) != value:
            raise InputError(
                f"the model does not match the fit in {folder}: {key} is {value!r} here, {stored.get(key)!r} in "
                "summary.json; pass the model built on the same inputs and options."
            )
    individuals = model.individuals.astype(str)
    if not np.array_equal(individuals, ids):
        raise InputError(
            f"the model does not match the fit in {folder}: its {individuals.size} individuals are not the "
            f"{ids.size} of genetic_values.csv in the same order; pass the model built on the same genotypes and "
            "records."
        )
    if list(model.parameter_names) != fit.parameter_names:  # fixed effects, a permanent environment, sets
        raise InputError(
            f"the model does not match the fit in {folder}: its parameters are {', '.join(model.parameter_names)}, "
            f"the fit's {', '.join(fit.parameter_names)}; pass the model built with the same options."
        )


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
