// tilesearch web page, label mode: mark tiles + or − in a named label set (kept in the store),
// "Find all" with a live threshold, a score heatmap, exports, suggested tiles to label and an
// audit of the count (yes/no cards of random places found and tiles below the threshold).
// Uses app.js's globals: $, state, map, mapMade, call, message, tileShape, windowBounds,
// toLatLng, lonLatRing, jumpTo.
"use strict";

const labels = {
  name: "",            // the label set shown
  marks: new Map(),    // tile id -> "positive" | "negative"
  tiles: new Map(),    // tile id -> tile record (image_id, window, image...)
  version: 0,          // bumped on every change of the marks: heatmap URLs change with it
  finding: false,      // whether "Find all" is on (the slider then re-thresholds live)
  seq: 0,              // the latest find request: older answers are dropped
  auditSeq: 0,         // the latest audit request: likewise
  timer: null,
};
const LAST_SET = "tilesearch.labelSet";
let marksLayer = null;
let placesLayer = null;
let heatLayer = null;
mapMade.push((m) => {  // each new map (geographic or one image's pixels) gets the layers
  m.createPane("heat").style.zIndex = 350;  // above the imagery, below outlines
  marksLayer = L.layerGroup().addTo(m);
  placesLayer = L.layerGroup().addTo(m);
  heatLayer = null;
});

const setUrl = (suffix) => `/api/labels/${encodeURIComponent(labels.name)}${suffix || ""}`;
const threshold = () => Number($("threshold").value);
const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" },
                          body: JSON.stringify(body) });

function setMode(mode) {
  state.mode = mode;
  $("mode").value = mode;
  $("search-panel").hidden = mode !== "search";
  $("label-panel").hidden = mode !== "label";
  drawMarks();
  if (mode === "label" && labels.finding) scheduleFind(0); else clearPlaces();
}

async function listSets() {
  try {
    const sets = await (await call("/api/labels")).json();
    $("label-sets").replaceChildren(...sets.map((s) => {
      const opt = document.createElement("option");
      opt.value = s.name;
      opt.label = `${s.positives.length} +, ${s.negatives.length} −`;
      return opt;
    }));
  } catch (err) { message(err.message, true); }
}

function takeSet(set) {
  labels.marks = new Map([...set.positives.map((t) => [t, "positive"]),
                          ...set.negatives.map((t) => [t, "negative"])]);
  labels.tiles = new Map(set.tiles.map((t) => [t.tile_id, t]));
  labels.version += 1;
  renderMarks();
}

async function chooseSet(name) {
  name = name.trim();
  labels.name = name;
  $("label-set").value = name;
  labels.finding = false;
  clearPlaces();
  $("suggestions").replaceChildren();
  loadAudit().catch((err) => message(err.message, true));
  if (!name) { takeSet({ positives: [], negatives: [], tiles: [] }); return; }
  localStorage.setItem(LAST_SET, name);
  try {
    const resp = await fetch(setUrl());
    if (resp.status === 404) {
      takeSet({ positives: [], negatives: [], tiles: [] });
      message(`New label set ${name}: click tiles to mark them.`, false);
      return;
    }
    takeSet(await (resp.ok ? resp : await call(setUrl())).json());  // call: the error's text
    message("", false);
  } catch (err) { message(err.message, true); }
}

async function changeMarks(body) {
  if (!labels.name) throw new Error("name the label set first");
  takeSet(await (await call(setUrl(), json(body))).json());
  listSets();
  if (labels.finding) scheduleFind(0);
  loadAudit().catch((err) => message(err.message, true));  // new marks: the audit is stale
}

async function toggleMark(tile) {  // called by app.js for a click on the map in label mode
  const kind = document.querySelector("input[name=mark-kind]:checked").value;
  const id = tile.tile_id;
  try {
    if (labels.marks.get(id) === kind) await changeMarks({ unlabel: [id] });
    else await changeMarks(kind === "positive" ? { positives: [id] } : { negatives: [id] });
  } catch (err) { message(err.message, true); }
}

function renderMarks() {
  const pos = [...labels.marks.values()].filter((m) => m === "positive").length;
  const neg = labels.marks.size - pos;
  $("label-counts").textContent = labels.name ? `${labels.name}: ${pos} + · ${neg} −` : "";
  $("find-all").disabled = !pos;
  $("suggest").disabled = !pos;
  $("audit").disabled = !pos;
  const list = $("label-list");
  list.replaceChildren();
  const ids = [...labels.marks.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    const kind = labels.marks.get(id);
    const tile = labels.tiles.get(id);
    const li = document.createElement("li");
    li.className = `label-item ${kind}`;
    li.dataset.tile = id;
    li.innerHTML = `<span class="sign">${kind === "positive" ? "+" : "−"}</span>
      <a href="#" class="go" title="show on the map">tile ${id}</a>
      <span class="src"></span>
      <button class="unmark" title="forget this mark">✕</button>`;
    li.querySelector(".src").textContent = tile ? tile.image : "";
    li.querySelector(".go").addEventListener("click", (e) => {
      e.preventDefault();
      if (tile) jumpTo(tile);
    });
    li.querySelector(".unmark").addEventListener("click", () =>
      changeMarks({ unlabel: [id] }).catch((err) => message(err.message, true)));
    list.appendChild(li);
  }
  drawMarks();
}

