"""Which NUTS implementation samples a fit: PyMC's own, nutpie, or NUTS on JAX (NumPyro, BlackJAX).

``nuts_sampler=None`` (the default) is PyMC's NUTS, through :mod:`bayesblup.inference.compiled` (one
compilation per model structure, reused by later fits in the process) and :mod:`bayesblup.inference.chains`
(chains in forked processes); it is also the only one that takes the exact Gibbs step for missing records of
several traits (:mod:`bayesblup.inference.missing`). nutpie runs only when named (``"nutpie"``): it compiles the
log-density with Numba at every fit, which costs more than it saves at the sizes measured
(benchmarks/RESULTS.md, 2026-12-04, seventh session): G-BLUP on wheat 11.9 s end to end against 3.4 s,
mice-sized 13.8 against 7.4 s, and a second fit in the same process 5.8 against 1.5 s. On a binary trait
on wheat (latent liabilities) the two were even (36.9 against 31.2 s in one run, 26.6 against 32.2 s in
another): nutpie's draws were faster (10.7-12.1 s against 19.5-21.7 s), its compilation slower (11.7-24 s).
It pays where drawing dominates: long latent fits of thousands of individuals. The JAX samplers
(``"numpyro"``, ``"blackjax"``; ``pip install 'bayesblup[jax]'``, and a CUDA-enabled jaxlib for a GPU)
need a model that PyTensor can translate to JAX: the latent forms, the single-kernel marginal form
(pure PyTensor: the eigendecomposition is done once, in NumPy, before the model is built), but not
the marginal form of several marker sets, whose log-likelihood and gradient are NumPy code inside
PyTensor Ops (:mod:`bayesblup.models.ops`) that JAX cannot trace. That case is refused
before sampling, with what to use instead.

Chains on JAX run ``chain_method="vectorized"`` (all chains as one batched computation, the way to
use a single GPU) on an accelerator, and ``"parallel"`` (one chain per device, ``jax.pmap``) on CPU,
where PyMC exposes many host devices: vectorised NUTS makes every chain wait for the longest
trajectory in the batch at every step, which on CPU cost 1.5-3x the wall time of parallel chains
(measured for the latent G-BLUP at n = 80 and n = 500, 4 chains; docs/jax.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass, field

from ..errors import InputError

__all__ = [
    "JAX_SAMPLERS",
    "NUTS_SAMPLERS",
    "NutsChoice",
    "chain_threads",
    "check_nuts_sampler",
    "choose_nuts",
    "default_cores",
]

NUTS_SAMPLERS = ("pymc", "nutpie", "numpyro", "blackjax")
JAX_SAMPLERS = ("numpyro", "blackjax")
_INSTALL_JAX = (
    "pip install 'bayesblup[jax]' (and, for a GPU, a CUDA-enabled jaxlib: pip install -U 'jax[cuda12]', "
    "see https://docs.jax.dev/en/latest/installation.html)"
)


@dataclass
class NutsChoice:
    """What :meth:`BLUPModel.fit` passes to ``pm.sample`` for the chosen NUTS implementation.

    Attributes
    ----------
    sampler : str
        ``"pymc"``, ``"nutpie"``, ``"numpyro"`` or ``"blackjax"`` (recorded as the fit's ``sampler``).
    kwargs : dict
        Keyword arguments of ``pm.sample``: ``nuts_sampler``, ``progressbar`` and the sampler's own.
    settings : dict
        Recorded in the fit's settings (and summary.json): ``chain_method`` for the JAX samplers.
    """

    sampler: str
    kwargs: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @contextlib.contextmanager
    def errors(self):
        """Turn a known incompatibility of the installed JAX packages into an :class:`InputError`."""
        try:
            yield
        except TypeError as err:
            if self.sampler == "blackjax" and "progress_bar" in str(err):
                # pymc-devs/pymc#8367: PyMC passes progress_bar to blackjax.window_adaptation, gone in 1.6.
                raise InputError(
                    "this PyMC cannot drive BlackJAX >= 1.6 (pymc-devs/pymc#8367); install an earlier one with "
                    "pip install 'blackjax>=1.5,<1.6', or use nuts_sampler='numpyro'."
                ) from err
            raise


def default_cores(chains: int) -> int:
    """Processes for PyMC's chains: one per chain, up to the CPUs this process may run on.

    PyMC's own default (``cores=None``) takes half of ``multiprocessing.cpu_count()``, assuming every
    second CPU is a hyper-thread; on a 2-core machine that is one process, and the chains ran one after
    another. The CPUs this process may use (its affinity, which also honours a container's CPU set) are
    the better count. Chains in worker processes start by ``fork`` on Linux, in well under a second
    (measured: a 2-chain, 400-draw fit took 0.35 s either way); each chain's draws depend on its seed
    only, not on the process it runs in.
    """
    return max(1, min(int(chains), _available_cpus()))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


@contextlib.contextmanager
def chain_threads(cores: int):
    """BLAS threads per chain process while PyMC's chains run in ``cores`` processes: the CPUs shared out.

    Each worker process starts (by fork) with the parent's BLAS thread pool, one thread per CPU; with
    two chain processes on two CPUs that is four threads on two, and the products of a Gibbs step
    (several traits with missing records) ran 3x slower than alone. The limit is set in the parent
    around the sampling, which the forked workers inherit, and lifted after it (threadpoolctl, a
    dependency of PyMC).
    """
    if cores <= 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, _available_cpus() // cores), user_api="blas"):
        yield


def _missing(packages: tuple[str, ...]) -> list[str]:
    return [name for name in packages if importlib.util.find_spec(name) is None]


def _form_label(model) -> str:
    return f"{type(model).__name__}(form={model.form!r})"


def check_nuts_sampler(model, nuts_sampler: str | None, method: str) -> None:
    """Refuse, before the model is built, a sampler that is unknown, not installed or cannot run this form."""
    if nuts_sampler is None:
        return
    if nuts_sampler not in NUTS_SAMPLERS:
        raise InputError(f"nuts_sampler must be None or one of {', '.join(NUTS_SAMPLERS)}; got {nuts_sampler!r}.")
    if method != "nuts":
        raise InputError(f"nuts_sampler={nuts_sampler!r} applies to method='nuts', not method={method!r}.")
    if nuts_sampler == "nutpie" and _missing(("nutpie",)):
        raise InputError("nuts_sampler='nutpie' needs nutpie, which is not installed: pip install 'bayesblup[nutpie]'.")
    if nuts_sampler in JAX_SAMPLERS:
        missing = _missing(("jax", nuts_sampler))
        if missing:
            raise InputError(
                f"nuts_sampler={nuts_sampler!r} needs {' and '.join(missing)}, not installed: {_INSTALL_JAX}."
            )
        if not model.single and model.form == "marginal":
            raise InputError(
                f"nuts_sampler={nuts_sampler!r} cannot sample {_form_label(model)}: the marginal likelihood of "
                "several marker sets (Woodbury or dense path) is NumPy code inside PyTensor (bayesblup.models."
                "likelihoods), which JAX cannot translate. Use form='latent' with a JAX sampler, or keep "
                "form='marginal' with the default sampler (nuts_sampler=None: nutpie if installed, else PyMC)."
            )


def _jax_untranslatable(model) -> str | None:
    """Why the model's log-density or deterministics cannot be translated to JAX, or None if they can."""
    from pymc.sampling.jax import get_jaxified_graph  # sets XLA_FLAGS before JAX starts its CPU backend

    try:
        get_jaxified_graph(inputs=model.value_vars, outputs=[model.logp(), *model.unobserved_value_vars])
    except NotImplementedError as err:
        return str(err)
    return None


def _chain_method(chains: int) -> str:
    """``"parallel"`` on CPU when there is a host device per chain, else ``"vectorized"`` (module docstring)."""
    import jax

    return "parallel" if jax.default_backend() == "cpu" and jax.local_device_count() >= chains else "vectorized"


def choose_nuts(model, pymc_model, nuts_sampler: str | None, *, chains: int, progressbar: bool) -> NutsChoice:
    """The NUTS implementation for ``model`` (a built ``pymc_model``), after :func:`check_nuts_sampler`."""
    if nuts_sampler is None:
        nuts_sampler = "pymc"  # whatever else is installed (module docstring: nutpie's compilation costs more)
    kwargs = {"nuts_sampler": nuts_sampler, "progressbar": progressbar}
    if nuts_sampler == "pymc":
        return NutsChoice(nuts_sampler, kwargs | {"init": model.nuts_init})
    if nuts_sampler == "nutpie":
        return NutsChoice(nuts_sampler, kwargs)
    from ..models.ops import register_jax

    register_jax()  # the multi-trait likelihood's Op (bayesblup.models.ops)
    reason = _jax_untranslatable(pymc_model)
    if reason is not None:
        raise InputError(
            f"nuts_sampler={nuts_sampler!r} cannot sample {_form_label(model)}: its PyMC model has an operation "
            f"with no JAX translation ({reason}). Use the default sampler (nuts_sampler=None)."
        )
    chain_method = _chain_method(chains)
    if nuts_sampler == "blackjax" and importlib.util.find_spec("fastprogress") is None:
        kwargs["progressbar"] = False  # BlackJAX draws its progress bar with fastprogress, not one of its dependencies
    return NutsChoice(nuts_sampler, kwargs | {"nuts": {"chain_method": chain_method}}, {"chain_method": chain_method})
