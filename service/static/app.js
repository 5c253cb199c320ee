// gaitpose web page: upload with progress, job list with polling, result view.
// Result files are fetched with the X-API-Key header and shown through blob URLs, so the key
// never appears in a URL (and so in server logs or browser history).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "gaitpose.apiKey";
const TERMINAL = new Set(["succeeded", "failed"]);
let shownJob = null;
let blobUrls = [];

function apiKey() { return $("apikey").value.trim(); }
function authHeaders() { const k = apiKey(); return k ? { "X-API-Key": k } : {}; }

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...(opts.headers || {}), ...authHeaders() } });
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { const body = await res.json(); if (body.detail) msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function setStatus(text, isError) {
  const el = $("upload-status");
  el.textContent = text;
  el.className = "status" + (isError ? " error" : "");
}

function upload(ev) {
  ev.preventDefault();
  const video = $("video").files[0];
  if (!video) { setStatus("Choose a video first.", true); return; }
  const form = new FormData();
  form.append("video", video);
  const depth = $("depth").files[0];
  if (depth) form.append("depth", depth);
  const h = $("height").value;
  if (h) form.append("height_cm", h);

  const xhr = new XMLHttpRequest();
  const bar = $("upload-progress");
  xhr.open("POST", "/v1/analyses");
  const k = apiKey();
  if (k) xhr.setRequestHeader("X-API-Key", k);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) { bar.value = (100 * e.loaded) / e.total; setStatus(`Uploading… ${Math.round(bar.value)} %`); }
  };
  xhr.onload = () => {
    $("submit").disabled = false;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 202) {
      bar.value = 100;
      setStatus(`Uploaded ${body.filename}: job ${body.id.slice(0, 8)} is ${body.status}.`);
      $("upload-form").reset();
      refreshJobs();
    } else {
      const retry = xhr.getResponseHeader("Retry-After");
      setStatus(`Upload refused (${xhr.status}): ${body.detail || xhr.statusText}` + (retry ? ` — retry in ${retry} s` : ""), true);
    }
  };
  xhr.onerror = () => { $("submit").disabled = false; setStatus("Upload failed: network error.", true); };
  bar.hidden = false; bar.value = 0;
  $("submit").disabled = true;
  setStatus("Uploading…");
  xhr.send(form);
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  row.appendChild(td);
  return td;
}

function renderJobs(jobs) {
  const tbody = $("jobs").querySelector("tbody");
  tbody.replaceChildren();
  $("jobs-empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.id = job.id;
    tr.dataset.status = job.status;
    cell(tr, job.filename);
    // A finished analysis that found no walking is not shown as a plain success.
    const noWalk = job.status === "succeeded" && job.walking_found === false;
    const st = cell(tr, noWalk ? "no walking found" : job.status);
    st.className = noWalk ? "st-nowalk" : "st-" + job.status;
    tr.dataset.outcome = noWalk ? "no-walking" : job.status;
    if (job.error && job.status === "failed") st.title = job.error;
    if (job.warnings && job.warnings.length) st.title = job.warnings.join("\n");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("i");
    fill.style.width = `${job.progress}%`;
    bar.appendChild(fill);
    const prog = document.createElement("span");
    prog.append(bar, `${Math.round(job.progress)} %`);
    cell(tr, prog);
    cell(tr, new Date(job.created_at * 1000).toLocaleTimeString());
    const actions = document.createElement("span");
    if (TERMINAL.has(job.status)) {
      const view = document.createElement("button");
      view.className = "link"; view.type = "button"; view.textContent = "view";
      view.onclick = () => showResult(job);
      actions.appendChild(view);
    }
    const del = document.createElement("button");
    del.className = "danger"; del.type = "button"; del.textContent = "delete";
    del.onclick = async () => { await api(`/v1/analyses/${job.id}`, { method: "DELETE" }); if (shownJob === job.id) $("result").hidden = true; refreshJobs(); };
    actions.appendChild(del);
    cell(tr, actions);
    tbody.appendChild(tr);
  }
}

async function refreshJobs() {
  try {
    const res = await api("/v1/analyses");
    renderJobs((await res.json()).jobs);
  } catch (e) {
    setStatus(`Cannot list analyses: ${e.message}`, true);
  }
}

