"""A fitted model with several marker sets: genetic values per set and in total, partitioned h2.

``genetic_values`` has the total (``mean``, ``sd``, ``pev``, ``reliability``, ``phenotyped``) and, per
set, ``mean_<set>`` and ``sd_<set>``. M-BLUP's ``marker_effects`` has a ``set`` column. The summary
holds ``h2``, ``h2_<set>``, the sets' variances and ``enrichment_<set>``, the genetic variance per marker
of a set over that of the other sets pooled; :meth:`SetsFit.enrichment` gives the posterior
probability that a set explains more variance per marker than the rest.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import InputError
from ..inference.posterior import Moments
from ..inference.posterior_sets import set_moments
from ..names import INDIVIDUAL, MARKER
from .fit import BLUPFit, _beta, _flat

__all__ = ["SetsFit"]


def _latent_moments(post, name: str) -> Moments:
    x = np.asarray(post[name].values, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1])
    return Moments(x.mean(0), x.std(0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1]))


class SetsFit(BLUPFit):
    """Result of :meth:`MultiGBLUP.fit` / :meth:`MultiMBLUP.fit` (see the module docstring)."""

    @classmethod
    def from_datatree(cls, model, datatree, *, method, sampler, genetic_value_draws=False, thin=1, **settings):
        import xarray as xr

        if genetic_value_draws:
            raise InputError(
                "genetic_value_draws is not available for several marker sets; the fit reports each set's and the "
                "total genetic values with their sd."
            )
        t0 = time.perf_counter()
        post = datatree["posterior"]
        names = model.set_names
        if model.form == "marginal":
            sigma2 = {name: _flat(post, model.variance_name(name)) for name in names}
            sigma2_pe = _flat(post, "sigma2_pe") if model.permanent_environment else None
            per_set, total, markers = set_moments(
                model,
                _flat(post, "mu"),
                sigma2,
                _flat(post, "sigma2_e"),
                beta=_beta(post, model),
                sigma2_pe=sigma2_pe,
                seed=settings.get("seed"),
            )
        else:
            per_set = {name: _latent_moments(post, f"g_{name}") for name in names}
            total = _latent_moments(post, "g")
            markers = {}
            if model.name == "mblup":
                b = _latent_moments(post, "b")
                start = 0
                for name in names:
                    stop = start + model.set_markers(name)
                    markers[name] = Moments(b.mean[start:stop], b.sd[start:stop])
                    start = stop
        ids = model.individuals.astype(str)
        phenotyped = np.arange(ids.size) < model.n
        # Reliability of the total: 1 - PEV / prior variance, the prior variance at the posterior means.
        prior_var = sum(float(_flat(post, model.variance_name(k)).mean()) * model.set_diagonal(k) for k in names)
        pev = total.sd**2
        columns = {
            "mean": total.mean,
            "sd": total.sd,
            "pev": pev,
            "reliability": 1.0 - pev / prior_var,
            "phenotyped": phenotyped,
        }
        for name in names:
            columns[f"mean_{name}"] = per_set[name].mean
            columns[f"sd_{name}"] = per_set[name].sd
        datatree["genetic_values"] = xr.DataTree(
            xr.Dataset({k: (INDIVIDUAL, v) for k, v in columns.items()}, coords={INDIVIDUAL: ids})
        )
        genetic_values = pd.DataFrame({"id": ids} | columns)
        marker_effects = None
        if markers:
            labels = np.concatenate([model.genotypes[k].markers.astype(str) for k in names])
            sets = np.concatenate([np.full(model.set_markers(k), k, dtype=object) for k in names])
            mean = np.concatenate([markers[k].mean for k in names])
            sd = np.concatenate([markers[k].sd for k in names])
            datatree["marker_effects"] = xr.DataTree(
                xr.Dataset(
                    {"mean": (MARKER, mean), "sd": (MARKER, sd), "set": (MARKER, sets.astype(str))},
                    coords={MARKER: labels},
                )
            )
            marker_effects = pd.DataFrame({"marker": labels, "set": sets, "mean": mean, "sd": sd})
        timings = dict(model.timings) | {"genetic_values_s": time.perf_counter() - t0}
        settings = settings | {"genetic_value_draws": False, "thin": thin}
        return cls(model, datatree, method, sampler, genetic_values, marker_effects, timings, settings)

    def predict(self, genotypes, *, training=None) -> pd.DataFrame:
        raise InputError(
            "predict is not available for several marker sets yet; include the new individuals in the genotypes "
            "without a record: their genetic values are then in fit.genetic_values (phenotyped = False)."
        )

    def back_solve_markers(self, training) -> pd.DataFrame:
        raise InputError("back_solve_markers is for single-kernel G-BLUP; fit MultiMBLUP for marker effects per set.")

    def enrichment(self) -> pd.DataFrame:
        """Per set: markers, h2_<set>, its genetic variance per marker over the rest's, and P(more per marker).

        ``prob_more_per_marker`` is the share of posterior draws in which the set's genetic variance per
        marker exceeds that of the other sets pooled.
        """
        if self.stored is not None:  # read back by load_fit: as computed at fit time
            return pd.DataFrame.from_dict(self.stored["enrichment"], orient="index")
        model = self.model
        post = self.datatree["posterior"]
        rows = {}
        for name in model.set_names:
            h2 = _flat(post, f"h2_{name}")
            row = {"n_markers": model.set_markers(name), "h2_mean": float(h2.mean())}
            if model.has_enrichment:
                ratio = _flat(post, f"enrichment_{name}")
                row |= {
                    "enrichment_mean": float(ratio.mean()),
                    "enrichment_median": float(np.median(ratio)),
                    "prob_more_per_marker": float((ratio > 1).mean()),
                }
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.stored is not None:  # read back: sets and enrichment are in the stored summary
            return out
        model = self.model
        out["path"] = model.path
        out["sets"] = {
            name: {
                "n_markers": model.set_markers(name),
                "rank": int(model.widths[name]),
                "equivalence_factor": model.set_factor(name) if model.name == "mblup" else None,
                "role": ("background" if name == model.background else "low-rank")
                if model.path == "woodbury"
                else None,
            }
            for name in model.set_names
        }
        out["enrichment"] = self.enrichment().to_dict(orient="index")
        out["equivalence_factor"] = None
        return out
