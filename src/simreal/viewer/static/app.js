// simreal triage viewer: plain JavaScript, no build step. Every text that comes from the data (titles,
// descriptions, labels, notes) is set with textContent, never parsed as HTML.
"use strict";

const S = {
  chains: [], chain: null, model: null, label: null, by: "count", threshold: 0.5, k: 5,
  order: "desc", page: 1, perPage: 25, q: "", rows: [], total: 0,
  panel: null, // {el, idx}
};
const $ = (id) => document.getElementById(id);

function qs(obj) {
  return Object.entries(obj).filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
}

async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return r.json();
}

function clock(t) {
  const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const frac = Math.round((t - s) * 10);
  return (h ? h + ":" : "") + String(m).padStart(h ? 2 : 1, "0") + ":" + String(sec).padStart(2, "0") + "." + frac;
}

function option(sel, value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text; sel.appendChild(o);
}

function currentChain() { return S.chains.find((c) => c.id === S.chain); }

function fillModels() {
  const c = currentChain();
  const msel = $("model"), lsel = $("label");
  msel.replaceChildren(); lsel.replaceChildren();
  if (!c) return;
  const models = Object.keys(c.models);
  models.forEach((m) => option(msel, m, m + " (" + c.models[m].task + ")"));
  if (!models.includes(S.model)) S.model = models[0] || null;
  msel.value = S.model || "";
  const labels = S.model ? c.models[S.model].labels : [];
  labels.forEach((l) => option(lsel, l, l));
  if (!labels.includes(S.label)) S.label = labels.find((l) => l !== "background") || labels[0] || null;
  lsel.value = S.label || "";
}

function saveHash() {
  location.hash = qs({ chain: S.chain, model: S.model, label: S.label, by: S.by, threshold: S.threshold, k: S.k,
                       order: S.order, page: S.page, per_page: S.perPage, q: S.q });
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("chain")) S.chain = p.get("chain");
  if (p.get("model")) S.model = p.get("model");
  if (p.get("label")) S.label = p.get("label");
  if (p.get("by")) S.by = p.get("by");
  if (p.get("threshold")) S.threshold = Math.min(1, Math.max(0, parseFloat(p.get("threshold")) || 0));
  if (p.get("k")) S.k = Math.max(1, parseInt(p.get("k"), 10) || 5);
  if (p.get("order")) S.order = p.get("order");
  if (p.get("page")) S.page = Math.max(1, parseInt(p.get("page"), 10) || 1);
  if (p.get("per_page")) S.perPage = parseInt(p.get("per_page"), 10) || 25;
  if (p.get("q")) S.q = p.get("q");
}

function syncControls() {
  $("chain").value = S.chain; $("by").value = S.by; $("k").value = S.k; $("order").value = S.order;
  $("threshold").value = S.threshold; $("threshold-value").textContent = S.threshold.toFixed(2);
  $("per-page").value = String(S.perPage); $("q").value = S.q;
  $("export").href = "/export/reviewed.csv?" + qs({ chain: S.chain });
}

async function init() {
  S.chains = await getJSON("/api/chains");
  if (!S.chains.length) { $("status").textContent = "no results in this folder yet"; return; }
  const first = S.chains[0];
  S.chain = first.id; S.by = first.rank.by; S.threshold = first.rank.threshold; S.k = first.rank.k;
  readHash();
  if (!currentChain()) S.chain = first.id;
  const csel = $("chain");
  S.chains.forEach((c) => {
    const names = Object.keys(c.models).join(", ") || "no model";
    option(csel, c.id, c.id + " · " + c.sampling.fps + " fps · " + names + " · " + c.elements + " elements");
  });
  fillModels();
  syncControls();
  bind();
  await load();
}

