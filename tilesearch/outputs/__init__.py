"""Outputs: search results as JSON, GeoJSON and CSV (`export`), contact sheets and thumbnails
(`render`)."""

from tilesearch.outputs import export, render

__all__ = ["export", "render"]
