"""Evaluation: colour conversions and metrics on known inputs, and a whole run on two tiny images."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import preset
from engine.eval import default_settings, evaluate, markdown_table, settings_for, targets, write_report
from engine.eval.baselines import area_downsample, box_mask, grey, mean_fill, stroke_mask, upscale
from engine.eval.color import colourfulness, lab_to_rgb, rgb_to_lab
from engine.eval.metrics import PSNR_CAP, ab_error, ab_products, hf_energy, hue_agreement, psnr
from engine.pipeline import Model


def test_lab_known_values_and_round_trip() -> None:
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.02)
    rgb = np.random.default_rng(0).random((50, 3))
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-9)


def test_psnr_and_colour_errors() -> None:
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a) == PSNR_CAP
    assert psnr(a + 1, a) == pytest.approx(10 * math.log10(255**2))
    region = np.zeros((8, 8), bool)
    region[:2] = True
    b = a.copy()
    b[4:] = 0  # outside the region
    assert psnr(b, a, region) == PSNR_CAP
    assert ab_error(grey(a), a) == pytest.approx(0, abs=1e-6)
    assert colourfulness(grey(np.random.default_rng(1).integers(0, 255, (8, 8, 3), dtype=np.uint8))) == 0.0


def test_hue_agreement_separates_hue_from_saturation() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(30, 220, (16, 16, 3), dtype=np.uint8)
    lab = rgb_to_lab(truth)

    def with_ab(scale: float) -> np.ndarray:
        return np.clip(np.round(lab_to_rgb(lab * [1, scale, scale]) * 255), 0, 255).astype(np.uint8)

    assert hue_agreement(*ab_products(truth, truth)) == pytest.approx(1.0)
    assert hue_agreement(*ab_products(with_ab(0.5), truth)) > 0.98  # paler, same hues
    assert hue_agreement(*ab_products(with_ab(-0.5), truth)) < -0.98  # complementary hues
    assert hue_agreement(*ab_products(grey(truth), truth)) is None  # no colour, no hue
    other = rng.integers(30, 220, (16, 16, 3), dtype=np.uint8)
    assert abs(hue_agreement(*ab_products(other, truth))) < 0.3  # unrelated colours
    # The identity the eval's colorization bar rests on: a*b* error vs grey's = 1 - 2 c r + r^2.
    pred = with_ab(0.6)
    dot, pp, tt, _ = ab_products(pred, truth)
    p, t = rgb_to_lab(pred)[..., 1:], lab[..., 1:]
    c, r = hue_agreement(dot, pp, tt, 1), math.sqrt(pp / tt)
    assert ((p - t) ** 2).sum() / (t**2).sum() == pytest.approx(1 - 2 * c * r + r * r, rel=1e-9)


def test_high_frequency_energy() -> None:
    flat = np.full((32, 32, 3), 90, np.uint8)
    checker = ((np.indices((32, 32)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2)
    assert hf_energy(flat) == 0.0
    assert hf_energy(checker) > 1000
    blurred = upscale(area_downsample(checker, 2), 2, "bicubic")
    assert hf_energy(blurred) < 0.01 * hf_energy(checker)


def test_masks_and_baselines() -> None:
    assert box_mask(32).mean() == pytest.approx(0.25)
    s = stroke_mask(32, seed=3)
    assert s.shape == (32, 32) and 0.05 < s.mean() < 0.6 and np.array_equal(s, stroke_mask(32, seed=3))
    img = np.random.default_rng(2).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    hole = box_mask(16)
    filled = mean_fill(img, hole)
    assert np.array_equal(filled[~hole], img[~hole]) and len(np.unique(filled[hole].reshape(-1, 3), axis=0)) == 1
    np.testing.assert_array_equal(area_downsample(np.full((8, 8, 3), 7, np.uint8), 4), np.full((2, 2, 3), 7))


def _two_image_photoset(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(5)
    rows = []
    for i, split in enumerate(("heldout", "heldout", "train")):
        low = (rng.random((6, 7, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(low).resize((40 + 8 * i, 36), Image.Resampling.BICUBIC)
        img.save(folder / "images" / f"p{i}.png")
        rows.append({"file": f"images/p{i}.png", "source_group": "g", "package": "p", "path": f"p{i}.png", "licence": "CC0-1.0",
                     "author": "t", "split": split, "width": img.width, "height": img.height, "sha256": ""})
    with (folder / "manifest.tsv").open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return folder


def test_eval_on_two_tiny_images(tmp_path: Path) -> None:
    data = _two_image_photoset(tmp_path / "photos")
    model = Model.random(preset("tiny"), device="cpu", precision="fp32", threads=1)
    report = evaluate(model, data, n=4, log=lambda _m: None)
    methods = {(r.task, r.method) for r in report.rows}
    settings = settings_for(model)

    def ours(family: str) -> set[str]:
        return {s.label for s in settings[family]}

    for k in (2, 4):
        task = f"×{k} super-resolution"
        assert {(task, m) for m in ("nearest", "bicubic", "lanczos", *ours(f"sr{k}"))} <= methods
    assert {("colorization", m) for m in ("grey input", "truth", *ours("colour"))} <= methods
    whole = {s.label for s in settings["colour"] if s.samples == 1} | {"grey input"}
    assert {m for t, m in methods if t == "colorization (whole photos)"} == whole
    grey_whole = next(r for r in report.rows if r.task == "colorization (whole photos)" and r.method == "grey input")
    assert grey_whole.chroma_ratio is not None and grey_whole.chroma_ratio < 0.01
    assert grey_whole.hue_agreement is None  # a grey image has no hue to agree with
    truth_row = next(r for r in report.rows if r.task == "colorization" and r.method == "truth")
    assert truth_row.hue_agreement == pytest.approx(1.0)
    for task in ("inpainting (box)", "inpainting (stroke)"):
        assert {(task, m) for m in ("mean fill", "smooth fill (no network)", *ours("fill"))} <= methods
    for r in report.rows:
        for v in (r.psnr, r.hf_ratio, r.ab_error, r.colourfulness, r.chroma_ratio, r.hue_agreement):
            assert v is None or math.isfinite(v), r
        assert r.psnr is not None and r.ab_error is not None
    table = markdown_table(report)
    assert table.count("\n") == len(report.rows) + 1 and "| ×4 super-resolution | bicubic |" in table
    assert len(targets(report)) == 6
    assert report.defaults == {k: v.label for k, v in default_settings(model).items()}
    paths = write_report(report, tmp_path / "out")
    assert paths["markdown"].is_file() and paths["json"].is_file()
    with Image.open(paths["×4 super-resolution"]) as sheet:
        assert sheet.width > 5 * 96


def test_default_settings_follow_the_model_kind() -> None:
    """EDM-trained models edit with DDIM (holes: ancestral, over a structure pass) steps by default; consistency models keep Algorithm 4."""
    import dataclasses

    cm = Model.random(preset("tiny"), device="cpu", precision="fp32", threads=1)
    spec = cm.spec
    edm = Model(dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind="edm")),
                cm.denoiser.net.state_dict(), device="cpu", precision="fp32", threads=1)
    assert {s.sampler for s in default_settings(cm).values()} == {"consistency"}
    d = default_settings(edm)
    assert d["sr2"].sampler == d["sr4"].sampler == "ddim" and d["colour"].sampler == "consistency"
    # Holes and x4 --detail: one ancestral sample's texture over a cheap consistency answer's structure.
    for family in ("fill", "sr4detail"):
        assert d[family].sampler == "ancestral" and d[family].base is not None and d[family].blend == 1
        assert d[family].base.sampler == "consistency" and ", over σ0=" in d[family].label, d[family].label
    assert d["sr2"] != d["sr4"] != d["sr4detail"]  # x2 affords a longer loop, --detail a much longer one
    for model in (cm, edm):
        table = settings_for(model)
        for family, setting in default_settings(model).items():
            assert list(table[family.removesuffix("detail")]).count(setting) == 1  # scored once, whatever the kind


def test_targets_judge_each_upscale_factor_by_its_own_default() -> None:
    """x2 and x4 have different default loops; each factor's detail bar reads its own."""
    from engine.eval.evaluate import EvalReport, Row

    def row(task: str, method: str, db: float, hf: float) -> Row:
        return Row(task, method, db, hf, 1.0, 30.0, 1.0)

    rows = []
    for k in (2, 4):
        task = f"×{k} super-resolution"
        rows += [row(task, "bicubic", 28.0, 0.1), row(task, "ours long", 27.5, 0.8), row(task, "ours short", 27.9, 0.2)]
    report = EvalReport("m", 32, 4, tuple(rows), (), (), {"sr2": "ours long", "sr4": "ours short"})
    x2, x4 = targets(report)
    assert x2.startswith("×2") and "detail MET (ours long: 27.50 dB, HF 80 %" in x2
    assert x4.startswith("×4") and "detail NOT MET (ours short: 27.90 dB, HF 20 %" in x4 and "--detail" not in x4
    # x4's opt-in detail loop is judged by the same bar, on the same line.
    report = EvalReport("m", 32, 4, tuple(rows), (), (), {"sr2": "ours long", "sr4": "ours short", "sr4detail": "ours long"})
    x4 = targets(report)[1]
    assert "detail NOT MET (ours short" in x4 and "with --detail MET (ours long: 27.50 dB, HF 80 %" in x4


