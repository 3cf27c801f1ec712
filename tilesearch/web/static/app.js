// tilesearch web page: every georeferenced image on one Web Mercator map (the "geo" view), or
// one image at a time in its own pixels (the "pixel" view: images without georeferencing, or
// any image looked at alone); click to search.
"use strict";

const $ = (id) => document.getElementById(id);
const MAP = "map";    // the image selector's value for the geographic map
const state = {
  images: [], image: null, geo: null, layer: null, outlines: null,
  view: null,         // "geo" (Web Mercator, every georeferenced image) or "pixel" (state.image)
  query: null,        // {kind: "tile", tile} or {kind: "image", file}
  marks: new Map(),   // tile id -> "positive" | "negative"
  hits: [], queryTile: null,
  mode: "search",     // what a click on the map does: "search" or "label" (labels.js)
};
let map = null;
const mapMade = [];   // called with each new map (labels.js adds its layers)
const Cursor = L.Control.extend({  // the coordinates under the mouse
  onAdd() { const div = L.DomUtil.create("div", "cursor-coords"); div.id = "cursor"; return div; },
});

function toLatLng(image, col, row) { return map.unproject([col, row], image.max_zoom); }
function windowBounds(image, w) {
  return L.latLngBounds(toLatLng(image, w.col_off, w.row_off + w.height),
                        toLatLng(image, w.col_off + w.width, w.row_off));
}
const lonLatRing = (ring) => ring.map(([lon, lat]) => [lat, lon]);

function tileShape(tile) {  // a tile's outline on the current map, or null where it is not on it
  if (state.view === "geo") return tile.footprint ? lonLatRing(tile.footprint) : null;
  if (!state.image || tile.image_id !== state.image.id) return null;
  const b = windowBounds(state.image, tile.window);
  return [b.getNorthWest(), b.getNorthEast(), b.getSouthEast(), b.getSouthWest()];
}

function message(text, isError) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = isError ? "error" : "";
}

async function call(url, options) {
  const resp = await fetch(url, options);
  if (!resp.ok) {
    let text = `${resp.status} ${resp.statusText}`;
    try { const e = await resp.json(); text = `${e.error}: ${e.detail}`; } catch (_) { /* not JSON */ }
    throw new Error(text);
  }
  return resp;
}

function humanBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function showFacts(facts) {
  let text = `${facts.images} images · ${facts.tiles.toLocaleString()} tiles · ` +
    `${facts.model.name} · ${humanBytes(facts.bytes_on_disk)}`;
  if (facts.warm && facts.warm.running) {
    // the server reads the store's search files into memory: first searches may be slower
    text += ` · loading the search files into memory (${humanBytes(facts.warm.read_bytes)})`;
    setTimeout(async () => {
      try { showFacts(await (await call("/api/info")).json()); } catch (err) { /* keep */ }
    }, 2000);
  }
  $("facts").textContent = text;
}

function addOption(value, text) {
  const opt = document.createElement("option");
  opt.value = value;
  opt.textContent = text;
  $("image-select").appendChild(opt);
}

async function start() {
  try {
    const facts = await (await call("/api/info")).json();
    state.images = facts.images_list;
    showFacts(facts);
    if (state.images.some((im) => im.georeferenced)) {
      state.geo = await (await call("/api/map")).json();
      addOption(MAP, `Map: ${state.geo.footprints.features.length} georeferenced images`);
    }
    for (const im of state.images) addOption(im.id, `${im.name} (${im.width}×${im.height})`);
    if (state.geo) showGeo("start");
    else if (state.images.length) showImage(state.images[0].id);
    else message("This store holds no indexed image yet.", true);
  } catch (err) { message(err.message, true); }
}

function footprintBounds(imageId) {
  const f = state.geo.footprints.features.find((g) => g.properties.image_id === imageId);
  return f ? L.latLngBounds(lonLatRing(f.geometry.coordinates[0])) : null;
}