async function blobUrl(path) {
  const res = await api(path);
  const url = URL.createObjectURL(await res.blob());
  blobUrls.push(url);
  return url;
}

// ---- result view: the clinical view (clinical.json, the same content as report.html) ----

const MARK = { outside: "*", implausible: "†" };
let overlay = null; // the running skeleton overlay, stopped when another result is shown

function el(tag, opts = {}, ...children) {
  const e = document.createElement(tag);
  if (opts.className) e.className = opts.className;
  if (opts.text !== undefined) e.textContent = opts.text;
  for (const c of children) if (c) e.append(c);
  return e;
}

function statusCell(tr, text, status) {
  const td = cell(tr, (text || "") + (MARK[status] || ""));
  if (MARK[status]) td.classList.add(status);
  return td;
}

function renderClinical(view) {
  $("disclaimer").textContent = view.disclaimer;
  $("session").replaceChildren(...view.session.flatMap((r) => [el("dt", { text: r.label }), el("dd", { text: r.value })]));
  const flags = view.flags.map((f) => el("div", { className: `flag ${f.level}`, text: `${MARK[f.level] || ""} ${f.text}` }));
  if (!view.walking_found) flags.unshift(el("div", { className: "flag implausible", text: "No walking was detected in this video." }));
  if (!flags.length) flags.push(el("p", { className: "muted", text: "No value outside the reference bands." }));
  $("flags").replaceChildren(...flags);
  $("warnings").replaceChildren(...view.warnings.map((w) => el("div", { className: "warn", text: w })));

  const st = $("st-table").querySelector("tbody");
  st.replaceChildren();
  for (const r of view.spatiotemporal.rows) {
    const tr = document.createElement("tr");
    cell(tr, r.label);
    statusCell(tr, r.left, r.status.left);
    statusCell(tr, r.right, r.status.right);
    statusCell(tr, r.value, r.status.value);
    cell(tr, r.unit).className = "unit";
    statusCell(tr, r.symmetry, r.status.symmetry);
    const ref = cell(tr, r.reference + " ");
    ref.className = "ref";
    ref.append(el("span", { className: "muted", text: r.reference_source }));
    st.appendChild(tr);
  }
  $("st-note").textContent = `${view.spatiotemporal.counts}. ${view.spatiotemporal.note}`;
  $("limits-note").textContent = view.limits_note;

  const at = $("angle-table").querySelector("tbody");
  at.replaceChildren();
  const rejected = view.angles.rows.some((r) => r.rejected);
  $("angle-rejected-head").hidden = !rejected;
  for (const r of view.angles.rows) {
    const tr = document.createElement("tr");
    cell(tr, r.joint); cell(tr, r.side);
    statusCell(tr, r.min, r.status); statusCell(tr, r.max, r.status);
    cell(tr, r.range); cell(tr, r.cycles);
    if (rejected) cell(tr, r.rejected || "–");
    cell(tr, r.reference).className = "ref";
    at.appendChild(tr);
  }
  const toe = Object.entries(view.angles.toe_off || {}).map(([k, v]) => `${v} (${k})`).join(", ");
  const notes = [...new Set(view.angles.rows.map((r) => r.note).filter(Boolean))].map((n) => `Hip: ${n}.`);
  $("angle-note").textContent = [view.angles.note, toe ? `Toe-off at ${toe} of the cycle (dotted lines).` : "", ...notes,
    view.angles.rejected_note || ""].join(" ");

  $("stills").replaceChildren(...(view.stills.length ? view.stills.map((s) => {
    const img = el("img"); img.src = s.src; img.alt = s.caption;
    return el("figure", {}, img, el("figcaption", { text: s.caption }));
  }) : [el("p", { className: "muted", text: "No key frames." })]));

  const tables = [];
  for (let i = 0; i < view.events.length; i += 16) {
    const t = el("table", { className: "clinical" });
    const head = el("tr");
    for (const h of ["Foot", "Event", "Frame", "Time"]) head.append(el("th", { text: h }));
    t.append(head);
    for (const e of view.events.slice(i, i + 16)) {
      const tr = document.createElement("tr");
      cell(tr, e.foot); cell(tr, e.event); cell(tr, e.frame); cell(tr, e.time);
      t.append(tr);
    }
    tables.push(t);
  }
  $("events").replaceChildren(...(tables.length ? tables : [el("p", { className: "muted", text: "No gait events detected." })]));
  $("references").replaceChildren(...view.references.map((r) => el("li", { text: r })));
}

