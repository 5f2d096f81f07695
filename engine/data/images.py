"""Small image helpers shared by the dataset builder and the training code."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MANIFEST_COLUMNS = (
    "file",
    "source_group",
    "package",
    "path",
    "licence",
    "author",
    "split",
    "width",
    "height",
    "sha256",
)
_INT_COLUMNS = ("width", "height")


def load_manifest(path: Path) -> list[dict]:
    """Read a dataset ``manifest.tsv`` into a list of row dicts (width/height as int)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: manifest lacks columns {', '.join(missing)}")
        rows = []
        for row in reader:
            for col in _INT_COLUMNS:
                row[col] = int(row[col])
            rows.append(row)
    return rows


def format_manifest(rows: list[dict]) -> str:
    """Render rows (dicts with at least MANIFEST_COLUMNS) as manifest TSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=MANIFEST_COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None,
        lineterminator="\n", extrasaction="ignore",
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: str(row[k]).replace("\t", " ").replace("\n", " ") for k in MANIFEST_COLUMNS})
    return buf.getvalue()


def write_manifest(path: Path, rows: list[dict]) -> None:
    """Write rows as a tab-separated manifest file."""
    Path(path).write_text(format_manifest(rows), encoding="utf-8")


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M of an HxWx3 uint8 RGB array (0 for grey)."""
    arr = np.asarray(rgb, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {arr.shape}")
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mean)


def dhash(image: Image.Image, size: int = 16) -> int:
    """Difference hash: size*size bits saying whether each pixel is brighter than its right neighbour."""
    grey = image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
    px = np.asarray(grey, dtype=np.int16)
    bits = (px[:, 1:] > px[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def decode_rgb(data: bytes) -> Image.Image:
    """Decode image bytes to an upright RGB image; transparent parts are flattened onto white."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I"):
            # Pillow's 16-bit-to-8-bit conversion clips rather than scales.
            arr = np.asarray(im, dtype=np.float64)
            im = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8), "L")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            flat = Image.new("RGBA", im.size, (255, 255, 255, 255))
            flat.alpha_composite(im)
            im = flat
        return im.convert("RGB")


def resize_short_side(image: Image.Image, max_short: int) -> Image.Image:
    """Shrink with Lanczos so the short side is at most max_short; never enlarge."""
    w, h = image.size
    short = min(w, h)
    if short <= max_short:
        return image
    scale = max_short / short
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Pin the short side exactly, rounding can otherwise land on max_short + 1.
    if w <= h:
        size = (max_short, size[1])
    else:
        size = (size[0], max_short)
    return image.resize(size, Image.Resampling.LANCZOS)
