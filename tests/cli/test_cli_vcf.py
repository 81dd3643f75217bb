"""`bayesblup fit` and `grm` on VCF.gz and BCF genotypes: the PLINK sample as a VCF gives the PLINK set's results.

tests/data/vcf/sample.vcf counts the ALT allele, which is PLINK's A1 (tests/data/make_sample_vcf.py), so the calls,
G and a quadrature fit (deterministic) agree with those from tests/data/plink_sample exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vcf_files import convert

import bayesblup as bb
from bayesblup.cli.main import main

DATA = Path(__file__).parents[1] / "data"
SAMPLE_VCF = DATA / "vcf" / "sample.vcf"
SAMPLE_BED = DATA / "plink_sample" / "sample.bed"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The sample as a bgzip VCF.gz and a BCF, and a simulated trait y of its 120 individuals."""
    d = tmp_path_factory.mktemp("vcf_cli")
    ids = bb.read_plink(SAMPLE_BED).ids
    y = pd.Series(np.random.default_rng(19).normal(size=ids.size), index=pd.Index(ids, name="id"), name="y")
    y.to_frame().to_csv(d / "pheno.csv")
    return {
        "vcf.gz": convert(SAMPLE_VCF, d / "sample.vcf.gz", "wz"),
        "bcf": convert(SAMPLE_VCF, d / "sample.bcf", "wb"),
        "pheno": d / "pheno.csv",
    }


