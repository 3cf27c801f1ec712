"""One root exception, with subclasses whose messages say what to do next."""

from __future__ import annotations

from pathlib import Path


class TilesearchError(Exception):
    """Root of every error tilesearch raises on purpose."""


class InputError(TilesearchError):
    """An input image cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StoreError(TilesearchError):
    """A store folder is missing, damaged, locked or not a store."""


class ModelMismatchError(StoreError):
    """Fingerprints or a query come from a different model than the store's."""


class ModelError(TilesearchError):
    """A model or its weights cannot be loaded."""


class QueryError(TilesearchError):
    """A search query cannot be answered (unknown tile id, point outside every image...)."""


class OptionError(TilesearchError):
    """An option's value is out of its range, or no such option exists (`tilesearch.options`)."""


class MissingDependencyError(TilesearchError):
    """An optional dependency is not installed; the message gives the install command."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = (f"pip install '.[{extra}]' in a tilesearch checkout (the extra {extra!r}), or "
                f"pip install {package}") if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"{package} is not installed{what}; install it with: {hint}")
