"""Editing projections: idempotent, exact on the known part, and equal to the reference's matrix form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import Colorize, Identity, Inpaint, SuperRes
from engine.operators import LUMA, block_mean, luma_axis

torch.manual_seed(0)
X = torch.rand(2, 3, 16, 16) * 2 - 1
Y = torch.rand(2, 3, 16, 16) * 2 - 1
MASK = (torch.rand(1, 1, 16, 16) > 0.5).float()
OPS = {"inpaint": Inpaint(MASK), "colorize": Colorize(), "colorize_neutral": Colorize(neutral=True),
       "superres2": SuperRes(2), "superres8": SuperRes(8), "superres4_smooth": SuperRes(4, smooth=True),
       "identity": Identity()}


@pytest.mark.parametrize("name", sorted(OPS))
def test_idempotent(name):
    op = OPS[name]
    once = op.project(X, Y)
    torch.testing.assert_close(op.project(once, Y), once, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["inpaint", "colorize", "colorize_neutral", "superres2", "superres8"])
def test_known_part_comes_from_y_free_part_from_x(name):
    op = OPS[name]
    out = op.project(X, Y)
    # Known part: projecting anything with y gives y's known part.
    torch.testing.assert_close(op.known(out), op.known(Y), atol=1e-6, rtol=0)
    # Free part: x - known(x) survives.
    torch.testing.assert_close(out - op.known(out), X - op.known(X), atol=1e-6, rtol=0)


def test_inpaint_is_bit_exact_on_known_pixels():
    out = Inpaint(MASK).project(X, Y)
    m = MASK.bool().expand_as(X)
    assert torch.equal(out[m], Y[m]) and torch.equal(out[~m], X[~m])


def test_colorize_matches_reference_orthogonal_matrix():
    v = np.asarray(LUMA) / np.linalg.norm(LUMA)
    Q = np.eye(3)
    Q[:, 0] = v
    Q = np.linalg.qr(Q)[0]
    Q = -Q if Q[:, 0].sum() < 0 else Q
    Qt = torch.from_numpy(Q).float()
    cx, cy = torch.einsum("bchw,cd->bdhw", X, Qt), torch.einsum("bchw,cd->bdhw", Y, Qt)
    mix = torch.cat([cy[:, :1], cx[:, 1:]], dim=1)
    want = torch.einsum("bdhw,cd->bchw", mix, Qt)
    torch.testing.assert_close(Colorize().project(X, Y), want, atol=1e-6, rtol=0)


def test_colorize_from_grey_keeps_luma():
    grey = torch.rand(1, 1, 8, 8) * 2 - 1
    y = Colorize().from_grey(grey)
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    torch.testing.assert_close((y * w).sum(1, keepdim=True), grey * w.sum(), atol=1e-6, rtol=0)
    assert torch.allclose(y / luma_axis(), y[:, :1] / luma_axis()[:, :1])


def test_neutral_colorize_known_image_is_grey_with_the_same_luma():
    """The loop starts from y, so the neutral y must carry no colour; the reference y is green-heavy."""
    grey = torch.rand(2, 1, 8, 8) * 2 - 1
    op = Colorize(neutral=True)
    y = op.from_grey(grey)
    assert y.shape == (2, 3, 8, 8)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    ref = Colorize().from_grey(grey)
    torch.testing.assert_close((y * w).sum(1), (ref * w).sum(1), atol=1e-6, rtol=0)
    torch.testing.assert_close(op.project(y, y), y, atol=1e-6, rtol=0)
    assert (ref.amax(1) - ref.amin(1)).mean() > 0.2  # what the loop used to start from


def test_superres_keeps_block_means_and_from_low():
    low = torch.rand(1, 3, 4, 4)
    op = SuperRes(4)
    out = op.project(X[:1], op.from_low(low))
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(out, 4), low, atol=1e-6, rtol=0)
    torch.testing.assert_close(block_mean(out, 4), op.from_low(low), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not a multiple"):
        SuperRes(3).project(X, Y)


def test_smooth_superres_keeps_block_means_without_a_block_grid():
    """The smooth projection keeps every block mean exactly, like the reference's, but its
    correction has no steps at block borders: projecting a smooth image onto the block means of
    another smooth image stays smooth."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    x = torch.stack([0.5 * xx, 0.3 * yy, 0.2 * xx * yy])[None]
    y = torch.stack([0.4 * torch.sin(2 * xx), 0.5 * yy ** 2, 0.3 * xx - 0.2 * yy])[None]
    exact, smooth = SuperRes(4).project(x, y), SuperRes(4, smooth=True).project(x, y)
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(smooth, 4), torch.nn.functional.avg_pool2d(y, 4),
                               atol=1e-6, rtol=0)

    def border_jump(img):  # mean |difference| across block borders over that within blocks
        d = (img[..., :, 1:] - img[..., :, :-1]).abs()
        at_border = torch.zeros(31, dtype=torch.bool)
        at_border[3::4] = True
        return float(d[..., at_border].mean() / d[..., ~at_border].mean())

    assert border_jump(exact) > 3.0  # the reference correction steps at every block border
    assert border_jump(smooth) < 1.5
    # x already consistent with y comes back unchanged.
    torch.testing.assert_close(SuperRes(4, smooth=True).project(exact, y), exact, atol=1e-6, rtol=0)