function startBounds(all) {  // all the images, unless that makes the first one a speck
  const first = footprintBounds(state.geo.footprints.features[0].properties.image_id);
  return map.getBoundsZoom(first) - map.getBoundsZoom(all) > 4 ? first : all;
}

function newMap(view, options) {
  if (map) map.remove();
  map = L.map("map", { zoomSnap: 0.5, attributionControl: false, ...options });
  state.view = view;
  state.outlines = L.layerGroup().addTo(map);
  new Cursor({ position: "bottomleft" }).addTo(map);
  map.on("click", clicked);
  map.on("mousemove", (e) => { $("cursor").textContent = cursorText(e.latlng); });
  map.on("mouseout", () => { $("cursor").textContent = ""; });
  mapMade.forEach((f) => f(map));
}

function cursorText(latlng) {
  if (state.view === "geo") return `${latlng.lat.toFixed(6)}°, ${latlng.lng.toFixed(6)}°`;
  const p = map.project(latlng, state.image.max_zoom);
  return `col ${Math.round(p.x)}, row ${Math.round(p.y)}`;
}

function showGeo(bounds) {
  const g = state.geo;
  $("image-select").value = MAP;
  const all = L.latLngBounds([g.bounds[1], g.bounds[0]], [g.bounds[3], g.bounds[2]]);
  if (state.view !== "geo") {
    state.image = null;
    newMap("geo", { maxZoom: g.max_zoom + 2 });
    const layers = {};
    if (g.basemap) {  // off until turned on: the page fetches nothing from elsewhere before
      layers.basemap = L.tileLayer(g.basemap, { maxZoom: g.max_zoom + 2, maxNativeZoom: 19,
                                                zIndex: 0, className: "basemap" });
    }
    state.layer = L.tileLayer(g.tiles, { maxZoom: g.max_zoom + 2, maxNativeZoom: g.max_zoom,
                                         bounds: all, tileSize: 256, zIndex: 1 }).addTo(map);
    layers.imagery = state.layer;
    layers["image outlines"] = L.geoJSON(g.footprints, {
      style: { color: "#ffffff", weight: 1.5, dashArray: "4 4", fill: false, className: "footprint" },
      interactive: false,
    }).addTo(map);
    L.control.layers(null, layers, { collapsed: false, position: "topright" }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
  }
  map.fitBounds(bounds === "start" ? startBounds(all) : bounds || all, { maxZoom: g.max_zoom });
  scopeChoices();
  drawOutlines();
  if (typeof imageShown === "function") imageShown();  // labels.js: marks, places, heatmap
}

function showImage(id, bounds) {
  const image = state.images.find((im) => im.id === Number(id));
  if (!image) return;
  $("image-select").value = String(image.id);
  if (state.view !== "pixel") newMap("pixel", { crs: L.CRS.Simple, minZoom: 0 });
  if (state.layer) map.removeLayer(state.layer);
  state.image = image;
  const full = windowBounds(image, { col_off: 0, row_off: 0, width: image.width, height: image.height });
  state.layer = L.tileLayer(`/api/images/${image.id}/tiles/{z}/{x}/{y}.png`, {
    minZoom: 0, maxZoom: image.max_zoom + 2, maxNativeZoom: image.max_zoom,
    bounds: full, noWrap: true, tileSize: 256,
  }).addTo(map);
  map.setMaxZoom(image.max_zoom + 2);
  map.setMaxBounds(full.pad(0.5));
  if (bounds) map.fitBounds(bounds, { maxZoom: image.max_zoom }); else map.fitBounds(full);
  scopeChoices();
  drawOutlines();
  if (typeof imageShown === "function") imageShown();  // labels.js: marks, places, heatmap
}

function scopeChoices() {  // "this image" means nothing on the map of every image
  const only = $("scope").querySelector("option[value=image]");
  only.disabled = state.view === "geo";
  if (only.disabled && $("scope").value === "image") $("scope").value = "all";
}

function searchBody() {
  const body = { k: Number($("k").value) || 10, metric: $("metric").value };
  const scope = $("scope").value;
  if (scope === "image" && state.view === "pixel") body.images = [state.image.id];
  if (scope === "visible" && state.view === "geo") {
    const b = map.getBounds();
    body.bbox = [Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90),
                 Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90)];
  } else if (scope === "visible") {
    const b = map.getBounds();
    const nw = map.project(b.getNorthWest(), state.image.max_zoom);
    const se = map.project(b.getSouthEast(), state.image.max_zoom);
    body.visible = { image: state.image.id, col_off: nw.x, row_off: nw.y,
                     width: se.x - nw.x, height: se.y - nw.y };
  }
  return body;
}

