"""Properties of G for any genotype matrix: symmetric, positive semi-definite, permutation-equivariant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bayesblup as bb

pytestmark = pytest.mark.exact

calls_strategy = st.integers(2, 9).flatmap(
    lambda n: st.integers(1, 12).flatmap(
        lambda m: arrays(np.float64, (n, m), elements=st.sampled_from([0.0, 1.0, 2.0, np.nan]))
    )
)


def _qc(calls):
    geno = bb.Genotypes.from_array(calls, ids=[f"i{i}" for i in range(calls.shape[0])], coding="additive")
    try:
        return bb.quality_control(geno)[0]
    except bb.InputError:  # nothing polymorphic left: not a valid input for G
        assume(False)


@settings(max_examples=60, deadline=None)
@given(
    calls=calls_strategy,
    scaling=st.sampled_from(["standardized", "standardized-hwe", "centered"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_G_is_symmetric_psd_and_permutation_equivariant(calls, scaling, seed):
    geno = _qc(calls)
    G = bb.genomic_relationship(geno, scaling=scaling, block_size=3).matrix
    np.testing.assert_array_equal(G, G.T)
    scale = max(1.0, float(np.abs(G).max()))
    # Tolerance: eigenvalues of a PSD float64 matrix come out >= -n * eps * |G|.
    assert np.linalg.eigvalsh(G).min() >= -1e-12 * G.shape[0] * scale
    order = np.random.default_rng(seed).permutation(geno.n_individuals)
    G_perm = bb.genomic_relationship(geno.select(individuals=order), scaling=scaling, block_size=3).matrix
    np.testing.assert_allclose(G_perm, G[np.ix_(order, order)], rtol=1e-12, atol=1e-12 * scale)
