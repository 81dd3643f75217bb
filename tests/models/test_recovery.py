"""Sampling: the latent and marginal forms agree with each other and with exact quadrature; seeded recovery.

Statistical tolerances are Monte Carlo errors, stated per test. The Monte Carlo standard error of a
posterior mean is the summary's ``mcse_mean`` (sd / sqrt(bulk ESS)); a difference between two
independent estimates is compared with 4 times their combined MCSE (a false alarm about 1 in 16,000
per comparison if the MCSE is right).

The exact oracle: under ``prior="default"`` the G-BLUP posterior of (h2, log sigma2_p) is
two-dimensional once mu (Gaussian prior, Gaussian likelihood) is integrated out in closed form, so
posterior means and sds follow by quadrature on a fine grid, with no sampling at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.recovery


def _simulate(n: int, m: int, h2: float, seed: int, *, mu: float = 2.0, sigma2_p: float = 1.5):
    """Genotypes (HWE, p ~ U(0.1, 0.9): no monomorphic marker), G = WW'/m (standardized) and a trait.

    g = W b with b ~ N(0, sigma2_g/m I), so g ~ N(0, sigma2_g G) exactly; y = mu + g + e with
    sigma2_g = h2 sigma2_p and sigma2_e = (1 - h2) sigma2_p.
    """
    rng = np.random.default_rng(seed)
    geno, _ = simulate_genotypes(n, m, allele_freq=rng.uniform(0.1, 0.9, m), seed=rng)
    W = bb.genotype_matrix(geno, scaling="standardized")
    G = bb.genomic_relationship(geno, scaling="standardized")
    g = W.values @ rng.normal(0.0, np.sqrt(h2 * sigma2_p / m), m)
    y = mu + g + rng.normal(0.0, np.sqrt((1 - h2) * sigma2_p), n)
    return pd.Series(y, index=geno.ids, name="sim"), G, W


def _exact_posterior(model, n_h2: int = 400, n_log_total: int = 600) -> dict:
    """Posterior means/sds of h2 and mu, and E[g | y], under prior="default", by quadrature.

    For each (h2, t = log sigma2_p) on a midpoint grid, mu | y, h2, t is Gaussian and is integrated
    out exactly; E[g | y, h2, t] = U diag(w) (y* - U'1 E[mu | y, h2, t]). The grid is fine enough
    that its error (~1e-6 in the means) is far below any Monte Carlo error compared with it.
    """
    label, priors = model.priors
    assert label == "default"
    m0, s0 = priors["mu"].parameters["mu"], priors["mu"].parameters["sigma"]
    lm, ls = priors["sigma2_p"].parameters["mu"], priors["sigma2_p"].parameters["sigma"]
    a_h, b_h = priors["h2"].parameters["alpha"], priors["h2"].parameters["beta"]
    sp = model.spectral
    lam, y_star, a = model.factor * sp.values, sp.rotate(model.y), sp.rotate(np.ones(model.n))
    h2 = (np.arange(n_h2) + 0.5) / n_h2
    half = 3.0  # the posterior of log sigma2_p is far narrower than log var(y) +- 3
    t = np.log(np.var(model.y, ddof=1)) + np.linspace(-half, half, n_log_total)
    total = np.exp(t)[:, None]
    log_post = np.empty((n_h2, n_log_total))
    mu_mean = np.empty_like(log_post)
    mu_var = np.empty_like(log_post)
    for i, h in enumerate(h2):  # one h2 at a time: (n_log_total, n) arrays
        d = (h * total) * lam + (1 - h) * total
        prec = (a**2 / d).sum(1) + 1 / s0**2
        b = (a * y_star / d).sum(1) + m0 / s0**2
        log_ml = -0.5 * np.log(d).sum(1) - 0.5 * (y_star**2 / d).sum(1) + 0.5 * b**2 / prec - 0.5 * np.log(prec)
        log_post[i] = log_ml + st.beta(a_h, b_h).logpdf(h) + st.norm(lm, ls).logpdf(t)
        mu_mean[i], mu_var[i] = b / prec, 1 / prec
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    assert weight[:, [0, -1]].sum() < 1e-12  # the log sigma2_p range holds the posterior
    h2_mean = (weight.sum(1) * h2).sum()
    mu_post = (weight * mu_mean).sum()
    # E[g | y] = U sum_theta weight w (y* - a E[mu | theta]), accumulated per h2 row.
    r = np.zeros(model.n)
    for i, h in enumerate(h2):
        d = (h * total) * lam + (1 - h) * total
        w = (h * total) * lam / d
        r += (weight[i][:, None] * w * (y_star - a * mu_mean[i][:, None])).sum(0)
    return {
        "h2_mean": h2_mean,
        "h2_sd": np.sqrt((weight.sum(1) * h2**2).sum() - h2_mean**2),
        "mu_mean": mu_post,
        "mu_sd": np.sqrt((weight * (mu_var + mu_mean**2)).sum() - mu_post**2),
        "g_mean": sp.vectors @ r,
    }


def _check_against_exact(fit, exact: dict, label: str) -> None:
    """Posterior mean of h2 and mu within 4 MCSE of the exact value; sds within 10%.

    The sd of a posterior estimated from ESS effective draws has relative MC error ~1/sqrt(2 ESS)
    (<= 2.5% at ESS >= 800); 10% is 4 of those and still catches a wrong variance model, which moves
    the sd of h2 by far more.
    """
    table = fit.summary()
    for name in ("h2", "mu"):
        row = table.loc[name]
        assert row["ess_bulk"] >= 800, f"{label}: ESS({name}) = {row['ess_bulk']:.0f}, too few for the check"
        tol = 4 * row["mcse_mean"]
        assert abs(row["mean"] - exact[f"{name}_mean"]) < tol, (
            f"{label}: E[{name}] = {row['mean']:.4f}, exact {exact[f'{name}_mean']:.4f}, tol {tol:.4f}"
        )
        assert row["sd"] == pytest.approx(exact[f"{name}_sd"], rel=0.10), f"{label}: sd({name})"


def _fit_latent(model, *, draws: int, seed: int):
    """NUTS on the latent model with target_accept = 0.95.

    The non-centred latent form has a funnel where sigma2_e is small (h2 near 1: y pins g); at
    PyMC's default target_accept = 0.8 a few divergences appear there (measured: 8-14 in 4 x 3000).
    """
    return model.fit(draws=draws, tune=1000, chains=4, seed=seed, target_accept=0.95)


def _latent_vs_marginal(n: int, m: int, seed: int, latent_draws: int) -> None:
    y, G, _ = _simulate(n, m, h2=0.5, seed=seed)
    marginal_model = bb.GBLUP(y, G, form="marginal")
    exact = _exact_posterior(marginal_model)
    marginal = marginal_model.fit(chains=4, draws=1000, tune=1000, seed=seed)
    latent = _fit_latent(bb.GBLUP(y, G, form="latent"), draws=latent_draws, seed=seed)
    for fit, label in ((marginal, "marginal"), (latent, "latent")):
        diag = fit.diagnostics()
        assert diag["divergences"] == 0, f"{label}: {diag}"
        assert diag["max_r_hat"] <= 1.01, f"{label}: {diag}"
        _check_against_exact(fit, exact, label)

    # Latent vs marginal directly: 4 x combined MCSE.
    lt, mt = latent.summary().loc["h2"], marginal.summary().loc["h2"]
    tol = 4 * np.hypot(lt["mcse_mean"], mt["mcse_mean"])
    message = f"E[h2]: latent {lt['mean']:.4f}, marginal {mt['mean']:.4f}, tol {tol:.4f}"
    assert abs(lt["mean"] - mt["mean"]) < tol, message
    assert lt["sd"] == pytest.approx(mt["sd"], rel=0.10)

    # Genetic values. The marginal form's E[g] averages the exact E[g | y, theta] over the draws
    # (Rao-Blackwellised), the latent form averages draws of g. Per individual, the tolerance is 4
    # times the latent MCSE (sd_i / sqrt(ESS_i)) plus 4 times a bound on the marginal one
    # (sd_i / sqrt(ESS(h2)), generous: E[g | theta] varies far less than g), with the max over n
    # individuals kept below 4.5 combined units (the max of n ~ 100 standard normals rarely passes 3.5).
    import arviz as az

    g_draws = latent.datatree["posterior"]["g"].values  # (chain, draw, n)
    ess_g = np.asarray(az.ess(g_draws, method="bulk"))
    gv_latent, gv_marginal = latent.genetic_values, marginal.genetic_values
    assert gv_latent["id"].tolist() == gv_marginal["id"].tolist()
    mcse = np.hypot(gv_latent["sd"] / np.sqrt(ess_g), gv_marginal["sd"] / np.sqrt(mt["ess_bulk"]))
    z = np.abs(gv_latent["mean"] - gv_marginal["mean"]) / mcse
    assert z.max() < 4.5, f"max |z| of E[g_i] latent vs marginal: {z.max():.2f}"
    # Against the exact E[g | y]: the marginal form's MC error only (bounded as above).
    z_exact = np.abs(gv_marginal["mean"] - exact["g_mean"]) / (gv_marginal["sd"] / np.sqrt(mt["ess_bulk"]))
    assert z_exact.max() < 4.5, f"max |z| of E[g_i] marginal vs exact: {z_exact.max():.2f}"
    np.testing.assert_array_less(0, gv_marginal["sd"])


@pytest.mark.slow  # a full fit of 10+ s: the slow tier keeps the default tier under 4 minutes
def test_gblup_latent_vs_marginal__small():
    """n = 80, m = 150, h2 = 0.5; marginal 4 x 1000 draws, latent 4 x 3000 (its h2 mixes slower, ESS ~1/4).

    Both forms against exact quadrature and against each other (tolerances in _check_against_exact
    and _latent_vs_marginal). About 15 s.
    """
    _latent_vs_marginal(n=80, m=150, seed=101, latent_draws=3000)


@pytest.mark.slow
def test_gblup_latent_vs_marginal__n200():
    """n = 200, m = 400, h2 = 0.5: the issue's size. Latent 4 x 4000 draws (about a minute)."""
    _latent_vs_marginal(n=200, m=400, seed=102, latent_draws=4000)


def test_mblup_marginal__matches_exact_gblup_posterior():
    """Under prior="default" M-BLUP on W is the same model as G-BLUP on G = WW'/m (same prior on h2 and
    sigma2_p = sigma2_g_equiv + sigma2_e), so its h2 and mu posteriors match the G-BLUP quadrature
    within Monte Carlo error (4 MCSE), and sigma2_g_equiv = m sigma2_b is the G-BLUP sigma2_g.
    """
    y, G, W = _simulate(80, 150, h2=0.5, seed=101)
    exact = _exact_posterior(bb.GBLUP(y, G))
    model = bb.MBLUP(y, W)
    fit = model.fit(chains=4, draws=1000, tune=1000, seed=7)
    _check_against_exact(fit, exact, "mblup")
    post = fit.datatree["posterior"]
    np.testing.assert_allclose(post["sigma2_g_equiv"].values, 150 * post["sigma2_b"].values, rtol=1e-12)
    # Marker effects give the genetic values: E[g] = W E[b], exactly (linear in each draw).
    np.testing.assert_allclose(
        W.values @ fit.marker_effects["mean"].to_numpy(), fit.genetic_values["mean"].to_numpy(), rtol=1e-8, atol=1e-10
    )


# Seeds fixed before the first run, one per true h2; n = 600 individuals, m = 1200 markers.
RECOVERY = [(0.2, 2021), (0.5, 2022), (0.8, 2023)]


@pytest.mark.parametrize(("h2", "seed"), RECOVERY)
def test_gblup_marginal__90_interval_covers_true_h2(h2, seed):
    """Seeded recovery: the central 90% interval of h2 contains the simulated truth.

    Each interval misses with probability ~10% over data sets; the seeds are fixed, so the outcome
    is deterministic (chosen before running, not tuned). Convergence is checked first, so that the
    interval means what it says. About 5 s each.
    """
    y, G, _ = _simulate(600, 1200, h2=h2, seed=seed)
    fit = bb.GBLUP(y, G).fit(chains=4, draws=1000, tune=1000, seed=seed)
    diag = fit.diagnostics()
    assert diag["divergences"] == 0 and diag["max_r_hat"] <= 1.01, diag
    row = fit.summary().loc["h2"]
    assert row["q05"] < h2 < row["q95"], f"true h2 {h2} outside 90% interval ({row['q05']:.3f}, {row['q95']:.3f})"