// ---- skeleton over the original video, drawn from keypoints.json (no overlay video to wait for) ----

const SIDE = { left: "rgb(66,135,245)", right: "rgb(245,130,48)", mid: "rgb(230,230,230)" };
const EVENT_COLOUR = { heel_strike: "rgb(40,220,60)", toe_off: "rgb(230,40,200)" };
const EVENT_SHOW_S = 0.3; // a mark follows the foot for this long after the event, then goes

function sideOf(name) { return name.startsWith("left_") ? SIDE.left : name.startsWith("right_") ? SIDE.right : SIDE.mid; }

class SkeletonOverlay {
  constructor(video, canvas, frames, view) {
    this.video = video; this.canvas = canvas; this.ctx = canvas.getContext("2d");
    this.frames = frames.slice().sort((a, b) => a.time_s - b.time_s);
    this.times = this.frames.map((f) => f.time_s);
    this.names = view.skeleton.keypoints; this.edges = view.skeleton.edges;
    this.fps = (view.video && view.video.fps) || 30;
    this.events = (view.events || []).map((e) => ({ foot: e.foot, event: e.kind, t: e.time_s }));
    this.index = Object.fromEntries(this.names.map((n, i) => [n, i]));
    this.stopped = false;
    this.drawn = 0;
    const tick = () => { if (!this.stopped) { this.draw(); this.handle = video.requestVideoFrameCallback ? video.requestVideoFrameCallback(tick) : requestAnimationFrame(tick); } };
    for (const ev of ["loadeddata", "seeked", "timeupdate", "pause"]) video.addEventListener(ev, () => { if (!this.stopped) this.draw(); });
    tick();
  }
  stop() { this.stopped = true; this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height); }
  frameAt(t) {
    // nearest keypoint frame to the video time, within one frame interval
    let lo = 0, hi = this.times.length - 1;
    if (hi < 0) return null;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.times[mid] < t) lo = mid + 1; else hi = mid; }
    let best = lo;
    if (lo > 0 && Math.abs(this.times[lo - 1] - t) < Math.abs(this.times[lo] - t)) best = lo - 1;
    return Math.abs(this.times[best] - t) <= 1.0 / this.fps ? this.frames[best] : null;
  }
  draw() {
    const v = this.video, c = this.canvas, ctx = this.ctx;
    if (!v.videoWidth) return;
    if (c.width !== v.videoWidth || c.height !== v.videoHeight) { c.width = v.videoWidth; c.height = v.videoHeight; }
    ctx.clearRect(0, 0, c.width, c.height);
    const f = this.frameAt(v.currentTime);
    if (!f) return;
    const k = f.keypoints, scale = Math.max(1, Math.round(Math.max(c.width, c.height) / 640));
    const pt = (i) => (k[3 * i + 2] >= 0.3 ? [k[3 * i], k[3 * i + 1]] : null);
    ctx.lineWidth = 2.5 * scale; ctx.lineCap = "round";
    for (const [a, b] of this.edges) {
      const pa = pt(a), pb = pt(b);
      if (!pa || !pb) continue;
      ctx.strokeStyle = sideOf(this.names[a] !== "nose" ? this.names[a] : this.names[b]);
      ctx.beginPath(); ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]); ctx.stroke();
    }
    this.names.forEach((n, i) => {
      const p = pt(i);
      if (!p) return;
      ctx.fillStyle = sideOf(n);
      ctx.beginPath(); ctx.arc(p[0], p[1], 3.5 * scale, 0, 2 * Math.PI); ctx.fill();
    });
    // events: drawn where the foot is NOW, so a mark leaves with the foot instead of staying on the floor
    ctx.font = `${14 * scale}px system-ui, sans-serif`;
    for (const e of this.events) {
      const dt = v.currentTime - e.t;
      if (dt < -0.5 / this.fps || dt > EVENT_SHOW_S) continue;
      const p = pt(this.index[`${e.foot}_${e.event === "heel_strike" ? "heel" : "toe"}`]) || pt(this.index[`${e.foot}_ankle`]);
      if (!p) continue;
      ctx.strokeStyle = ctx.fillStyle = EVENT_COLOUR[e.event] || "yellow";
      ctx.lineWidth = 2 * scale;
      ctx.beginPath(); ctx.arc(p[0], p[1], 9 * scale, 0, 2 * Math.PI); ctx.stroke();
      ctx.fillText(`${e.foot[0].toUpperCase()} ${e.event === "heel_strike" ? "HS" : "TO"}`, p[0] + 11 * scale, p[1] - 11 * scale);
    }
    this.drawn += 1;
  }
}

