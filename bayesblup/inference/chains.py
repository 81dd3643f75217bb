"""PyMC's chains spread over forked processes, each sampling its share one chain after another.

PyMC's own parallel sampling (``pm.sample(cores > 1)``) sends every draw, tuning draws included, from
the chain processes to the parent through a pipe, and the parent records it: about 0.2 ms a draw. A
small model draws faster than that (wheat's marginal form: about 0.2 ms a draw in all), so the parent
became the bottleneck and two processes on two CPUs took as long as one (measured: 1.65 s against
1.63 s for 4 x 2000 draws). Here each process runs ``pm.sample`` on its chains in-process (PyMC's
sequential sampler, which keeps the draws in memory) and sends back one DataTree; the parent only
joins them. The processes are forked after the model is compiled, so they share the compiled
log-density and start in milliseconds.

On Linux; elsewhere (macOS's Accelerate BLAS is not fork-safe) PyMC's own parallel sampling runs the chains.

The draws do not depend on how the chains are spread: each chain's draws follow from its own seed,
initial point and a fresh copy of the step's state (PyMC restores the step's sampling state at each
chain's start when it samples in-process), so ``processes=1`` and ``processes=4`` give the same bits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import traceback

import numpy as np

__all__ = ["sample_chains"]


def sample_chains(
    model,
    step,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    initvals: list[dict],
    processes: int,
    progressbar: bool = False,
):
    """``pm.sample`` of ``chains`` chains with ``step``, in ``processes`` forked processes; one DataTree.

    Parameters
    ----------
    model : pymc.Model
        The model ``step`` was built for.
    step : pymc.step_methods.BlockedStep
        Compiled once in this process; each child uses its copy.
    draws, tune : int
        As in ``pm.sample``.
    chains : int
        How many chains.
    seed : int or None
        As ``pm.sample``'s ``random_seed``: chain i draws from the i-th stream spawned from it, whichever
        process runs it.
    initvals : list of dict
        One initial point per chain.
    processes : int
        How many processes share the chains (1: in this process, no fork).
    progressbar : bool
        PyMC's progress bar, shown by the first process only.
    """
    import pymc as pm

    processes = max(1, min(int(processes), chains))
    options = {"model": model, "step": step, "draws": draws, "tune": tune, "cores": 1}  # a child: its chains in turn
    options["compute_convergence_checks"] = False  # the package's own diagnostics report them
    if processes == 1 or not sys.platform.startswith("linux"):
        # one process: PyMC in this one. Elsewhere than Linux, PyMC's own parallel sampling with its start method
        # (the same draws): fork after BLAS and numba have started is safe on Linux, but macOS's Accelerate is not
        # fork-safe (PyMC itself uses forkserver there)
        options["cores"] = processes
        return pm.sample(chains=chains, random_seed=seed, initvals=list(initvals), progressbar=progressbar, **options)
    # pm.sample spawns one stream per chain from its seed (SeedSequence.spawn); a process given the chains from
    # i on gets a seed sequence that has already spawned i children, so that its first chain's stream is the i-th
    entropy = np.random.SeedSequence(seed).entropy
    _warm_up()
    _log_start(model, step, chains=chains, processes=processes)
    shares = [list(share) for share in np.array_split(np.arange(chains), processes)]
    context = multiprocessing.get_context("fork")
    children = []
    try:
        for k, share in enumerate(shares):
            receive, send = context.Pipe(duplex=False)
            job = {
                "chains": len(share),
                "random_seed": np.random.Generator(
                    np.random.PCG64(np.random.SeedSequence(entropy, n_children_spawned=share[0]))
                ),
                "initvals": [initvals[i] for i in share],
                "progressbar": progressbar and k == 0,
            }
            child = context.Process(target=_child, args=(send, options | job), daemon=True)
            child.start()
            send.close()
            children.append((child, receive))
        parts = [_receive(child, receive) for child, receive in children]
    finally:
        for child, receive in children:
            receive.close()
            if child.is_alive():  # an interrupt or another child's failure: nothing of theirs is wanted
                child.terminate()
            child.join()
    tree = _join(parts, shares)
    _log_sampling(tree, chains=chains, processes=processes, draws=draws, tune=tune)
    return tree


def _log_start(model, step, *, chains: int, processes: int) -> None:
    """PyMC's two opening lines of its own parallel sampling, which the children no longer write."""
    import logging

    log = logging.getLogger("pymc.sampling.mcmc")
    log.info(f"Multiprocess sampling ({chains} chains in {processes} processes, each chain's draws in-process)")
    rvs = getattr(model, "values_to_rvs", {})
    names = ", ".join(getattr(rvs.get(v), "name", v.name) for v in getattr(step, "vars", []))
    log.info(f"{type(step).__name__}: [{names}]")


