"""NUTS on JAX (``fit(nuts_sampler="numpyro" | "blackjax")``): agreement with PyMC's NUTS, refusals, the CLI.

Marked ``jax``: deselected by default, run by ``make test-jax`` (which installs the jax extra). Tests that
sample skip when JAX and the sampler's package are missing; the refusals need neither.

Tolerances are Monte Carlo errors, as in test_recovery.py: two independent estimates of a posterior
mean differ by less than 4 times their combined MCSE (``mcse_mean``, sd / sqrt(bulk ESS)); two
estimates of a posterior sd, each with relative error about 1 / sqrt(2 ESS), differ by less than 4
times their combined relative error. About a minute in all on 2 cores.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path
from bayesblup.inference import samplers
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.jax

JAX_SAMPLERS = ["numpyro", "blackjax"]


def _need(sampler: str) -> None:
    pytest.importorskip("jax")
    pytest.importorskip(sampler)


def _simulate(n: int = 80, m: int = 150, h2: float = 0.5, seed: int = 101):
    """As in test_recovery.py: G = WW'/m (standardized), g = W b, y = 2 + g + e with sigma2_p = 1.5."""
    rng = np.random.default_rng(seed)
    geno, _ = simulate_genotypes(n, m, allele_freq=rng.uniform(0.1, 0.9, m), seed=rng)
    W = bb.genotype_matrix(geno, scaling="standardized")
    G = bb.genomic_relationship(geno, scaling="standardized")
    g = W.values @ rng.normal(0.0, np.sqrt(h2 * 1.5 / m), m)
    y = 2.0 + g + rng.normal(0.0, np.sqrt((1 - h2) * 1.5), n)
    return pd.Series(y, index=geno.ids, name="sim"), G, W


def _fit_latent(nuts_sampler: str):
    """The latent G-BLUP, 4 x 2000 draws at target_accept 0.95 (the latent form's funnel; test_recovery.py)."""
    y, G, _ = _simulate()
    model = bb.GBLUP(y, G, form="latent")
    return model.fit(chains=4, draws=2000, tune=1000, seed=11, target_accept=0.95, nuts_sampler=nuts_sampler)


@pytest.fixture(scope="module")
def pymc_latent():
    """The reference: PyMC's own NUTS on the same latent model (about 10 s)."""
    return _fit_latent("pymc")


def _converged(fit, label: str) -> None:
    diag = fit.diagnostics()
    assert diag["divergences"] == 0, f"{label}: {diag}"
    assert diag["max_r_hat"] <= 1.01, f"{label}: {diag}"
    assert fit.summary().loc["h2", "ess_bulk"] >= 400, f"{label}: too few effective draws of h2 for the check"


@pytest.mark.parametrize("nuts_sampler", JAX_SAMPLERS)
@pytest.mark.recovery
def test_latent_gblup__jax_matches_pymc_nuts(pymc_latent, nuts_sampler):
    """n = 80, m = 150, h2 = 0.5: E[h2] and sd(h2) from NUTS on JAX agree with PyMC's NUTS (module docstring).

    Also the fit's contract on JAX's DataTree: sampler and chain method recorded, diagnostics, genetic values.
    """
    _need(nuts_sampler)
    fit = _fit_latent(nuts_sampler)
    assert pymc_latent.sampler == "pymc"
    assert fit.sampler == nuts_sampler
    assert fit.settings["chain_method"] in ("parallel", "vectorized")
    assert fit.timings["draws_s"] > 0
    _converged(pymc_latent, "pymc")
    _converged(fit, nuts_sampler)

    jx, pm_ = fit.summary().loc["h2"], pymc_latent.summary().loc["h2"]
    tol = 4 * np.hypot(jx["mcse_mean"], pm_["mcse_mean"])
    assert abs(jx["mean"] - pm_["mean"]) < tol, f"E[h2]: {nuts_sampler} {jx['mean']:.4f}, pymc {pm_['mean']:.4f}"
    rel = 4 * np.hypot(1 / np.sqrt(2 * jx["ess_bulk"]), 1 / np.sqrt(2 * pm_["ess_bulk"]))
    assert jx["sd"] == pytest.approx(pm_["sd"], rel=rel), f"sd(h2): {nuts_sampler} {jx['sd']:.4f}, pymc {pm_['sd']:.4f}"

    gv = fit.genetic_values
    assert gv["id"].tolist() == pymc_latent.genetic_values["id"].tolist()
    assert np.isfinite(gv[["mean", "sd", "reliability"]].to_numpy()).all()


@pytest.mark.parametrize("nuts_sampler", JAX_SAMPLERS)
@pytest.mark.exact
def test_single_kernel_marginal__runs_on_jax_and_a_seed_repeats_it(nuts_sampler):
    """The single-kernel marginal form is pure PyTensor, so it translates; the same seed gives the same draws."""
    _need(nuts_sampler)
    y, G, _ = _simulate(seed=7)
    model = bb.GBLUP(y, G)

    def draws(seed):
        fit = model.fit(chains=2, draws=100, tune=100, seed=seed, nuts_sampler=nuts_sampler)
        assert fit.sampler == nuts_sampler and fit.settings["form"] == "marginal"
        return fit.datatree["posterior"]["h2"].values

    first = draws(5)
    np.testing.assert_array_equal(first, draws(5))
    assert not np.array_equal(first, draws(6))


