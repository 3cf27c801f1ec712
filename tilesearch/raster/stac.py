"""STAC inputs: an Item, an ItemCollection, or a static Catalog or Collection (a file or a
URL, read with pystac) stands for the image assets of its items. The asset is the one named
by `asset`, else the item's "visual" asset, else its one GeoTIFF/COG asset with the "data" or
"visual" role. Hrefs are made absolute against the catalog; URLs go through GDAL as any
remote image (`remote.gdal_path`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tilesearch.errors import InputError, MissingDependencyError
from tilesearch.raster.remote import gdal_path, is_remote

DEFAULT_ASSET = "visual"
IMAGE_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2")
"""Media types (a prefix of the asset's "type") taken for an image asset."""


def is_stac(name: str | Path) -> bool:
    """Whether `name` names a STAC document (a .json file or URL)."""
    return str(name).lower().split("?", 1)[0].endswith(".json")


def expand_stac(names: Iterable[str | Path], asset: str | None = None
                ) -> tuple[list[str | Path], dict[str, str], list[InputError]]:
    """`names` with every STAC document replaced by the hrefs of its items' image assets (in
    the catalog's order), the item id of each such image (keyed by `source_key`), and an
    error for each document or item that yields none."""
    out: list[str | Path] = []
    items_of: dict[str, str] = {}
    errors: list[InputError] = []
    for name in names:
        if not is_stac(name):
            out.append(name)
            continue
        try:
            items = list(_items(_read(str(name))))
        except InputError as exc:
            errors.append(exc)
            continue
        if not items:
            errors.append(InputError(str(name), "a STAC document without items"))
        for item in items:
            try:
                href = _absolute(asset_href(item, asset), str(name))
            except InputError as exc:
                errors.append(exc)
                continue
            out.append(href)
            items_of[source_key(href)] = str(item.id)
    return out, items_of, errors


def source_key(name: str | Path) -> str:
    """The path an image is recorded under: GDAL's path of a URL, the resolved local path."""
    return gdal_path(name) if is_remote(name) else str(Path(name).resolve())


def asset_href(item: Any, asset: str | None = None) -> str:
    """The absolute href of `item`'s image asset (see the module docstring)."""
    assets = item.get_assets()
    where = item.get_self_href() or item.id
    if asset is not None:
        if asset not in assets:
            raise InputError(where, f"STAC item {item.id!r} has no asset {asset!r} (assets: "
                                    f"{', '.join(assets) or 'none'})")
        return str(assets[asset].get_absolute_href() or assets[asset].href)
    if DEFAULT_ASSET in assets:
        return str(assets[DEFAULT_ASSET].get_absolute_href() or assets[DEFAULT_ASSET].href)
    images = [a for a in assets.values()
              if (a.media_type or "").lower().startswith(IMAGE_TYPES)
              and set(a.roles or ["data"]) & {"data", "visual"}]
    if len(images) != 1:
        what = "no image asset" if not images else f"{len(images)} image assets"
        raise InputError(where, f"STAC item {item.id!r} has {what} (assets: "
                                f"{', '.join(assets) or 'none'}); pick one with --asset KEY")
    return str(images[0].get_absolute_href() or images[0].href)


def _absolute(href: str, base: str) -> str:
    """`href` made absolute against the document `base` where it is relative (the items of
    an ItemCollection carry no location of their own)."""
    if "://" in href or href.startswith("/"):
        return href
    if "://" in base:
        return base.rsplit("/", 1)[0] + "/" + href
    return str((Path(base).resolve().parent / href).resolve())


def _read(name: str) -> Any:
    try:
        import pystac
    except ImportError as exc:
        raise MissingDependencyError("STAC inputs need pystac: pip install "
                                     "'tilesearch[stac]'") from exc
    try:
        doc = pystac.StacIO.default().read_json(name)
        if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
            return pystac.ItemCollection.from_dict(doc, preserve_dict=False)
        href = name if "://" in name else str(Path(name).resolve())
        return pystac.read_dict(doc, href=href)
    except FileNotFoundError:
        raise InputError(name, "no such file or folder") from None
    except Exception as exc:  # pystac raises many kinds: say which, in one line
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(name, f"not a readable STAC document ({line})") from None


def _items(doc: Any) -> Iterator[Any]:
    import pystac

    if isinstance(doc, pystac.Item):
        yield doc
    elif isinstance(doc, pystac.ItemCollection):
        yield from doc.items
    elif isinstance(doc, pystac.Catalog):  # a Collection is a Catalog too
        yield from doc.get_items(recursive=True)
    else:
        raise InputError(getattr(doc, "id", "?"), f"a STAC {type(doc).__name__}, not an Item, "
                                                  "ItemCollection, Catalog or Collection")
