"""G from a PLINK .bed with Dask (bayesblup.genotypes.dask) against the in-memory path, on a LocalCluster.

Tolerance: 1e-10 absolute on G, whose entries are O(1). Both paths scale every call with the same
constants and the same code (MarkerScaling.transform_block) and add the same products; only the
grouping of the sum over markers differs (one syrk per block, then a tree of n x n additions, against
64 MB slabs in one buffer), so the two differ by rounding, about 1e-15 here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.testing import simulate_genotypes

distributed = pytest.importorskip("distributed")
bed_reader = pytest.importorskip("bed_reader")

SCALINGS = ["standardized", "standardized-hwe", "centered"]
ATOL = 1e-10


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes: tasks and results are pickled, as on a real cluster.

    The dashboard on a free port (":0"): distributed reads dashboard_address=None as its default, 8787, and the
    fixture failed wherever that port was taken (another cluster, RStudio Server); test_port_8787_may_be_taken.
    """
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", scheduler_port=0
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def sim_bed(tmp_path_factory):
    """300 x 2000 calls with 2% missing, plus markers every QC filter drops and one poorly called individual."""
    geno, _ = simulate_genotypes(300, 2000, missing_rate=0.02, seed=7)
    calls = geno.calls.copy()
    calls[:, 10] = 0  # monomorphic
    calls[:, 11] = bb.MISSING  # no observed call
    calls[:, 12] = 2
    calls[:5, 12] = 1  # MAF 5/600 < 0.05
    calls[:40, 13] = bb.MISSING  # call rate 260/300 < 0.9
    calls[3, :400] = bb.MISSING  # individual call rate < 0.9
    path = tmp_path_factory.mktemp("dask_grm") / "sim.bed"
    bed_reader.to_bed(path, calls, properties={"iid": geno.ids.astype(str), "sid": geno.markers.astype(str)})
    return path


def in_memory(bed, *, scaling, allele_freq=None, **qc):
    geno, report = bb.quality_control(bb.read_genotypes(bed), **qc)
    return bb.genomic_relationship(geno, scaling=scaling, allele_freq=allele_freq), report


def assert_same(rel: bb.Relationship, ref: bb.Relationship, report: bb.QCReport):
    assert np.abs(rel.matrix - ref.matrix).max() <= ATOL
    assert list(rel.ids) == list(ref.ids)
    assert (rel.scaling, rel.n_markers, rel.denominator) == (ref.scaling, ref.n_markers, ref.denominator)
    for field in ("markers", "allele_freq", "fill", "center", "multiplier"):
        np.testing.assert_array_equal(getattr(rel.marker_scaling, field), getattr(ref.marker_scaling, field))
    assert rel.marker_scaling.allele_freq_source == ref.marker_scaling.allele_freq_source
    assert rel.qc_report == report  # dropped markers and individuals by name, counts of missing calls


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.exact
def test_plink_sample_matches_in_memory(plink_bed, client, scaling):
    ref, report = in_memory(plink_bed, scaling=scaling)
    rel = bb.genomic_relationship_bed(plink_bed, scaling=scaling, block_size=6, client=client)  # 4 blocks, last of 2
    assert report.n_missing_out == 141
    assert_same(rel, ref, report)


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.exact
def test_simulated_bed_matches_in_memory(sim_bed, client, scaling):
    ref, report = in_memory(sim_bed, scaling=scaling)
    rel = bb.genomic_relationship_bed(sim_bed, scaling=scaling, block_size=300, split_every=3, client=client)
    assert set(report.dropped_markers) == {"all_missing", "monomorphic"}
    assert_same(rel, ref, report)


