"""Raster reading: the only code that opens image files (rasterio windowed reads, validity
masks, band choice, 16-bit stretch, Web Mercator map tiles through rio-tiler), finding the
files (local, URLs, object storage), and overviews."""

from tilesearch.raster.files import IMAGE_SUFFIXES, find_images
from tilesearch.raster.mercator import native_zoom, read_mercator, warp_grid
from tilesearch.raster.overviews import (
    OVERVIEW_SMALLEST,
    build_overviews,
    overview_levels,
    overview_source,
    overview_vrt,
)
from tilesearch.raster.reader import STRETCH_PERCENTILES, RasterSource, locate_tiles, open_image
from tilesearch.raster.remote import gdal_path, is_remote, read_list
from tilesearch.raster.stac import expand_stac, is_stac

__all__ = [
    "IMAGE_SUFFIXES",
    "OVERVIEW_SMALLEST",
    "STRETCH_PERCENTILES",
    "RasterSource",
    "build_overviews",
    "expand_stac",
    "find_images",
    "gdal_path",
    "is_remote",
    "is_stac",
    "locate_tiles",
    "native_zoom",
    "open_image",
    "overview_levels",
    "overview_source",
    "overview_vrt",
    "read_list",
    "read_mercator",
    "warp_grid",
]