let loadSeq = 0;
async function load() {
  const seq = ++loadSeq;
  saveHash();
  const url = "/api/elements?" + qs({ chain: S.chain, model: S.model, label: S.label, by: S.by,
    threshold: S.threshold, k: S.k, order: S.order, page: S.page, per_page: S.perPage, q: S.q });
  let data;
  try { data = await getJSON(url); } catch (e) { $("status").textContent = "error: " + e.message; return; }
  if (seq !== loadSeq) return; // a newer request is on its way
  S.rows = data.rows; S.total = data.total;
  const pages = Math.max(1, Math.ceil(data.total / S.perPage));
  if (S.page > pages) { S.page = pages; return load(); }
  $("status").textContent = data.total + " elements · " + data.model + " / " + data.label + " · ranked by " +
    S.by + (S.by === "topk-mean" ? " (k=" + S.k + ")" : "") + " · threshold " + S.threshold.toFixed(2);
  $("page-info").textContent = "page " + S.page + " of " + pages;
  $("prev").disabled = S.page <= 1; $("next").disabled = S.page >= pages;
  render();
}

function fmt(v) { return v === null || v === undefined ? "-" : (Number.isInteger(v) ? String(v) : v.toFixed(3)); }

function render() {
  const box = $("rows");
  box.replaceChildren();
  for (const row of S.rows) {
    const div = document.createElement("div");
    div.className = "row"; div.dataset.element = row.element; div.dataset.value = row.value;
    const rk = document.createElement("span"); rk.className = "rank"; rk.textContent = row.rank;
    const title = document.createElement("div");
    const tt = document.createElement("div"); tt.className = "title"; tt.textContent = row.title || row.element;
    tt.title = row.title || row.element;
    const sub = document.createElement("div"); sub.className = "sub";
    sub.textContent = row.kind + (row.duration ? " · " + clock(row.duration) : "") + " · " + row.frames + " frames" +
      (row.marks.length ? " · " + row.marks.length + " marked" : "");
    title.append(tt, sub);
    const val = document.createElement("span"); val.className = "value"; val.textContent = fmt(row.value);
    let vis;
    if (row.kind === "image") {
      vis = document.createElement("img"); vis.className = "thumb"; vis.alt = "thumbnail";
      if (row.thumb) vis.src = "/files/" + row.thumb.split("/").map(encodeURIComponent).join("/");
      vis.addEventListener("click", () => openPanel(row.element, 0));
    } else {
      vis = document.createElement("canvas"); vis.className = "timeline";
      vis.addEventListener("mousemove", (ev) => hover(ev, row));
      vis.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
      vis.addEventListener("click", (ev) => openPanel(row.element, nearest(ev, row)));
    }
    div.append(rk, title, val, vis);
    box.appendChild(div);
    paint(vis, row);
  }
}

function colour(s) {
  // brighter = higher; frames under the threshold are drawn dim grey
  if (s >= S.threshold) return "hsl(" + (40 - 35 * s) + ", 95%, " + (30 + 45 * s) + "%)";
  return "rgba(150,150,150," + (0.12 + 0.4 * s) + ")";
}

function paint(el, row) {
  const above = row.s.filter((v) => v >= S.threshold).length;
  el.dataset.above = above; el.dataset.frames = row.s.length;
  if (el.tagName === "IMG") {
    const s = row.s.length ? row.s[0] : 0;
    el.style.borderColor = colour(s);
    el.title = "score " + s.toFixed(3);
    return;
  }
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, el.clientWidth), h = el.clientHeight || 30;
  el.width = Math.round(w * dpr); el.height = Math.round(h * dpr);
  const g = el.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const dur = span(row);
  const step = row.fps ? 1 / row.fps : dur / Math.max(1, row.t.length);
  const bw = Math.max(2, (w * step) / dur);
  for (let i = 0; i < row.t.length; i++) {
    g.fillStyle = colour(row.s[i]);
    g.fillRect((row.t[i] / dur) * w, 6, bw * (1 + (row.d[i] || 0)), h - 6);
  }
  for (const m of row.marks) {
    g.fillStyle = m.mark === "relevant" ? "#39ff7a" : m.mark === "not_relevant" ? "#ff8c69" : "#8ab4f8";
    const x = (m.t / dur) * w;
    g.beginPath(); g.moveTo(x - 4, 0); g.lineTo(x + 4, 0); g.lineTo(x, 6); g.fill();
  }
}

function span(row) {
  const last = row.t.length ? row.t[row.t.length - 1] + (row.fps ? 1 / row.fps : 1) : 1;
  return Math.max(row.duration || 0, last, 1e-3);
}

