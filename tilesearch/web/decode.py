"""Decoding query uploads with bounded memory: the upload is reduced at once to what an image
query compares (the whole image resampled to the store's tile size, `knn.image_query`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import warnings

from PIL import Image

from tilesearch.errors import InputError
from tilesearch.tiling import centre_window
from tilesearch.web.errors import TooLarge

MAX_UPLOAD_PIXELS = 50_000_000
"""Largest accepted upload, in pixels (413 beyond)."""


def decode_upload(name: str, data: bytes, size: int, side: int | None = None) -> Image.Image:
    """The upload as a `size` x `size` RGB image (bilinear, as `read_resized`): the whole of
    it, or its centre `side` px square (one tile's ground, `retrieval.ground_side`);
    InputError when it is not a usable image, TooLarge when it has more than
    MAX_UPLOAD_PIXELS pixels."""
    try:
        return _decode(name, data, size, side)
    finally:  # the full-size pixels are freed once _decode has returned
        release_memory()


def _decode(name: str, data: bytes, size: int, side: int | None) -> Image.Image:
    if not data:
        raise InputError(name, "the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                check_size(name, probe.size)
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                return reduce_to(img, size, side)
    except Image.DecompressionBombError as exc:  # Image.open refuses before check_size
        raise TooLarge(f"{name} has more than the {MAX_UPLOAD_PIXELS:,} px upload limit "
                       f"({exc})") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(name, f"not a readable image ({exc})") from exc


def check_size(name: str, dims: tuple[int, int]) -> None:
    if dims[0] * dims[1] > MAX_UPLOAD_PIXELS:
        raise TooLarge(f"{name} has {dims[0]} x {dims[1]} px, more than the "
                       f"{MAX_UPLOAD_PIXELS:,} px upload limit")


def reduce_to(img: Image.Image, size: int, side: int | None = None) -> Image.Image:
    """`img` (or its centre `side` px square) resampled to size x size RGB, never holding more
    than one full-size copy: JPEGs decode at 1/2 to 1/8 scale (`draft`), big images are
    box-reduced to twice `size` first."""
    if side is None:
        img.draft("RGB", (2 * size, 2 * size))
    else:  # draft keeps the centre square's detail, then the square is cut out
        full = img.width
        img.draft("RGB", (2 * size * img.width // side, 2 * size * img.height // side))
        c = centre_window(img.width, img.height, max(1, round(side * img.width / full)))
        img = img.crop((c.col_off, c.row_off, c.col_end, c.row_end))
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")  # alpha dropped (as before), a palette expanded
    factor = (max(1, img.width // (2 * size)), max(1, img.height // (2 * size)))
    if factor != (1, 1):
        img = img.reduce(factor)
    return img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps large freed buffers otherwise,
    so a burst of big uploads would leave the server gigabytes bigger)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
        return lib if lib is not None and hasattr(lib, "malloc_trim") else None
    except OSError:  # pragma: no cover - not glibc
        return None


_LIBC = _libc()