function request(format) {
  const q = "?format=" + (format || "json");
  const body = searchBody();
  const positives = [...state.marks].filter(([, m]) => m === "positive").map(([id]) => id);
  const negatives = [...state.marks].filter(([, m]) => m === "negative").map(([id]) => id);
  if (state.query.kind === "tile") {
    Object.assign(body, { tile: state.query.tile, positives, negatives });
    return [`/api/search${q}`, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body) }];
  }
  if (positives.length) {  // refining an image query: the marked results become the examples
    Object.assign(body, { positives, negatives });
    return [`/api/search${q}`, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body) }];
  }
  if (negatives.length) throw new Error("mark at least one result + to refine an uploaded-image query");
  const form = new FormData();
  form.append("file", state.query.file);
  form.append("params", JSON.stringify(body));
  return [`/api/search/image${q}`, { method: "POST", body: form }];
}

async function search() {
  message("searching…");
  try {
    const [url, opts] = request();
    const result = await (await call(url, opts)).json();
    state.hits = result.results;
    state.queryTile = result.query_tile;
    $("query").textContent = `query: ${result.query} · ${result.results.length} results (${result.metric})`;
    renderGallery();
    drawOutlines();
    ["search-again", "download-geojson", "download-csv", "clear"].forEach((b) => { $(b).disabled = false; });
    message(result.results.length ? "" : "No results: widen the filter.", false);
  } catch (err) { message(err.message, true); }
}

function renderGallery() {
  const list = $("gallery");
  list.replaceChildren();
  for (const hit of state.hits) {
    const li = document.createElement("li");
    li.className = "hit " + (state.marks.get(hit.tile_id) || "");
    li.dataset.tile = hit.tile_id;
    li.innerHTML = `<img loading="lazy" alt="tile ${hit.tile_id}" src="/api/tiles/${hit.tile_id}/thumbnail.png?size=160">
      <div class="meta"><b>#${hit.rank}</b><span>d ${hit.distance.toFixed(4)}</span></div>
      <div class="src"></div>
      <div class="marks"><button class="pos" title="more like this">+</button>
      <button class="neg" title="not like this">−</button></div>`;
    li.querySelector(".src").textContent = li.querySelector(".src").title = `${hit.image} · ${hit.tile_id}`;
    li.querySelector("img").addEventListener("click", () => jumpTo(hit));
    li.querySelector(".pos").addEventListener("click", () => mark(hit.tile_id, "positive"));
    li.querySelector(".neg").addEventListener("click", () => mark(hit.tile_id, "negative"));
    li.addEventListener("mouseenter", () => highlight(hit.tile_id, true));
    li.addEventListener("mouseleave", () => highlight(hit.tile_id, false));
    list.appendChild(li);
  }
}

function mark(tileId, kind) {
  if (state.marks.get(tileId) === kind) state.marks.delete(tileId); else state.marks.set(tileId, kind);
  renderGallery();
  drawOutlines();
}