function drawMarks() {
  if (!marksLayer) return;
  marksLayer.clearLayers();
  if (state.mode !== "label") return;
  for (const [id, kind] of labels.marks) {
    const tile = labels.tiles.get(id);
    const shape = tile && tileShape(tile);
    if (!shape) continue;
    L.polygon(shape, {
      color: kind === "positive" ? "#2a9d46" : "#c62828", weight: 3, fillOpacity: 0.12,
      className: `label-mark ${kind}`, interactive: false,
    }).addTo(marksLayer);
  }
}

function scheduleFind(delay) {
  clearTimeout(labels.timer);
  labels.timer = setTimeout(runFind, delay);
}

async function runFind() {
  if (!labels.name || !state.view) return;
  labels.finding = true;
  const seq = ++labels.seq;
  const t = threshold();
  const q = `threshold=${t}`;
  $("export-geojson").href = setUrl(`/detections?${q}&format=geojson`);
  $("export-csv").href = setUrl(`/detections?${q}&format=csv`);
  $("export-geojson").download = `${labels.name}-places.geojson`;
  $("export-csv").download = `${labels.name}-places.csv`;
  try {
    const where = state.view === "pixel" ? `&image=${state.image.id}` : "";  // else lon/lat
    const found = await (await call(setUrl(`/find?${q}${where}`))).json();
    if (seq !== labels.seq) return;  // a newer threshold is on its way
    showFound(found);
  } catch (err) {
    if (seq !== labels.seq) return;
    clearPlaces();
    $("find-count").textContent = "";
    message(err.message, true);
  }
}

const pct = (x) => `${Math.round(100 * x)} %`;
const range = (r) => (r ? ` [${pct(r[0])}–${pct(r[1])}]` : "");

function showFound(found) {
  let text = `${found.count.toLocaleString()} places (${found.tiles.toLocaleString()} tiles) ` +
    `at ≥ ${found.threshold.toFixed(2)}`;
  if (found.expected_count) {
    const [e, lo, hi] = found.expected_count;
    text += ` · expected ${e.toFixed(1)} (${lo.toFixed(1)}–${hi.toFixed(1)})`;
  }
  const audited = found.audited_count;
  if (audited) {
    text += ` · audited ${audited.count.toFixed(1)} (${audited.low.toFixed(1)}–` +
      `${audited.high.toFixed(1)})`;
  }
  if (found.audit_note) text += ` · ${found.audit_note}`;
  if (!found.folds) text += " · too few labels to validate: mark more + and −";
  else {
    text += ` · precision ${found.precision === null ? "–" : pct(found.precision)}` +
      range(found.precision_interval);
    text += ` · recall ${found.recall === null ? "–" : pct(found.recall)}${range(found.recall_interval)}`;
  }
  if (found.outlines_truncated) text += " · outlines of the best places only";
  $("find-count").textContent = text;
  $("export-geojson").hidden = $("export-csv").hidden = false;
  message("", false);
  drawPlaces(found);
}

function ringLatLngs(ring) {
  if (state.view === "geo") return lonLatRing(ring);
  return ring.map(([col, row]) => toLatLng(state.image, col, row));
}

function drawPlaces(found) {
  clearPlaces();
  for (const f of found.outlines.features) {
    const g = f.geometry;
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    L.polygon(polys.map((rings) => rings.map(ringLatLngs)), {
      color: "#ffd400", weight: 2, fill: false, className: "place", interactive: false,
    }).addTo(placesLayer);
  }
  if (!$("show-heatmap").checked) return;
  if (found.heatmap_tiles && state.view === "geo") {
    const g = state.geo;
    heatLayer = L.tileLayer(`${found.heatmap_tiles}&v=${labels.version}`, {
      pane: "heat", className: "heatmap", maxZoom: g.max_zoom + 2, maxNativeZoom: g.max_zoom,
      bounds: L.latLngBounds([g.bounds[1], g.bounds[0]], [g.bounds[3], g.bounds[2]]),
    }).addTo(map);
  } else if (found.heatmap) {
    const h = found.heatmap;
    const bounds = windowBounds(state.image, { col_off: 0, row_off: 0, width: h.width, height: h.height });
    heatLayer = L.imageOverlay(`${h.url}&v=${labels.version}`, bounds,
                               { pane: "heat", className: "heatmap", interactive: false }).addTo(map);
  }
}

