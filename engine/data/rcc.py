"""Reader for Qt binary resource bundles (``.rcc`` files, ``qres`` format).

Layout, all integers big-endian:

* header: ``b"qres"``, version u32, tree offset u32, data offset u32, names offset u32
  and, from version 3 on, an overall-flags u32;
* tree: an array of nodes, 14 bytes each in version 1 and 22 bytes from version 2 on
  (a u64 modification time is appended).  Node 0 is the root directory.  A node is
  ``name_offset u32, flags u16`` followed by either ``child_count u32, first_child u32``
  (directories, flag 2) or ``territory u16, language u16, data_offset u32`` (files);
* names: ``length u16, hash u32, length UTF-16BE code units``;
* data: ``size u32, size bytes``.  Flag 1 means the payload is Qt's ``qCompress``
  format: a u32 uncompressed size followed by a zlib stream.  Flag 4 means zstd.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"qres"
FLAG_COMPRESSED = 1
FLAG_DIRECTORY = 2
FLAG_COMPRESSED_ZSTD = 4


class RccError(ValueError):
    """A malformed or unsupported Qt resource bundle."""


class RccBundle:
    """Random access to the files inside one ``.rcc`` byte string."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise RccError("not a Qt resource bundle (missing 'qres' magic)")
        self._blob = blob
        self.version, self._tree, self._data, self._names = struct.unpack_from(">4I", blob, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"unsupported qres version {self.version}")
        self._node_size = 14 if self.version == 1 else 22
        for name, off in (("tree", self._tree), ("data", self._data), ("names", self._names)):
            if off >= len(blob):
                raise RccError(f"{name} offset {off} lies beyond the end of the bundle ({len(blob)} bytes)")

    @classmethod
    def open(cls, path: Path) -> RccBundle:
        """Read a bundle from disk."""
        return cls(Path(path).read_bytes())

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """Return (name_offset, flags, a, b) of tree node *index*."""
        pos = self._tree + index * self._node_size
        if pos + 14 > len(self._blob):
            raise RccError(f"tree node {index} lies beyond the end of the bundle")
        name_off, flags = struct.unpack_from(">IH", self._blob, pos)
        if flags & FLAG_DIRECTORY:
            count, first = struct.unpack_from(">II", self._blob, pos + 6)
            return name_off, flags, count, first
        _territory, _language, data_off = struct.unpack_from(">HHI", self._blob, pos + 6)
        return name_off, flags, 0, data_off

    def _name(self, offset: int) -> str:
        pos = self._names + offset
        (length,) = struct.unpack_from(">H", self._blob, pos)
        raw = self._blob[pos + 6 : pos + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"name at offset {offset} is truncated")
        return raw.decode("utf-16-be")

    def _payload(self, flags: int, data_off: int, path: str) -> bytes:
        pos = self._data + data_off
        (size,) = struct.unpack_from(">I", self._blob, pos)
        raw = self._blob[pos + 4 : pos + 4 + size]
        if len(raw) != size:
            raise RccError(f"{path}: data is truncated")
        if flags & FLAG_COMPRESSED_ZSTD:
            raise RccError(f"{path}: zstd-compressed resources are not supported")
        if flags & FLAG_COMPRESSED:
            (expected,) = struct.unpack_from(">I", raw, 0)
            try:
                out = zlib.decompress(raw[4:])
            except zlib.error as exc:
                raise RccError(f"{path}: corrupt zlib data ({exc})") from exc
            if len(out) != expected:
                raise RccError(f"{path}: inflated to {len(out)} bytes, header says {expected}")
            return out
        return raw

    def _walk(self, index: int, prefix: str, depth: int) -> Iterator[tuple[str, int, int]]:
        # Depth guard: a corrupt child index could otherwise loop forever.
        if depth > 64:
            raise RccError("directory nesting deeper than 64 levels (corrupt tree?)")
        name_off, flags, count, first = self._node(index)
        for child in range(first, first + count):
            c_name_off, c_flags, _c_count, c_data = self._node(child)
            path = prefix + self._name(c_name_off)
            if c_flags & FLAG_DIRECTORY:
                yield from self._walk(child, path + "/", depth + 1)
            else:
                yield path, c_flags, c_data

    def paths(self) -> list[str]:
        """List every file path in the bundle (no leading slash)."""
        return [p for p, _f, _d in self._walk(0, "", 0)]

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield (path, uncompressed bytes) for every file in the bundle."""
        for path, flags, data_off in self._walk(0, "", 0):
            yield path, self._payload(flags, data_off, path)

    def read(self, path: str) -> bytes:
        """Return the uncompressed bytes of one file, given its path inside the bundle."""
        path = path.lstrip("/")
        for p, flags, data_off in self._walk(0, "", 0):
            if p == path:
                return self._payload(flags, data_off, p)
        raise KeyError(path)


def read_rcc(path: Path) -> dict[str, bytes]:
    """Read every file of an ``.rcc`` bundle into a {path: bytes} dict."""
    return dict(RccBundle.open(path).items())
