"""Plots: each figure has the expected panels, labels and data; --plots writes the PNGs; bad uses are refused.

The figures themselves were looked at by eye (wheat y1, G-BLUP and M-BLUP, 40 lines without a record, a
two-set fit, and M-BLUP's marker effects on a made-up map); these tests pin down what they show: the top
individuals' IDs, reliability colours that tell 0.6 from 0.85, chains named in legends and on the BFMI axis,
the summary's R-hat beside each rank plot, and marker effects along the chromosomes in natural order.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup import plots
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path

matplotlib.use("Agg")

PLINK = Path(__file__).parent / "data" / "plink_sample"

QUICK = {"chains": 2, "draws": 200, "tune": 200, "seed": 1}
UNPHENOTYPED = 40


@pytest.fixture(scope="module")
def fits(wheat):
    """G-BLUP, M-BLUP and a two-set G-BLUP on wheat y1, the first 40 lines without a record."""
    geno, _ = bb.quality_control(wheat.genotypes)
    y = wheat.phenotypes["y1"].copy()
    y.iloc[:UNPHENOTYPED] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.RankDeficiencyWarning)
        gblup = bb.GBLUP(y, bb.genomic_relationship(geno), prior="bglr").fit(**QUICK)
        mblup = bb.MBLUP(y, bb.genotype_matrix(geno), prior="bglr").fit(**QUICK)
        sets = bb.relationships_by_set(geno, {"first100": list(geno.markers[:100])})
        multi = bb.MultiGBLUP(y, sets).fit(**QUICK)
    return {"gblup": gblup, "mblup": mblup, "sets": multi}


def _legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


@pytest.mark.structural
def test_h2_plot_shows_the_interval_of_the_summary_and_the_reference(fits):
    fit = fits["gblup"]
    fig = plots.plot_h2(fit, reference={"REML (rrBLUP)": 0.499})
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith("h2 posterior")]
    assert ax.get_title() == "h2 posterior (gblup, prior bglr)"
    assert ax.get_xlabel().startswith("h2 = ")
    row = fit.summary().loc["h2"]
    texts = _legend_texts(fig)
    assert f"posterior, 90% interval [{row['q05']:.3f}, {row['q95']:.3f}]" in texts
    assert "REML (rrBLUP): 0.499" in texts
    assert any(np.allclose(line.get_xdata(), 0.499) for line in ax.get_lines())


@pytest.mark.structural
def test_equivalence_plot_overlays_sigma2_g_with_c_sigma2_b(fits):
    fig = plots.plot_equivalence(fits["mblup"], fits["gblup"])
    assert [ax.get_title() for ax in fig.axes] == ["sigma2_g (G-BLUP) vs c sigma2_b (M-BLUP)", "h2"]
    assert _legend_texts(fig) == ["G-BLUP sigma2_g", "M-BLUP sigma2_g_equiv", "G-BLUP h2", "M-BLUP h2"]
    # each curve is a density of that model's draws: it peaks near the posterior mean
    ax = fig.axes[0]
    for line, fit, name in zip(
        ax.get_lines(), (fits["gblup"], fits["mblup"]), ("sigma2_g", "sigma2_g_equiv"), strict=True
    ):
        peak = line.get_xdata()[np.argmax(line.get_ydata())]
        row = fit.summary().loc[name]
        assert abs(peak - row["mean"]) < row["sd"], name  # mode within 1 sd of the mean: the posterior is near-normal
    with pytest.raises(bb.InputError, match="pass the M-BLUP fit first"):
        plots.plot_equivalence(fits["gblup"], fits["mblup"])


@pytest.mark.structural
def test_equivalence_plot_per_set(fits):
    """With several sets the panels go set by set (needs an M-BLUP multi-set fit: only the pairing is checked)."""
    pairs = plots._equivalence_pairs(None, fits["sets"])
    assert [p[1:] for p in pairs] == [
        ("sigma2_g_first100", "sigma2_g_equiv_first100"), ("sigma2_g_rest", "sigma2_g_equiv_rest"), ("h2", "h2"),
    ]  # fmt: skip


def _titled(fig, start: str):
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith(start)]
    return ax


@pytest.mark.structural
def test_genetic_values_ranks_all_colours_by_reliability_and_marks_unphenotyped(fits):
    fit = fits["gblup"]
    fig = plots.plot_genetic_values(fit)
    ax = _titled(fig, "All 599 individuals")
    phenotyped, predicted = ax.collections[1], ax.collections[2]  # [0]: the interval lines
    assert len(phenotyped.get_offsets()) == fit.genetic_values["phenotyped"].sum()
    assert len(predicted.get_offsets()) == UNPHENOTYPED
    gv = fit.genetic_values.sort_values("mean", ascending=False)
    np.testing.assert_allclose(phenotyped.get_array(), gv["reliability"][gv["phenotyped"]])
    y = np.concatenate([phenotyped.get_offsets()[:, 1], predicted.get_offsets()[:, 1]])
    x = np.concatenate([phenotyped.get_offsets()[:, 0], predicted.get_offsets()[:, 0]])
    assert np.all(np.diff(y[np.argsort(x)]) <= 0)  # ranked by posterior mean
    assert {"with a record", "no record (predicted)", "top 20, shown right"} <= set(_legend_texts(fig))
    assert ax.get_xlabel() == "rank by posterior mean"
    title = fig.get_suptitle()
    assert "90% interval (mean ± 1.64 sd)" in title and "filled: with a record, open: none" in title


@pytest.mark.structural
def test_genetic_values_name_the_top_individuals_with_their_intervals_and_reliabilities(fits):
    fit = fits["gblup"]
    gv = fit.genetic_values.sort_values("mean", ascending=False).head(20)
    ax = _titled(plots.plot_genetic_values(fit), "Top 20 by posterior mean")
    assert [t.get_text() for t in ax.get_yticklabels()] == gv["id"].astype(str).tolist()
    assert ax.get_yticks()[0] == 19  # the best at the top
    (right,) = ax.child_axes  # the reliabilities, on the right
    assert [t.get_text() for t in right.get_yticklabels()] == [f"{r:.2f}" for r in gv["reliability"]]
    (bars,) = [c for c in ax.collections if hasattr(c, "get_segments")]
    low, high = np.array([[s[0][0], s[1][0]] for s in bars.get_segments()]).T
    np.testing.assert_allclose(low, gv["mean"] - 1.6448536269514722 * gv["sd"], rtol=1e-12)  # mean +- z_0.95 sd
    np.testing.assert_allclose(high, gv["mean"] + 1.6448536269514722 * gv["sd"], rtol=1e-12)
    five = _titled(plots.plot_genetic_values(fit, top=5), "Top 5")
    assert [t.get_text() for t in five.get_yticklabels()] == gv["id"].astype(str).tolist()[:5]
    alone = plots.plot_genetic_values(fit, top=0)
    assert not [ax for ax in alone.axes if ax.get_title().startswith("Top")]


@pytest.mark.structural
def test_reliability_colours_tell_0_6_from_0_85(fits):
    fig = plots.plot_genetic_values(fits["gblup"])
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("reliability")]
    ticks = [float(t) for t in bar.get_yticks()]
    assert {0.5, 0.6, 0.7, 0.85} <= set(np.round(ticks, 2))
    cmap, norm = plots._reliability_colours()
    bands = [cmap(norm(r))[:3] for r in (0.55, 0.65, 0.75, 0.82, 0.87, 0.92)]
    distances = [np.linalg.norm(np.subtract(a, b)) for a, b in itertools.pairwise(bands)]
    assert min(distances) > 0.1  # neighbouring bands differ
    assert np.linalg.norm(np.subtract(cmap(norm(0.6))[:3], cmap(norm(0.85))[:3])) > 0.5  # purple against orange


@pytest.mark.structural
def test_trace_names_chains_draws_and_each_parameter_with_its_units(fits):
    fig = plots.plot_trace(fits["gblup"])
    assert _legend_texts(fig) == ["chain 0", "chain 1"]
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert {"h2 (0-1)", "sigma2_g (trait units²)", "sigma2_e (trait units²)"} <= set(ylabels)
    titles = {ax.get_title(loc="left") for ax in fig.axes}
    assert {"sigma2_g: genetic variance", "sigma2_e: residual variance"} <= titles
    assert "h2: heritability, the genetic share of the phenotypic variance" in titles
    assert "draw (after tuning)" in {ax.get_xlabel() for ax in fig.axes}
    traces = next(ax for ax in fig.axes if ax.get_ylabel() == "h2 (0-1)")
    draws = np.asarray(fits["gblup"].datatree["posterior"]["h2"].values)
    for chain, line in enumerate(traces.get_lines()):
        np.testing.assert_array_equal(line.get_ydata(), draws[chain])


@pytest.mark.structural
def test_rank_panels_carry_the_summary_r_hat_and_ess(fits):
    fit = fits["gblup"]
    fig = plots.plot_rank(fit)
    table = fit.summary()
    panels = _rank_numbers(fig)
    assert {"h2", "sigma2_g", "sigma2_e"} <= set(panels)
    for name, (r_hat, bulk, tail) in panels.items():
        assert r_hat == f"{table.loc[name, 'r_hat']:.3f}"
        assert (bulk, tail) == (f"{table.loc[name, 'ess_bulk']:.0f}", f"{table.loc[name, 'ess_tail']:.0f}")
    assert _legend_texts(fig) == ["chain 0", "chain 1"]
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "ArviZ's rank plot has no R-hat of its own" in caption and "rank-normalised split R-hat" in caption
    p_values = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().startswith("uniform ranks? p = ")]
    assert len(p_values) == len(panels)


def _rank_numbers(fig) -> dict[str, tuple[str, str, str]]:
    """{parameter: (R-hat, bulk ESS, tail ESS)} as printed on each rank panel."""
    out = {}
    for ax in fig.axes:
        for text in ax.texts:
            found = re.fullmatch(r"R-hat (\S+)\nbulk ESS (\d+)\ntail ESS (\d+)", text.get_text())
            if found:
                out[ax.get_title().split(":")[0]] = found.groups()
    return out


@pytest.mark.structural
def test_a_parameter_the_diagnostics_warn_about_is_drawn_too(fits, monkeypatch):
    """The warning "R-hat ... for mu: look at the trace plot" must find mu there."""
    fit = fits["gblup"]
    table = fit.summary()
    table.loc["mu", "r_hat"] = 1.05
    monkeypatch.setattr(type(fit), "summary", lambda self: table)
    assert plots._variance_components(fit) == ["h2", "sigma2_g", "sigma2_e", "mu"]
    assert _rank_numbers(plots.plot_rank(fit))["mu"][0] == "1.050"


@pytest.mark.structural
def test_energy_names_the_chains_on_the_bfmi_axis(fits):
    fig = plots.plot_energy(fits["gblup"])
    bfmi_ax = _titled(fig, "BFMI per chain")
    assert [t.get_text() for t in bfmi_ax.get_yticklabels()] == ["chain 0", "chain 1"]
    assert bfmi_ax.get_xlabel() == "E-BFMI (higher is better)"
    (line,) = [ln for ln in bfmi_ax.get_lines() if ln.get_linestyle() == "--"]
    assert line.get_xdata()[0] == 0.3 and "0.3: below, poor exploration" in _legend_texts(fig)
    assert {"marginal energy (centred)", "energy transition (change)"} <= set(_legend_texts(fig))


@pytest.mark.exact
def test_bfmi_is_arviz_bfmi(fits):
    """The BFMI drawn per chain is ArviZ's, to rounding (the same formula: mean squared step over the variance)."""
    from arviz_stats import bfmi

    fit = fits["gblup"]
    expected = np.asarray(bfmi(fit.datatree)["energy"].values)
    np.testing.assert_allclose(plots.bfmi(fit.datatree["sample_stats"]["energy"].values), expected, rtol=1e-12)
    bfmi_ax = _titled(plots.plot_energy(fit), "BFMI per chain")
    np.testing.assert_allclose(bfmi_ax.collections[0].get_offsets()[:, 0], expected, rtol=1e-12)


