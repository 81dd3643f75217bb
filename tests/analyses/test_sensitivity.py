"""Prior sensitivity (API and `fit --prior-sensitivity`) and priors on h2 itself (a dict with "h2")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.analyses.sensitivity import default_priors, format_sensitivity_table
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path
from bayesblup.testing import simulate_genotypes, simulate_records

QUICK = {"chains": 2, "draws": 200, "tune": 200, "seed": 1}
LABELS = ["default", "bglr", "half-normal", "beta(2,2)"]


@pytest.fixture(scope="module")
def data():
    geno, _ = simulate_genotypes(60, 300, seed=8)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    sim = simulate_records(W.values, geno.ids, h2=0.5, seed=8)
    return sim.table["y"], G, W


# --- priors on h2 ----------------------------------------------------------------------------------


def logp_at(model, point: dict) -> float:
    """The model's log density (no Jacobian) at unconstrained values, the rest at the initial point."""
    values = model.model.initial_point() | {k: np.asarray(v) for k, v in point.items()}
    return float(model.model.compile_logp(jacobian=False)(values))


@pytest.mark.parametrize("Model", [bb.GBLUP, bb.MBLUP])
@pytest.mark.exact
def test_h2_prior__is_the_default_parameterisation_with_another_prior_on_h2(data, Model):
    """With Beta(1, 1) and the preset's sigma2_p the dict is "default" exactly; Beta(2, 2) adds log Beta(2,2)(h2)."""
    y, G, W = data
    kernel = G if Model is bb.GBLUP else W
    vy = float(np.var(y, ddof=1))
    same = {"h2": bb.Prior("Beta", alpha=1.0, beta=1.0), "sigma2_p": bb.Prior("LogNormal", mu=np.log(vy), sigma=1.0)}
    models = {
        "default": Model(y, kernel),
        "same": Model(y, kernel, prior=same),
        "beta22": Model(y, kernel, prior={"h2": bb.Prior("Beta", alpha=2.0, beta=2.0)}),
    }
    for model in models.values():
        assert [v.name for v in model.model.free_RVs] == ["mu", "h2", "sigma2_p"]
        assert {model.kernel_variance, "sigma2_e"} <= {v.name for v in model.model.deterministics}
    point = {"h2_logodds__": 0.7, "sigma2_p_log__": np.log(vy) + 0.2, "mu": float(y.mean()) + 0.1}
    logp = {name: logp_at(model, point) for name, model in models.items()}
    assert logp["same"] == pytest.approx(logp["default"], rel=1e-12)
    h2 = 1 / (1 + np.exp(-0.7))
    assert logp["beta22"] - logp["default"] == pytest.approx(st.beta(2, 2).logpdf(h2), rel=1e-10)
    assert models["beta22"].priors[0] == "custom"


@pytest.mark.structural
def test_h2_prior__fills_sigma2_p_and_pe_share_from_the_preset():
    geno, _ = simulate_genotypes(40, 100, seed=1)
    W = bb.genotype_matrix(geno)
    sim = simulate_records(W.values, geno.ids, h2=0.4, pe_share=0.2, records=2, seed=1)
    model = bb.GBLUP(sim.table["y"], bb.genomic_relationship(geno), prior={"h2": bb.Prior("Beta", alpha=1.0, beta=3.0)},
                     permanent_environment=True)  # fmt: skip
    _, priors = model.priors
    assert list(priors) == ["mu", "h2", "sigma2_p", "pe_share"]
    assert priors["pe_share"] == bb.Prior("Beta", alpha=1.0, beta=1.0)
    assert {"pe_share", "h2", "sigma2_p"} <= {v.name for v in model.model.free_RVs}
    assert {"sigma2_pe", "sigma2_e", "sigma2_g"} <= {v.name for v in model.model.deterministics}


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"h2": bb.Prior("Beta", alpha=2.0, beta=2.0), "sigma2_g": bb.Prior("HalfNormal", sigma=1.0)}, "not both"),
        ({"sigma2_p": bb.Prior("LogNormal", mu=0.0, sigma=1.0)}, "Prior for h2"),
        ({"h2": (2.0, 2.0)}, "expected bayesblup.Prior"),
    ],
)
@pytest.mark.structural
def test_h2_prior__refuses_mixed_or_incomplete_dicts(data, prior, message):
    y, G, _ = data
    with pytest.raises(bb.InputError, match=message):
        bb.GBLUP(y, G, prior=prior).priors  # noqa: B018


