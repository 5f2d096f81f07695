"""Write the bad-input corpus: broken, hostile and odd-but-valid files the app and the CLI must survive.

Run from the repository root: `python tests/corpus/make_corpus.py`. The outputs are committed with
this script (under 1 MB in all) so the tests never depend on this machine's Pillow or torch
writing the same bytes. Every file is deterministic; `tests/app/test_corpus.py` lists what each
one must produce (a specific error, or a correct load plus a note).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parents[1]))  # the repository root, for `engine`

W, H = 32, 24  # the size of every valid image here; masks are checked against it
PWNED = "/tmp/cstudio-corpus-pwned"  # what the hostile pickle would create if it were ever unpickled


def photo(w: int = W, h: int = H) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([40 + 200 * xx // w, 40 + 200 * yy // h, 120 + 0 * xx], axis=-1)
    return img.astype(np.uint8)


def png_bytes(im: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(w: int, h: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: lets the header claim anything and holds 16-bit RGB (Pillow cannot write it)."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def deep16_png() -> bytes:
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 65535 // (W - 1), yy * 65535 // (H - 1), 65535 - xx * 2000], axis=-1).astype(">u2")
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(H))
    return raw_png(W, H, 16, 2, rows)


def frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.roll(photo(), 8 * i, axis=1)) for i in range(n)]


def write_images(d: Path) -> None:
    good = png_bytes(Image.fromarray(photo()))
    (d / "base.png").write_bytes(good)  # the valid image the mask files are tried against
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    jpg = io.BytesIO()
    Image.fromarray(photo()).save(jpg, "JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    deep = deep16_png()
    (d / "truncated16.png").write_bytes(deep[: len(deep) * 2 // 3])
    (d / "zero_bytes.png").write_bytes(b"")
    (d / "garbage.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    (d / "text_named.webp").write_bytes(b"This is a text file with an image extension.\n" * 4)
    # A decompression bomb in miniature: the header says 100 000 x 100 000, the data is one zero row.
    (d / "bomb_100000x100000.png").write_bytes(raw_png(100_000, 100_000, 8, 2, b"\x00" * (1 + 3 * 100_000)))
    gif = frames(3)
    gif[0].save(d / "animated.gif", save_all=True, append_images=gif[1:], duration=100, loop=0)
    webp = frames(3)
    webp[0].save(d / "animated.webp", save_all=True, append_images=webp[1:], duration=100, loop=0, lossless=True)
    Image.fromarray(photo()).convert("CMYK").save(d / "cmyk.jpg", "JPEG", quality=95)
    (d / "deep16.png").write_bytes(deep)
    pal = Image.fromarray(photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    idx = np.asarray(pal).copy()
    idx[:, : W // 4] = 15  # the left quarter uses the transparent entry
    pal_t = Image.fromarray(idx, "P")
    pal_t.putpalette(pal.getpalette())
    pal_t.save(d / "palette_alpha.png", transparency=15)
    a = np.zeros((H, W, 3), np.uint8)
    a[:, : W // 2] = 255  # left half white: upright, the white half is on top
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(d / "exif_rotated.jpg", "JPEG", exif=exif, quality=95)
    folder = d / "folder.png"  # a folder with an image's name
    folder.mkdir()
    (folder / "README").write_text("A folder named like an image: the app must say it is a folder.\n")


def write_masks(d: Path) -> None:
    m = np.zeros((20, 20), np.uint8)
    m[5:15, 5:15] = 255
    Image.fromarray(m).save(d / "mask_wrong_size.png")  # square, for a 32x24 image
    m = np.zeros((2 * H, 2 * W), np.uint8)
    m[10:30, 20:40] = 255
    Image.fromarray(m).save(d / "mask_scaled.png")  # the image's shape at twice its size


def tiny_spec():
    from engine.config import ModelSpec, UNetConfig

    unet = UNetConfig(image_size=8, model_channels=32, channel_mult=(1,), num_res_blocks=0, attention_resolutions=(),
                      num_head_channels=32, num_classes=None)
    return ModelSpec(unet=unet, name="corpus")


def safetensors_bytes(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """The safetensors layout written by hand, keys sorted: the library's own writer orders the header at random."""
    header: dict[str, object] = {"__metadata__": meta}
    offset, data = 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        header[name] = {"dtype": {"uint8": "U8", "float32": "F32"}[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        data.append(a.tobytes())
        offset += a.nbytes
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(data)


def write_checkpoints(d: Path) -> None:
    import torch

    from engine.unet import UNet

    spec = tiny_spec()
    meta = {"format": "consistency-studio", "format_version": "1", "spec": spec.to_json()}
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in UNet(spec.unet).state_dict().items()}
    # uint8 tensors keep the files small; the key and shape checks come before any dtype matters.
    sd = {k: np.zeros(s, np.uint8) for k, s in shapes.items()}
    first = next(k for k, s in shapes.items() if len(s) == 4)
    wrong = dict(sd)
    wrong[first] = np.zeros((shapes[first][1], shapes[first][0], *shapes[first][2:]), np.uint8)
    (d / "wrong_shapes.safetensors").write_bytes(safetensors_bytes(wrong, meta))
    extra = dict(sd)
    extra["secret_head.weight"] = np.zeros(4, np.uint8)
    (d / "unknown_keys.safetensors").write_bytes(safetensors_bytes(extra, meta))
    small = safetensors_bytes({"a": np.arange(64, dtype=np.float32), "b": np.ones(64, np.float32)}, meta)
    (d / "truncated.safetensors").write_bytes(small[: len(small) - 200])
    (d / "huge_header.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    (d / "empty.safetensors").write_bytes(b"")
    (d / "empty.pt").write_bytes(b"")

    class Payload:
        # Unpickling this calls os.mkdir(PWNED): a stand-in for any code an attacker could run.
        def __reduce__(self):  # noqa: ANN204
            return (os.mkdir, (PWNED,))

    buf = io.BytesIO()
    torch.save({"input_blocks.0.0.weight": torch.zeros(1), "payload": Payload()}, buf)
    (d / "runs_code.pt").write_bytes(buf.getvalue())
    folder = d / "not_a_model"
    folder.mkdir()
    (folder / "notes.txt").write_text("A folder where a checkpoint file is expected.\n")


def main() -> None:
    for sub, writer in (("images", write_images), ("masks", write_masks), ("checkpoints", write_checkpoints)):
        d = ROOT / sub
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        writer(d)
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"corpus written to {ROOT}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
