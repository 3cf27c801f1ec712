// tilesearch web page: a pixel-space map of one image at a time; click to search.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  images: [], image: null, layer: null, outlines: null,
  query: null,        // {kind: "tile", tile} or {kind: "image", file}
  marks: new Map(),   // tile id -> "positive" | "negative"
  hits: [], queryTile: null,
  mode: "search",     // what a click on the map does: "search" or "label" (labels.js)
};
const map = L.map("map", { crs: L.CRS.Simple, minZoom: 0, zoomSnap: 0.5, attributionControl: false });
state.outlines = L.layerGroup().addTo(map);

function toLatLng(image, col, row) { return map.unproject([col, row], image.max_zoom); }
function windowBounds(image, w) {
  return L.latLngBounds(toLatLng(image, w.col_off, w.row_off + w.height),
                        toLatLng(image, w.col_off + w.width, w.row_off));
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

async function start() {
  try {
    const facts = await (await call("/api/info")).json();
    state.images = facts.images_list;
    showFacts(facts);
    for (const im of state.images) {
      const opt = document.createElement("option");
      opt.value = im.id;
      opt.textContent = `${im.name} (${im.width}×${im.height})`;
      $("image-select").appendChild(opt);
    }
    if (state.images.length) showImage(state.images[0].id);
    else message("This store holds no indexed image yet.", true);
  } catch (err) { message(err.message, true); }
}

function showImage(id, bounds) {
  const image = state.images.find((im) => im.id === Number(id));
  if (!image) return;
  $("image-select").value = String(image.id);
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
  drawOutlines();
  if (typeof imageShown === "function") imageShown();  // labels.js: marks, places, heatmap
}

function searchBody() {
  const body = { k: Number($("k").value) || 10, metric: $("metric").value };
  const scope = $("scope").value;
  if (scope === "image") body.images = [state.image.id];
  if (scope === "visible") {
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
      <div class="src" title="${hit.image} tile ${hit.tile_id}">${hit.image} · ${hit.tile_id}</div>
      <div class="marks"><button class="pos" title="more like this">+</button>
      <button class="neg" title="not like this">−</button></div>`;
    li.querySelector("img").addEventListener("click", () => jumpTo(hit));
    li.querySelector(".pos").addEventListener("click", () => mark(hit.tile_id, "positive"));
    li.querySelector(".neg").addEventListener("click", () => mark(hit.tile_id, "negative"));
    list.appendChild(li);
  }
}

function mark(tileId, kind) {
  if (state.marks.get(tileId) === kind) state.marks.delete(tileId); else state.marks.set(tileId, kind);
  renderGallery();
}

function jumpTo(hit) {
  const image = state.images.find((im) => im.id === hit.image_id);
  const bounds = windowBounds(image, hit.window).pad(1.5);
  if (state.image.id !== image.id) showImage(image.id, bounds);
  else map.fitBounds(bounds, { maxZoom: image.max_zoom });
}

function drawOutlines() {
  state.outlines.clearLayers();
  if (!state.image) return;
  const image = state.image;
  const q = state.queryTile;
  if (q && q.image_id === image.id) {
    L.rectangle(windowBounds(image, q.window), { color: "#ff8c00", weight: 3, fill: false })
      .bindTooltip("query").addTo(state.outlines);
  }
  for (const hit of state.hits) {
    if (hit.image_id !== image.id) continue;
    const colour = { positive: "#2a9d46", negative: "#c62828" }[state.marks.get(hit.tile_id)] || "#00aaff";
    L.rectangle(windowBounds(image, hit.window), { color: colour, weight: 2, fillOpacity: 0.08 })
      .bindTooltip(String(hit.rank), { permanent: true, direction: "center", className: "rank-label" })
      .on("click", (e) => { L.DomEvent.stop(e); jumpTo(hit); })
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

map.on("click", async (e) => {
  if (!state.image) return;
  const p = map.project(e.latlng, state.image.max_zoom);
  try {
    const tile = await (await call(`/api/images/${state.image.id}/tile-at?col=${p.x}&row=${p.y}`)).json();
    if (state.mode === "label") { await toggleMark(tile); return; }  // labels.js
    state.query = { kind: "tile", tile: tile.tile_id };
    state.marks.clear();
    await search();
  } catch (err) { message(err.message, true); }
});
$("image-select").addEventListener("change", (e) => showImage(e.target.value));
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
start();