@pytest.mark.structural
def test_h2_prior__a_fixed_dict_hits_the_compiled_cache(data):
    """SBC's premise: the prior's numbers are data of the compiled graph, so another data set reuses it."""
    y, G, _ = data
    prior = {"mu": bb.Prior("Normal", mu=0.0, sigma=1.0), "h2": bb.Prior("Beta", alpha=2.0, beta=2.0),
             "sigma2_p": bb.Prior("LogNormal", mu=0.0, sigma=1.0)}  # fmt: skip
    options = {"chains": 1, "draws": 20, "tune": 20, "nuts_sampler": "pymc"}
    bb.GBLUP(y, G, prior=prior).fit(seed=1, **options)
    fit = bb.GBLUP(y * 2 + 1, G, prior=prior).fit(seed=2, **options)
    assert fit.settings["compiled"] == "reused"


# --- prior_sensitivity -----------------------------------------------------------------------------


@pytest.mark.exact
def test_default_priors__four_shapes_scaled_by_var_y(data):
    y, G, W = data
    vy = float(np.var(y, ddof=1))
    for model in (bb.GBLUP(y, G), bb.MBLUP(y, W)):
        priors = default_priors(model)
        assert list(priors) == LABELS
        half = priors["half-normal"]
        # sd ~ HalfNormal(s) <=> variance ~ Gamma(1/2, rate 1/(2 s^2)); s^2 = var(y) (residual), var(y)/MSx (kernel)
        assert half["sigma2_e"] == bb.Prior("Gamma", alpha=0.5, beta=1 / (2 * vy))
        assert half[model.kernel_variance].parameters["beta"] == pytest.approx(model.msx / (2 * vy), rel=1e-12)


@pytest.mark.structural
def test_prior_sensitivity__one_row_per_prior_and_fits_reused(data):
    y, G, _ = data
    built = []

    def build(prior):
        built.append(prior)
        return bb.GBLUP(y, G, prior=prior)

    main_fit = bb.GBLUP(y, G, prior="bglr").fit(**QUICK)
    table = bb.prior_sensitivity(build, fitted={"bglr": main_fit}, **QUICK)
    assert list(table["prior"]) == LABELS
    assert built[0] == "default" and "bglr" not in built and len(built) == 3  # default set from build("default")
    assert table.loc[1, "h2_mean"] == main_fit.summary().loc["h2", "mean"]
    for column in ("h2_mean", "h2_sd", "h2_q05", "h2_q95", "h2_ess_bulk", "max_r_hat", "divergences",
                   "sigma2_g_mean", "sigma2_e_mean"):  # fmt: skip
        assert column in table and table[column].notna().all(), column
    assert (table["h2_q05"] < table["h2_mean"]).all() and (table["h2_mean"] < table["h2_q95"]).all()
    assert table.loc[3, "description"].startswith("h2 ~ Beta(alpha=2, beta=2); sigma2_p ~ LogNormal(")
    assert table.loc[2, "description"].startswith("sigma2_g ~ Gamma(alpha=0.5, ")
    lines = format_sensitivity_table(table)
    assert lines[0].split()[:3] == ["prior", "h2", "mean"] and len(lines) == 1 + 4 + 4 + 1
    assert lines[-1].startswith("verdict: ") and table.attrs["verdict"] == lines[-1]


