"""Archive and decompression limits: how much a stranger's compressed bytes may expand to.

joblib's compressed streams are decompressed here with a bound on the output (and refused early
when they declare a size over it); a zip's entries (skops files, bundles) are counted and summed
from its directory before any is read.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile
import zlib
from typing import Any

from core.errors import FormatError, UnsafeModelError
from core.safety.limits import LoadLimits, _Guard

_CHUNK = 1 << 20


# -- decompression -------------------------------------------------------------------------------


def _too_big(limit: int) -> UnsafeModelError:
    return UnsafeModelError(
        f"The file expands to more than {limit:,} bytes when decompressed (the limit), so it was refused"
    )


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """One xz variable-length integer (7 bits a byte, at most 9 bytes) and the position after it."""
    value = 0
    for shift in range(0, 63, 7):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint too long")


def _declared_size(data: bytes, method: str) -> int | None:
    """The uncompressed size a compressed stream declares, where the format records one.

    Only a hint, for refusing early: a crafted file can lie, so the output is counted anyway.
    gzip's trailer holds the size modulo 2**32, lzma's header the size (or "unknown"), and an
    xz file's index the size of each block; zlib and bz2 record none.
    """
    try:
        if method == "gzip" and len(data) >= 18:
            return int.from_bytes(data[-4:], "little")
        if method == "lzma" and len(data) >= 13:
            size = int.from_bytes(data[5:13], "little")
            return None if size == 2**64 - 1 else size
        if method == "xz" and len(data) >= 24 and data[-2:] == b"YZ":
            index_size = (int.from_bytes(data[-8:-4], "little") + 1) * 4
            index = data[-12 - index_size : -12]
            if index[:1] != b"\x00":
                return None
            records, pos = _read_varint(index, 1)
            total = 0
            for _ in range(min(records, 100_000)):
                _unpadded, pos = _read_varint(index, pos)
                size, pos = _read_varint(index, pos)
                total += size
            return total
    except (ValueError, IndexError):
        return None
    return None


def _inflate(data: bytes, method: str, guard: _Guard) -> io.BytesIO:
    """Decompress joblib's stream into one buffer, counting output and stopping at the limit.

    The output is written into a BytesIO that the unpickler then reads in place: one copy of
    the decompressed bytes, never two (``bytes(bytearray)`` would copy it all once more). A
    stream that declares a size over the limit is refused before anything is decompressed.
    """
    limit = guard.limits.max_decompressed_bytes
    declared = _declared_size(data, method)
    if declared is not None and declared > limit:
        raise _too_big(limit)
    out = io.BytesIO()
    if method in ("zlib", "gzip"):
        decompressor: Any = zlib.decompressobj(zlib.MAX_WBITS | (16 if method == "gzip" else 0))
        errors: tuple[type[Exception], ...] = (zlib.error,)
    elif method in ("bz2", "xz", "lzma"):
        if method == "bz2":
            decompressor = bz2.BZ2Decompressor()
        else:
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ if method == "xz" else lzma.FORMAT_ALONE)
        errors = (OSError, EOFError, lzma.LZMAError)
    else:
        raise FormatError(f"joblib files compressed with {method} are not supported; use zlib, gzip, bz2, xz or lzma")
    pending = data
    try:
        while not decompressor.eof:
            # Never more than one byte past the limit: enough to know it was crossed.
            room = min(_CHUNK, limit - out.tell() + 1)
            if method in ("zlib", "gzip"):
                chunk = decompressor.decompress(pending, room)
                pending = decompressor.unconsumed_tail
            else:
                chunk = decompressor.decompress(pending, max_length=room)
                pending = b""
            out.write(chunk)
            if out.tell() > limit:
                raise _too_big(limit)
            if not chunk and (not pending if method in ("zlib", "gzip") else decompressor.needs_input):
                raise FormatError(f"The {method}-compressed file is truncated")
            guard.tick()
    except errors as exc:
        raise FormatError(f"The file is not a valid {method}-compressed joblib file ({exc})") from exc
    out.seek(0)
    return out


def check_zip(data: bytes, limits: LoadLimits, max_entries: int = 100_000) -> None:
    """A zip's entries are read up to their declared sizes: bound their count and sum before reading any.

    For skops files here and for bundles (``core.portable.bundle``), under the same configured limit.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FormatError(f"The file looks like a zip archive but is damaged ({exc})") from exc
    if len(infos) > max_entries:
        raise UnsafeModelError(f"The archive holds {len(infos):,} files (at most {max_entries:,}); refused")
    total = sum(info.file_size for info in infos)
    if total > limits.max_decompressed_bytes:
        raise _too_big(limits.max_decompressed_bytes)