def test_neutral_colorize_keeps_luma_and_only_shifts_along_grey():
    """The product's variant: same luma as y, and x's colour differences (R-G, B-G) untouched,
    so a brightness error is fixed without tinting; the reference projection tints it."""
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    out = Colorize(neutral=True).project(X, Y)
    torch.testing.assert_close((out * w).sum(1), (Y * w).sum(1), atol=1e-6, rtol=0)
    diff = out - X
    torch.testing.assert_close(diff[:, 0], diff[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(diff[:, 2], diff[:, 1], atol=1e-6, rtol=0)
    # A grey x that is too dark stays grey under the neutral fix; the orthogonal one tints it.
    y = Colorize().from_grey(torch.full((1, 1, 2, 2), 0.5))
    dark = torch.full((1, 3, 2, 2), -0.2)
    n, o = Colorize(neutral=True).project(dark, y), Colorize().project(dark, y)
    assert (n.amax(1) - n.amin(1)).max() < 1e-6 and (o.amax(1) - o.amin(1)).max() > 0.1


def test_fit_gamut_keeps_luma_and_hue_where_clipping_shifts_them():
    from engine.tensors import fit_gamut, rgb_to_ycbcr

    rng = np.random.default_rng(0)
    y = rng.uniform(5, 250, (4000, 1)).astype(np.float32)
    chroma = rng.normal(0, 80, (4000, 3)).astype(np.float32)
    chroma -= (chroma @ np.array([0.299, 0.587, 0.114], np.float32))[:, None]  # zero luma: the pixel's luma is y
    rgb = y + chroma
    out = fit_gamut(rgb)
    assert out.min() >= 0 and out.max() <= 255
    inside = ((rgb >= 0) & (rgb <= 255)).all(1)
    assert (~inside).mean() > 0.2 and np.array_equal(out[inside], rgb[inside])  # in-gamut pixels untouched
    luma = rgb_to_ycbcr(out)[:, 0]
    assert np.abs(luma - y[:, 0]).max() < 0.01
    # The hue (chroma direction) survives: the new chroma is a positive multiple of the old.
    c_new = out - y
    cos = (c_new * chroma).sum(1) / (np.linalg.norm(c_new, axis=1) * np.linalg.norm(chroma, axis=1) + 1e-9)
    assert cos[~inside].min() > 0.999
    # Plain clipping moves the luma of the same pixels by up to tens of levels.
    assert np.abs(rgb_to_ycbcr(np.clip(rgb, 0, 255))[:, 0] - y[:, 0])[~inside].max() > 10