@pytest.mark.structural
def test_sensitivity_verdict__robust_or_prior_sensitive():
    """The verdict compares the spread of h2's posterior means with the smallest posterior sd among the priors."""
    from bayesblup.analyses.sensitivity import sensitivity_verdict

    table = pd.DataFrame({"prior": ["default", "bglr"], "h2_mean": [0.50, 0.52], "h2_sd": [0.05, 0.06]})
    assert sensitivity_verdict(table).startswith("verdict: robust: h2's posterior means under these priors span 0.020")
    table["h2_mean"] = [0.11, 0.19]
    line = sensitivity_verdict(table)
    assert line.startswith("verdict: prior-sensitive: h2's posterior means span 0.080 (default 0.110 to bglr 0.190)")
    assert "1.6 posterior sd" in line


@pytest.mark.structural
def test_prior_sensitivity__a_list_of_presets_and_map(data):
    y, _, W = data
    table = bb.prior_sensitivity(lambda prior: bb.MBLUP(y, W, prior=prior), ["default", "bglr"], method="map")
    assert list(table["prior"]) == ["default", "bglr"] and table["h2_sd"].isna().all()
    assert {"sigma2_b_mean", "sigma2_g_equiv_mean"} <= set(table.columns)
    with pytest.raises(bb.InputError, match="string"):
        bb.prior_sensitivity(lambda prior: bb.MBLUP(y, W, prior=prior), "bglr")


@pytest.mark.structural
def test_prior_sensitivity__binary_trait_on_the_liability_scale(data):
    """A binary trait: the four shapes on the genetic term alone, var(y) replaced by the liability's unit variance."""
    y, G, _ = data
    binary = (y > y.median()).astype(float)
    model = bb.GBLUP(binary, G, family="binary")
    priors = default_priors(model)
    assert list(priors) == LABELS
    assert set(priors["half-normal"]) == {"sigma2_g"}
    assert priors["half-normal"]["sigma2_g"].parameters["beta"] == pytest.approx(model.msx / 2, rel=1e-12)
    short = {"chains": 1, "draws": 60, "tune": 60, "seed": 1}  # the table's structure, not its figures
    table = bb.prior_sensitivity(lambda prior: bb.GBLUP(binary, G, family="binary", prior=prior), **short)
    assert list(table["prior"]) == LABELS and table["h2_mean"].between(0, 1).all()
    assert table.loc[2, "description"].startswith("sigma2_g ~ Gamma(alpha=0.5, ")


@pytest.mark.structural
@pytest.mark.parametrize("family", ["gaussian", "binary"])
def test_map_at_the_boundary_warns(data, family):
    """The half-normal prior (variance ~ Gamma(1/2), density unbounded at 0) puts the mode where a variance vanishes:
    h2 = 1 (sigma2_e -> 0, Gaussian) or 0 (sigma2_g -> 0, the binary trait's Laplace mode). Said, not silent."""
    y, G, _ = data
    y = y if family == "gaussian" else (y > y.median()).astype(float)
    half = default_priors(bb.GBLUP(y, G, family=family))["half-normal"]
    fit = bb.GBLUP(y, G, family=family, prior=half).fit(method="map")
    h2 = fit.summary().loc["h2", "mean"]
    assert h2 > 1 - 1e-4 if family == "gaussian" else h2 < 1e-4
    assert any("the mode lies on the boundary (h2 = " in w for w in fit.diagnostics()["warnings"])
    assert not any("boundary" in w for w in bb.GBLUP(y, G, family=family).fit(method="map").diagnostics()["warnings"])


@pytest.mark.structural
def test_fit_cli__prior_sensitivity_writes_the_table(tmp_path, capsys):
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
        "--trait", "y1", "--model", "gblup", "--out", str(out), "--chains", "2", "--draws", "200", "--tune", "200",
        "--seed", "1", "--prior-sensitivity",
    ]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out / "prior_sensitivity.csv")
    assert list(table["prior"]) == LABELS
    # wheat y1 (n = 599): every prior puts h2 near BGLR's 0.502; 0.1 is > 10 sd of these short runs' MC error
    assert (table["h2_mean"] - 0.502).abs().max() < 0.1
    text = capsys.readouterr().out
    assert "prior sensitivity (prior_sensitivity.csv):" in text and "half-normal" in text
    assert "verdict: robust" in text  # wheat: the data decide h2 under all four priors