def test_sheet_labels_fit_their_column_and_keep_every_part():
    from PIL import ImageFont

    from engine.eval.report import contact_sheet, label_lines

    font = ImageFont.load_default()
    label = "ours σ0=2, 4×40 NFE, ancestral, structure of 4"
    lines = label_lines(label, 96, font)
    assert len(lines) >= 2 and all(font.getlength(line) <= 96 for line in lines)
    assert ", ".join(lines) == "ours: sigma0=2, 4x40 NFE, ancestral, structure of 4"
    # A part too wide for the column alone is broken between its words; no word is lost.
    long = "ours σ0=10, 120+8 NFE, ancestral, over σ0=1 4×2 NFE averaged (split 0.15–0.275 cycles/px)"
    broken = label_lines(long, 96, font)
    assert all(font.getlength(line) <= 96 for line in broken)
    assert " ".join(" ".join(broken).replace(",", "").split()) == " ".join(
        long.replace(" σ", ": sigma").replace("×", "x").replace("–", "-").replace(",", "").split())
    tiles = np.zeros((2, 8, 8, 3), np.uint8)
    sheet = contact_sheet(("input", label), (tiles, tiles + 255), tile=96)
    assert sheet.size == (200, 4 + 12 * len(lines) + 2 * 100)
    assert sheet.getpixel((100, 4 + 12 * len(lines))) == (255, 255, 255) and sheet.getpixel((0, 4 + 12 * len(lines))) == (0, 0, 0)