def _log_sampling(tree, *, chains: int, processes: int, draws: int, tune: int) -> None:
    """One line in PyMC's log for the whole, as PyMC writes it for its own parallel sampling."""
    import logging

    stats = tree.children.get("sample_stats")
    seconds = float(stats.attrs.get("sampling_time", float("nan"))) if stats is not None else float("nan")
    logging.getLogger("pymc.sampling.mcmc").info(
        f"Sampling {chains} chains for {tune:_d} tune and {draws:_d} draw iterations in {processes} processes "
        f"(each chain's draws in-process) took {seconds:.0f} seconds."
    )


def _child(send, options: dict) -> None:
    """In the forked process: sample, send the DataTree (or the error) back, and leave without clean-up."""
    import logging

    import pymc as pm

    # Ctrl-C reaches the whole process group: the parent handles it (it stops waiting and terminates the children),
    # so a child ignores SIGINT, as PyMC's own chain processes do; an interrupt landing in a finaliser here printed
    # "Exception ignored in ..." with a traceback. SIGTERM (from the parent) ends a child at once, without the
    # command line's handler it inherited by fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # PyMC's progress log ("Sequential sampling (2 chains in 1 job)", "Sampling ... took") would come once per
    # process and read as if the chains ran one after another; the parent logs the whole (_log_sampling)
    logging.getLogger("pymc").setLevel(logging.WARNING)
    logging.getLogger("pymc.sampling.mcmc").setLevel(logging.WARNING)
    try:
        result = ("ok", pm.sample(**options))
    except BaseException as exc:  # every failure goes back to the parent, which raises it
        result = ("error", _portable(exc))
    try:
        send.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        send.close()
        os._exit(0)  # no atexit handlers or finalisers of the parent's objects run twice


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it pickles, else a RuntimeError with its text and traceback."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # an unpicklable exception (or one that fails to pickle)
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"a chain process failed: {type(exc).__name__}: {exc}\n{text}")


def _receive(child, receive):
    try:
        status, value = pickle.loads(receive.recv_bytes())
    except EOFError:  # the child died without a word (killed, out of memory)
        child.join()
        code = child.exitcode
        if code is not None and code < 0 and -code == signal.SIGINT:
            raise KeyboardInterrupt("a chain process was interrupted") from None
        raise RuntimeError(f"a chain process ended without its draws (exit code {code}).") from None
    if status == "error":
        raise value
    return value


def _warm_up() -> None:
    """Import in the parent what every child would import on its own when it makes its DataTree.

    xarray imports its duck-array modules (dask.array, when installed) at the first DataArray it makes,
    measured at 0.27 s; done once here, the forked children inherit it.
    """
    import xarray as xr

    xr.DataArray(np.zeros(1))


def _join(parts: list, shares: list[list[int]]):
    """One DataTree from the children's: groups with chains joined along ``chain`` (renumbered), others as given."""
    import xarray as xr

    first = parts[0]
    chain_index = np.concatenate([np.asarray(share) for share in shares])
    groups = {}
    for name, node in first.children.items():
        dataset = node.to_dataset()
        if "chain" in dataset.dims:
            pieces = [part[name].to_dataset() for part in parts]
            joined = xr.concat(pieces, dim="chain", combine_attrs="override", data_vars="all", coords="different",
                               compat="equals", join="exact")  # fmt: skip
            dataset = joined.assign_coords(chain=chain_index)
            if "sampling_time" in dataset.attrs:  # the chains ran side by side: the wall time is the longest
                dataset.attrs["sampling_time"] = max(float(p[name].attrs.get("sampling_time", 0.0)) for p in parts)
        groups[name] = dataset
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(first.attrs)
    with contextlib.suppress(AttributeError):
        tree.name = first.name
    return tree