function nearest(ev, row) {
  const r = ev.currentTarget.getBoundingClientRect();
  const t = ((ev.clientX - r.left) / r.width) * span(row);
  let best = 0;
  for (let i = 1; i < row.t.length; i++) if (Math.abs(row.t[i] - t) < Math.abs(row.t[best] - t)) best = i;
  return row.t.length ? row.t[best] : 0;
}

function hover(ev, row) {
  if (!row.t.length) return;
  const t = nearest(ev, row), i = row.t.indexOf(t);
  const tip = $("tooltip");
  tip.textContent = clock(t) + " (" + t.toFixed(2) + " s) · " + S.label + " " + row.s[i].toFixed(4);
  tip.style.left = ev.clientX + 12 + "px"; tip.style.top = ev.clientY + 12 + "px";
  tip.hidden = false;
}

function repaintAll() {
  const els = $("rows").querySelectorAll(".row");
  els.forEach((div, i) => paint(div.lastChild, S.rows[i]));
}

let reloadTimer = null;
function bind() {
  $("chain").addEventListener("change", (e) => { S.chain = e.target.value; S.page = 1; fillModels(); syncControls(); load(); });
  $("model").addEventListener("change", (e) => { S.model = e.target.value; S.label = null; fillModels(); S.page = 1; load(); });
  $("label").addEventListener("change", (e) => { S.label = e.target.value; S.page = 1; load(); });
  $("by").addEventListener("change", (e) => { S.by = e.target.value; S.page = 1; load(); });
  $("order").addEventListener("change", (e) => { S.order = e.target.value; load(); });
  $("k").addEventListener("change", (e) => { S.k = Math.max(1, parseInt(e.target.value, 10) || 5); load(); });
  $("per-page").addEventListener("change", (e) => { S.perPage = parseInt(e.target.value, 10); S.page = 1; load(); });
  $("q").addEventListener("input", (e) => {
    S.q = e.target.value; S.page = 1; clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 250);
  });
  $("threshold").addEventListener("input", (e) => {
    // live: recolour what is on screen now, re-rank when the slider rests
    S.threshold = parseFloat(e.target.value);
    $("threshold-value").textContent = S.threshold.toFixed(2);
    repaintAll();
    drawBoxes();
    clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 200);
  });
  $("prev").addEventListener("click", () => { if (S.page > 1) { S.page--; load(); } });
  $("next").addEventListener("click", () => { S.page++; load(); });
  $("close").addEventListener("click", closePanel);
  $("panel").addEventListener("click", (e) => { if (e.target.id === "panel") closePanel(); });
  $("p-prev").addEventListener("click", () => step(-1));
  $("p-next").addEventListener("click", () => step(1));
  $("mark-relevant").addEventListener("click", () => review("relevant"));
  $("mark-not").addEventListener("click", () => review("not_relevant"));
  $("mark-clear").addEventListener("click", () => review(null, ""));
  $("save-note").addEventListener("click", () => review(undefined));
  $("p-img").addEventListener("load", drawBoxes);
  window.addEventListener("resize", () => { repaintAll(); drawBoxes(); });
  document.addEventListener("keydown", (e) => {
    if (!S.panel || e.target.tagName === "INPUT") return;
    if (e.key === "Escape") closePanel();
    else if (e.key === "ArrowLeft") step(-1);
    else if (e.key === "ArrowRight") step(1);
    else if (e.key === "r") review("relevant");
    else if (e.key === "n") review("not_relevant");
  });
}

async function openPanel(eid, t) {
  let el;
  try { el = await getJSON("/api/element/" + encodeURIComponent(eid) + "?" + qs({ chain: S.chain })); }
  catch (e) { $("status").textContent = "error: " + e.message; return; }
  let idx = el.frames.findIndex((f) => Math.abs(f.t - t) < 1e-3);
  if (idx < 0) idx = 0;
  S.panel = { el, idx };
  $("p-title").textContent = el.title || el.element;
  $("p-desc").textContent = el.description || "";
  const meta = [el.kind, el.source];
  if (el.upload_date) meta.push("uploaded " + el.upload_date);
  if (el.duration) meta.push(clock(el.duration));
  if (el.width) meta.push(el.width + "×" + el.height);
  $("p-meta").textContent = meta.join(" · ");
  const v = $("p-video");
  if (el.kind === "video" && el.media_url) { v.hidden = false; v.src = el.media_url; } else { v.hidden = true; v.removeAttribute("src"); }
  $("panel").hidden = false;
  showFrame();
}