@pytest.mark.structural
def test_partitioned_h2_rows_and_reference_marks(fits):
    fit = fits["sets"]
    fig = plots.plot_partitioned_h2(fit)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["h2_rest", "h2_first100", "total h2"]
    # the interval of each row is the summary's q05..q95
    table = fit.summary()
    for segments, name in zip(ax.collections, ("h2_rest", "h2_first100", "h2"), strict=True):
        (low, _), (high, _) = segments.get_segments()[0]
        assert (low, high) == pytest.approx((table.loc[name, "q05"], table.loc[name, "q95"]), abs=1e-9)
    assert "h2 x share of markers (no enrichment)" in _legend_texts(fig)
    with pytest.raises(bb.InputError, match="several marker sets"):
        plots.plot_partitioned_h2(fits["gblup"])


@pytest.mark.structural
def test_map_fit_is_refused(wheat_G, wheat):
    fit = bb.GBLUP(wheat.phenotypes["y1"], wheat_G).fit(method="map")
    with pytest.raises(bb.InputError, match="plots need posterior draws; this fit used method='map'"):
        plots.plot_h2(fit)


@pytest.mark.structural
def test_write_plots_never_replaces_a_file(fits, tmp_path):
    written = plots.write_plots(fits["sets"], tmp_path)
    assert [p.name for p in written] == [
        "h2.png", "genetic_values.png", "trace.png", "rank.png", "energy.png", "partitioned_h2.png",
    ]  # fmt: skip
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    with pytest.raises(bb.InputError, match=r"h2\.png exists"):
        plots.write_plots(fits["sets"], tmp_path)