@pytest.mark.exact
def test_optional_filters_and_dropped_individual(sim_bed, client):
    qc = {"min_maf": 0.05, "min_call_rate": 0.9, "min_individual_call_rate": 0.9}
    ref, report = in_memory(sim_bed, scaling="standardized", **qc)
    rel = bb.genomic_relationship_bed(sim_bed, scaling="standardized", block_size=512, client=client, **qc)
    assert report.dropped_individuals == ("ind4",)
    assert set(report.dropped_markers) == {"all_missing", "call_rate", "monomorphic", "maf"}
    assert_same(rel, ref, report)


@pytest.mark.parametrize("scaling", ["standardized-hwe", "centered"])
@pytest.mark.exact
def test_base_allele_freq(sim_bed, client, scaling, rng):
    markers = bb.read_plink(sim_bed).markers
    p = pd.Series(rng.uniform(0.1, 0.9, markers.size), index=markers)
    ref, report = in_memory(sim_bed, scaling=scaling, allele_freq=p)
    for given in (p, p.to_numpy()):  # by name, or one value per marker of the .bim
        rel = bb.genomic_relationship_bed(sim_bed, scaling=scaling, allele_freq=given, block_size=700, client=client)
        assert rel.marker_scaling.allele_freq_source == "base"
        assert_same(rel, ref, report)
    with pytest.raises(bb.InputError, match=r"one frequency per marker of the \.bim"):
        bb.genomic_relationship_bed(sim_bed, scaling=scaling, allele_freq=p.to_numpy()[:-1], client=client)


@pytest.mark.exact
def test_no_cluster_address_and_float32(plink_bed, client):
    import dask

    ref, _ = in_memory(plink_bed, scaling="centered")
    local = bb.genomic_relationship_bed(plink_bed, scaling="centered", block_size=7)  # no client: in this process
    with dask.config.set(scheduler="threads"):  # a configured scheduler is used
        threads = bb.genomic_relationship_bed(plink_bed, scaling="centered", block_size=7)
    by_address = bb.genomic_relationship_bed(plink_bed, scaling="centered", client=client.scheduler.address)
    single = bb.genomic_relationship_bed(plink_bed, scaling="centered", block_size=7, dtype=np.float32, client=client)
    assert np.abs(local.matrix - ref.matrix).max() <= ATOL
    assert np.abs(threads.matrix - ref.matrix).max() <= ATOL
    assert np.abs(by_address.matrix - ref.matrix).max() <= ATOL
    assert single.matrix.dtype == np.float32
    assert np.abs(single.matrix - ref.matrix).max() <= 1e-5 * np.abs(ref.matrix).max()  # float32 rounding


@pytest.mark.structural
def test_bad_input(plink_bed, tmp_path):
    with pytest.raises(bb.InputError, match="allele_freq applies to"):
        bb.genomic_relationship_bed(plink_bed, allele_freq=np.full(20, 0.5))
    with pytest.raises(bb.InputError, match="missing file"):
        bb.genomic_relationship_bed(tmp_path / "absent.bed")
    for suffix in (".bim", ".fam"):
        (tmp_path / f"cut{suffix}").write_bytes(plink_bed.with_suffix(suffix).read_bytes())
    (tmp_path / "cut.bed").write_bytes(plink_bed.read_bytes()[:-5])
    with pytest.raises(bb.InputError, match="truncated"):
        bb.genomic_relationship_bed(tmp_path / "cut.bed")


