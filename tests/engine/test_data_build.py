"""Tests for the dataset builder (engine/data): qres parser, image helpers and build_dataset on a fake package."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from engine.data import DatasetError, build_dataset, colourfulness, dhash, load_manifest
from engine.data.build import ALLOWLIST_COLUMNS, Entry, add_cli
from engine.data.images import hamming
from engine.data.rcc import RccBundle, RccError

PACKAGE = "cstudio-test-photos"
VERSION = "1.0-1"
PHOTO_DIR = "usr/share/cstudio-test-photos"
RCC_PATH = f"{PHOTO_DIR}/bundle.rcc"

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


# ---------------------------------------------------------------- a tiny qres writer (test helper)

def make_qres(files: dict[str, bytes], *, compress: tuple[str, ...] = (), version: int = 3) -> bytes:
    """Write a Qt resource bundle holding *files* ({'dir/name': bytes}); paths in *compress* get zlib."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = path

    names = bytearray()
    name_off: dict[str, int] = {}

    def name_ref(name: str) -> int:
        if name not in name_off:
            name_off[name] = len(names)
            enc = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(enc) // 2, zlib.crc32(name.encode())) + enc)
        return name_off[name]

    data = bytearray()
    nodes: list[bytes] = [b""]  # slot 0 is the root, filled in below
    node_size_tail = b"\0" * 8 if version >= 2 else b""

    def pack_dir(name_ref_off: int, children: dict, first: int) -> bytes:
        return struct.pack(">IHII", name_ref_off, 2, len(children), first) + node_size_tail

    # Breadth-first, so each directory's children are contiguous, as in real bundles.
    queue = [(0, tree)]
    while queue:
        index, children = queue.pop(0)
        first = len(nodes)
        nodes.extend([b""] * len(children))
        if index == 0:
            nodes[0] = pack_dir(0, children, first)
        for k, (name, child) in enumerate(sorted(children.items())):
            slot = first + k
            if isinstance(child, dict):
                nodes[slot] = pack_dir(name_ref(name), child, 0)  # patched when the queue reaches it
                queue.append((slot, child))
            else:
                payload = files[child]
                flags = 0
                if child in compress:
                    payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
                    flags = 1
                nodes[slot] = struct.pack(">IHHHI", name_ref(name), flags, 0, 0, len(data)) + node_size_tail
                data.extend(struct.pack(">I", len(payload)) + payload)
        if index != 0:
            name_part = nodes[index][:4]
            nodes[index] = name_part + struct.pack(">HII", 2, len(children), first) + node_size_tail

    header_len = 24 if version >= 3 else 20
    data_off = header_len
    names_off = data_off + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + bytes(data) + bytes(names) + b"".join(nodes)


def test_rcc_round_trip_nested_and_compressed():
    files = {
        "gcompris/src/a/one.webp": b"first file" * 10,
        "gcompris/src/a/two.txt": b"second",
        "gcompris/src/b/deep/three.bin": bytes(range(256)) * 4,
        "top.txt": "héllo ünïcode".encode(),
    }
    for version in (1, 2, 3):
        blob = make_qres(files, compress=("gcompris/src/a/one.webp", "gcompris/src/b/deep/three.bin"), version=version)
        bundle = RccBundle(blob)
        assert bundle.version == version
        assert sorted(bundle.paths()) == sorted(files)
        assert dict(bundle.items()) == files
        assert bundle.read("/gcompris/src/b/deep/three.bin") == files["gcompris/src/b/deep/three.bin"]
        with pytest.raises(KeyError):
            bundle.read("gcompris/missing.txt")


def test_rcc_rejects_garbage_and_zstd():
    with pytest.raises(RccError, match="magic"):
        RccBundle(b"not a bundle at all, just bytes")
    blob = bytearray(make_qres({"x.bin": b"payload"}))
    # Flip the file node's flags to 'zstd' (4): the node follows the root node at the tree offset.
    tree_off = struct.unpack_from(">I", blob, 8)[0]
    struct.pack_into(">H", blob, tree_off + 22 + 4, 4)
    with pytest.raises(RccError, match="zstd"):
        dict(RccBundle(bytes(blob)).items())


