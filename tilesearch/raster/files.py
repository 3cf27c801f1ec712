"""Finding the image files under the paths a user gives: folders walked, each file once."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tilesearch.errors import InputError
from tilesearch.raster.remote import gdal_path, is_remote

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt", ".img"}


def find_images(paths: Iterable[str | Path]) -> tuple[list[str | Path], list[InputError]]:
    """Image files under `paths` (files as given, folders walked, following links to folders
    once each), each once by resolved path, URLs and GDAL virtual paths as GDAL opens them
    (`remote.gdal_path`), and errors for bad paths: missing, unreadable folders, broken
    links."""
    found: list[Path] = []
    remote: list[str] = []
    errors: list[InputError] = []
    for name in paths:
        if is_remote(name):
            remote.append(gdal_path(name))
            continue
        p = Path(name)
        if p.is_dir():
            _walk(p, found, errors)
        elif p.is_file():
            found.append(p)
        elif p.is_symlink():
            errors.append(InputError(p, "broken symbolic link (its target does not exist)"))
        elif p.exists():
            errors.append(InputError(p, "not a regular file or folder"))
        else:
            errors.append(InputError(p, "no such file or folder"))
    local: list[str | Path] = list(dict.fromkeys(f.resolve() for f in found))
    return [*local, *dict.fromkeys(remote)], errors


def _walk(root: Path, found: list[Path], errors: list[InputError]) -> None:
    """Image files under `root`, sorted; store folders (``*.tiles``) skipped."""
    seen: set[tuple[int, int]] = set()

    def failed(exc: OSError) -> None:
        errors.append(InputError(exc.filename or root, f"folder cannot be listed "
                                                       f"({exc.strerror or exc})"))

    for folder, dirs, files in os.walk(root, onerror=failed, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # walked already: a loop, or a second way in
            real, up = os.path.realpath(folder), os.path.realpath(os.path.dirname(folder))
            if up == real or up.startswith(real + os.sep):
                errors.append(InputError(folder, "symbolic link loop (links to a folder "
                                                 "above it); skipped"))
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.endswith(".tiles"))
        for name in sorted(files):
            f = Path(folder) / name
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if f.is_file():
                found.append(f)
            elif f.is_symlink():
                errors.append(InputError(f, "broken symbolic link (its target does not "
                                            "exist)"))