function clearPlaces() {
  if (!placesLayer) return;
  placesLayer.clearLayers();
  if (heatLayer) { map.removeLayer(heatLayer); heatLayer = null; }
}

async function suggest() {
  try {
    const got = await (await call(setUrl("/suggestions?n=6"))).json();
    const list = $("suggestions");
    list.replaceChildren();
    for (const tile of got.suggestions) list.appendChild(suggestionCard(tile));
    if (!got.suggestions.length) message("No tile left to suggest.", false);
  } catch (err) { message(err.message, true); }
}

function card(tile, caption, answer) {  // a yes/no card: answer(true | false)
  const li = document.createElement("li");
  li.className = "hit suggestion";
  li.dataset.tile = tile.tile_id;
  li.innerHTML = `<img loading="lazy" alt="tile ${tile.tile_id}" src="/api/tiles/${tile.tile_id}/thumbnail.png?size=160">
    <div class="meta"><b>tile ${tile.tile_id}</b><span></span></div>
    <div class="src"></div>
    <div class="marks"><button class="yes">yes</button><button class="no">no</button></div>`;
  li.querySelector(".meta span").textContent = caption;
  li.querySelector(".src").textContent = li.querySelector(".src").title = tile.image;
  li.querySelector("img").addEventListener("click", () => jumpTo(tile));
  const [yes, no] = li.querySelectorAll(".marks button");
  yes.title = "it is what I look for";
  no.title = "it is not";
  yes.addEventListener("click", () => answer(true));
  no.addEventListener("click", () => answer(false));
  return li;
}

function suggestionCard(tile) {
  const li = card(tile, `p ${tile.probability.toFixed(2)}`, async (yes) => {
    try {
      await changeMarks(yes ? { positives: [tile.tile_id] } : { negatives: [tile.tile_id] });
      li.remove();
      if (!$("suggestions").children.length) suggest();  // all answered: ask again
    } catch (err) { message(err.message, true); }
  });
  return li;
}

async function drawAudit() {  // random places found and tiles below the slider's threshold
  try {
    const body = json({ threshold: threshold() });  // n: the server's default (20 + 20)
    const seq = ++labels.auditSeq;
    const audit = await (await call(setUrl("/audit"), body)).json();
    if (seq === labels.auditSeq) showAudit(audit);
    scheduleFind(0);  // the count line: with the new audit's note
  } catch (err) { message(err.message, true); }
}

async function loadAudit() {  // the set's last audit, if it has one
  const seq = ++labels.auditSeq;
  if (!labels.name) { showAudit(null); return; }
  const resp = await fetch(setUrl("/audit"));
  const audit = resp.ok ? await resp.json() : null;
  if (seq === labels.auditSeq) showAudit(audit);  // else another set's, or an older answer
}

function showAudit(audit) {
  if (!audit) {
    $("audit-state").textContent = "";
    $("audit-tiles").replaceChildren();
    return;
  }
  const done = audit.tiles.length - audit.unanswered;
  let text = `Audit at ≥ ${audit.threshold.toFixed(2)}: ${done} of ${audit.tiles.length} ` +
    "answered";
  if (!audit.current) text += " · stale (the labels or the store changed): draw a new one";
  else if (!audit.unanswered) {
    text += ` · done: Find all at ≥ ${audit.threshold.toFixed(2)} shows the audited count`;
  }
  $("audit-state").textContent = text;
  const open = audit.current ? audit.tiles.filter((t) => t.present === null) : [];
  $("audit-tiles").replaceChildren(...open.map(auditCard));
}

function auditCard(tile) {
  const what = tile.kind === "found" ? "place found" : "below threshold";
  const li = card(tile, what, async (yes) => {
    try {
      const body = yes ? { present: [tile.tile_id] } : { absent: [tile.tile_id] };
      const seq = ++labels.auditSeq;
      const audit = await (await call(setUrl("/audit/answers"), json(body))).json();
      li.remove();
      if (seq === labels.auditSeq) showAudit(audit);  // a later answer's state wins
      if (labels.finding) scheduleFind(0);  // the count takes the answer
    } catch (err) { message(err.message, true); }
  });
  return li;
}

function imageShown() {  // called by app.js when another image is shown
  drawMarks();
  if (labels.finding) scheduleFind(0); else clearPlaces();
}

$("mode").addEventListener("change", (e) => setMode(e.target.value));
$("label-set").addEventListener("change", (e) => chooseSet(e.target.value));
$("find-all").addEventListener("click", () => scheduleFind(0));
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = threshold().toFixed(2);
  if (labels.finding) scheduleFind(150);  // debounced: the server only re-thresholds
});
$("show-heatmap").addEventListener("change", () => { if (labels.finding) scheduleFind(0); });
$("suggest").addEventListener("click", suggest);
$("audit").addEventListener("click", drawAudit);
listSets();
const last = localStorage.getItem(LAST_SET);
if (last) chooseSet(last);