# ---------------------------------------------------------------- image helpers

def colourful_photo(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A fake 'photo': colour gradients plus smooth blobs plus noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        128 + 100 * np.sin(x / (17 + seed) + y / 40),
        128 + 100 * np.cos(y / (23 + 2 * seed)),
        128 + 100 * np.sin((x + y) / (31 + 3 * seed) + seed),
    ], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 80)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-120, 120, size=3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def test_colourfulness_and_dhash():
    photo = colourful_photo(1, (160, 120))
    grey = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert colourfulness(grey) == pytest.approx(0.0, abs=1e-9)
    assert colourfulness(photo) > 20
    a = Image.fromarray(photo)
    near = Image.fromarray(photo).resize((150, 112), Image.Resampling.BILINEAR)
    other = Image.fromarray(colourful_photo(7, (160, 120)))
    assert dhash(a).bit_length() <= 256
    assert hamming(dhash(a), dhash(near)) < 30
    assert hamming(dhash(a), dhash(other)) > 60


def test_split_rule_is_about_one_in_ten():
    entries = [Entry("pkg", "1", f"usr/share/p/{i}.jpg", "0" * 64, "CC0-1.0", "x", "g") for i in range(2000)]
    held = sum(e.split == "heldout" for e in entries)
    assert 140 < held < 260
    e = entries[3]
    expect = int(hashlib.sha256(f"{e.package}/{e.path}".encode()).hexdigest(), 16) % 10 == 0
    assert (e.split == "heldout") == expect


# ---------------------------------------------------------------- the builder on a fabricated package

def build_fake_deb(tmp: Path) -> tuple[Path, dict[str, bytes]]:
    """Build a real .deb with four loose photos and an .rcc bundle; return it and {allow-list path: bytes}."""
    root = tmp / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {VERSION}\nArchitecture: all\n"
        "Maintainer: Test <test@example.invalid>\nDescription: fake photos for tests\n"
    )
    big = colourful_photo(1, (700, 600))
    originals = {
        f"{PHOTO_DIR}/big.jpg": encode(big, "JPEG", quality=92),
        f"{PHOTO_DIR}/small.png": encode(colourful_photo(2, (300, 200)), "PNG"),
        f"{PHOTO_DIR}/grey.png": encode(np.repeat(colourful_photo(3, (400, 300))[..., :1], 3, axis=2), "PNG"),
        # Same scene, smaller and re-encoded: a near-duplicate that must lose to big.jpg.
        f"{PHOTO_DIR}/big-copy.jpg": encode(np.asarray(Image.fromarray(big).resize((560, 480))), "JPEG", quality=70),
    }
    inner_webp = encode(colourful_photo(4, (320, 240)), "WEBP", quality=90)
    inner_png = encode(colourful_photo(5, (200, 260)), "PNG")
    rcc = make_qres(
        {"gcompris/src/act/photo.webp": inner_webp, "gcompris/src/act/raw.png": inner_png, "gcompris/src/act/x.qml": b"Item {}"},
        compress=("gcompris/src/act/photo.webp",),
    )
    for rel, data in {**originals, RCC_PATH: rcc}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    originals[f"{RCC_PATH}!gcompris/src/act/photo.webp"] = inner_webp
    originals[f"{RCC_PATH}!gcompris/src/act/raw.png"] = inner_png
    deb = tmp / f"{PACKAGE}_{VERSION}_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb, originals


