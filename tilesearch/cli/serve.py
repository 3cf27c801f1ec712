"""`tilesearch serve`: the local web app."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in a web browser.")
@click.option("--build-overviews", is_flag=True,
              help="First build overviews for images lacking them (see 'tilesearch overviews').")
@click.option("--processes", "workers", type=click.IntRange(min=1), default=1,
              show_default=True,
              help="Server processes (more serve more concurrent users on more cores).")
@click.option("--warm/--no-warm", default=True, show_default=True,
              help="Read the store's search files into memory in the background at start "
                   "(those that fit in half the free memory), so that a large store soon "
                   "answers at in-memory speed.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests naming this host (repeatable), e.g. the machine's "
                   "LAN name behind --host 0.0.0.0; others get 421 (DNS rebinding).")
@click.option("--expose-paths", is_flag=True,
              help="Show absolute file paths in answers (info, failures, downloads); by "
                   "default only file names leave the server.")
@click.option("--basemap", metavar="URL",
              help="An XYZ tile URL template (https://.../{z}/{x}/{y}.png) offered as a "
                   "basemap under the geographic map; off until turned on in the page. "
                   "Without it the page fetches nothing beyond this server.")
def serve_cmd(store: Path, host: str, port: int, open_browser: bool,
              build_overviews: bool, workers: int, warm: bool, allow_hosts: tuple[str, ...],
              expose_paths: bool, basemap: str | None) -> None:
    """Explore STORE in a local web app: click a place, see where else it occurs.

    It answers only requests naming 127.0.0.1, localhost, ::1 or --host, refuses
    cross-origin POSTs and has no login: bind --host beyond loopback only on a trusted
    network."""
    from tilesearch.web import serve

    serve(store, host=host, port=port, open_browser=open_browser,
          build_overviews=build_overviews, workers=workers, warm=warm,
          expose_paths=expose_paths, allowed_hosts=allow_hosts, basemap=basemap)
