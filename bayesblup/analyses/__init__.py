"""Analyses built on fits: REML, cross-validation, prior sensitivity, the equivalence, calibration."""