def write_allowlist(path: Path, originals: dict[str, bytes], *, override: dict[str, dict] | None = None) -> Path:
    lines = ["\t".join(ALLOWLIST_COLUMNS)]
    for rel, data in originals.items():
        row = {"package": PACKAGE, "version": VERSION, "path": rel, "sha256": hashlib.sha256(data).hexdigest(),
               "licence": "CC-BY-SA-4.0", "author": f"Author of {Path(rel).name}", "source_group": "fake"}
        row.update((override or {}).get(rel, {}))
        lines.append("\t".join(row[c] for c in ALLOWLIST_COLUMNS))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def fake_deb(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb (Debian)")
    return build_fake_deb(tmp_path_factory.mktemp("deb"))


class FakeFetch:
    """Stands in for 'apt-get download': copies the fabricated .deb and counts calls."""

    def __init__(self, deb: Path | None) -> None:
        self.deb = deb
        self.calls: list[str] = []

    def __call__(self, package: str, dest: Path) -> Path:
        self.calls.append(package)
        if self.deb is None:
            raise DatasetError(f"package '{package}' could not be downloaded: E: Unable to locate package {package}")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(self.deb, dest / self.deb.name))


@needs_dpkg
def test_build_end_to_end_and_cached_rerun(fake_deb, tmp_path):
    deb, originals = fake_deb
    allowlist = write_allowlist(tmp_path / "allow.tsv", originals)
    fetch, logs = FakeFetch(deb), []
    out = tmp_path / "out"
    manifest = build_dataset(out, cache_dir=tmp_path / "cache", allowlist=allowlist, fetch=fetch, log=logs.append)

    assert manifest == out / "manifest.tsv" and fetch.calls == [PACKAGE]
    rows = load_manifest(manifest)
    by_path = {r["path"]: r for r in rows}
    # grey.png is dropped as grey, big-copy.jpg as a near-duplicate of the larger big.jpg.
    assert set(by_path) == {f"{PHOTO_DIR}/big.jpg", f"{PHOTO_DIR}/small.png",
                            f"{RCC_PATH}!gcompris/src/act/photo.webp", f"{RCC_PATH}!gcompris/src/act/raw.png"}
    assert any("grey.png" in line and "grey" in line for line in logs)
    assert any("big-copy.jpg" in line and "near-duplicate" in line and "big.jpg" in line for line in logs)
    for r in rows:
        key = f"{r['package']}/{r['path']}"
        want = "heldout" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10 == 0 else "train"
        assert r["split"] == want
        assert r["sha256"] == hashlib.sha256(originals[r["path"]]).hexdigest()
        assert r["licence"] == "CC-BY-SA-4.0" and r["author"].startswith("Author of ")
        assert r["source_group"] == "fake" and r["package"] == PACKAGE
        with Image.open(out / r["file"]) as im:
            assert im.format == "JPEG" and im.size == (r["width"], r["height"])
        assert min(r["width"], r["height"]) <= 512
    assert (by_path[f"{PHOTO_DIR}/big.jpg"]["width"], by_path[f"{PHOTO_DIR}/big.jpg"]["height"]) == (597, 512)
    # Smaller than the limit: kept at its own size, never enlarged.
    assert (by_path[f"{PHOTO_DIR}/small.png"]["width"], by_path[f"{PHOTO_DIR}/small.png"]["height"]) == (300, 200)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(r["file"]).name for r in rows)

    attribution = (out / "ATTRIBUTION.md").read_text()
    for r in rows:
        assert r["file"] in attribution and r["author"] in attribution and f"{PACKAGE} {VERSION}" in attribution

    # Second run: nothing fetched, nothing rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    logs.clear()
    assert build_dataset(out, cache_dir=tmp_path / "cache", allowlist=allowlist, fetch=fetch, log=logs.append) == manifest
    assert fetch.calls == [PACKAGE]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert any("up to date" in line for line in logs)