function jumpTo(tile) {  // show a tile: on the geographic map where it is on it, else its image
  if (tile.footprint && state.geo) {
    const bounds = L.latLngBounds(lonLatRing(tile.footprint)).pad(1.5);
    if (state.view !== "geo") showGeo(bounds); else map.fitBounds(bounds, { maxZoom: state.geo.max_zoom });
    return;
  }
  const image = state.images.find((im) => im.id === tile.image_id);
  if (state.view !== "pixel" || state.image.id !== image.id) showImage(image.id);
  map.fitBounds(windowBounds(image, tile.window).pad(1.5), { maxZoom: image.max_zoom });
}

function highlight(tileId, on) {  // the gallery card and the outline of a hit, in step
  state.outlines.eachLayer((layer) => {
    if (layer.options.tile === tileId) layer.setStyle({ weight: on ? 5 : 2, fillOpacity: on ? 0.3 : 0.08 });
  });
  const card = document.querySelector(`#gallery li[data-tile='${tileId}']`);
  if (card) card.classList.toggle("lit", on);
}

function drawOutlines() {
  state.outlines.clearLayers();
  const q = state.queryTile && tileShape(state.queryTile);
  if (q) {
    L.polygon(q, { color: "#ff8c00", weight: 3, fill: false, className: "query-outline" })
      .bindTooltip("query").addTo(state.outlines);
  }
  for (const hit of state.hits) {
    const shape = tileShape(hit);
    if (!shape) continue;
    const colour = { positive: "#2a9d46", negative: "#c62828" }[state.marks.get(hit.tile_id)] || "#00aaff";
    L.polygon(shape, { color: colour, weight: 2, fillOpacity: 0.08, className: "hit-outline", tile: hit.tile_id })
      .bindTooltip(String(hit.rank), { permanent: true, direction: "center", className: "rank-label" })
      .on("click", (e) => {
        L.DomEvent.stop(e);
        const card = document.querySelector(`#gallery li[data-tile='${hit.tile_id}']`);
        if (card) card.scrollIntoView({ block: "nearest" });
        jumpTo(hit);
      })
      .on("mouseover", () => highlight(hit.tile_id, true))
      .on("mouseout", () => highlight(hit.tile_id, false))
      .addTo(state.outlines);
  }
}

async function download(format) {
  try {
    const [url, opts] = request(format);
    const blob = await (await call(url, opts)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `tilesearch-results.${format}`;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (err) { message(err.message, true); }
}

function tileAtUrl(latlng) {
  if (state.view === "geo") return `/api/map/tile-at?lon=${latlng.lng}&lat=${latlng.lat}`;
  const p = map.project(latlng, state.image.max_zoom);
  return `/api/images/${state.image.id}/tile-at?col=${p.x}&row=${p.y}`;
}

async function clicked(e) {
  if (state.view === "pixel" && !state.image) return;
  try {
    const tile = await (await call(tileAtUrl(e.latlng))).json();
    if (state.mode === "label") { await toggleMark(tile); return; }  // labels.js
    state.query = { kind: "tile", tile: tile.tile_id };
    state.marks.clear();
    await search();
  } catch (err) { message(err.message, true); }
}

$("image-select").addEventListener("change", (e) => {  // a georeferenced image: on the map
  const id = Number(e.target.value);
  const bounds = state.geo && footprintBounds(id);
  if (e.target.value === MAP) showGeo();
  else if (bounds) { showGeo(bounds); $("image-select").value = String(id); } else showImage(id);
});
$("search-again").addEventListener("click", search);
$("download-geojson").addEventListener("click", () => download("geojson"));
$("download-csv").addEventListener("click", () => download("csv"));
$("clear").addEventListener("click", () => {
  state.hits = []; state.queryTile = null; state.marks.clear();
  $("gallery").replaceChildren(); $("query").textContent = ""; drawOutlines(); message("");
});
$("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) return;
  state.query = { kind: "image", file };
  state.marks.clear();
  search();
});
window.addEventListener("load", start);
