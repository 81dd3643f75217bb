"""Plots: each figure has the expected panels, labels and data; --plots writes the PNGs; bad uses are refused.

The figures themselves were looked at once by eye (wheat y1, G-BLUP and M-BLUP, 40 lines without a
record, and a two-set fit); these tests pin down what they show.
"""

from __future__ import annotations

import json
import warnings

import matplotlib
import numpy as np
import pytest

import bayesblup as bb
from bayesblup import plots
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path

pytestmark = pytest.mark.structural

matplotlib.use("Agg")

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


def test_equivalence_plot_per_set(fits):
    """With several sets the panels go set by set (needs an M-BLUP multi-set fit: only the pairing is checked)."""
    pairs = plots._equivalence_pairs(None, fits["sets"])
    assert [p[1:] for p in pairs] == [
        ("sigma2_g_first100", "sigma2_g_equiv_first100"), ("sigma2_g_rest", "sigma2_g_equiv_rest"), ("h2", "h2"),
    ]  # fmt: skip


def test_caterpillar_ranks_colours_by_reliability_and_marks_unphenotyped(fits):
    fit = fits["gblup"]
    fig = plots.plot_genetic_values(fit)
    ax = fig.axes[0]
    phenotyped, predicted = ax.collections[1], ax.collections[2]  # [0]: the interval lines
    assert len(phenotyped.get_offsets()) == fit.genetic_values["phenotyped"].sum()
    assert len(predicted.get_offsets()) == UNPHENOTYPED
    gv = fit.genetic_values.sort_values("mean", ascending=False)
    np.testing.assert_allclose(phenotyped.get_array(), gv["reliability"][gv["phenotyped"]])
    y = np.concatenate([phenotyped.get_offsets()[:, 1], predicted.get_offsets()[:, 1]])
    x = np.concatenate([phenotyped.get_offsets()[:, 0], predicted.get_offsets()[:, 0]])
    assert np.all(np.diff(y[np.argsort(x)]) <= 0)  # ranked by posterior mean
    assert fig.axes[1].get_ylabel().startswith("reliability")  # the colour bar
    assert set(_legend_texts(fig)) == {"phenotyped", "no record (predicted)"}
    assert ax.get_xlabel() == "rank by posterior mean"


def test_diagnostic_plots_cover_h2_and_the_variances(fits):
    fig = plots.plot_trace(fits["gblup"])
    labels = {ax.get_ylabel() for ax in fig.axes} | {ax.get_xlabel() for ax in fig.axes}
    assert {"h2", "sigma2_g", "sigma2_e"} <= labels
    assert {ax.get_title() for ax in plots.plot_rank(fits["gblup"]).axes} >= {"h2", "sigma2_g", "sigma2_e"}
    energy = plots.plot_energy(fits["gblup"])
    assert "BFMI" in {ax.get_title() for ax in energy.axes}
    assert {"marginal", "transition"} <= set(_legend_texts(energy))


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


def test_map_fit_is_refused(wheat_G, wheat):
    fit = bb.GBLUP(wheat.phenotypes["y1"], wheat_G).fit(method="map")
    with pytest.raises(bb.InputError, match="plots need posterior draws; this fit used method='map'"):
        plots.plot_h2(fit)


def test_write_plots_never_replaces_a_file(fits, tmp_path):
    written = plots.write_plots(fits["sets"], tmp_path)
    assert [p.name for p in written] == [
        "h2.png", "genetic_values.png", "trace.png", "rank.png", "energy.png", "partitioned_h2.png",
    ]  # fmt: skip
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    with pytest.raises(bb.InputError, match=r"h2\.png exists"):
        plots.write_plots(fits["sets"], tmp_path)


def test_cli_fit_plots_writes_pngs_into_the_out_folder(tmp_path):
    out = tmp_path / "fit"
    args = ["fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv")]
    args += ["--trait", "y1", "--model", "gblup", "--out", str(out), "--plots", "--reference-h2", "0.499", "--quiet"]
    assert main([*args, "--chains", "2", "--draws", "200", "--tune", "200", "--seed", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plots"] == ["h2.png", "genetic_values.png", "trace.png", "rank.png", "energy.png"]
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in summary["plots"])


def test_one_chain_writes_every_plot_but_the_rank_plot(wheat_G, wheat, tmp_path):
    """Ranks compare chains: with one chain rank.png is left out rather than failing in arviz-plots."""
    fit = bb.GBLUP(wheat.phenotypes["y1"], wheat_G).fit(chains=1, draws=100, tune=100, seed=1)
    written = plots.write_plots(fit, tmp_path)
    assert [p.name for p in written] == ["h2.png", "genetic_values.png", "trace.png", "energy.png"]
