"""Quality control of genotype calls: filters that drop markers or individuals, each reported.

Filters run in a fixed order, each on what the previous left:

1. individuals whose call rate is below ``min_individual_call_rate`` (optional);
2. markers with no observed call (always: no allele frequency can be computed);
3. markers whose call rate is below ``min_call_rate`` (optional);
4. monomorphic markers (always: zero variance would divide by zero in the standardised scalings);
5. markers whose minor allele frequency is below ``min_maf`` (optional);
6. markers whose dosage r2 is below ``min_dosage_r2`` (optional; fractional dosages only, e.g. a VCF's DS field):
   poorly imputed markers, whose dosages are shrunk towards their mean ``2p``. Without this filter, the report
   counts the kept markers below :data:`POOR_DOSAGE_R2`.

Missing calls that remain are not filled here: :mod:`bayesblup.genotypes.scaling` imputes each to the
marker's observed mean (``k p``), after ``p`` is computed from the observed calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, preview
from .calls import Genotypes, MarkerStats, dosage_r2, marker_blocks, marker_stats, missing_mask

__all__ = ["POOR_DOSAGE_R2", "QCReport", "quality_control"]

#: Dosage r2 below which a marker counts as poorly imputed: the customary cut of minimac and PLINK users. The
#: report counts the kept markers below it when ``min_dosage_r2`` is not given.
POOR_DOSAGE_R2 = 0.3

# Reasons a marker is dropped, in the order the filters run.
ALL_MISSING = "all_missing"
CALL_RATE = "call_rate"
MONOMORPHIC = "monomorphic"
MAF = "maf"
DOSAGE_R2 = "dosage_r2"
_REASON_TEXT = {
    ALL_MISSING: "with no observed call",
    CALL_RATE: "with call rate below {min_call_rate}",
    MONOMORPHIC: "monomorphic (one observed count or dosage only)",
    MAF: "with minor allele frequency below {min_maf}",
    DOSAGE_R2: "with dosage r2 below {min_dosage_r2} (poorly imputed)",
}


@dataclass(frozen=True)
class QCReport:
    """What :func:`quality_control` did, with counts and the names of everything dropped."""

    source: str
    coding: str
    n_individuals_in: int
    n_markers_in: int
    n_missing_in: int
    min_maf: float | None
    min_call_rate: float | None
    min_individual_call_rate: float | None
    dropped_individuals: tuple[str, ...]
    dropped_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    n_missing_out: int = 0
    counted: str | None = None  # what a call counts, where the reader said (a VCF's GT or DS)
    dosages: bool = False  # fractional dosages rather than whole counts
    min_dosage_r2: float | None = None
    # kept markers with dosage r2 below POOR_DOSAGE_R2; None unless dosages were kept without min_dosage_r2
    n_poorly_imputed: int | None = None

    @property
    def n_individuals_out(self) -> int:
        return self.n_individuals_in - len(self.dropped_individuals)

    @property
    def n_markers_dropped(self) -> int:
        return sum(len(v) for v in self.dropped_markers.values())

    @property
    def n_markers_out(self) -> int:
        return self.n_markers_in - self.n_markers_dropped

    def lines(self) -> list[str]:
        """Return the report as short lines of text, for logs and the command line."""
        total = self.n_individuals_in * self.n_markers_in
        out = [
            f"genotypes: {self.n_individuals_in} individuals x {self.n_markers_in} markers from {self.source}",
            f"coding: {self.coding}" + (" (fractional dosages)" if self.dosages else ""),
            *([f"calls: {self.counted}"] if self.counted else []),
            f"missing calls: {self.n_missing_in} of {total} ({100 * self.n_missing_in / total:.2f}%)",
        ]
        if self.min_individual_call_rate is not None:
            d = self.dropped_individuals
            names = f": {preview(d)}" if d else ""
            out.append(f"dropped {len(d)} individuals with call rate below {self.min_individual_call_rate}{names}")
        for reason, text in _REASON_TEXT.items():
            if reason in self.dropped_markers:
                names = self.dropped_markers[reason]
                what = text.format(
                    min_call_rate=self.min_call_rate, min_maf=self.min_maf, min_dosage_r2=self.min_dosage_r2
                )
                out.append(f"dropped {len(names)} markers {what}" + (f": {preview(names)}" if names else ""))
        if self.n_poorly_imputed:
            n = self.n_poorly_imputed
            markers_have = "marker has" if n == 1 else "markers have"
            out.append(
                f"warning: {n} kept {markers_have} dosage r2 below {POOR_DOSAGE_R2} (poorly imputed: the "
                "standardized scaling weights them like well-called markers, amplifying their imputation noise); "
                f"--min-dosage-r2 {POOR_DOSAGE_R2} drops them"
            )
        mean = "2p" if self.coding == "additive" else "p"
        out.append(
            f"kept: {self.n_individuals_out} individuals x {self.n_markers_out} markers; "
            f"{self.n_missing_out} missing calls will be imputed to the marker mean ({mean})"
        )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        """Plain-dict form, for JSON outputs."""
        return {
            "source": self.source,
            "coding": self.coding,
            "counted": self.counted,
            "dosages": self.dosages,
            "n_individuals_in": self.n_individuals_in,
            "n_markers_in": self.n_markers_in,
            "n_missing_in": self.n_missing_in,
            "n_individuals_out": self.n_individuals_out,
            "n_markers_out": self.n_markers_out,
            "n_missing_imputed": self.n_missing_out,
            "filters": {
                "min_maf": self.min_maf,
                "min_call_rate": self.min_call_rate,
                "min_individual_call_rate": self.min_individual_call_rate,
                "min_dosage_r2": self.min_dosage_r2,
            },
            "poorly_imputed": None
            if self.n_poorly_imputed is None
            else {"dosage_r2_below": POOR_DOSAGE_R2, "n_markers": self.n_poorly_imputed},
            "dropped_individuals": list(self.dropped_individuals),
            "dropped_markers": {k: list(v) for k, v in self.dropped_markers.items()},
        }


def _check_rate(value: float | None, name: str, upper: float) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= upper:
        raise InputError(f"{name} must lie in [0, {upper}], got {value}.")
    return value


def check_thresholds(
    *,
    min_maf: float | None = None,
    min_call_rate: float | None = None,
    min_individual_call_rate: float | None = None,
    min_dosage_r2: float | None = None,
) -> tuple[float | None, float | None, float | None, float | None]:
    """Validate the optional QC thresholds; return them as floats (or None), in the order of the arguments."""
    return (
        _check_rate(min_maf, "min_maf", 0.5),
        _check_rate(min_call_rate, "min_call_rate", 1.0),
        _check_rate(min_individual_call_rate, "min_individual_call_rate", 1.0),
        # r2 exceeds 1 with fewer heterozygotes than Hardy-Weinberg (inbred lines), but a cut above 1 would drop
        # well-imputed markers of outbred populations
        _check_rate(min_dosage_r2, "min_dosage_r2", 1.0),
    )


def refuse_dosage_r2(source: str, held: str) -> InputError:
    """The refusal of ``min_dosage_r2`` for calls ``held`` (e.g. "0/1/2 counts of a CSV") that are not dosages."""
    return InputError(
        f"{source}: min_dosage_r2 (--min-dosage-r2) filters imputed dosages (a VCF's DS field, --vcf-field DS), "
        f"and these genotypes hold hard calls ({held}): drop the option, or read the dosages of an imputed VCF "
        "(--vcf-field DS)."
    )


def check_dosage_r2_applies(genotypes: Genotypes) -> None:
    """Refuse ``min_dosage_r2`` for genotypes of whole-number calls (GT, a CSV, PLINK, or DS that are all whole).

    Raises
    ------
    InputError
        If ``genotypes`` hold int8 counts rather than fractional dosages.
    """
    if genotypes.is_dosage:
        return
    held = genotypes.counted or f"whole allele counts, coding {genotypes.coding!r}"
    if genotypes.counted and "DS field" in genotypes.counted:  # read from DS, yet held as counts: all whole
        held = "the VCF's DS values are all whole numbers, held as allele counts"
    raise refuse_dosage_r2(genotypes.source, held)


def individual_filter(
    missing_per_individual: np.ndarray, *, n_markers: int, min_individual_call_rate: float, source: str
) -> np.ndarray:
    """Boolean mask of the individuals whose call rate reaches ``min_individual_call_rate`` (filter 1).

    Raises
    ------
    InputError
        If no individual passes.
    """
    keep = 1.0 - missing_per_individual / n_markers >= min_individual_call_rate
    if not keep.any():
        raise InputError(
            f"{source}: every individual has call rate below {min_individual_call_rate}; "
            "lower --min-individual-call-rate or check the genotype file."
        )
    return keep


def marker_filter(
    stats: MarkerStats,
    markers: np.ndarray,
    *,
    n_individuals: int,
    max_count: int,
    min_call_rate: float | None,
    min_maf: float | None,
    source: str,
    min_dosage_r2: float | None = None,
) -> tuple[np.ndarray, dict[str, tuple[str, ...]]]:
    """Filters 2-6 from the per-marker sums of the observed calls (:func:`~bayesblup.genotypes.calls.marker_stats`).

    Returns
    -------
    ndarray of bool, shape (m,)
        Markers kept.
    dict
        Names of the dropped markers by reason, in the order the filters run.

    Raises
    ------
    InputError
        If no marker passes.
    """
    n_obs = stats.n_obs
    reasons = np.full(len(markers), "", dtype=object)
    reasons[n_obs == 0] = ALL_MISSING
    if min_call_rate is not None:
        reasons[(reasons == "") & (n_obs / n_individuals < min_call_rate)] = CALL_RATE
    reasons[(reasons == "") & ~stats.polymorphic] = MONOMORPHIC
    if min_maf is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            p = stats.total / (max_count * n_obs)
        maf = np.minimum(p, 1.0 - p)
        reasons[(reasons == "") & (maf < min_maf)] = MAF
    if min_dosage_r2 is not None:  # r2 is NaN only for markers dropped above (no call, monomorphic)
        reasons[(reasons == "") & (dosage_r2(stats) < min_dosage_r2)] = DOSAGE_R2

    dropped = {r: tuple(markers[reasons == r]) for r in _REASON_TEXT if (reasons == r).any()}
    keep = reasons == ""
    if not keep.any():
        raise InputError(
            f"{source}: no marker passes quality control ({preview(f'{k}: {len(v)}' for k, v in dropped.items())}"
            "); expected at least one marker whose calls vary between individuals. Relax the filters (--min-maf, "
            "--min-call-rate, --min-dosage-r2) if they dropped markers, check that the calls vary between individuals "
            "(monomorphic markers are always dropped), and check the coding of the calls."
        )
    return keep, dropped


def quality_control(
    genotypes: Genotypes,
    *,
    min_maf: float | None = None,
    min_call_rate: float | None = None,
    min_individual_call_rate: float | None = None,
    min_dosage_r2: float | None = None,
) -> tuple[Genotypes, QCReport]:
    """Drop monomorphic and (optionally) rare, poorly called or poorly imputed markers, and report every drop.

    Parameters
    ----------
    genotypes : Genotypes
        Calls to filter.
    min_maf : float, optional
        Drop markers whose minor allele frequency, from the observed calls, is below this
        (e.g. 0.05). Off by default.
    min_call_rate : float, optional
        Drop markers whose fraction of observed calls is below this (e.g. 0.9). Off by default.
    min_individual_call_rate : float, optional
        Drop individuals whose fraction of observed calls is below this, before any marker
        filter. Off by default; dropped IDs are listed in the report.
    min_dosage_r2 : float, optional
        Drop markers whose MaCH dosage r2 (:func:`~bayesblup.genotypes.calls.dosage_r2`, as PLINK 2's
        ``--mach-r2-filter``) is below this (e.g. 0.3), after the MAF filter: poorly imputed markers, which the
        standardized scaling would weight like well-called ones. For fractional dosages only (a VCF's DS field).
        Off by default; the report then counts the kept dosage markers with r2 below :data:`POOR_DOSAGE_R2`.

    Returns
    -------
    Genotypes
        The calls that pass, missing calls still marked missing.
    QCReport
        Counts and names of what was dropped and why.

    Raises
    ------
    InputError
        If a threshold is out of range, ``min_dosage_r2`` is given for whole-number calls, or nothing is left
        after filtering.
    """
    min_maf, min_call_rate, min_individual_call_rate, min_dosage_r2 = check_thresholds(
        min_maf=min_maf,
        min_call_rate=min_call_rate,
        min_individual_call_rate=min_individual_call_rate,
        min_dosage_r2=min_dosage_r2,
    )
    if min_dosage_r2 is not None:
        check_dosage_r2_applies(genotypes)
    n_missing_in = genotypes.n_missing

    dropped_ids: tuple[str, ...] = ()
    geno = genotypes
    if min_individual_call_rate is not None:
        missing_per_ind = np.zeros(geno.n_individuals, dtype=np.int64)
        for _, blk in marker_blocks(geno.calls):
            missing_per_ind += missing_mask(blk).sum(axis=1)
        keep = individual_filter(
            missing_per_ind,
            n_markers=geno.n_markers,
            min_individual_call_rate=min_individual_call_rate,
            source=geno.source,
        )
        dropped_ids = tuple(geno.ids[~keep])
        if dropped_ids:
            geno = geno.select(individuals=keep)

    stats = marker_stats(geno.calls)
    keep_markers, dropped = marker_filter(
        stats,
        geno.markers,
        n_individuals=geno.n_individuals,
        max_count=geno.max_count,
        min_call_rate=min_call_rate,
        min_maf=min_maf,
        source=geno.source,
        min_dosage_r2=min_dosage_r2,
    )
    if not keep_markers.all():
        geno = geno.select(markers=keep_markers)
    if geno.n_individuals < 2:
        raise InputError(
            f"{geno.source}: at least 2 individuals are needed, {geno.n_individuals} left after QC; give the calls "
            "of more individuals (or lower --min-individual-call-rate)."
        )

    # Only these are known after filtering; compute from the kept counts, not by rescanning.
    n_missing_out = int((geno.n_individuals - stats.n_obs[keep_markers]).sum())
    n_poorly_imputed = None
    if genotypes.is_dosage and min_dosage_r2 is None:  # not asked to filter: say what the filter would drop
        n_poorly_imputed = int((dosage_r2(stats.subset(keep_markers)) < POOR_DOSAGE_R2).sum())
    report = QCReport(
        source=genotypes.source,
        coding=genotypes.coding,
        n_individuals_in=genotypes.n_individuals,
        n_markers_in=genotypes.n_markers,
        n_missing_in=n_missing_in,
        min_maf=min_maf,
        min_call_rate=min_call_rate,
        min_individual_call_rate=min_individual_call_rate,
        dropped_individuals=dropped_ids,
        dropped_markers=dropped,
        n_missing_out=n_missing_out,
        counted=genotypes.counted,
        dosages=genotypes.is_dosage,
        min_dosage_r2=min_dosage_r2,
        n_poorly_imputed=n_poorly_imputed,
    )
    return geno, report