@pytest.mark.structural
def test_missing_dask_says_how_to_install(plink_bed, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "dask", None)  # `import dask` now raises ImportError
    with pytest.raises(bb.InputError, match=r"pip install 'bayesblup\[dask\]'"):
        bb.genomic_relationship_bed(plink_bed)
    assert main(["grm", "--genotypes", str(plink_bed), "--dask", "--out", str(tmp_path / "G.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'bayesblup[dask]'" in err


@pytest.mark.structural
def test_import_does_not_load_dask():
    code = "import sys, bayesblup; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.exact
def test_cli_dask_writes_the_same_file(plink_bed, sim_bed, client, tmp_path):
    # One block on the sample: the same syrk on the same slab, so the CSV text is identical.
    base = ["grm", "--genotypes", str(plink_bed), "--scaling", "centered", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "mem.csv")]) == 0
    assert main([*base, "--dask", "--out", str(tmp_path / "dask.csv")]) == 0
    assert (tmp_path / "mem.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()

    # Several blocks on a cluster, with QC filters: the same arrays, G to rounding.
    base = ["grm", "--genotypes", str(sim_bed), "--scaling", "standardized-hwe", "--min-maf", "0.05", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "mem.npz")]) == 0
    dask_args = ["--dask", "--scheduler", client.scheduler.address, "--block-size", "333"]
    assert main([*base, *dask_args, "--out", str(tmp_path / "dask.npz")]) == 0
    with np.load(tmp_path / "mem.npz") as mem, np.load(tmp_path / "dask.npz") as dsk:
        assert set(mem.files) == set(dsk.files)
        for name in mem.files:
            if name == "G":
                assert np.abs(mem["G"] - dsk["G"]).max() <= ATOL
            else:
                np.testing.assert_array_equal(mem[name], dsk[name])


@pytest.mark.exact
def test_the_program_takes_dask_however_argparse_spells_it(plink_bed, tmp_path):
    """The program (not main()) hides Dask from xarray unless the command uses it; argparse decides what --dask is,
    so an abbreviation (--das) still computes G with Dask, the same file as --dask. It was refused once ("needs the
    optional extra"): the program looked for the exact string --dask in sys.argv."""
    base = [sys.executable, "-m", "bayesblup", "grm", "--genotypes", str(plink_bed), "--scaling", "centered"]
    for flag, name in (("--dask", "full.csv"), ("--das", "short.csv")):
        run = subprocess.run([*base, flag, "--quiet", "--out", str(tmp_path / name)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "full.csv").read_bytes() == (tmp_path / "short.csv").read_bytes()


@pytest.mark.structural
def test_cli_dask_refuses_non_plink_input(tmp_path, capsys):
    csv = tmp_path / "geno.csv"
    csv.write_text("id,m1,m2\na,0,1\nb,2,1\n")
    assert main(["grm", "--genotypes", str(csv), "--dask", "--out", str(tmp_path / "G.npz")]) == 2
    assert "--dask reads a PLINK .bed" in capsys.readouterr().err
    assert main(["grm", "--genotypes", str(csv), "--scheduler", "tcp://x:1", "--out", str(tmp_path / "G.npz")]) == 2
    assert "add --dask" in capsys.readouterr().err
    bed = Path(__file__).parents[1] / "data" / "plink_sample" / "sample.bed"
    assert main(["grm", "--genotypes", str(bed), "--dask", "--vcf-field", "DS", "--out", str(tmp_path / "G.npz")]) == 2
    assert "--vcf-field DS does not apply" in capsys.readouterr().err


@pytest.mark.structural
def test_default_client_is_used(plink_bed, client):
    """client=None runs on the active distributed Client, as dask.compute does."""
    ref, _ = in_memory(plink_bed, scaling="standardized")
    with client.as_current(), distributed.get_task_stream(client) as tasks:
        rel = bb.genomic_relationship_bed(plink_bed, block_size=5)
    assert np.abs(rel.matrix - ref.matrix).max() <= ATOL
    ran = {t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in tasks.data}
    assert sum(key.startswith("_block_gram") for key in ran) == 4  # 20 markers, 5 per block


@pytest.mark.structural
def test_port_8787_may_be_taken(sim_bed):
    """With Dask's (and RStudio Server's) default port taken, a cluster as the fixture and the docs make it starts
    and computes G."""
    import socket

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("0.0.0.0", 8787))
            taken.listen()
        except OSError:
            pass  # already taken by someone else: the condition under test holds anyway
        with (
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c,
            distributed.Client(c, set_as_default=False) as client,
        ):
            G = bb.genomic_relationship_bed(sim_bed, block_size=500, client=client)
    assert G.n_individuals > 0
