"""Random crops of the photo set for training, and fixed crops of the held-out split for evaluation.

The recipe follows training-data.md: pick a source group uniformly (so 250 small GCompris photos
do not drown 40 wallpapers), then an image; resize by a log-uniform factor so the short side lands
in [res, max_zoom * res], a share of draws in [res, 1.5 res] giving whole-scene views; random crop,
horizontal flip and at most +-10 % brightness/contrast. No vertical flips, rotations or hue jitter:
photos are sky-up and hue jitter teaches wrong colours. Images are decoded once and kept as uint8.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import load_manifest
from .config import DataConfig

# Pillow's antialiased bicubic: downscaling widens its kernel, so crops carry no aliasing.
RESAMPLE = Image.Resampling.BICUBIC
# Luma weights (Rec. 601) for the contrast pivot.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def missing_photo_set(folder: str | Path, how: str = "", near: Iterable[Path] = ()) -> str | None:
    """None when `folder` holds a photo set (its manifest.tsv); otherwise what to tell the user.

    The message names the absolute path looked at (a relative one is read from the current folder,
    which is easy to forget after a `cd`), `how` to point elsewhere (a command's option), and, for a
    relative `folder`, the first of the `near` folders under which that path does hold a set: said,
    never used in its place, since a run on other data than the one asked for is worse than none."""
    folder = Path(folder)
    manifest = folder / "manifest.tsv"
    if manifest.is_file():
        return None
    message = f"{manifest.absolute()}: no manifest"
    if not folder.is_absolute():
        message += f" (a relative data path is read from the current folder, {Path.cwd()})"
        for base in near:
            other = base / folder
            if (other / "manifest.tsv").is_file():
                message += f"; {other} has one"
                break
    return f"{message}; {how + ', or ' if how else ''}build the photo set first (cstudio data build --out FOLDER)"


def read_manifest(folder: str | Path) -> list[dict]:
    """Rows of `<folder>/manifest.tsv` (file, source_group, package, path, licence, author, split, ...)."""
    problem = missing_photo_set(folder)
    if problem:
        raise FileNotFoundError(problem)
    return load_manifest(Path(folder) / "manifest.tsv")


def checkout_root() -> Path:
    """The folder holding this `engine` package: a checkout's root, where `data-cache/` is built."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Photo:
    """One decoded image: (H, W, 3) uint8, with its source group and manifest file name."""

    pixels: np.ndarray
    group: str
    file: str


def load_photos(folder: str | Path, split: str, min_side: int = 1) -> list[Photo]:
    """Decode every image of `split` ("train" or "heldout") whose short side is at least `min_side`."""
    folder = Path(folder)
    photos = []
    for row in read_manifest(folder):
        if row.get("split") != split:
            continue
        # The manifest's `file` is relative to the data folder (e.g. "images/x.jpg").
        try:
            with Image.open(folder / row["file"]) as im:
                a = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise
        except OSError as e:  # Pillow's "Truncated File Read" / "cannot identify" name no file
            raise ValueError(f"{folder / row['file']}: cannot decode this image ({e}); rebuild the photo "
                             "set (cstudio data build) or drop its manifest row") from None
        if min(a.shape[:2]) >= min_side:
            photos.append(Photo(a, row.get("source_group") or row.get("package") or "", row["file"]))
    if not photos:
        raise ValueError(f"{folder}: no '{split}' images with a short side of at least {min_side} px")
    return photos


def crop_resized(pixels: np.ndarray, short: float, res: int, top: float, left: float) -> np.ndarray:
    """The res x res window at (top, left) of the image scaled so its short side is `short`, as uint8.

    Only the window's source region is resampled (Pillow's `box`), not the whole image.
    """
    h, w = pixels.shape[:2]
    scale = short / min(h, w)  # output px per source px
    side = res / scale  # window side in source px
    y0, x0 = top / scale, left / scale
    # Cut an integer region with a margin for the filter support, then resample with a sub-pixel box.
    pad = int(math.ceil(2 / min(scale, 1.0))) + 1
    iy0, ix0 = max(0, int(y0) - pad), max(0, int(x0) - pad)
    iy1, ix1 = min(h, int(math.ceil(y0 + side)) + pad), min(w, int(math.ceil(x0 + side)) + pad)
    region = Image.fromarray(np.ascontiguousarray(pixels[iy0:iy1, ix0:ix1]))
    # Float round-off may push the box a hair past the region, which Pillow refuses.
    rw, rh = region.size
    bx0 = min(max(0.0, x0 - ix0), max(0.0, rw - side))
    by0 = min(max(0.0, y0 - iy0), max(0.0, rh - side))
    box = (bx0, by0, min(rw, bx0 + side), min(rh, by0 + side))
    return np.asarray(region.resize((res, res), RESAMPLE, box=box))


def _jitter(crop: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """Contrast about the crop's mean luma, then a brightness gain; float32 in 0..255."""
    a = crop.astype(np.float32)
    mean = float((a @ _LUMA).mean())
    return np.clip((a - mean) * contrast + mean * brightness, 0, 255)


class CropSampler:
    """Deterministic stream of augmented (B, 3, res, res) float32 crops in [-1, 1] from the train split.

    All randomness comes from `self.generator`, so saving its state resumes the stream exactly.
    """

    def __init__(self, photos: list[Photo], res: int, config: DataConfig = DataConfig(), *, seed: int = 0) -> None:
        self.photos = [p for p in photos if min(p.pixels.shape[:2]) >= res]
        if not self.photos:
            raise ValueError(f"no training image has a short side of at least {res} px")
        self.res = res
        self.config = config
        self.groups: dict[str, list[int]] = {}
        for i, p in enumerate(self.photos):
            self.groups.setdefault(p.group, []).append(i)
        self.group_names = sorted(self.groups)
        self.generator = torch.Generator().manual_seed(int(seed))

    @classmethod
    def from_folder(cls, folder: str | Path, res: int, config: DataConfig = DataConfig(), *, seed: int = 0) -> CropSampler:
        return cls(load_photos(folder, "train", min_side=res), res, config, seed=seed)

    def _uniform(self, n: int = 1) -> list[float]:
        return torch.rand(n, generator=self.generator, dtype=torch.float64).tolist()

    def _index(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.generator))

    def draw(self) -> np.ndarray:
        """One augmented crop, (res, res, 3) float32 in 0..255."""
        cfg, res = self.config, self.res
        group = self.groups[self.group_names[self._index(len(self.group_names))]]
        pixels = self.photos[group[self._index(len(group))]].pixels
        u_kind, u_size, u_top, u_left, u_flip, u_b, u_c = self._uniform(7)
        native = min(pixels.shape[:2])
        hi = min(cfg.max_zoom * res, native)  # never upsample: it would teach blur
        mid = min(1.5 * res, hi)
        lo_edge, hi_edge = (res, mid) if u_kind < cfg.whole_scene or mid >= hi else (mid, hi)
        short = lo_edge * (hi_edge / lo_edge) ** u_size  # log-uniform
        h, w = pixels.shape[:2]
        scale = short / native
        top = u_top * max(0.0, h * scale - res)
        left = u_left * max(0.0, w * scale - res)
        crop = crop_resized(pixels, short, res, top, left)
        if u_flip < 0.5:
            crop = crop[:, ::-1]
        j = cfg.jitter
        return _jitter(crop, 1 + j * (2 * u_b - 1), 1 + j * (2 * u_c - 1))

    def batch(self, batch_size: int) -> torch.Tensor:
        """(B, 3, res, res) float32 in [-1, 1]."""
        a = np.stack([self.draw() for _ in range(batch_size)])
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous() / 127.5 - 1

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        while True:
            yield self.batch(batch_size)


class _WorkerCrops(torch.utils.data.IterableDataset):
    """Endless batches from a `CropSampler` built inside each loader worker, seeded per worker."""

    def __init__(self, folder: str, res: int, config: DataConfig, batch_size: int, seed: int) -> None:
        super().__init__()
        self.folder, self.res, self.config, self.batch_size, self.seed = folder, res, config, batch_size, seed

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        # Photos are decoded in the worker: nothing large is pickled across, whatever the start method.
        sampler = CropSampler.from_folder(self.folder, self.res, self.config, seed=self.seed + 1_000_003 * (worker + 1))
        return sampler.batches(self.batch_size)


def parallel_batches(folder: str | Path, res: int, config: DataConfig, batch_size: int, *, workers: int, seed: int,
                     pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """(B, 3, res, res) training batches made by `workers` processes, each its own seeded stream.

    Batches arrive in worker order, so the stream depends only on `seed` and `workers`.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loader = torch.utils.data.DataLoader(_WorkerCrops(str(folder), res, config, batch_size, seed), batch_size=None,
                                         num_workers=workers, pin_memory=pin_memory, prefetch_factor=4,
                                         persistent_workers=True)
    return iter(loader)


def fixed_crops(photos: list[Photo], res: int, n: int, *, seed: int = 0, max_zoom: float = 4.0) -> np.ndarray:
    """`n` fixed (res, res, 3) uint8 crops, cycling through `photos` in order so every image is used.

    Scales are log-uniform with the short side in [res, max_zoom * res] (scene to detail); no
    augmentation. The same (photos, seed) always give the same crops.
    """
    photos = [p for p in photos if min(p.pixels.shape[:2]) >= res]
    if not photos:
        raise ValueError(f"no held-out image has a short side of at least {res} px")
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for i in range(n):
        pixels = photos[i % len(photos)].pixels
        u_size, u_top, u_left = torch.rand(3, generator=g, dtype=torch.float64).tolist()
        native = min(pixels.shape[:2])
        hi = min(max_zoom * res, native)
        short = res * (hi / res) ** u_size
        scale = short / native
        h, w = pixels.shape[:2]
        out.append(crop_resized(pixels, short, res, u_top * max(0.0, h * scale - res), u_left * max(0.0, w * scale - res)))
    return np.stack(out)
