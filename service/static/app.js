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
    const st = cell(tr, job.status);
    st.className = "st-" + job.status;
    if (job.error && job.status === "failed") st.title = job.error;
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

function flatten(obj, prefix, out) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, Array.isArray(v) ? (v.length > 6 ? `[${v.length} values]` : v.map(fmt).join(", ")) : fmt(v)]);
  }
  return out;
}
function fmt(v) { return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v); }

async function showResult(job) {
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
  blobUrls = [];
  shownJob = job.id;
  $("result").hidden = false;
  $("result-name").textContent = job.filename;
  const err = $("result-error");
  err.hidden = job.status !== "failed";
  err.textContent = job.error || "";
  const mtable = $("metrics").querySelector("tbody");
  mtable.replaceChildren();
  const dl = $("downloads");
  dl.replaceChildren();
  for (const id of ["overlay", "angles", "angles-cycle"]) $(id).removeAttribute("src");
  const ok = job.status === "succeeded";
  $("result-grid").hidden = !ok;
  $("result-links").hidden = !ok;
  if (!ok) return;
  const files = job.results || {};
  const load = async (name, id) => { if (files[name]) $(id).src = await blobUrl(files[name]); };
  await Promise.allSettled([load("overlay.mp4", "overlay"), load("angles.png", "angles"), load("angles_cycle.png", "angles-cycle")]);
  if (files["metrics.json"]) {
    try {
      const metrics = await (await api(files["metrics.json"])).json();
      for (const [k, v] of flatten(metrics, "", [])) {
        const tr = document.createElement("tr");
        cell(tr, k); cell(tr, v);
        mtable.appendChild(tr);
      }
    } catch (e) { err.hidden = false; err.textContent = `metrics: ${e.message}`; }
  }
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