@needs_dpkg
@pytest.mark.parametrize("fail_at", ["image copy", "manifest"])
def test_interrupted_rebuild_keeps_the_old_manifest_whole(fake_deb, tmp_path, monkeypatch, fail_at):
    """A rebuild cut short (disk full, Ctrl+C) while copying images or writing the manifest leaves
    every file the manifest on disk names in place and whole; stale files go only after it."""
    import engine.data.build as build

    deb, originals = fake_deb
    out, cache = tmp_path / "out", tmp_path / "cache"
    quiet = dict(cache_dir=cache, fetch=FakeFetch(deb), log=lambda s: None)
    manifest = build_dataset(out, allowlist=write_allowlist(tmp_path / "a.tsv", originals), **quiet)
    old_text, old_rows = manifest.read_text(), load_manifest(manifest)
    # The next build drops one photo (its file turns stale) and must re-copy another (edited here).
    by_path = {r["path"]: r for r in old_rows}
    dropped, edited = by_path[f"{PHOTO_DIR}/small.png"], by_path[f"{PHOTO_DIR}/big.jpg"]
    built = (out / edited["file"]).read_bytes()
    with Image.open(out / edited["file"]) as im:
        im.save(out / edited["file"], quality=40)
    fewer = {k: v for k, v in originals.items() if k != dropped["path"]}

    def copy_half_then_fail(src, dst, *args, **kwargs):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    real_write = build._write_atomic

    def write_but_not_the_manifest(path, data):
        if Path(path).name == "manifest.tsv":
            raise KeyboardInterrupt
        real_write(path, data)

    if fail_at == "image copy":
        monkeypatch.setattr(build, "shutil", SimpleNamespace(copyfile=copy_half_then_fail))
    else:
        monkeypatch.setattr(build, "_write_atomic", write_but_not_the_manifest)
    with pytest.raises((OSError, KeyboardInterrupt)):
        build_dataset(out, allowlist=write_allowlist(tmp_path / "b.tsv", fewer), **quiet)
    monkeypatch.undo()

    assert manifest.read_text() == old_text
    for r in old_rows:
        with Image.open(out / r["file"]) as im:
            im.load()  # a truncated JPEG fails here
            assert im.size == (r["width"], r["height"])
    assert not [p.name for p in (out / "images").iterdir() if not p.name.endswith(".jpg")]  # no temporaries left

    # Finished, the rebuild removes the dropped photo's file and restores the edited one.
    manifest = build_dataset(out, allowlist=write_allowlist(tmp_path / "b.tsv", fewer), **quiet)
    rows = load_manifest(manifest)
    assert dropped["path"] not in {r["path"] for r in rows} and not (out / dropped["file"]).exists()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(r["file"]).name for r in rows)
    assert (out / edited["file"]).read_bytes() == built


@needs_dpkg
def test_checksum_mismatch_is_a_clear_error(fake_deb, tmp_path):
    deb, originals = fake_deb
    bad = f"{RCC_PATH}!gcompris/src/act/photo.webp"
    allowlist = write_allowlist(tmp_path / "allow.tsv", originals, override={bad: {"sha256": "ab" * 32}})
    with pytest.raises(DatasetError) as err:
        build_dataset(tmp_path / "out", cache_dir=tmp_path / "cache", allowlist=allowlist, fetch=FakeFetch(deb), log=lambda s: None)
    msg = str(err.value)
    assert PACKAGE in msg and bad in msg and "ab" * 32 in msg and "--allow-missing" in msg
    assert not (tmp_path / "out" / "manifest.tsv").exists()

    logs: list[str] = []
    manifest = build_dataset(tmp_path / "out", cache_dir=tmp_path / "cache", allowlist=allowlist,
                             fetch=FakeFetch(deb), allow_missing=True, log=logs.append)
    assert bad not in {r["path"] for r in load_manifest(manifest)}
    assert len(load_manifest(manifest)) == 3
    assert any("WARNING" in line and "WITHOUT 1 of 6" in line for line in logs)


