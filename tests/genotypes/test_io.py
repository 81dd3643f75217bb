"""Writing and reading G: round trips, no silent overwrite, atomic writes, and reader errors."""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb

pytestmark = pytest.mark.structural


@pytest.fixture
def relationship():
    geno = bb.Genotypes.from_array(np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 1, 2]]), ids=["a", "b,1", "c", "d"])
    return bb.genomic_relationship(geno, scaling="centered")


@pytest.mark.parametrize("name", ["G.csv", "G.csv.gz", "G.npz"])
def test_write_read_relationship__round_trip_is_exact(tmp_path, relationship, name):
    path = bb.write_relationship(relationship, tmp_path / name)
    back = bb.read_relationship(path)
    np.testing.assert_array_equal(back.matrix, relationship.matrix)  # 17 significant digits: exact
    assert list(back.ids) == ["a", "b,1", "c", "d"]  # an ID with a comma survives CSV quoting


def test_write_relationship__csv_layout(tmp_path, relationship):
    path = bb.write_relationship(relationship, tmp_path / "G.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == 'id,a,"b,1",c,d'
    assert lines[1].startswith("a,")
    assert len(lines) == 5


def test_write_relationship__npz_keeps_metadata(tmp_path, relationship):
    path = bb.write_relationship(relationship, tmp_path / "G.npz")
    with np.load(path) as data:
        assert {"G", "ids", "scaling", "n_markers", "denominator", "markers", "allele_freq"} <= set(data.files)
        assert str(data["scaling"]) == "centered" and int(data["n_markers"]) == 3
    back = bb.read_relationship(path)
    assert back.scaling == "centered" and back.n_markers == 3
    assert back.denominator == pytest.approx(relationship.denominator)


def test_write_relationship__raise_on_existing_output_and_keep_it(tmp_path, relationship):
    path = tmp_path / "G.npz"
    path.write_bytes(b"precious")
    with pytest.raises(bb.InputError, match=r"G\.npz already exists; choose another name or pass --force"):
        bb.write_relationship(relationship, path)
    assert path.read_bytes() == b"precious"
    bb.write_relationship(relationship, path, force=True)
    assert bb.read_relationship(path).n_individuals == 4


def test_write_relationship__raise_on_unknown_suffix(tmp_path, relationship):
    with pytest.raises(bb.InputError, match=r"the name must end in \.csv or \.csv\.gz or \.npz"):
        bb.write_relationship(relationship, tmp_path / "G.txt")


def test_write_relationship__failed_write_leaves_nothing(tmp_path, relationship, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        bb.write_relationship(relationship, tmp_path / "G.npz")
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary part file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,a,b\na,1,0.5\nb,0.4,1\n", r"not symmetric: G\[a, b\] and G\[b, a\] differ by 0.1"),
        ("id,a,b\nb,1,0.5\na,0.5,1\n", r"column IDs in the header differ from the row IDs"),
        ("id,a,b\na,1,NA\nb,0.5,1\n", r"non-finite value at \(a, b\)"),
    ],
    ids=["asymmetric", "mismatched_ids", "non_finite"],
)
def test_read_relationship__raise_on_bad_matrix(tmp_path, content, message):
    (tmp_path / "G.csv").write_text(content)
    with pytest.raises(bb.InputError, match=message):
        bb.read_relationship(tmp_path / "G.csv")


def test_read_allele_freq(tmp_path):
    (tmp_path / "p.csv").write_text("marker,p\nm1,0.25\nm2,0.5\n")
    p = bb.read_allele_freq(tmp_path / "p.csv")
    assert p.to_dict() == {"m1": 0.25, "m2": 0.5}


def test_read_allele_freq__raise_on_bad_header(tmp_path):
    (tmp_path / "p.csv").write_text("snp,freq\nm1,0.25\n")
    with pytest.raises(bb.InputError, match=r"expected a header 'marker,p', got snp,freq"):
        bb.read_allele_freq(tmp_path / "p.csv")


def test_read_allele_freq__raise_on_text(tmp_path):
    (tmp_path / "p.csv").write_text("marker,p\nm1,high\n")
    with pytest.raises(bb.InputError, match=r"frequency 'high' for marker m1 is not a number"):
        bb.read_allele_freq(tmp_path / "p.csv")


def test_read_allele_freq__raise_on_binary_file(tmp_path, plink_bed):
    with pytest.raises(bb.InputError, match=r"sample\.bed: cannot be read as a CSV of allele frequencies"):
        bb.read_allele_freq(plink_bed)


# --- the genotype CSV's fast path (readers._read_plain_calls) ----------------------------------------------


def _write_calls(path, ids, calls, *, crlf=False, final_newline=True):
    import gzip

    header = "id," + ",".join(f"m{j}" for j in range(calls.shape[1]))
    rows = [header] + [f"{i}," + ",".join(str(int(c)) for c in row) for i, row in zip(ids, calls, strict=True)]
    text = ("\r\n" if crlf else "\n").join(rows) + (("\r\n" if crlf else "\n") if final_newline else "")
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as handle:
            handle.write(text)
    else:
        path.write_bytes(text.encode())
    return path


def _read_both(path):
    """The fast path's Genotypes and pandas' (the fast path switched off) for the same file."""
    from bayesblup.genotypes import readers

    fast = readers.read_genotypes_csv(path)
    slow_reader = readers._read_plain_calls
    try:
        readers._read_plain_calls = lambda *args: None
        slow = readers.read_genotypes_csv(path)
    finally:
        readers._read_plain_calls = slow_reader
    return fast, slow


@pytest.mark.parametrize(
    ("name", "crlf", "final_newline", "top"),
    [("g.csv", False, True, 2), ("g.csv.gz", False, True, 2), ("g.csv", True, False, 2), ("g.csv.gz", True, True, 1)],
)
def test_plain_calls_are_read_from_bytes_as_pandas_reads_them(tmp_path, name, crlf, final_newline, top):
    """A table of single-digit calls takes the fast path; every field equals pandas' reading of it."""
    from pathlib import Path

    from bayesblup.genotypes import readers

    rng = np.random.default_rng(len(name) + crlf + final_newline)
    calls = rng.integers(0, top + 1, size=(7, 5))
    ids = ["a", "b 1", "ç", "007", "x-y", "B", "z"]  # spaces, non-ASCII and leading zeros are kept as text
    path = _write_calls(tmp_path / name, ids, calls, crlf=crlf, final_newline=final_newline)
    assert readers._read_plain_calls(Path(path), 5) is not None
    fast, slow = _read_both(path)
    np.testing.assert_array_equal(fast.calls, slow.calls)
    assert list(fast.ids) == list(slow.ids) == ids
    assert list(fast.markers) == list(slow.markers) and fast.coding == slow.coding


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("c,0,,1", "a missing call (empty field)"),
        ("c,0,NA,1", "a missing call (NA)"),
        ('"c",0,1,1', "a quoted ID"),
        ("NA,0,1,1", "an ID pandas reads as missing"),
        ("c,0,3,1", "a call out of range"),
        ("c,0,1.0,1", "a decimal"),
        ("c,0,1", "a short row"),
        ("c,0,1,1,2", "a long row"),
    ],
)
def test_anything_but_plain_calls_goes_to_pandas(tmp_path, row, why):
    """The fast path declines (None) whatever it does not check itself; pandas' path then reads or refuses it."""
    from pathlib import Path

    from bayesblup.genotypes import readers

    path = tmp_path / "g.csv"
    path.write_text("id,m0,m1,m2\na,0,1,2\nb,2,1,0\n" + row + "\n")
    assert readers._read_plain_calls(Path(path), 3) is None, why