async function startPlayer(job, files, view) {
  const video = $("video-player"), canvas = $("skeleton");
  const note = $("player-note");
  let frames = [];
  if (files["keypoints.json"]) frames = await (await api(files["keypoints.json"])).json();
  const fallback = async (why) => {
    if (overlay) { overlay.stop(); overlay = null; }
    if (files["overlay.mp4"]) {
      video.src = await blobUrl(files["overlay.mp4"]);
      note.textContent = `${why}; showing the overlay video drawn by the server instead.`;
    } else {
      note.textContent = `${why}; see the key frames below.`;
    }
  };
  video.onerror = () => { video.onerror = null; fallback("This browser cannot play the uploaded video"); };
  try {
    video.src = await blobUrl(`/v1/analyses/${job.id}/video`);
  } catch (e) {
    await fallback(`The uploaded video is not available (${e.message})`);
    return;
  }
  overlay = new SkeletonOverlay(video, canvas, frames, view);
}

async function showResult(job) {
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
  blobUrls = [];
  if (overlay) { overlay.stop(); overlay = null; }
  shownJob = job.id;
  $("result").hidden = false;
  $("result-name").textContent = job.filename;
  const err = $("result-error");
  err.hidden = job.status !== "failed";
  err.textContent = job.error || "";
  const dl = $("downloads");
  dl.replaceChildren();
  for (const id of ["video-player", "angles", "angles-cycle"]) $(id).removeAttribute("src");
  const ok = job.status === "succeeded";
  $("result-body").hidden = !ok;
  $("result-links").hidden = !ok;
  if (!ok) return;
  const files = job.results || {};
  const load = async (name, id) => { if (files[name]) $(id).src = await blobUrl(files[name]); };
  await Promise.allSettled([load("angles.png", "angles"), load("angles_cycle.png", "angles-cycle")]);
  try {
    if (!files["clinical.json"]) throw new Error("this analysis has no clinical.json (made by an older version)");
    const view = await (await api(files["clinical.json"])).json();
    renderClinical(view);
    await startPlayer(job, files, view);
  } catch (e) { err.hidden = false; err.textContent = `result: ${e.message}`; }
  $("report-link").onclick = async (e) => {
    e.preventDefault();
    if (!files["report.html"]) return;
    const res = await api(files["report.html"]);
    const url = URL.createObjectURL(new Blob([await res.blob()], { type: "text/html" }));
    blobUrls.push(url);
    window.open(url, "_blank", "noopener");
  };
  for (const [name, path] of Object.entries(files)) {
    const a = document.createElement("a");
    a.href = "#"; a.textContent = name;
    a.onclick = async (e) => {
      e.preventDefault();
      const link = document.createElement("a");
      link.href = await blobUrl(path); link.download = name; link.click();
    };
    dl.appendChild(a);
  }
}

function init() {
  $("apikey").value = localStorage.getItem(KEY_STORE) || "";
  $("apikey").addEventListener("change", () => { localStorage.setItem(KEY_STORE, apiKey()); refreshJobs(); });
  $("upload-form").addEventListener("submit", upload);
  $("refresh").addEventListener("click", refreshJobs);
  refreshJobs();
  setInterval(() => {
    const rows = [...document.querySelectorAll("#jobs tbody tr")];
    if (rows.some((r) => !TERMINAL.has(r.dataset.status))) refreshJobs();
  }, 1500);
}

document.addEventListener("DOMContentLoaded", init);
