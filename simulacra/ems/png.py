"""PNG text chunks, read and written with struct and zlib: character cards hide in them.

A PNG is an 8-byte signature then chunks: length (4 bytes, big-endian), type (4 ASCII letters),
data, CRC-32 of type + data. Text lives in ``tEXt`` (keyword NUL Latin-1 text), ``zTXt`` (keyword
NUL method zlib-text) and ``iTXt`` (keyword NUL flag method language NUL translated NUL UTF-8 text).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Iterator, Mapping

from simulacra.errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


def is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURE)


def chunks(data: bytes, source: str | Path = "PNG") -> Iterator[tuple[bytes, bytes]]:
    """(type, data) for each chunk, checking lengths and CRCs."""
    if not is_png(data):
        raise InputError(f"{source}: not a PNG file (its first bytes are not the PNG signature)")
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise InputError(f"{source}: truncated PNG (a chunk header is cut off at byte {pos})")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise InputError(f"{source}: truncated PNG (chunk {kind!r} runs past the end of the file)")
        body = data[pos + 8:end]
        (crc,) = struct.unpack(">I", data[end:end + 4])
        if crc != zlib.crc32(kind + body):
            raise InputError(f"{source}: corrupt PNG (bad checksum in chunk {kind.decode('latin-1')!r})")
        yield kind, body
        pos = end + 4
        if kind == b"IEND":
            return
    raise InputError(f"{source}: truncated PNG (no IEND chunk)")


def read_texts(data: bytes, source: str | Path = "PNG") -> dict[str, str]:
    """Keyword -> text of every text chunk (the first one wins when a keyword repeats)."""
    out: dict[str, str] = {}
    for kind, body in chunks(data, source):
        if kind in TEXT_TYPES:
            keyword, text = _decode_text(kind, body, source)
            out.setdefault(keyword, text)
    return out


def with_texts(data: bytes, texts: Mapping[str, str], drop: set[str] = frozenset(),
               source: str | Path = "PNG") -> bytes:
    """The PNG with text chunks whose keyword is in ``drop`` (or ``texts``) removed and ``texts``
    added as ``tEXt`` chunks just before IEND."""
    drop = set(drop) | set(texts)
    out = [SIGNATURE]
    for kind, body in chunks(data, source):
        if kind in TEXT_TYPES and body.split(b"\0", 1)[0].decode("latin-1") in drop:
            continue
        if kind == b"IEND":
            out += [chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
                    for key, value in texts.items()]
        out.append(chunk(kind, body))
    return b"".join(out)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))


def blank_png() -> bytes:
    """A valid 1×1 grey PNG: 8-bit greyscale, one scanline (filter byte 0, one pixel)."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def _decode_text(kind: bytes, body: bytes, source: str | Path) -> tuple[str, str]:
    keyword, sep, rest = body.partition(b"\0")
    if not sep:
        raise InputError(f"{source}: corrupt PNG ({kind.decode()} chunk without a keyword separator)")
    try:
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return keyword.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
        compressed = rest[:1] == b"\x01"
        _language, _, rest = rest[2:].partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return keyword.decode("latin-1"), (zlib.decompress(text) if compressed else text).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as e:
        raise InputError(f"{source}: corrupt PNG text chunk {keyword[:40]!r}: {e}") from None
