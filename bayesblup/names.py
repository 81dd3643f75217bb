"""Names shared across the package: dims, variables, scalings and genotype codings.

One place for the strings a geneticist reads in outputs, so that every layer spells them alike.
"""

from __future__ import annotations

# Dims of labelled outputs (xarray / ArviZ coordinates).
INDIVIDUAL = "individual"
MARKER = "marker"
RECORD = "record"
KERNEL = "kernel"
TRAIT = "trait"
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

# Variables of the models, as they appear in posteriors, summary tables and summary.json.
MU = "mu"  # the intercept
BETA = "beta"  # fixed effects besides the intercept (dim "covariate")
H2 = "h2"  # heritability: genetic over phenotypic variance
SIGMA2_G = "sigma2_g"  # the genetic variance on G's scale (G-BLUP's kernel variance)
SIGMA2_B = "sigma2_b"  # the variance of a marker effect (M-BLUP's kernel variance)
SIGMA2_G_EQUIV = "sigma2_g_equiv"  # c sigma2_b: M-BLUP's genetic variance on G's scale (eq 7)
SIGMA2_E = "sigma2_e"  # the residual variance
SIGMA2_PE = "sigma2_pe"  # the permanent-environment variance (repeated records)
SIGMA2_P = "sigma2_p"  # the phenotypic variance (the h2 parameterisation of prior="default")
REPEATABILITY = "repeatability"
PE_SHARE = "pe_share"  # the permanent share of the non-genetic variance (prior="default")
SET_SHARE = "set_share"  # each kernel's share of the genetic variance (prior="default", several kernels)
G = "g"  # genetic values (dim "individual")
B = "b"  # marker effects (dim "marker")
