"""Names shared across the package: dims, variables, scalings and genotype codings.

One place for the strings a geneticist reads in outputs, so that every layer spells them alike.
"""

from __future__ import annotations

# Dims of labelled outputs (xarray / ArviZ coordinates).
INDIVIDUAL = "individual"
MARKER = "marker"
RECORD = "record"
KERNEL = "kernel"
PHENOTYPED = "phenotyped_individual"  # individuals with a record: the dim of permanent-environment effects

# How allele counts become the marker matrix W (see bayesblup.genotypes.scaling).
STANDARDIZED = "standardized"  # eq 11a: sample mean and sample sd (ddof=1), as R's scale()
STANDARDIZED_HWE = "standardized-hwe"  # eq 11b: (x - 2p) / sqrt(2p(1-p))
CENTERED = "centered"  # eq 13-14, VanRaden (2008): x - 2p, G* = W*W*'/nu_p
SCALINGS = (STANDARDIZED, STANDARDIZED_HWE, CENTERED)

# How genotype calls are coded.
ADDITIVE = "additive"  # allele counts 0/1/2 (diploid)
PRESENCE_ABSENCE = "presence-absence"  # 0/1, e.g. DArT markers: one Bernoulli draw per marker
CODINGS = (ADDITIVE, PRESENCE_ABSENCE)

# Largest allele count per coding; also the number of allele draws behind a call, so that
# E[x] = k p and Var[x] = k p (1 - p) under Hardy-Weinberg (k = 2) or Bernoulli (k = 1) sampling.
MAX_COUNT = {ADDITIVE: 2, PRESENCE_ABSENCE: 1}

# What the command line calls the two models (--model): the kernel of each (bayesblup.kernels) carries the rest.
GBLUP_NAME = "gblup"  # a relationship kernel G
MBLUP_NAME = "mblup"  # marker effects on W
MODELS = (GBLUP_NAME, MBLUP_NAME)
