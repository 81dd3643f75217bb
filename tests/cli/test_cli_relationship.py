"""`bayesblup fit --relationship`: a user's own relationship matrix, alone, several, or beside the genotypes' G."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path

pytestmark = pytest.mark.structural

WHEAT = ["--phenotypes", wheat_path("wheat_Y.csv"), "--trait", "y1"]


@pytest.fixture(scope="module")
def grm(tmp_path_factory):
    """The G that `bayesblup grm` writes for wheat, as .npz, and the same matrix as R's write.csv would write it."""
    folder = tmp_path_factory.mktemp("grm")
    assert main(["grm", "--genotypes", wheat_path("wheat_X.csv.gz"), "--out", str(folder / "G.npz"), "--quiet"]) == 0
    G = bb.read_relationship(folder / "G.npz")
    frame = pd.DataFrame(G.matrix, index=G.ids, columns=G.ids)
    frame.to_csv(folder / "K.csv", index_label="", quoting=2)  # R: write.csv(K) quotes the names, "" first
    return folder, G


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_a_users_g_fits_as_the_genotypes_g(grm, tmp_path, capsys):
    """grm's G.npz and R's CSV of it, without genotypes: the posterior of the genotypes' own fit (quadrature is exact
    and seeded: equal to rounding)."""
    folder, _ = grm
    common = [*WHEAT, "--method", "quadrature", "--seed", "2"]
    assert main(["fit", "--genotypes", wheat_path("wheat_X.csv.gz"), *common, "--out", str(tmp_path / "geno")]) == 0
    capsys.readouterr()
    for name in ("G.npz", "K.csv"):
        assert main(["fit", "--relationship", str(folder / name), *common, "--out", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        stem = name.split(".")[0]
        assert f"relationship {stem}: 599 x 599" in out and "mean diagonal 0.998" in out
        assert "not the genetic share" not in out
        assert "records matched to individuals of the relationship matrix" in out and "genotyped" not in out
        for parameter in ("h2", "sigma2_g", "sigma2_e", "mu"):
            a = _summary(tmp_path / "geno")["parameters"][parameter]["mean"]
            b = _summary(tmp_path / name)["parameters"][parameter]["mean"]
            assert b == pytest.approx(a, rel=1e-8), (name, parameter)
        values = pd.read_csv(tmp_path / name / "genetic_values.csv", dtype={"id": str})
        assert len(values) == 599 and values["phenotyped"].all()


def test_several_matrices_and_the_genotypes_are_one_term_each(grm, tmp_path, capsys):
    """--genotypes with two user matrices (one of them a subset-free reordering): terms genomic, A and D, h2 of each."""
    _, G = grm
    rng = np.random.default_rng(3)
    order = rng.permutation(G.n_individuals)  # another order than the genotypes': matched by ID
    A = pd.DataFrame(G.matrix[np.ix_(order, order)], index=G.ids[order], columns=G.ids[order])
    A.to_csv(tmp_path / "A.csv", index_label="id")
    D = G.matrix**2  # a dominance-like kernel: the elementwise square of G is PSD
    bb.write_relationship(bb.Relationship.from_matrix(D, G.ids), tmp_path / "D.npz")
    args = ["fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--relationship", str(tmp_path / "A.csv"),
            str(tmp_path / "D.npz"), *WHEAT, "--method", "map", "--out", str(tmp_path / "fit")]  # fmt: skip
    assert main(args) == 0
    assert "genetic terms: genomic, A, D" in capsys.readouterr().out
    parameters = _summary(tmp_path / "fit")["parameters"]
    assert {"h2_genomic", "h2_A", "h2_D", "h2"} <= set(parameters)


def test_a_mean_diagonal_far_from_1_is_noted_with_both_figures(grm, tmp_path, capsys):
    _, G = grm
    bb.write_relationship(bb.Relationship.from_matrix(2 * G.matrix, G.ids), tmp_path / "G2.npz")
    args = ["fit", "--relationship", str(tmp_path / "G2.npz"), *WHEAT, "--method", "quadrature", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "fit")]) == 0
    assert "mean diagonal 2; note: h2 = sigma2_g / (sigma2_g + sigma2_e) is then not" in capsys.readouterr().out
    summary = _summary(tmp_path / "fit")
    (note,) = [n for n in summary["diagnostics"]["notes"] if "mean diagonal 2" in n]
    h2 = summary["parameters"]["h2"]["mean"]
    assert f"= {h2:.3f} is on G's scale" in note
    share = float(note.rsplit("is ", 1)[1])
    assert share == pytest.approx(0.50, abs=0.03) and h2 == pytest.approx(share / (2 - share), abs=0.01)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give the genotypes (--genotypes), a relationship matrix (--relationship), or both"),
        (["--relationship", "{G}", "--model", "mblup"], "--model mblup needs marker effects from --genotypes"),
        (["--relationship", "{G}", "{G}"], "two genetic terms would be called 'G'"),
        (["--relationship", "{small}", "--genotypes", wheat_path("wheat_X.csv.gz")], "lacks 99 of the individuals"),
        (["--relationship", "{nope}"], "relationship file not found"),
    ],
)
def test_refusals(grm, tmp_path, capsys, extra, message):
    folder, G = grm
    keep = np.arange(500)
    small = bb.Relationship.from_matrix(G.matrix[np.ix_(keep, keep)], G.ids[keep])
    bb.write_relationship(small, tmp_path / "small.npz")
    paths = {"G": folder / "G.npz", "small": tmp_path / "small.npz", "nope": tmp_path / "nope.npz"}
    extra = [e.format(**paths) for e in extra]
    assert main(["fit", *extra, *WHEAT, "--method", "map", "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "fit").exists()