function closePanel() { $("panel").hidden = true; $("p-video").pause(); S.panel = null; }

function step(d) {
  if (!S.panel) return;
  const n = S.panel.el.frames.length;
  S.panel.idx = Math.min(n - 1, Math.max(0, S.panel.idx + d));
  showFrame();
}

function showFrame() {
  const { el, idx } = S.panel;
  const f = el.frames[idx];
  const img = $("p-img");
  $("p-boxes").replaceChildren();
  if (f.file) {
    img.hidden = false; $("p-noframe").hidden = true;
    img.src = "/files/" + f.file.split("/").map(encodeURIComponent).join("/");
  } else { img.hidden = true; img.removeAttribute("src"); $("p-noframe").hidden = false; }
  const sc = (f.scores[S.model] || {})[S.label];
  $("p-time").textContent = clock(f.t) + " (" + f.t.toFixed(3) + " s) · " + S.label + " " +
    (sc === undefined ? "-" : sc.toFixed(4)) + " · frame " + (idx + 1) + " of " + el.frames.length;
  const link = el.links[idx];
  const a = $("p-link");
  if (link) { a.href = link; a.hidden = false; } else { a.removeAttribute("href"); a.hidden = true; }
  const v = $("p-video");
  if (!v.hidden) {
    const seek = () => { try { v.currentTime = f.t; } catch (e) { /* not seekable yet */ } };
    if (v.readyState >= 1) seek(); else v.addEventListener("loadedmetadata", seek, { once: true });
  }
  const m = el.marks.find((x) => Math.abs(x.t - f.t) < 1e-3);
  $("p-note").value = m ? m.note : "";
  const pm = $("p-mark");
  pm.className = m && m.mark ? "mark-" + m.mark : "";
  pm.textContent = m ? (m.mark ? "marked " + m.mark.replace("_", " ") : "") + (m.note ? " · note saved" : "") : "not reviewed";
  if (img.complete) drawBoxes();
}

function drawBoxes() {
  if (!S.panel) return;
  const { el, idx } = S.panel;
  const f = el.frames[idx];
  const img = $("p-img"), layer = $("p-boxes");
  layer.replaceChildren();
  const boxes = (f.boxes || {})[S.model] || [];
  if (!img.naturalWidth) return;
  const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
  for (const b of boxes) {
    if (b.score < S.threshold) continue;
    const d = document.createElement("div");
    d.className = "box";
    d.style.left = b.box[0] * sx + "px"; d.style.top = b.box[1] * sy + "px";
    d.style.width = (b.box[2] - b.box[0]) * sx + "px"; d.style.height = (b.box[3] - b.box[1]) * sy + "px";
    const lab = document.createElement("span");
    lab.textContent = b.label + " " + b.score.toFixed(2);
    d.appendChild(lab);
    layer.appendChild(d);
  }
}

async function review(mark, note) {
  if (!S.panel) return;
  const { el, idx } = S.panel;
  const f = el.frames[idx];
  const old = el.marks.find((x) => Math.abs(x.t - f.t) < 1e-3);
  const body = {
    element: el.element, t: f.t, chain: S.chain, model: S.model, label: S.label, threshold: S.threshold,
    mark: mark === undefined ? (old ? old.mark : null) : mark,
    note: note === undefined ? $("p-note").value : note,
  };
  let rec;
  try {
    rec = await getJSON("/api/review", { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify(body) });
  } catch (e) { $("p-mark").textContent = "error: " + e.message; return; }
  el.marks = el.marks.filter((x) => Math.abs(x.t - f.t) >= 1e-3);
  if (rec.mark || rec.note) el.marks.push(rec);
  showFrame();
  load();
}

document.addEventListener("DOMContentLoaded", () => { init().catch((e) => { $("status").textContent = "error: " + e.message; }); });