@pytest.mark.structural
def test_cli_fit_plots_writes_pngs_into_the_out_folder(tmp_path):
    out = tmp_path / "fit"
    args = ["fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv")]
    args += ["--trait", "y1", "--model", "gblup", "--out", str(out), "--plots", "--reference-h2", "0.499", "--quiet"]
    assert main([*args, "--chains", "2", "--draws", "200", "--tune", "200", "--seed", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plots"] == ["h2.png", "genetic_values.png", "trace.png", "rank.png", "energy.png"]
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in summary["plots"])
    # rank.png's R-hat beside each panel is summary.json's, to the digits printed
    panels = _rank_numbers(plots.plot_rank(bb.load_fit(out)))
    assert {"h2", "sigma2_g", "sigma2_e"} <= set(panels)
    for name, (r_hat, _, _) in panels.items():
        assert r_hat == f"{summary['parameters'][name]['r_hat']:.3f}", name


@pytest.mark.structural
def test_one_chain_writes_every_plot_but_the_rank_plot(wheat_G, wheat, tmp_path):
    """Ranks compare chains: with one chain rank.png is left out rather than failing in arviz-plots."""
    fit = bb.GBLUP(wheat.phenotypes["y1"], wheat_G).fit(chains=1, draws=100, tune=100, seed=1)
    written = plots.write_plots(fit, tmp_path)
    assert [p.name for p in written] == ["h2.png", "genetic_values.png", "trace.png", "energy.png"]


def _wheat_map(markers) -> pd.DataFrame:
    """A made-up map of the wheat markers (wheat has none): four chromosomes given out of order, positions rising."""
    chromosome = np.array(["10", "2", "X", "1"])[np.arange(len(markers)) * 4 // len(markers)]
    return pd.DataFrame({"marker": markers, "chromosome": chromosome, "position": np.arange(len(markers)) * 1e4})


@pytest.mark.structural
def test_marker_effects_along_the_genome_in_natural_chromosome_order(fits):
    fit = fits["mblup"]
    effects = fit.marker_effects
    fig = plots.plot_marker_effects(fit, map=_wheat_map(effects["marker"]))
    means, scores = fig.axes
    assert [t.get_text() for t in scores.get_xticklabels()] == ["1", "2", "10", "X"]
    assert scores.get_xlabel() == "chromosome"
    assert means.get_ylabel() == "posterior mean of b\n(trait units per genotype sd)"
    (dots,) = means.collections
    np.testing.assert_array_equal(dots.get_offsets()[:, 1], effects["mean"])
    x = dots.get_offsets()[:, 0]
    block = np.arange(len(effects)) * 4 // len(effects)  # the map's chromosome of each marker: 10, 2, X, 1
    assert x[block == 3].max() < x[block == 1].min() < x[block == 1].max() < x[block == 0].min()  # 1 < 2 < 10 < X
    assert x[block == 0].max() < x[block == 2].min()
    (score_dots,) = scores.collections
    np.testing.assert_allclose(score_dots.get_offsets()[:, 1], np.abs(effects["mean"]) / effects["sd"])
    assert "1.64: 90% interval excludes 0" in _legend_texts(fig)
    named = {t.get_text() for t in scores.texts}
    top = (np.abs(effects["mean"]) / effects["sd"]).nlargest(5).index
    assert named == set(effects["marker"][top])
    assert len(set(map(str, dots.get_facecolors().round(3).tolist()))) == 2  # chromosomes in two alternating colours


@pytest.mark.structural
def test_marker_effects_without_positions_on_one_chromosome_keep_the_others_positions(fits):
    """A .bim's unplaced markers (chromosome 0, position 0) are spaced in file order; the placed ones keep theirs."""
    fit = fits["mblup"]
    effects = fit.marker_effects
    chart = _wheat_map(effects["marker"]).assign(position=lambda d: d["position"] ** 1.5)  # uneven spacing
    block = np.arange(len(effects)) * 4 // len(effects)  # the map's chromosome of each marker: 10, 2, X, 1
    chart.loc[block == 2, ["chromosome", "position"]] = ["0", 0.0]  # X's markers unplaced
    fig = plots.plot_marker_effects(fit, map=chart)
    means, scores = fig.axes
    assert scores.get_xlabel() == "chromosome (no positions on 0: markers there in file order)"
    x = means.collections[0].get_offsets()[:, 0]
    for b in (0, 1, 3):  # placed: x follows the map's positions exactly, up to the chromosome's offset
        np.testing.assert_allclose(np.diff(x[block == b]), np.diff(chart["position"][block == b]), rtol=1e-9)
    steps = np.diff(x[block == 2])
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)  # unplaced: evenly spaced, in file order
    spans = [np.ptp(chart["position"][block == b]) for b in (0, 1, 3)]
    np.testing.assert_allclose(np.ptp(x[block == 2]), np.median(spans), rtol=1e-9)  # over a typical span
    chart["position"] = 0.0  # no positions at all: every chromosome in file order, one unit a marker
    fig = plots.plot_marker_effects(fit, map=chart)
    assert fig.axes[-1].get_xlabel() == "chromosome (positions missing: markers in file order)"
    np.testing.assert_allclose(np.diff(fig.axes[0].collections[0].get_offsets()[:, 0][block == 1]), 1.0)


@pytest.mark.structural
def test_marker_effects_need_marker_effects_and_a_complete_map(fits, tmp_path):
    fit = fits["mblup"]
    with pytest.raises(bb.InputError, match="needs marker effects: fit M-BLUP"):
        plots.plot_marker_effects(fits["gblup"], map=_wheat_map(fit.marker_effects["marker"]))
    with pytest.raises(bb.InputError, match="needs a marker map: map="):
        plots.plot_marker_effects(fit)
    short = _wheat_map(fit.marker_effects["marker"]).iloc[3:]
    first = ", ".join(fit.marker_effects["marker"][:3])
    with pytest.raises(bb.InputError, match=rf"lacks 3 of the fit's 1279 markers \({re.escape(first)}\)"):
        plots.plot_marker_effects(fit, map=short)
    path = tmp_path / "map.csv"
    short.to_csv(path, index=False)
    with pytest.raises(bb.InputError, match=rf"{re.escape(str(path))} lacks 3 of the fit's 1279 markers"):
        plots.write_plots(fit, tmp_path, map=path)


@pytest.mark.structural
def test_write_plots_adds_marker_effects_with_a_map(fits, tmp_path):
    fit = fits["mblup"]
    path = tmp_path / "map.csv"
    _wheat_map(fit.marker_effects["marker"]).to_csv(path, index=False)
    (tmp_path / "out").mkdir()
    written = plots.write_plots(fit, tmp_path / "out", map=path)
    assert [p.name for p in written] == [
        "h2.png", "genetic_values.png", "trace.png", "rank.png", "energy.png", "marker_effects.png",
    ]  # fmt: skip
    assert written[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _plink_inputs(d: Path) -> Path:
    """The PLINK sample (120 x 20, chromosome 0 with positions) and a made-up trait y."""
    for suffix in (".bed", ".bim", ".fam"):
        shutil.copy(PLINK / f"sample{suffix}", d / f"sample{suffix}")
    ids = pd.read_csv(PLINK / "sample.fam", sep=r"\s+", header=None)[1].astype(str)
    y = np.random.default_rng(3).normal(size=len(ids))
    pd.DataFrame({"id": ids, "y": y}).to_csv(d / "pheno.csv", index=False)
    return d


@pytest.mark.structural
def test_cli_mblup_places_marker_effects_on_the_bim_or_on_map(tmp_path):
    d = _plink_inputs(tmp_path)
    args = ["fit", "--genotypes", str(d / "sample.bed"), "--phenotypes", str(d / "pheno.csv"), "--trait", "y"]
    args += ["--model", "mblup", "--method", "quadrature", "--draws", "100", "--seed", "1", "--plots", "--quiet"]
    assert main([*args, "--out", str(d / "bim")]) == 0  # no --map: the .bim
    effects = pd.read_csv(d / "bim" / "marker_effects.csv", dtype={"marker": str, "chromosome": str})
    assert list(effects.columns[:3]) == ["marker", "chromosome", "position"]
    bim = pd.read_csv(d / "sample.bim", sep=r"\s+", header=None, dtype={1: str}).set_index(1)
    assert (effects["position"].to_numpy() == bim.loc[effects["marker"], 3].to_numpy()).all()
    summary = json.loads((d / "bim" / "summary.json").read_text())
    assert summary["plots"][-1] == "marker_effects.png" and summary["settings"]["marker_map"] == str(
        d / "sample.bed"
    )  # the genotypes placed their markers
    # --map wins over the .bim; the plot can be drawn again from the folder alone
    table = pd.DataFrame({"marker": bim.index, "chromosome": ["2"] * 10 + ["1"] * 10, "position": range(20)})
    table.to_csv(d / "map.csv", index=False)
    assert main([*args, "--map", str(d / "map.csv"), "--out", str(d / "csv")]) == 0
    fig = plots.plot_marker_effects(bb.load_fit(d / "csv"))
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["1", "2"]
    assert "map map.csv" in fig.get_suptitle()
