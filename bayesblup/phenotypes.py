"""Phenotypes: reading a trait and matching its records to genotyped individuals by ID."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, preview

__all__ = ["Records", "design_matrix", "match_records", "read_phenotypes"]


def read_phenotypes(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV of phenotypes: first column the individual ID, then one column per trait.

    Empty cells and ``NA`` are missing records. IDs are read as text, so ``007`` stays ``007``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"phenotype file not found: {path}")
    try:
        header = pd.read_csv(path, nrows=0).columns
        frame = pd.read_csv(path, index_col=0, dtype={header[0]: str})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot be read as a CSV of phenotypes ({type(exc).__name__}: {exc}).") from exc
    if frame.shape[1] == 0:
        raise InputError(f"{path}: no trait column after the ID column.")
    if frame.index.isna().any():
        rows = np.flatnonzero(frame.index.isna()) + 1
        raise InputError(f"{path}: data row(s) {preview(rows)} have no individual ID in the first column.")
    frame.attrs["source"] = str(path)
    return frame


def trait_values(phenotypes: pd.DataFrame, trait: str) -> pd.Series:
    """The named trait as floats indexed by ID; text values are refused with their location."""
    source = phenotypes.attrs.get("source", "phenotypes")
    if trait not in phenotypes.columns:
        raise InputError(
            f"{source}: no trait column {trait!r}; the columns are {', '.join(map(str, phenotypes.columns))}."
        )
    raw = phenotypes[trait]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{source}: trait {trait} has a non-numeric value {raw.iloc[i]!r} for individual {raw.index[i]}."
        )
    if not np.isfinite(values.dropna().to_numpy()).all():
        raise InputError(f"{source}: trait {trait} holds infinite values.")
    return values.astype(float).rename(trait)


@dataclass(frozen=True, eq=False)
class Records:
    """A trait matched to genotyped individuals, one record per individual.

    Attributes
    ----------
    y : ndarray
        Records, in the order of ``ids``.
    ids : ndarray of str
        Individuals with a genotype and a record.
    trait : str
        The trait's name.
    n_missing : int
        Records that were NA (left out of the fit).
    unphenotyped : tuple of str
        Genotyped individuals without a record: part of the model, predicted through G.
    X : ndarray, shape (records, q), optional
        Fixed-effect covariates besides the intercept (see :func:`design_matrix`).
    covariates : tuple of str
        Their names, e.g. ``age`` or ``sex[M]`` (level M against the first level).
    """

    y: np.ndarray
    ids: np.ndarray
    trait: str
    n_missing: int
    unphenotyped: tuple[str, ...]
    X: np.ndarray | None = None  # fixed-effect covariates (records x q), intercept excluded
    covariates: tuple[str, ...] = ()

    @property
    def n_covariates(self) -> int:
        return len(self.covariates)

    def lines(self) -> list[str]:
        out = [f"trait {self.trait}: {self.y.size} records matched to genotyped individuals"]
        if self.n_missing:
            out.append(f"  {self.n_missing} missing (NA) records left out")
        if self.unphenotyped:
            out.append(
                f"  {len(self.unphenotyped)} genotyped individuals have no record; their genetic values are "
                f"predicted through G: {preview(self.unphenotyped)}"
            )
        return out


def design_matrix(table: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Fixed-effect design for the columns of ``table``: numbers as they are, factors dummy-coded.

    A column of text, category or booleans is a factor: one 0/1 column per level except the first
    (sorted) level, which the intercept absorbs; its columns are named ``column[level]``. Numeric
    columns enter as they are (a covariate such as age).

    Raises
    ------
    InputError
        If a value is missing (naming the individuals), a column is constant, or the columns are
        collinear with each other or with the intercept.
    """
    missing = table.isna().any(axis=1)
    if missing.any():
        raise InputError(
            f"fixed effects: {int(missing.sum())} records have a missing value in "
            f"{', '.join(map(str, table.columns))}: {preview(table.index[missing].astype(str), 10)}. "
            "Fill them or drop those records."
        )
    blocks, names = [], []
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if values.nunique() < 2:
                raise InputError(f"fixed effect {column} is constant; the intercept already covers it.")
            blocks.append(values.to_numpy(dtype=float)[:, None])
            names.append(str(column))
            continue
        levels = sorted(values.astype(str).unique())
        if len(levels) < 2:
            raise InputError(
                f"fixed effect {column} has a single level ({levels[0]}); the intercept already covers it."
            )
        for level in levels[1:]:
            blocks.append((values.astype(str) == level).to_numpy(dtype=float)[:, None])
            names.append(f"{column}[{level}]")
    X = np.hstack(blocks)
    with_intercept = np.hstack([np.ones((X.shape[0], 1)), X])
    if np.linalg.matrix_rank(with_intercept) < with_intercept.shape[1]:
        raise InputError(
            f"fixed effects {', '.join(map(str, table.columns))} are collinear with each other or with the intercept "
            "(e.g. a level present in every record, or two columns that carry the same information)."
        )
    return X, tuple(names)


def match_records(y: pd.Series, genotyped_ids, *, fixed: pd.DataFrame | None = None, min_records: int = 3) -> Records:
    """Match records (a Series indexed by ID) to genotyped individuals.

    ``fixed``, a table indexed by ID (numbers and factors; see :func:`design_matrix`), adds fixed
    effects for the matched records.

    Raises
    ------
    InputError
        If an ID has several records, a phenotyped individual has no genotype (named), or fewer
        than ``min_records`` records remain.
    """
    if not isinstance(y, pd.Series):
        raise InputError("records must be a pandas Series indexed by individual ID.")
    trait = str(y.name) if y.name is not None else "y"
    index = y.index.astype(str)
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        raise InputError(
            f"trait {trait}: individual(s) {preview(duplicated)} have several records; give one record per "
            "individual (e.g. their mean)."
        )
    genotyped = pd.Index(np.asarray(genotyped_ids, dtype=str))
    present = y.notna().to_numpy()
    without_genotype = index[present & ~index.isin(genotyped)]
    if len(without_genotype):
        raise InputError(
            f"trait {trait}: {len(without_genotype)} phenotyped individuals have no genotype: "
            f"{preview(without_genotype)}. Check that IDs match between the files (same spelling, no "
            "leading zeros lost), or drop those records."
        )
    kept = index[present]
    if kept.size < min_records:
        raise InputError(f"trait {trait}: only {kept.size} non-missing records; at least {min_records} are needed.")
    unphenotyped = tuple(genotyped[~genotyped.isin(kept)])
    X, covariates = None, ()
    if fixed is not None:
        if not isinstance(fixed, pd.DataFrame):
            raise InputError("fixed must be a pandas DataFrame of covariates indexed by individual ID.")
        table = fixed.set_axis(fixed.index.astype(str))
        absent = kept[~kept.isin(table.index)]
        if len(absent):
            raise InputError(f"fixed effects: no row for {len(absent)} records: {preview(absent, 10)}.")
        X, covariates = design_matrix(table.loc[kept])
    return Records(
        y=y.to_numpy(dtype=float)[present],
        ids=np.asarray(kept, dtype=object),
        trait=trait,
        n_missing=int((~present).sum()),
        unphenotyped=unphenotyped,
        X=X,
        covariates=covariates,
    )
