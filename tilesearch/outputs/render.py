"""Pictures of search results: tile thumbnails, a labelled contact sheet and a grid of tiles
to review (PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tilesearch.errors import InputError
from tilesearch.raster import open_image
from tilesearch.records import ImageInfo, TileMeta
from tilesearch.retrieval import SearchResult
from tilesearch.store import Store

PAD = 12
"""Pixels between panels and around the sheet."""
GAP = 28
"""Extra pixels between the query column and the grid of results (a rule is drawn there)."""
MAX_COLUMNS = 5
"""Default number of result columns."""
HIT_LINES = 2
QUERY_LINES = 5
CHECKER = ((205, 205, 205), (160, 160, 160))
"""The two greys of the checkerboard that marks invalid (nodata) pixels."""
CHECKER_SQUARE = 8
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
FAINT = (120, 120, 120)
ACCENT = (214, 96, 0)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class SheetLayout:
    """Where the panels of a contact sheet go; all positions are top-left (x, y) in pixels."""

    thumb: int
    columns: int
    rows: int
    font_size: int
    title_y: int
    query_xy: tuple[int, int]
    cells: tuple[tuple[int, int], ...]
    size: tuple[int, int]

    @property
    def line_height(self) -> int:
        return self.font_size + 4


def label_height(font_size: int, lines: int) -> int:
    """Height of a label block of `lines` lines under a panel."""
    return lines * (font_size + 4) + 6


def sheet_layout(k: int, thumb: int = 256, columns: int | None = None) -> SheetLayout:
    """The layout of a sheet with `k` results: query column on the left, results in a grid."""
    if thumb < 16:
        raise ValueError(f"thumb must be at least 16 px, got {thumb}")
    cols = max(1, columns if columns else min(k, MAX_COLUMNS))
    rows = math.ceil(k / cols)
    font = max(11, min(18, thumb // 16))
    top = PAD + font + 4 + PAD
    cell_h = thumb + label_height(font, HIT_LINES)
    grid_x = PAD + thumb + GAP
    cells = tuple(
        (grid_x + (i % cols) * (thumb + PAD), top + (i // cols) * (cell_h + PAD)) for i in range(k)
    )
    body = max(thumb + label_height(font, QUERY_LINES), rows * (cell_h + PAD) - PAD)
    size = (grid_x + cols * (thumb + PAD), top + body + PAD)
    return SheetLayout(thumb, cols, rows, font, PAD, (PAD, top), cells, size)


def to_thumbnail(
    pixels: np.ndarray, valid: np.ndarray | None = None, size: int = 256
) -> np.ndarray:
    """`pixels` (H, W, 3) uint8 fitted into size x size, invalid pixels as a grey checkerboard."""
    h, w = pixels.shape[:2]
    if valid is None:
        valid = np.ones((h, w), dtype=bool)
    scale = size / max(h, w, 1)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB")
    mask = Image.fromarray(valid.astype(np.uint8) * 255, "L")
    if (nw, nh) != (w, h):
        method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
        img = img.resize((nw, nh), method)
        mask = mask.resize((nw, nh), Image.Resampling.BILINEAR)
    rgb = np.asarray(img)
    ok = np.asarray(mask) >= 128
    out = np.empty((size, size, 3), np.uint8)
    out[:] = BACKGROUND
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = np.where(ok[..., None], rgb, _checker(nh, nw))
    return out


def thumbnail(store: Store, meta: TileMeta, size: int = 256) -> np.ndarray:
    """The tile `meta` read from its source image as an RGB uint8 size x size thumbnail.

    Raises InputError when the source image can no longer be read.
    """
    info: ImageInfo = store.image_by_id(meta.image_id)["info"]
    w = meta.window
    with open_image(info.path, bands=info.bands, stretch=info.stretch) as src:
        if w.width > size and w.width == w.height:  # read at the store's GSD: no full-res read
            pixels, valid = src.read_scaled(w, size, size)
        else:
            pixels, valid = src.read_block(w)
    return to_thumbnail(pixels, valid, size)


def contact_sheet(
    result: SearchResult,
    store: Store,
    path: str | Path,
    *,
    thumb: int = 256,
    columns: int | None = None,
) -> Path:
    """Write a PNG of the query tile beside its results, each labelled; returns its path."""
    layout = sheet_layout(len(result.hits), thumb, columns)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(layout.font_size)
    _draw_title(draw, font, result, layout)
    _draw_query(sheet, draw, font, result, store, layout)
    for hit, (x, y) in zip(result.hits, layout.cells, strict=True):
        _panel(sheet, draw, _safe_thumbnail(store, hit.tile, thumb), (x, y), FAINT, 1)
        lines = [f"#{hit.rank}   d = {hit.distance:.4g}", Path(hit.tile.source).name]
        _label(draw, font, lines, (x, y + thumb + 4), thumb, layout.line_height, INK)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)  # the CLI checks its --sheet folder first
    sheet.save(out, format="PNG")
    return out


def tile_grid(
    store: Store,
    tiles: Sequence[tuple[int, Sequence[str]]],
    path: str | Path,
    title: str,
    *,
    thumb: int = 192,
    columns: int = MAX_COLUMNS + 1,
) -> Path:
    """Write a PNG of the tiles (id, caption lines) in a grid under `title`, as a person
    reviews them (an audit); returns its path."""
    size = max(11, min(18, thumb // 16))
    font = _font(size)
    lines = max((len(c) for _, c in tiles), default=1)
    cols = max(1, min(columns, len(tiles)))
    cell_h = thumb + label_height(size, lines)
    top = PAD + size + 4 + PAD
    rows = max(1, math.ceil(len(tiles) / cols))
    sheet = Image.new("RGB", (PAD + cols * (thumb + PAD), top + rows * (cell_h + PAD)),
                      BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), _fit(draw, font, title, sheet.width - 2 * PAD), fill=INK, font=font)
    line_h = size + 4
    for i, (tile_id, caption) in enumerate(tiles):
        x, y = PAD + (i % cols) * (thumb + PAD), top + (i // cols) * (cell_h + PAD)
        _panel(sheet, draw, _safe_thumbnail(store, store.tile(tile_id), thumb), (x, y), FAINT, 1)
        _label(draw, font, list(caption), (x, y + thumb + 4), thumb, line_h, INK)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out


def _draw_title(
    draw: ImageDraw.ImageDraw, font: Font, result: SearchResult, layout: SheetLayout
) -> None:
    n = len(result.hits)
    text = (
        f"{n} most similar tile{'s' if n != 1 else ''} ({result.metric})   "
        f"store: {Path(result.store).name}"
    )
    if not n:
        text = f"no results ({result.metric})   store: {Path(result.store).name}"
    width = layout.size[0] - 2 * PAD
    draw.text((PAD, layout.title_y), _fit(draw, font, text, width), fill=INK, font=font)
    x_rule = PAD + layout.thumb + GAP // 2
    y_top = layout.query_xy[1]
    draw.line([(x_rule, y_top), (x_rule, layout.size[1] - PAD)], fill=(215, 215, 215), width=1)


def _draw_query(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    font: Font,
    result: SearchResult,
    store: Store,
    layout: SheetLayout,
) -> None:
    q, (x, y), size = result.query, layout.query_xy, layout.thumb
    if q.pixels is not None:
        pixels = to_thumbnail(q.pixels, None, size)
    elif q.tile is not None:
        pixels = _safe_thumbnail(store, q.tile, size)
    else:
        pixels = _placeholder(size, "no pixels")
    _panel(sheet, draw, pixels, (x, y), ACCENT, 3)
    lines = ["query", *_wrap(draw, font, q.description, size, QUERY_LINES - 2)]
    if q.tile is not None:
        lines.append(Path(q.tile.source).name)
    _label(draw, font, lines[:QUERY_LINES], (x, y + size + 4), size, layout.line_height, ACCENT)


def _panel(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    pixels: np.ndarray,
    xy: tuple[int, int],
    colour: tuple[int, int, int],
    border: int,
) -> None:
    """Paste `pixels` at `xy` with a frame drawn just outside them."""
    x, y = xy
    h, w = pixels.shape[:2]
    draw.rectangle(
        [x - border, y - border, x + w - 1 + border, y + h - 1 + border],
        outline=colour,
        width=border,
    )
    sheet.paste(Image.fromarray(pixels, "RGB"), (x, y))


def _label(
    draw: ImageDraw.ImageDraw,
    font: Font,
    lines: list[str],
    xy: tuple[int, int],
    width: int,
    line_height: int,
    first_colour: tuple[int, int, int],
) -> None:
    x, y = xy
    for i, line in enumerate(lines):
        colour = first_colour if i == 0 else FAINT
        draw.text(
            (x, y + 2 + i * line_height),
            _fit(draw, font, line, width, middle=i > 0),
            fill=colour,
            font=font,
        )


def _safe_thumbnail(store: Store, meta: TileMeta, size: int) -> np.ndarray:
    try:
        return thumbnail(store, meta, size)
    except InputError:
        return _placeholder(size, "image unreadable")


def _placeholder(size: int, text: str) -> np.ndarray:
    img = Image.new("RGB", (size, size), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    draw.line([(0, 0), (size - 1, size - 1)], fill=(200, 200, 200), width=2)
    draw.line([(0, size - 1), (size - 1, 0)], fill=(200, 200, 200), width=2)
    font = _font(max(10, min(18, size // 16)))
    tw = draw.textlength(text, font=font)
    draw.text(((size - tw) / 2, size / 2 - 8), text, fill=INK, font=font)
    return np.asarray(img)


def _checker(h: int, w: int) -> np.ndarray:
    yy, xx = np.indices((h, w))
    odd = ((yy // CHECKER_SQUARE + xx // CHECKER_SQUARE) % 2).astype(bool)
    return np.where(odd[..., None], np.array(CHECKER[1], np.uint8), np.array(CHECKER[0], np.uint8))


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, font: Font, text: str, width: int, middle: bool = False) -> str:
    """`text` shortened with '...' (at its end, or its middle) to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    for cut in range(1, len(text)):
        keep = len(text) - cut
        short = (
            text[: (keep + 1) // 2] + "..." + text[len(text) - keep // 2 :]
            if middle
            else text[:keep] + "..."
        )
        if draw.textlength(short, font=font) <= width:
            return short
    return "..."


def _wrap(
    draw: ImageDraw.ImageDraw, font: Font, text: str, width: int, max_lines: int
) -> list[str]:
    """`text` broken into at most `max_lines` lines of `width` pixels, at spaces where it can,
    else inside a word; the last line is shortened with '...' when text is left over."""
    lines: list[str] = []
    rest = text.strip()
    while rest and len(lines) < max_lines:
        n = _fitting_prefix(draw, font, rest, width)
        space = rest.rfind(" ", 0, n + 1)
        if n < len(rest) and space > 0:
            n = space
        if len(lines) == max_lines - 1:
            n = len(rest)
        lines.append(_fit(draw, font, rest[:n].strip(), width))
        rest = rest[n:].strip()
    return lines


def _fitting_prefix(draw: ImageDraw.ImageDraw, font: Font, text: str, width: int) -> int:
    """Length of the longest prefix of `text` (at least 1 character) that fits `width`."""
    n = 1
    while n < len(text) and draw.textlength(text[: n + 1], font=font) <= width:
        n += 1
    return n