def fit_args(genotypes, pheno, out, *extra):
    return [
        "fit", "--genotypes", str(genotypes), "--phenotypes", str(pheno), "--trait", "y", "--model", "gblup",
        "--method", "quadrature", "--seed", "3", "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.exact
def test_fit_on_a_vcf_gz_gives_the_fit_on_the_plink_set(inputs, tmp_path, capsys):
    """End to end: read, QC report, G, quadrature fit, outputs; the posterior equals the PLINK run's bit for bit
    (same calls, same G, deterministic quadrature)."""
    assert main(fit_args(inputs["vcf.gz"], inputs["pheno"], tmp_path / "vcf", "--min-maf", "0.05")) == 0
    out = capsys.readouterr().out
    assert f"genotypes: 120 individuals x 20 markers from {inputs['vcf.gz']}" in out
    assert "calls: ALT allele dosages, from the VCF's DS field (auto: every record has DS)" in out
    assert "missing calls: 141 of 2400 (5.88%)" in out
    assert main(fit_args(SAMPLE_BED, inputs["pheno"], tmp_path / "bed", "--min-maf", "0.05")) == 0
    vcf = json.loads((tmp_path / "vcf" / "summary.json").read_text())
    bed = json.loads((tmp_path / "bed" / "summary.json").read_text())
    assert vcf["settings"]["qc"]["counted"].startswith("ALT allele dosages")
    assert vcf["parameters"] == bed["parameters"]
    values_vcf = pd.read_csv(tmp_path / "vcf" / "genetic_values.csv")
    assert values_vcf.equals(pd.read_csv(tmp_path / "bed" / "genetic_values.csv"))


@pytest.mark.exact
@pytest.mark.parametrize("field", ["GT", "DS"])
def test_grm_on_a_bcf_gives_the_g_of_the_plink_set(inputs, tmp_path, capsys, field):
    vcf_out, bed_out = tmp_path / "G_vcf.npz", tmp_path / "G_bed.npz"
    assert main(["grm", "--genotypes", str(inputs["bcf"]), "--vcf-field", field, "--out", str(vcf_out)]) == 0
    assert f"calls: ALT allele {'counts' if field == 'GT' else 'dosages'}, from the VCF's" in capsys.readouterr().out
    assert main(["grm", "--genotypes", str(SAMPLE_BED), "--out", str(bed_out)]) == 0
    G_vcf, G_bed = bb.read_relationship(vcf_out), bb.read_relationship(bed_out)
    assert np.array_equal(G_vcf.matrix, G_bed.matrix) and list(G_vcf.ids) == list(G_bed.ids)


@pytest.mark.structural
def test_without_cyvcf2_the_command_line_says_how_to_install_it(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cyvcf2", None)  # import cyvcf2 raises ImportError
    assert main(fit_args(inputs["vcf.gz"], inputs["pheno"], tmp_path / "fit")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'needs cyvcf2, which is not installed: pip install "bayesblup[vcf]"' in err
    assert not (tmp_path / "fit").exists()


@pytest.mark.structural
def test_the_help_and_the_unknown_format_error_name_vcf(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["grm", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ".vcf/.vcf.gz/.bcf file" in help_text and "--vcf-field {auto,GT,DS}" in help_text
    (tmp_path / "geno.txt").write_text("x")
    assert main(["grm", "--genotypes", str(tmp_path / "geno.txt"), "--out", str(tmp_path / "G.npz")]) == 2
    assert "or a .vcf, .vcf.gz or .bcf file" in capsys.readouterr().err


@pytest.mark.structural
def test_mblup_on_a_vcf_places_marker_effects_at_its_chrom_and_pos(inputs, tmp_path):
    """Without --map, M-BLUP's marker effects take the VCF's own CHROM and POS (as a PLINK set's take its .bim)."""
    assert main([*fit_args(inputs["bcf"], inputs["pheno"], tmp_path / "m", "--quiet"), "--model", "mblup"]) == 0
    effects = pd.read_csv(tmp_path / "m" / "marker_effects.csv", dtype={"marker": str, "chromosome": str})
    assert list(effects.columns[:3]) == ["marker", "chromosome", "position"]
    own = bb.read_vcf(inputs["bcf"]).marker_map
    assert (effects["chromosome"].to_numpy() == own.loc[effects["marker"], "chromosome"].astype(str).to_numpy()).all()
    assert (effects["position"].to_numpy() == own.loc[effects["marker"], "position"].to_numpy()).all()


# --- --min-dosage-r2: imputed dosages ----------------------------------------------------------------------------

POOR = ("IGR1118a_1", "IGR1143a_1", "IGR1218a_2")  # records 1, 3 and 6 of the sample


def imputed_vcf(path: Path) -> Path:
    """The sample with the DS of POOR shrunk to a fifth of their deviation from the marker's mean dosage, as a poor
    imputation does (r2 about 1/25 of the calls' r2); the others keep their whole DS. A fractional DS anywhere makes
    every call a float32 dosage."""
    lines = SAMPLE_VCF.read_text().splitlines()
    for k, line in enumerate(lines):
        fields = line.split("\t")
        if line.startswith("#") or fields[2] not in POOR:
            continue
        cells = [cell.split(":") for cell in fields[9:]]
        mean = np.mean([float(ds) for _, ds in cells if ds != "."])
        shrunk = [f"{gt}:{ds if ds == '.' else f'{mean + 0.2 * (float(ds) - mean):.4f}'}" for gt, ds in cells]
        lines[k] = "\t".join([*fields[:9], *shrunk])
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.structural
def test_fit_with_min_dosage_r2_drops_the_poorly_imputed_markers(inputs, tmp_path, capsys):
    vcf = imputed_vcf(tmp_path / "imputed.vcf")
    assert main(fit_args(vcf, inputs["pheno"], tmp_path / "fit", "--min-dosage-r2", "0.3")) == 0
    out = capsys.readouterr().out
    assert f"dropped 3 markers with dosage r2 below 0.3 (poorly imputed): {', '.join(POOR)}" in out
    assert "warning" not in out
    qc = json.loads((tmp_path / "fit" / "summary.json").read_text())["settings"]["qc"]
    assert qc["dosages"] is True and qc["filters"]["min_dosage_r2"] == 0.3
    assert qc["dropped_markers"]["dosage_r2"] == list(POOR) and qc["n_markers_out"] == 17
    assert qc["poorly_imputed"] is None


@pytest.mark.structural
def test_without_min_dosage_r2_the_report_warns_and_quiet_silences_it(inputs, tmp_path, capsys):
    vcf = imputed_vcf(tmp_path / "imputed.vcf")
    assert main(["grm", "--genotypes", str(vcf), "--out", str(tmp_path / "G.npz")]) == 0
    out = capsys.readouterr().out
    assert "warning: 3 kept markers have dosage r2 below 0.3 (poorly imputed" in out
    assert "--min-dosage-r2 0.3 drops them" in out and "m = 20" in out
    assert main(["grm", "--genotypes", str(vcf), "--out", str(tmp_path / "G2.npz"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["grm", "--genotypes", str(vcf), "--out", str(tmp_path / "G3.npz"), "--min-dosage-r2", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "dropped 3 markers with dosage r2 below 0.3" in out and "m = 17" in out and "warning" not in out