@needs_dpkg
def test_missing_package_and_missing_file(fake_deb, tmp_path):
    deb, originals = fake_deb
    allowlist = write_allowlist(tmp_path / "allow.tsv", originals)
    with pytest.raises(DatasetError, match=f"{PACKAGE}.*Unable to locate package"):
        build_dataset(tmp_path / "out", cache_dir=tmp_path / "c1", allowlist=allowlist, fetch=FakeFetch(None), log=lambda s: None)

    gone = {**originals, f"{PHOTO_DIR}/vanished.jpg": b"not there"}
    allowlist = write_allowlist(tmp_path / "allow2.tsv", gone)
    with pytest.raises(DatasetError, match=r"vanished\.jpg is not in the package"):
        build_dataset(tmp_path / "out", cache_dir=tmp_path / "c2", allowlist=allowlist, fetch=FakeFetch(deb), log=lambda s: None)


def test_allowlist_rejects_non_tier_c_licences(tmp_path):
    allowlist = write_allowlist(tmp_path / "allow.tsv", {"usr/x.jpg": b"x"}, override={"usr/x.jpg": {"licence": "GFDL-1.2"}})
    with pytest.raises(DatasetError, match="GFDL-1.2"):
        build_dataset(tmp_path / "out", cache_dir=tmp_path / "cache", allowlist=allowlist, fetch=FakeFetch(None), log=lambda s: None)


@needs_dpkg
def test_cli_uses_cached_deb_and_reports_errors(fake_deb, tmp_path, capsys):
    deb, originals = fake_deb
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    shutil.copy(deb, cache / "debs" / deb.name)  # a cached .deb of the listed version: no download needed
    parser = argparse.ArgumentParser(prog="cstudio")
    add_cli(parser.add_subparsers(dest="command"))
    good = write_allowlist(tmp_path / "allow.tsv", originals)
    ns = parser.parse_args(["data", "build", "--out", str(tmp_path / "out"), "--cache", str(cache), "--allowlist", str(good)])
    assert ns.func(ns) == 0
    assert len(load_manifest(tmp_path / "out" / "manifest.tsv")) == 4

    bad = write_allowlist(tmp_path / "bad.tsv", {f"{PHOTO_DIR}/nope.jpg": b"?"})
    ns = parser.parse_args(["data", "build", "--out", str(tmp_path / "out2"), "--cache", str(cache), "--allowlist", str(bad)])
    assert ns.func(ns) == 1
    assert "nope.jpg" in capsys.readouterr().err


def test_shipped_allowlist_is_valid():
    from engine.data.build import DEFAULT_ALLOWLIST, read_allowlist

    entries = read_allowlist(DEFAULT_ALLOWLIST)
    assert len(entries) > 300
    assert len({e.image_id for e in entries}) == len(entries)


@needs_dpkg
@pytest.mark.parametrize("damage", ["truncated", "old cache, truncated"])
def test_a_damaged_resized_cache_jpeg_is_made_again(fake_deb, tmp_path, damage):
    """A cached resized JPEG cut short (a disk error, a cache copied in part) was copied into the
    training set as it was; now its recorded sha256 (or, in a cache from before it was recorded, a
    full decode) finds it and it is resized again from the original."""
    deb, originals = fake_deb
    allowlist = write_allowlist(tmp_path / "allow.tsv", originals)
    out, cache_dir = tmp_path / "out", tmp_path / "cache"
    build_dataset(out, cache_dir=cache_dir, allowlist=allowlist, fetch=FakeFetch(deb), log=lambda _: None)
    good = {p.name: p.read_bytes() for p in (out / "images").iterdir()}
    resized = next(cache_dir.glob("resized-*"))
    victim = sorted(resized.glob("*.jpg"))[0]
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) // 2])
    if damage.startswith("old cache"):
        for stats in resized.glob("*.json"):
            data = json.loads(stats.read_text())
            del data["jpeg_sha256"]
            stats.write_text(json.dumps(data))
    build_dataset(out, cache_dir=cache_dir, allowlist=allowlist, fetch=FakeFetch(deb), log=lambda _: None)
    assert victim.read_bytes() == whole
    assert {p.name: p.read_bytes() for p in (out / "images").iterdir()} == good
    # The old cache's other entries got their hash recorded, without being resized again.
    assert all("jpeg_sha256" in json.loads(p.read_text()) for p in resized.glob("*.json"))