@pytest.mark.parametrize("model_class", ["MultiGBLUP", "MultiMBLUP"])
@pytest.mark.structural
def test_multiset_marginal__jax_sampler_refused_before_sampling(monkeypatch, model_class):
    """The NumPy likelihood Ops of several marker sets have no JAX translation: a clear InputError, early."""
    monkeypatch.setattr(samplers, "_missing", lambda packages: [])  # as if installed: the refusal needs no JAX
    geno, _ = simulate_genotypes(40, 120, allele_freq=np.full(120, 0.5), seed=3)
    sets = {"feature": list(geno.markers[::15])}
    y = pd.Series(np.random.default_rng(3).normal(size=40), index=geno.ids)
    if model_class == "MultiGBLUP":
        model = bb.MultiGBLUP(y, bb.relationships_by_set(geno, sets))
    else:
        model = bb.MultiMBLUP(y, bb.genotype_matrices_by_set(geno, sets))
    with pytest.raises(bb.InputError, match=rf"{model_class}\(form='marginal'\).*form='latent'.*nuts_sampler=None"):
        model.fit(nuts_sampler="numpyro")
    assert model._model is None  # refused before the model was built


@pytest.mark.structural
def test_untranslatable_op__caught_by_the_generic_check():
    """Any model whose logp holds an Op without a JAX translation is refused by name, not deep inside JAX."""
    _need("numpyro")
    import pymc as pm

    from bayesblup.models.ops import _logp_op_class

    y, G, _ = _simulate(n=30, m=60, seed=9)
    model = bb.GBLUP(y, G)
    with model.model:  # a NumPy log-density Op, as the multi-set likelihoods use
        op = _logp_op_class()(lambda x: (-0.5 * float(x @ x), -x))
        pm.Potential("numpy_term", op(pm.math.stack([model.model["mu"]]))[0])
    with pytest.raises(bb.InputError, match=r"no JAX translation.*nuts_sampler=None"):
        model.fit(nuts_sampler="numpyro")


@pytest.mark.parametrize(
    ("nuts_sampler", "absent", "message"),
    [
        ("numpyro", {"numpyro"}, r"needs numpyro, not installed: pip install 'bayesblup\[jax\]'"),
        ("blackjax", {"jax", "blackjax"}, r"needs jax and blackjax, not installed: pip install 'bayesblup\[jax\]'"),
        ("nutpie", {"nutpie"}, r"pip install 'bayesblup\[nutpie\]'"),
    ],
)
@pytest.mark.structural
def test_missing_package__install_hint(monkeypatch, nuts_sampler, absent, message):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a))
    y, G, _ = _simulate(n=30, m=60, seed=9)
    with pytest.raises(bb.InputError, match=message):
        bb.GBLUP(y, G, form="latent").fit(nuts_sampler=nuts_sampler)


@pytest.mark.structural
def test_blackjax_too_new__install_hint():
    """BlackJAX >= 1.6 under PyMC 6.4 fails in warm-up with a TypeError on progress_bar (pymc-devs/pymc#8367)."""
    choice = samplers.NutsChoice("blackjax")
    with pytest.raises(bb.InputError, match=r"pip install 'blackjax>=1.5,<1.6'"), choice.errors():
        raise TypeError("build_kernel.<locals>.kernel() got an unexpected keyword argument 'progress_bar'")
    with pytest.raises(TypeError, match="other"), choice.errors():  # any other TypeError is left alone
        raise TypeError("other")


@pytest.mark.structural
def test_nuts_sampler_option_checked():
    y, G, _ = _simulate(n=30, m=60, seed=9)
    model = bb.GBLUP(y, G)
    with pytest.raises(bb.InputError, match="nuts_sampler must be None or one of pymc, nutpie, numpyro, blackjax"):
        model.fit(nuts_sampler="stan")
    with pytest.raises(bb.InputError, match="applies to method='nuts'"):
        model.fit(method="map", nuts_sampler="numpyro")


@pytest.mark.structural
def test_cli_fit__nuts_sampler_numpyro(tmp_path, capsys):
    """``bayesblup fit --nuts-sampler numpyro`` (wheat, single-kernel marginal form): recorded in summary.json."""
    _need("numpyro")
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
        "--trait", "y1", "--model", "gblup", "--out", str(out),
        "--chains", "2", "--draws", "200", "--tune", "200", "--seed", "1", "--nuts-sampler", "numpyro",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sampler"] == "numpyro"
    assert summary["settings"]["chain_method"] in ("parallel", "vectorized")
    assert 0 < summary["parameters"]["h2"]["mean"] < 1
    assert (out / "posterior.nc").is_file()


@pytest.mark.exact
def test_several_traits__jax_log_density_is_pytensors_and_missing_records_are_refused():
    """The canonical multi-trait likelihood (a custom Op) translated to JAX gives PyTensor's value, to 1e-10.

    With records missing the model holds the missing-record shift (a NumPy Op with no JAX translation): refused
    before sampling, with the default sampler named.
    """
    pytest.importorskip("jax")
    from pymc.sampling.jax import get_jaxified_graph

    from bayesblup.models.ops import register_jax
    from bayesblup.testing import simulate_multitrait

    rng = np.random.default_rng(5)
    geno, _ = simulate_genotypes(60, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    G = bb.genomic_relationship(geno)
    Y = simulate_multitrait(G, Sigma_g=0.5 * np.eye(2), Sigma_e=0.5 * np.eye(2), mu=[0.0, 1.0], seed=6)
    model = bb.GBLUP(Y, G).model
    register_jax()
    jax_logp = get_jaxified_graph(inputs=model.value_vars, outputs=[model.logp()])
    logp = model.compile_logp()
    point = model.initial_point()
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in point.items()}
        (value,) = jax_logp(*[point[v.name] for v in model.value_vars])
        assert float(value) == pytest.approx(float(logp(point)), rel=1e-10)
    Y.iloc[:5, 0] = np.nan
    with pytest.raises(bb.InputError, match=r"no JAX translation.*_MissingShift.*default sampler"):
        bb.GBLUP(Y, G).fit(nuts_sampler="numpyro", chains=1, draws=10, tune=10)
