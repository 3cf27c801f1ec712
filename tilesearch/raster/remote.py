"""Images wherever GDAL reads them: http(s) URLs, object storage (s3://, gs://, az://) and
GDAL's own virtual file systems (/vsicurl/, /vsis3/, ...). A name a user gives is turned into
the GDAL path rasterio opens; credentials and endpoints are GDAL's own configuration
(AWS_*, GS_*, AZURE_* variables, ~/.aws), never kept in the store. Pure string arithmetic."""

from __future__ import annotations

import os
from pathlib import Path

SCHEMES = {"http://": "/vsicurl/", "https://": "/vsicurl/", "s3://": "/vsis3/",
           "gs://": "/vsigs/", "az://": "/vsiaz/"}
"""URL schemes and the GDAL virtual file system that reads each."""
HTTP_RETRIES = {"GDAL_HTTP_MAX_RETRY": "4", "GDAL_HTTP_RETRY_DELAY": "1"}
"""GDAL settings applied unless the user set them: a failed remote read is retried 4 times
(a second apart) before the image is reported as bad. They are process-wide, so they must
not change how local files open."""
REMOTE_OPEN = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
"""GDAL settings while a remote image is opened: its folder is not listed (one request instead
of many). Set for that open only: process-wide, it would hide local .ovr files."""


def is_remote(name: str | Path) -> bool:
    """Whether `name` is a URL or a GDAL virtual path rather than a local file."""
    s = str(name)
    return s.startswith("/vsi") or any(s.lower().startswith(k) for k in SCHEMES)


def gdal_path(name: str | Path) -> str:
    """The path GDAL opens for `name`: a URL mapped to its virtual file system (http(s):// ->
    /vsicurl/http(s)://..., s3://b/k -> /vsis3/b/k), a /vsi path as given."""
    s = str(name)
    for scheme, vsi in SCHEMES.items():
        if s.lower().startswith(scheme):
            return vsi + (s if vsi == "/vsicurl/" else s[len(scheme):])
    return s


def configure_gdal() -> None:
    """Set `HTTP_RETRIES` in the environment where the user has not set them."""
    for key, value in HTTP_RETRIES.items():
        os.environ.setdefault(key, value)


def read_list(path: str | Path) -> list[str]:
    """The image names in the text file `path`: one a line; blank lines and lines starting
    with # are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]
