"""Very large photos (50-100 Mpx) through the engine: what each step holds in memory at once.

Measured structurally on small images with the strip size lowered (`engine.pipeline.STRIP_PX`,
`engine.imageio.STRIP_PX`): the largest array turned into floats, or numpy's traced peak, against
the photo's own size. On a 96 Mpx photo the old stroke edit peaked at 2.7 GB over its input and
the JPEG flattening of a transparent picture at about 10 bytes a pixel.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

import engine.imageio as imageio
import engine.pipeline as pipeline
from engine.tensors import resize_float, shrink_float

from .test_stroke_edit import make_photo as _photo




@pytest.fixture
def float_spy(monkeypatch):
    """Element counts of every array `engine.pipeline` converts to float (`as_float`) or resizes
    (`resize_float`'s result): the full-size float copies a 96 Mpx photo cannot afford."""
    seen: list[int] = []
    real_as, real_resize = pipeline.as_float, pipeline.resize_float

    def as_float(a):
        seen.append(np.asarray(a).size)
        return real_as(a)

    def resize(*args, **kw):
        out = real_resize(*args, **kw)
        seen.append(out.size)
        return out

    monkeypatch.setattr(pipeline, "as_float", as_float)
    monkeypatch.setattr(pipeline, "resize_float", resize)
    monkeypatch.setattr(pipeline, "STRIP_PX", 4096, raising=False)
    return seen


@pytest.mark.parametrize("masked", [False, True])
def test_stroke_edit_never_holds_the_whole_photo_as_floats(tiny_model, float_spy, masked):
    # A sketch across a whole 96 Mpx photo: the guide as floats, its Lanczos downscale's copies,
    # the full-size upscaled result and its clipped and rounded copies took 2.7 GB (17 s).
    guide = _photo(200, 300)
    mask = None
    if masked:
        mask = np.zeros(guide.shape[:2], np.uint8)
        mask[20:180, 30:270] = 255  # one window: the whole photo
    out = tiny_model.stroke_edit(guide, strength=0.4, mask=mask, seed=0)
    assert out.shape == guide.shape and out.dtype == guide.dtype
    assert float_spy and max(float_spy) <= guide.size // 4, max(float_spy)
    if masked:
        keep = mask == 0
        assert np.array_equal(out[keep], guide[keep])


def test_stroke_edit_in_strips_gives_the_same_picture(tiny_model, monkeypatch):
    guide = _photo(150, 220, seed=3)
    whole = tiny_model.stroke_edit(guide, strength=0.3, seed=1)
    monkeypatch.setattr(pipeline, "STRIP_PX", 2000, raising=False)
    strips = tiny_model.stroke_edit(guide, strength=0.3, seed=1)
    # Strips change only float rounding in the resampling: at most one level, rarely.
    diff = np.abs(whole.astype(int) - strips.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_stroke_edit_keeps_16_bits(tiny_model, monkeypatch):
    monkeypatch.setattr(pipeline, "STRIP_PX", 3000, raising=False)
    guide = _photo(90, 120).astype(np.uint16) * 257 + 100
    out = tiny_model.stroke_edit(guide, strength=0.0, seed=0)
    assert out.dtype == np.uint16 and (out % 257 != 0).any()


@pytest.mark.parametrize("resample", [Image.Resampling.LANCZOS, Image.Resampling.BOX, Image.Resampling.BICUBIC])
@pytest.mark.parametrize("shape,size", [((301, 157, 3), (23, 41)), ((64, 80), (80, 64)), ((97, 45, 3), (45, 97))])
def test_shrink_float_matches_a_whole_image_resize(resample, shape, size):
    rng = np.random.default_rng(0)
    src = (rng.random(shape) * 65535).astype(np.uint16)
    parts = []

    def to_float(a):
        parts.append(a.shape[0])
        return a.astype(np.float32) / 65535

    got = shrink_float(src, size, resample, to_float, strip_px=shape[1] * 20)
    want = resize_float(src.astype(np.float32) / 65535, size, resample)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-5), np.abs(got - want).max()
    assert len(parts) > 1 and max(parts) < shape[0]


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _transparent(h: int, w: int):
    rgb = _photo(h, w)
    alpha = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    return imageio.Picture(rgb=rgb, alpha=alpha)


def test_flattening_onto_white_works_in_strips(monkeypatch):
    # A transparent 96 Mpx picture saved as JPEG was flattened as whole float32 arrays: the alpha,
    # rgb * a, the white part, their sum and the rounding, about 10 bytes a pixel at once.
    pic = _transparent(400, 500)
    want = imageio.encode_picture(pic, "BMP")  # lossless: the flattened pixels themselves
    monkeypatch.setattr(imageio, "STRIP_PX", 10_000, raising=False)
    peak = _traced_peak(lambda: imageio.encode_picture(pic, "BMP"))
    assert peak < 2.5 * pic.rgb.nbytes, peak / pic.rgb.nbytes  # the 8-bit result, Pillow's copy, a strip
    assert imageio.encode_picture(pic, "BMP") == want


def test_read_image_composites_in_strips(monkeypatch, tmp_path):
    pic = _transparent(300, 400)
    path = tmp_path / "a.png"
    imageio.save_picture(path, pic)
    want = imageio.read_image(path)
    a = pic.alpha[..., None].astype(np.float32) / 255
    assert np.array_equal(want, (pic.rgb * a + 255 * (1 - a) + 0.5).astype(np.uint8))
    monkeypatch.setattr(imageio, "STRIP_PX", 10_000, raising=False)
    real_load = imageio.load_picture
    monkeypatch.setattr(imageio, "load_picture", lambda p: pic)  # the flattening alone, not the decoder
    peak = _traced_peak(lambda: imageio.read_image(path))
    assert peak < 2 * pic.rgb.nbytes, peak / pic.rgb.nbytes
    monkeypatch.setattr(imageio, "load_picture", real_load)
    assert np.array_equal(imageio.read_image(path), want)


def test_an_upscale_whose_result_no_reader_here_would_open_is_refused_first(tmp_path, monkeypatch, capsys):
    """x4 of a 96 Mpx photo is 1536 Mpx: hours of compute for a file over the 200 Mpx this editor
    opens. Said before anything runs (here with the limit lowered)."""
    import engine.imageio as imageio
    from app.__main__ import main
    from engine import Model, preset

    monkeypatch.setattr(imageio, "MAX_PIXELS", 40 * 40)
    # load_picture hands its limit to Pillow's global: put that back too, after the test.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(src)
    model = tmp_path / "tiny.safetensors"
    from engine import save_model

    tiny = Model.random(preset("tiny"), seed=0, device="cpu", precision="fp32")
    save_model(model, tiny.spec, tiny.denoiser.net.state_dict())
    out = tmp_path / "out.png"
    rc = main(["upscale", str(src), "--factor", "2", "--model", str(model), "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()  # the command line must change: a smaller --factor
    assert "the result would be 48x48 (0 Mpx), over the 0 Mpx this editor opens" in err and "Traceback" not in err
