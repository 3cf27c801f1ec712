"""Outputs: search results as JSON, GeoJSON and CSV (`export`), contact sheets and thumbnails
(`render`), find-all detections, region counts and score heatmaps (`findings`), hits as
GeoPackage and fingerprints as GeoParquet (`gis`)."""

from tilesearch.outputs import export, render
from tilesearch.outputs.findings import (
    FORMATS,
    detection_format,
    detections_csv,
    heatmap_cells,
    regions_csv,
    write_detections,
    write_heatmaps,
    write_regions,
)
from tilesearch.outputs.gis import write_geoparquet, write_hits_gpkg

__all__ = ["FORMATS", "detection_format", "detections_csv", "export", "heatmap_cells",
           "regions_csv", "render", "write_detections", "write_geoparquet", "write_heatmaps",
           "write_hits_gpkg", "write_regions"]
