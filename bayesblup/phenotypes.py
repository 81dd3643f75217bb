"""Phenotypes: reading a trait and matching its records to genotyped individuals by ID."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataWarning, InputError, preview

__all__ = ["Records", "TraitRecords", "as_records", "design_matrix", "match_records", "match_traits", "read_phenotypes"]


#: Values that data sets use for "no record" (-9 is PLINK's). A trait holding one of them far from its other
#: values gets a warning (:func:`warn_missing_codes`); ``missing_codes=`` (``--missing-codes``) declares them.
COMMON_MISSING_CODES = (-9.0, -99.0, -999.0, -9999.0, 99.0, 999.0, 9999.0)


def warn_missing_codes(values: pd.Series, trait: str, where: str = "") -> None:
    """Warn (:class:`DataWarning`) when a common missing-value code stands apart from a trait's other values.

    "Apart": beyond the range of the other records by more than three times their robust sd (1.4826 MAD, or the
    sd when the MAD is 0), so that a body weight of 99 among weights of 80-120 is not taken for a code.
    """
    x = values.dropna().to_numpy(dtype=float)
    for code in COMMON_MISSING_CODES:
        hits = int(np.sum(x == code))
        rest = x[x != code]
        if not hits or rest.size < 3:
            continue
        scale = 1.4826 * np.median(np.abs(rest - np.median(rest))) or float(np.std(rest))
        if scale > 0 and (code < rest.min() - 3 * scale or code > rest.max() + 3 * scale):
            warnings.warn(
                f"{where}trait {trait}: {hits} record(s) equal {code:g}, far from the others ({rest.min():g} to "
                f"{rest.max():g}): a missing-value code? They are fitted as records; if they mean 'no record', "
                f"declare it: --missing-codes {code:g} (read_phenotypes(..., missing_codes=[{code:g}])).",
                DataWarning,
                stacklevel=3,
            )


def read_phenotypes(path: str | os.PathLike, *, missing_codes=()) -> pd.DataFrame:
    """Read a CSV of phenotypes: first column the individual ID, then one column per trait.

    Empty cells and ``NA`` are missing records, and so is any value in ``missing_codes`` (e.g. ``[-9]``, PLINK's
    code) in a numeric column. IDs are read as text, so ``007`` stays ``007``.
    """
    from .files import check_input_file

    path = Path(path)
    layout = "the ID column name, then one name per trait"
    check_input_file(path, "phenotype", "a CSV file (the ID column, then one column per trait), or a PLINK .fam")
    if path.name.lower().endswith(".fam"):
        return read_fam_phenotype(path, missing_codes=missing_codes)
    _check_header(path, layout)
    try:
        header = pd.read_csv(path, nrows=0).columns
        frame = pd.read_csv(path, index_col=0, dtype={header[0]: str})
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"{path} is empty or starts with a blank line; expected a header line ({layout}) and one row per "
            "individual."
        ) from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        # (another delimiter was refused by _check_header: a header of one field)
        raise InputError(
            f"{path}: cannot be read as a CSV of phenotypes ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            "save it as UTF-8 comma-separated text with '.' as the decimal point, one row per record."
        ) from exc
    if frame.shape[0] == 0:
        raise InputError(
            f"{path}: no data rows under the header; expected one row per individual (its ID, then its trait values)."
        )
    if frame.index.isna().any():
        rows = np.flatnonzero(frame.index.isna()) + 1
        raise InputError(f"{path}: data row(s) {preview(rows)} have no individual ID in the first column.")
    codes = [float(c) for c in missing_codes]
    if codes:
        numeric = frame.select_dtypes("number").columns
        frame[numeric] = frame[numeric].mask(frame[numeric].isin(codes))
    frame.attrs["source"] = str(path)
    return frame


def _first_line(path: Path) -> str:
    from .files import open_text

    try:
        with open_text(path) as handle:
            return handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return ""


#: The trait column of a PLINK .fam read as phenotypes.
FAM_TRAIT = "phenotype"


def read_fam_phenotype(path: str | os.PathLike, *, missing_codes=()) -> pd.DataFrame:
    """The phenotype of a PLINK ``.fam`` (its sixth column) as a table with one trait, ``phenotype``, by IID.

    PLINK's conventions: -9 is a missing record; a column of 1, 2 (with 0 or -9 for missing) is case/control,
    read as 0 (control, 1) and 1 (case, 2) and listed in ``attrs["case_control"]`` (the command line then fits it
    as a binary trait). Any other column is a quantitative trait, -9 missing. The individuals are the IIDs, as
    the genotypes of the same PLINK set are read.
    """
    path = Path(path)
    try:
        fam = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, comment=None)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a PLINK .fam (six whitespace-separated columns): {exc}") from exc
    if fam.shape[1] != 6:
        raise InputError(
            f"{path}: a PLINK .fam has six columns (FID, IID, father, mother, sex, phenotype); found {fam.shape[1]}."
        )
    values = pd.to_numeric(fam[5], errors="coerce")
    bad = values.isna() & ~fam[5].str.upper().isin(["NA", "NAN"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: line {row + 1}: the phenotype {fam[5].iloc[row]!r} is not a number.")
    codes = {-9.0, *(float(c) for c in missing_codes)}
    present = values[~values.isin(codes) & values.notna()]
    case_control = bool(len(present)) and set(present.unique()) <= {0.0, 1.0, 2.0} and (present > 0).any()
    if case_control:  # PLINK: 1 = control, 2 = case, 0 = missing
        values = values.mask(values.isin(codes | {0.0})) - 1.0
    else:
        values = values.mask(values.isin(codes))
    frame = pd.DataFrame({FAM_TRAIT: values.to_numpy()}, index=pd.Index(fam[1].to_numpy(), name="iid"))
    if frame.index.duplicated().any():
        raise InputError(f"{path}: IIDs repeat ({preview(frame.index[frame.index.duplicated()].unique())}).")
    frame.attrs["source"] = str(path)
    frame.attrs["case_control"] = [FAM_TRAIT] if case_control else []
    return frame


def _check_header(path: Path, layout: str) -> None:
    """Refuse a header of one field, and one that names a column twice.

    One field means another delimiter: pandas would take the rows' first field as an index and read on. A name
    given twice pandas would rename silently ('y1.1'), and the first column would be fitted.
    """
    import csv

    from .files import delimiter_hint

    first = _first_line(path)
    names = next(csv.reader([first]), [])
    if len(names) == 1:
        raise InputError(
            f"{path}: no trait column after the ID column{delimiter_hint(first)}; expected {layout}, "
            "comma-separated: save the file as CSV (comma-separated, '.' as the decimal point)."
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        key = name.strip()
        if key and key in seen:
            raise InputError(
                f"{path}: the header names column {key!r} twice (columns {seen[key]} and {i}); give each column a "
                "distinct name."
            )
        seen[key] = i


def trait_values(phenotypes: pd.DataFrame, trait: str) -> pd.Series:
    """The named trait as floats indexed by ID; text values are refused with their location."""
    source = phenotypes.attrs.get("source", "phenotypes")
    if trait not in phenotypes.columns:
        raise InputError(
            f"{source}: no trait column {trait!r}; the columns are {', '.join(map(str, phenotypes.columns))}: "
            "name one of them (--trait, trait=)."
        )
    values = _numeric_trait(phenotypes[trait], trait, f"{source}: ")
    values.attrs["source"] = source
    return values


def _numeric_trait(raw: pd.Series, trait: str, where: str) -> pd.Series:
    """The trait as floats; text is refused naming the first offending record, infinities too."""
    values = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
    bad = values.isna() & raw.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{where}trait {trait} has a non-numeric value {raw.iloc[i]!r} for individual {raw.index[i]} (record "
            f"{i + 1}); trait values must be numbers: fix it, or leave the cell empty (or NA) for a missing record."
        )
    finite = values.dropna().to_numpy(dtype=float)
    spread = 0.0
    if finite.size and np.isfinite(finite).all():
        with np.errstate(over="ignore"):
            spread = float(np.var(finite))
    if np.isfinite(finite).all() and (not np.isfinite(spread) or np.abs(finite).max(initial=0.0) > 1e100):
        i = int(np.argmax(np.abs(values.fillna(0).to_numpy(dtype=float))))
        raise InputError(
            f"{where}trait {trait} holds values as large in magnitude as {raw.iloc[i]:g} (individual {raw.index[i]}), "
            "beyond what its variance can be computed from in floating point; rescale the trait (other units, or "
            "standardise it) and fit again."
        )
    if not np.isfinite(finite).all():
        i = int(np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)) & values.notna().to_numpy())[0])
        raise InputError(
            f"{where}trait {trait} holds an infinite value for individual {raw.index[i]}; trait values must be "
            "finite numbers: fix it, or leave the cell empty (or NA) for a missing record."
        )
    return values.astype(float).rename(trait)


@dataclass(frozen=True, eq=False)
class Records:
    """A trait matched to genotyped individuals: one or several records per individual.

    The model is ``y = mu 1 + X beta + Z g (+ Z p) + e`` with ``Var(e) = D sigma2_e`` and
    ``D = diag(1 / weights)``: a record with weight ``w`` has residual variance ``sigma2_e / w``
    (a mean of ``w`` measurements has weight ``w``). Z maps each record to its individual.

    Attributes
    ----------
    y : ndarray, shape (records,)
        The records.
    ids : ndarray of str, shape (individuals,)
        Individuals with a genotype and at least one record, in order of their first record.
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
    individual : ndarray of int, shape (records,), optional
        Z as an index: ``ids[individual[j]]`` is the individual of record j. None: record j is
        individual j (one record each).
    weights : ndarray, shape (records,), optional
        Residual precision weights (the inverse of D's diagonal); None: all 1.
    """

    y: np.ndarray
    ids: np.ndarray
    trait: str
    n_missing: int
    unphenotyped: tuple[str, ...]
    X: np.ndarray | None = None  # fixed-effect covariates (records x q), intercept excluded
    covariates: tuple[str, ...] = ()
    individual: np.ndarray | None = None  # record -> position in ids (Z); None = identity
    weights: np.ndarray | None = None  # residual precision weights; None = all 1

    @property
    def n_covariates(self) -> int:
        return len(self.covariates)

    @property
    def n_records(self) -> int:
        return self.y.size

    @property
    def n_individuals(self) -> int:
        return self.ids.size

    @property
    def record_index(self) -> np.ndarray:
        """Z as an index into ``ids``, one entry per record."""
        return np.arange(self.n_records) if self.individual is None else self.individual

    @property
    def record_ids(self) -> np.ndarray:
        """The individual of each record."""
        return self.ids[self.record_index]

    @property
    def record_weights(self) -> np.ndarray:
        return np.ones(self.n_records) if self.weights is None else self.weights

    @property
    def total_weight(self) -> np.ndarray:
        """Sum of the weights of each individual's records (its number of records when unweighted)."""
        return np.bincount(self.record_index, weights=self.record_weights, minlength=self.n_individuals)

    @property
    def is_collapsible(self) -> bool:
        """Whether the records are exactly one unweighted record per individual (Z = I, D = I)."""
        return self.individual is None and self.weights is None

    def individual_means(self, values: np.ndarray) -> np.ndarray:
        """Weighted mean per individual of a record vector or (records x q) matrix."""
        values = np.asarray(values, dtype=np.float64)
        w = self.record_weights
        flat = values.reshape(self.n_records, -1)
        sums = np.stack(
            [
                np.bincount(self.record_index, weights=w * flat[:, k], minlength=self.n_individuals)
                for k in range(flat.shape[1])
            ],
            axis=1,
        )
        means = sums / self.total_weight[:, None]
        return means.reshape((self.n_individuals, *values.shape[1:]))

    def lines(self, *, of: str = "genotyped individuals") -> list[str]:
        """What was matched, as printed by ``bayesblup fit``; ``of`` names whom the IDs were matched to."""
        if self.individual is None:
            out = [f"trait {self.trait}: {self.n_records} records matched to {of}"]
        else:
            counts = np.bincount(self.individual, minlength=self.n_individuals)
            out = [
                f"trait {self.trait}: {self.n_records} records on {self.n_individuals} {of} "
                f"({counts.min()} to {counts.max()} records each)"
            ]
        if self.weights is not None:
            out.append(
                f"  residual weights from {self.weights.min():.4g} to {self.weights.max():.4g} (Var(e) = sigma2_e / w)"
            )
        if self.n_missing:
            out.append(f"  {self.n_missing} missing (NA) records left out")
        if self.unphenotyped:
            out.append(
                f"  {len(self.unphenotyped)} {of} have no record; their genetic values are "
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
            numbers = values.to_numpy(dtype=float)
            if not np.isfinite(numbers).all():
                i = int(np.flatnonzero(~np.isfinite(numbers))[0])
                raise InputError(
                    f"fixed effect {column} holds {numbers[i]:g} for individual {table.index[i]}; covariates must be "
                    "finite numbers: fix the value, or leave the cell empty and drop that record."
                )
            blocks.append(numbers[:, None])
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


def _record_aligned(table, y: pd.Series, what: str, *, by_id: bool, present: np.ndarray):
    """Rows of ``table`` (DataFrame or Series indexed by ID) in the order of the records of ``y``.

    With one record per individual the rows are matched by ID; with repeated records (several
    rows per ID) the table must have exactly y's index, row for row.
    """
    table = table.set_axis(table.index.astype(str))
    index = y.index.astype(str)
    if by_id:
        duplicated = table.index[table.index.duplicated()].unique()
        if len(duplicated):
            raise InputError(f"{what}: individual(s) {preview(duplicated)} have several rows; give one per individual.")
        absent = index[present & ~index.isin(table.index)]
        if len(absent):
            raise InputError(f"{what}: no row for {len(absent)} records: {preview(absent)}.")
        return table.reindex(index)
    if not table.index.equals(index):
        raise InputError(
            f"{what}: with repeated records, give one row per record, in the order of the records (same index "
            "as the trait); the rows do not line up. Take both from the same phenotype table."
        )
    return table


def _check_weights(weights: pd.Series, present: np.ndarray, trait: str, where: str = "") -> np.ndarray:
    values = pd.to_numeric(weights, errors="coerce").to_numpy(dtype=float)
    bad = present & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        ids = weights.index[bad].astype(str)
        shown = ", ".join(f"{i} ({w})" for i, w in list(zip(ids, weights.to_numpy()[bad], strict=True))[:10])
        more = f" (and {int(bad.sum()) - 10} more)" if bad.sum() > 10 else ""
        column = "" if weights.name is None else f", weights {weights.name}"
        raise InputError(
            f"{where}trait {trait}{column}: {int(bad.sum())} records have a weight that is not a positive number: "
            f"{shown}{more}. "
            "A weight w gives the record residual variance sigma2_e / w (e.g. w = number of measurements "
            "averaged); drop records that should not count rather than giving them weight 0."
        )
    return values[present]


def match_records(
    y: pd.Series,
    genotyped_ids,
    *,
    fixed: pd.DataFrame | None = None,
    weights: pd.Series | None = None,
    repeated: bool = False,
    min_records: int = 3,
) -> Records:
    """Match records (a Series indexed by ID) to genotyped individuals.

    Parameters
    ----------
    y : pandas.Series
        The trait, indexed by individual ID; NA = no record.
    genotyped_ids : array of str
        IDs of the genotyped individuals; those without a record become ``unphenotyped``.
    fixed : pandas.DataFrame, optional
        Fixed effects (numbers and factors; see :func:`design_matrix`), indexed by ID.
    weights : pandas.Series, optional
        Residual precision weights: record j has ``Var(e_j) = sigma2_e / w_j``, so the user gives the
        inverse of D's diagonal. Positive and finite for every record.
    repeated : bool
        Allow several records per individual (repeated measurements). Then ``fixed`` and
        ``weights`` must have y's index row for row, since an ID no longer names one record.
    min_records : int
        The fewest individuals with a non-missing record accepted.

    Raises
    ------
    InputError
        If an ID has several records without ``repeated``, a phenotyped individual has no genotype
        (named, at most ten then a count), a value is not a number, a weight is not positive, the trait is
        constant, or fewer than ``min_records`` individuals with a record remain.
    """
    if not isinstance(y, pd.Series):
        raise InputError("records must be a pandas Series indexed by individual ID.")
    trait = str(y.name) if y.name is not None else "y"
    source = y.attrs.get("source")  # the phenotype file, when y comes from read_phenotypes
    where = f"{source}: " if source else ""
    y = _numeric_trait(y, trait, where)
    warn_missing_codes(y, trait, where)
    index = y.index.astype(str)
    present = y.notna().to_numpy()
    duplicated = index[present & index.duplicated(keep=False)].unique()
    if len(duplicated) and not repeated:
        raise InputError(
            f"{where}trait {trait}: individual(s) {preview(duplicated)} have several records. If they are repeated "
            "measurements, allow them (repeated=True; command line --repeated-records), usually with a "
            "permanent-environment effect (permanent_environment=True; --permanent-environment). Otherwise "
            "fix the duplicated IDs."
        )
    genotyped = pd.Index(np.asarray(genotyped_ids, dtype=str))
    without_genotype = index[present & ~index.isin(genotyped)].unique()
    match = "Check that IDs match between the files (same spelling, no leading zeros lost)"
    if len(without_genotype) and set(without_genotype.str.strip()) & set(genotyped.str.strip()):
        # invisible in a list: ' 775' prints as 775 beside the genotypes' 775
        spaced = [i for i in without_genotype if i != i.strip()][:3] or [
            g for g in genotyped if g != g.strip() and g.strip() in set(without_genotype.str.strip())
        ][:3]
        match = (
            f"IDs differ by spaces before or after them (e.g. {', '.join(map(repr, spaced))}): remove the spaces in "
            "the files"
        )
    if len(without_genotype) and len(without_genotype) == len(index[present].unique()):
        raise InputError(
            f"{where}trait {trait}: none of the {len(without_genotype)} phenotyped individuals has a genotype "
            f"(phenotype IDs {preview(without_genotype, 3)}; genotype IDs {preview(genotyped, 3)}). {match}, and "
            "that the first column of each file holds the IDs."
        )
    if len(without_genotype):
        raise InputError(
            f"{where}trait {trait}: {len(without_genotype)} phenotyped individuals have no genotype: "
            f"{preview(without_genotype)}. {match}, or drop those records."
        )
    kept = index[present]
    ids = kept.unique()
    if ids.size < min_records:
        raise InputError(
            f"{where}trait {trait}: {kept.size} non-missing records on {ids.size} individuals; at least "
            f"{min_records} individuals with a record are needed to tell genetic from residual variance. Check the "
            "trait column (are its values all missing?) and give records of more individuals."
        )
    values = y.to_numpy(dtype=float)[present]
    if np.ptp(values) == 0:
        raise InputError(
            f"{where}trait {trait} is constant: all {values.size} records equal {values[0]:g}; a trait with no "
            "variation has no variance to split. Check that the trait column is the right one (--trait, trait=)."
        )
    by_id = not index.has_duplicates
    unphenotyped = tuple(genotyped[~genotyped.isin(ids)])
    individual = None if by_id else ids.get_indexer(kept).astype(np.intp)
    X, covariates = None, ()
    if fixed is not None:
        if not isinstance(fixed, pd.DataFrame):
            raise InputError("fixed must be a pandas DataFrame of covariates indexed by individual ID.")
        table = _record_aligned(fixed, y, "fixed effects", by_id=by_id, present=present)
        X, covariates = design_matrix(table[present])
    w = None
    if weights is not None:
        if not isinstance(weights, pd.Series):
            raise InputError("weights must be a pandas Series indexed by individual ID.")
        aligned = _record_aligned(weights, y, "weights", by_id=by_id, present=present)
        w = _check_weights(aligned, present, trait, where)
    return Records(
        y=values,
        ids=np.asarray(ids, dtype=object),
        trait=trait,
        n_missing=int((~present).sum()),
        unphenotyped=unphenotyped,
        X=X,
        covariates=covariates,
        individual=individual,
        weights=w,
    )


@dataclass(frozen=True, eq=False)
class TraitRecords:
    """Several traits matched to genotyped individuals: one record per individual and trait, some missing.

    The multi-trait model is ``Y = 1 mu' + X B + G_eff + E`` with ``vec(g) ~ N(0, Sigma_g (x) G)`` and
    ``vec(e) ~ N(0, Sigma_e (x) I)``. A record missing for one trait is not dropped: the model
    treats it as an unknown (sampled with the rest), so the records of the other traits still count.

    Attributes
    ----------
    Y : ndarray, shape (individuals, traits)
        The records, NaN where missing; every row has at least one record.
    ids : ndarray of str
        Individuals with a genotype and at least one record.
    traits : tuple of str
        The traits' names, in the order given.
    n_missing : dict of str to int
        Missing records per trait, among the individuals in ``ids``.
    unphenotyped : tuple of str
        Genotyped individuals without any record: part of the model, predicted through G.
    X : ndarray, shape (individuals, q), optional
        Fixed-effect covariates besides the intercept, shared by the traits (each trait has its own effects).
    covariates : tuple of str
        Their names.
    """

    Y: np.ndarray
    ids: np.ndarray
    traits: tuple[str, ...]
    n_missing: dict
    unphenotyped: tuple[str, ...]
    X: np.ndarray | None = None
    covariates: tuple[str, ...] = ()

    @property
    def n_individuals(self) -> int:
        return self.ids.size

    @property
    def n_traits(self) -> int:
        return len(self.traits)

    @property
    def n_covariates(self) -> int:
        return len(self.covariates)

    @property
    def observed(self) -> np.ndarray:
        """(individuals, traits) mask of the records present."""
        return ~np.isnan(self.Y)

    @property
    def n_records(self) -> int:
        return int(self.observed.sum())

    def trait_values(self, trait: str) -> np.ndarray:
        """The observed records of one trait."""
        column = self.Y[:, self.traits.index(trait)]
        return column[~np.isnan(column)]

    def lines(self, *, of: str = "genotyped individuals") -> list[str]:
        """What was matched, as printed by ``bayesblup fit``; ``of`` names whom the IDs were matched to."""
        n = self.n_individuals
        out = [f"traits {', '.join(self.traits)}: {n} {of} with a record of at least one trait"]
        for trait in self.traits:
            missing = self.n_missing[trait]
            if missing:
                out.append(f"  {trait}: {n - missing} records, {missing} missing (sampled with the model, not dropped)")
        if self.unphenotyped:
            out.append(
                f"  {len(self.unphenotyped)} {of} have no record; their genetic values are "
                f"predicted through G: {preview(self.unphenotyped)}"
            )
        return out


def match_traits(
    table: pd.DataFrame, genotyped_ids, *, fixed: pd.DataFrame | None = None, min_records: int = 3
) -> TraitRecords:
    """Match several traits (a DataFrame indexed by ID, one column per trait) to genotyped individuals.

    Each trait is checked as :func:`match_records` checks one (numbers, at least ``min_records``
    records, not constant); an individual with a record of any trait is in the model, its missing
    records sampled with it.

    Raises
    ------
    InputError
        If an ID has several rows (repeated records are not available with several traits), a
        phenotyped individual has no genotype, two traits share a name, or a trait fails its checks.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError("several traits must be a pandas DataFrame indexed by individual ID, one column per trait.")
    traits = tuple(str(c) for c in table.columns)
    if len(set(traits)) < len(traits):
        twice = sorted({t for t in traits if traits.count(t) > 1})
        raise InputError(f"traits {', '.join(twice)} appear twice; give each trait once.")
    source = table.attrs.get("source")
    where = f"{source}: " if source else ""
    columns = {t: _numeric_trait(table.iloc[:, j], t, where) for j, t in enumerate(traits)}
    for t, values in columns.items():
        warn_missing_codes(values, t, where)
    index = table.index.astype(str)
    present = np.column_stack([c.notna().to_numpy() for c in columns.values()])
    any_record = present.any(axis=1)
    duplicated = index[any_record & index.duplicated(keep=False)].unique()
    if len(duplicated):
        raise InputError(
            f"{where}individual(s) {preview(duplicated)} have several rows; repeated records are not available with "
            "several traits yet: fit each trait alone with repeated records (--repeated-records), or fix the IDs."
        )
    genotyped = pd.Index(np.asarray(genotyped_ids, dtype=str))
    without_genotype = index[any_record & ~index.isin(genotyped)].unique()
    if len(without_genotype):
        raise InputError(
            f"{where}{len(without_genotype)} phenotyped individuals have no genotype: {preview(without_genotype)}. "
            "Check that IDs match between the files (same spelling, no leading zeros lost), or drop those records."
        )
    Y = np.column_stack([c.to_numpy(dtype=float) for c in columns.values()])[any_record]
    ids = index[any_record]
    for j, trait in enumerate(traits):
        values = Y[~np.isnan(Y[:, j]), j]
        if values.size < min_records:
            raise InputError(
                f"{where}trait {trait}: {values.size} records; at least {min_records} are needed to tell genetic from "
                "residual variance. Check the trait column, or leave the trait out."
            )
        if np.ptp(values) == 0:
            raise InputError(
                f"{where}trait {trait} is constant: all {values.size} records equal {values[0]:g}; a trait with no "
                "variation has no variance to split. Check the trait columns (--trait, the DataFrame's columns)."
            )
    _check_trait_pairs(Y, traits, where)
    X, covariates = None, ()
    if fixed is not None:
        if not isinstance(fixed, pd.DataFrame):
            raise InputError("fixed must be a pandas DataFrame of covariates indexed by individual ID.")
        any_series = pd.Series(np.where(any_record, 1.0, np.nan), index=table.index, name="any trait")
        aligned = _record_aligned(fixed, any_series, "fixed effects", by_id=True, present=any_record)
        X, covariates = design_matrix(aligned[any_record])
    return TraitRecords(
        Y=Y,
        ids=np.asarray(ids, dtype=object),
        traits=traits,
        n_missing={t: int(np.isnan(Y[:, j]).sum()) for j, t in enumerate(traits)},
        unphenotyped=tuple(genotyped[~genotyped.isin(ids)]),
        X=X,
        covariates=covariates,
    )


#: Two traits whose shared records correlate beyond this are one trait twice (a copy, a unit conversion).
COLLINEAR_TRAITS = 0.9999


def _check_trait_pairs(Y: np.ndarray, traits, where: str) -> None:
    """Refuse two traits that are linear functions of each other over their shared records.

    Their genetic and residual covariance matrices would both be singular: NUTS then runs into the boundary
    (on simulated data: 141 divergences of 200 draws, r_g = 1.000) and reports a degenerate answer.
    """
    for a in range(len(traits)):
        for b in range(a + 1, len(traits)):
            shared = ~np.isnan(Y[:, a]) & ~np.isnan(Y[:, b])
            if shared.sum() < 3:
                continue
            r = np.corrcoef(Y[shared, a], Y[shared, b])[0, 1]
            if abs(r) > COLLINEAR_TRAITS:
                raise InputError(
                    f"{where}traits {traits[a]} and {traits[b]} correlate {r:.5f} over their {int(shared.sum())} "
                    "shared records: one is a linear function of the other (a copy, or the same trait in other "
                    "units), so their covariances are singular. Leave one of them out."
                )


def as_records(y, genotyped_ids, **options) -> Records | TraitRecords:
    """``y`` itself if already matched, else its records matched to ``genotyped_ids``.

    One trait goes through :func:`match_records` with ``options``; a DataFrame of several traits
    through :func:`match_traits` (its ``fixed`` option only).

    Examples
    --------
    >>> import pandas as pd
    >>> rec = as_records(pd.Series([1.0, 2.0, None, 4.0], index=["a", "b", "c", "d"]), ["a", "b", "c", "d"])
    >>> rec.ids.tolist(), rec.n_missing
    (['a', 'b', 'd'], 1)
    >>> as_records(rec, ["a", "b", "c", "d"]) is rec
    True
    """
    if isinstance(y, Records | TraitRecords):
        return y
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    if isinstance(y, pd.DataFrame):
        extra = sorted(k for k, v in options.items() if k != "fixed" and v is not None and v is not False)
        if extra:
            raise InputError(
                f"{', '.join(extra)} are not available with several traits yet: fit each trait alone for repeated or "
                "weighted records."
            )
        return match_traits(y, genotyped_ids, fixed=options.get("fixed"))
    return match_records(y, genotyped_ids, **options)
