"""Writers of the awkward image files users have: each returns the path it wrote."""

import numpy as np
from PIL import Image


def rgb(path, width=40, height=20, seed=0, fmt=None):
    rng = np.random.RandomState(seed)
    Image.fromarray((rng.rand(height, width, 3) * 255).astype(np.uint8)).save(path, format=fmt)
    return path


def exif_rotated(path):
    """Stored 40x20 with EXIF orientation 6: displayed as 20x40 (rotated 90 degrees)."""
    img = Image.fromarray((np.random.RandomState(1).rand(20, 40, 3) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, format="JPEG", exif=exif.tobytes())
    return path


def truncated_jpeg(path):
    rgb(path, 64, 64, fmt="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def mode(path, name):
    """An image in Pillow mode ``name`` (CMYK, L, P, RGBA, I;16), saved in a format that keeps it."""
    base = Image.fromarray((np.random.RandomState(2).rand(16, 24, 3) * 255).astype(np.uint8))
    if name == "I;16":
        Image.fromarray((np.arange(16 * 24, dtype=np.uint16).reshape(16, 24) * 170)).save(path, format="PNG")
        return path
    img = base.convert(name)
    if name == "P":
        img.info["transparency"] = 0
    img.save(path, format="JPEG" if name == "CMYK" else "PNG")
    return path


def bomb_png(width=30000, height=30000) -> bytes:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
