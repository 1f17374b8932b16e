// aimind web UI: a few views over the admin API. No framework, no build
// step; the session cookie is HttpOnly, so no secret is kept in JavaScript
// storage or URLs.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
};

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new APIError(0, "cannot reach the server: " + e.message);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    const msg = data && data.error && data.error.message ? data.error.message : `${resp.status} ${resp.statusText}`;
    if (resp.status === 401 && path !== "/api/login") { showLogin(); }
    throw new APIError(resp.status, msg);
  }
  return data;
}

function flash(msg, kind = "error") {
  const f = $("#flash");
  f.textContent = msg;
  f.className = kind === "info" ? "info" : "";
  f.hidden = !msg;
  if (msg && kind === "info") setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 4000);
}

const fmtBytes = (n) => {
  if (!n) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};
const fmtTime = (s) => (s ? new Date(s).toLocaleString() : "-");
const fmtCount = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "k" : String(n ?? 0));

let timer = null;
function stopPolling() { if (timer) { clearInterval(timer); timer = null; } }

function mount(id) {
  stopPolling();
  const main = $("#main");
  main.replaceChildren($("#" + id).content.cloneNode(true));
  for (const a of document.querySelectorAll("header nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === location.hash);
    if (a.getAttribute("href") === location.hash) a.setAttribute("aria-current", "page");
  }
  return main;
}

// ---- session ----

function showLogin() {
  $("#top").hidden = true;
  mount("tpl-login");
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/api/login", { password: $("#login-password").value });
      flash("");
      if (r.must_change_password) return showPasswordChange();
      enter();
    } catch (e) { flash(e.message); }
  });
}

function showPasswordChange() {
  $("#top").hidden = true;
  mount("tpl-password");
  $("#password-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/password", { current_password: $("#pw-current").value, new_password: $("#pw-new").value });
      flash("Password changed.", "info");
      enter();
    } catch (e) { flash(e.message); }
  });
}

function enter() {
  $("#top").hidden = false;
  if (!location.hash || location.hash === "#/" || location.hash === "#/login") location.hash = "#/models";
  else route();
}

async function start() {
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } catch { /* already out */ }
    showLogin();
  });
  window.addEventListener("hashchange", () => { if (!$("#top").hidden) route(); });
  try {
    const me = await api("GET", "/api/me");
    if (me.must_change_password) return showPasswordChange();
    enter();
  } catch (e) {
    if (e.status !== 401) flash(e.message);
    showLogin();
  }
}

function route() {
  flash("");
  switch (location.hash) {
    case "#/keys": return keysView();
    case "#/playground": return playgroundView();
    default: return modelsView();
  }
}

// ---- models ----

function statusCell(m) {
  const td = el("td");
  td.append(el("span", { class: "status " + m.status, "data-status": m.status }, m.status));
  if (m.status === "downloading" && m.progress && m.progress.total) {
    const pct = Math.floor((m.progress.done * 100) / m.progress.total);
    td.append(" ", el("progress", { max: 100, value: pct, "aria-label": `download ${pct}%` }),
      el("span", { class: "sub" }, `${pct}% of ${fmtBytes(m.progress.total)}, ${fmtBytes(m.progress.rate)}/s`));
  }
  if (m.status === "error" && m.error) td.append(el("span", { class: "sub error" }, m.error));
  return td;
}

async function modelAction(name, action) {
  try {
    if (action === "delete") {
      if (!confirm(`Delete model "${name}"? Its downloaded file is removed too.`)) return;
      await api("DELETE", `/api/models/${encodeURIComponent(name)}?files=true`);
    } else {
      if (action === "stop" && !confirm(`Stop model "${name}"? Requests for it will fail until it is started.`)) return;
      await api("POST", `/api/models/${encodeURIComponent(name)}/${action}`);
    }
    await refreshModels();
  } catch (e) { flash(e.message); }
}

async function refreshModels() {
  const body = $("#models-table tbody");
  if (!body) return;
  let list;
  try { list = (await api("GET", "/api/models")).data || []; } catch (e) { flash(e.message); return; }
  body.replaceChildren(...list.map((m) => {
    const running = m.status === "running";
    const busy = ["pending", "downloading", "loading"].includes(m.status);
    const src = m.source === "local" ? "Local path" : (m.source === "modelscope" ? "ModelScope" : "Hugging Face");
    return el("tr", { "data-model": m.name },
      el("td", {}, el("strong", {}, m.name)),
      el("td", {}, src, el("span", { class: "sub" }, m.repo || m.path || "")),
      el("td", {}, m.file || (m.path || "").split("/").pop(), el("span", { class: "sub" }, m.quant || (m.facts && m.facts.FileType) || "")),
      el("td", {}, fmtBytes(m.size)),
      statusCell(m),
      el("td", {}, running ? fmtBytes(m.memory_estimate) : "-"),
      el("td", { class: "actions-cell" },
        running || busy ? el("button", { type: "button", class: "secondary", onclick: () => modelAction(m.name, "stop") }, "Stop")
          : el("button", { type: "button", class: "secondary", onclick: () => modelAction(m.name, "start") }, "Start"),
        el("button", { type: "button", class: "danger", onclick: () => modelAction(m.name, "delete") }, "Delete")));
  }));
  $("#models-empty").hidden = list.length > 0;
}

function modelsView() {
  mount("tpl-models");
  refreshModels();
  timer = setInterval(refreshModels, 1000);
  const dlg = $("#deploy-dialog");
  $("#deploy-open").addEventListener("click", () => { resetDeploy(); dlg.showModal(); $("#deploy-search").focus(); });
  $("#deploy-cancel").addEventListener("click", () => dlg.close());
  $("#deploy-source").addEventListener("change", () => {
    const local = $("#deploy-source").value === "local";
    $("#hub-fields").hidden = local;
    $("#local-fields").hidden = !local;
    $("#deploy-results").replaceChildren();
    $("#deploy-error").textContent = "";
    if (!local) search();
  });
  let debounce = null;
  $("#deploy-search").addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(search, 300); });
  $("#deploy-gguf").addEventListener("change", search);
  $("#deploy-repo").addEventListener("change", () => chooseRepo($("#deploy-repo").value.trim()));
  $("#deploy-file").addEventListener("change", showEstimate);
  $("#deploy-path").addEventListener("input", () => {
    const base = $("#deploy-path").value.split("/").pop().replace(/\.gguf$/i, "").replace(/[-._](f32|f16|fp16|bf16|q[2-8](_[0-9a-z]+)*|iq[1-4](_[a-z0-9]+)*)$/i, "");
    $("#deploy-name").value = base;
  });
  $("#deploy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const source = $("#deploy-source").value;
    const req = { source, name: $("#deploy-name").value.trim() };
    if (source === "local") req.path = $("#deploy-path").value.trim();
    else { req.repo = $("#deploy-repo").value.trim(); req.file = $("#deploy-file").value; }
    $("#deploy-save").disabled = true;
    try {
      await api("POST", "/api/models", req);
      dlg.close();
      flash(`Deploying ${req.name}…`, "info");
      refreshModels();
    } catch (e) {
      $("#deploy-error").textContent = e.message;
    } finally { $("#deploy-save").disabled = false; }
  });
}

let filesCache = [];

function resetDeploy() {
  $("#deploy-form").reset();
  $("#deploy-source").value = "huggingface";
  $("#hub-fields").hidden = false;
  $("#local-fields").hidden = true;
  $("#deploy-results").replaceChildren();
  $("#deploy-file").replaceChildren();
  $("#deploy-estimate").textContent = "";
  $("#deploy-error").textContent = "";
  filesCache = [];
}

let searchSeq = 0;
async function search() {
  const source = $("#deploy-source").value;
  if (source === "local") return;
  const q = $("#deploy-search").value.trim();
  const seq = ++searchSeq;
  const ul = $("#deploy-results");
  try {
    const r = await api("GET", `/api/hub/search?source=${source}&q=${encodeURIComponent(q)}&gguf=${$("#deploy-gguf").checked}`);
    if (seq !== searchSeq) return; // a newer search is under way
    ul.replaceChildren(...(r.data || []).map((repo) => el("li", {},
      el("button", { type: "button", "data-repo": repo.id, onclick: (ev) => {
        for (const b of ul.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
        ev.currentTarget.setAttribute("aria-pressed", "true");
        $("#deploy-repo").value = repo.id;
        chooseRepo(repo.id);
      } }, el("span", {}, repo.id), el("span", { class: "stats" }, `↓ ${fmtCount(repo.downloads)}  ♥ ${fmtCount(repo.likes)}`)))));
    if (!(r.data || []).length) ul.replaceChildren(el("li", { class: "hint" }, "No matching repositories."));
    $("#deploy-error").textContent = "";
  } catch (e) {
    if (seq === searchSeq) $("#deploy-error").textContent = e.message;
  }
}

async function chooseRepo(repo) {
  const source = $("#deploy-source").value;
  const sel = $("#deploy-file");
  sel.replaceChildren();
  $("#deploy-estimate").textContent = "";
  if (!repo) return;
  try {
    const r = await api("GET", `/api/hub/files?source=${source}&repo=${encodeURIComponent(repo)}`);
    filesCache = r.files || [];
    sel.replaceChildren(...filesCache.map((f) => el("option", { value: f.path, selected: f.path === r.default },
      `${f.path} (${f.quant || "?"}, ${fmtBytes(f.size)})`)));
    if (!filesCache.length) $("#deploy-error").textContent = "This repository has no GGUF file.";
    else $("#deploy-error").textContent = "";
    $("#deploy-name").value = r.name || "";
    showEstimate();
  } catch (e) { $("#deploy-error").textContent = e.message; }
}

function showEstimate() {
  const f = filesCache.find((x) => x.path === $("#deploy-file").value);
  $("#deploy-estimate").textContent = f ? `Memory estimate: about ${fmtBytes(f.memory_estimate || f.size)} once loaded.` : "";
}

// ---- API keys ----

async function refreshKeys() {
  const body = $("#keys-table tbody");
  let list;
  try { list = (await api("GET", "/api/keys")).data || []; } catch (e) { flash(e.message); return; }
  body.replaceChildren(...list.map((k) => el("tr", { "data-key": k.id },
    el("td", {}, el("strong", {}, k.name)),
    el("td", {}, el("code", {}, k.prefix + "…")),
    el("td", {}, fmtTime(k.created)),
    el("td", {}, fmtTime(k.last_used)),
    el("td", {}, k.expires ? fmtTime(k.expires) : "never"),
    el("td", {}, (k.models || []).length ? k.models.join(", ") : "all"),
    el("td", { class: "actions-cell" }, el("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Revoke API key "${k.name}"? Clients using it stop working at once.`)) return;
      try { await api("DELETE", `/api/keys/${encodeURIComponent(k.id)}`); refreshKeys(); } catch (e) { flash(e.message); }
    } }, "Revoke")))));
  $("#keys-empty").hidden = list.length > 0;
}

async function keysView() {
  mount("tpl-keys");
  refreshKeys();
  const dlg = $("#key-dialog");
  const closeKey = () => { $("#key-value").value = ""; dlg.close(); refreshKeys(); };
  $("#key-open").addEventListener("click", async () => {
    $("#key-form").reset();
    $("#key-inputs").hidden = false;
    $("#key-created").hidden = true;
    $("#key-save").hidden = false;
    $("#key-cancel").hidden = false;
    $("#key-done").hidden = true;
    $("#key-error").textContent = "";
    const fs = $("#key-models");
    fs.replaceChildren(el("legend", {}, "Models (none ticked: all)"));
    try {
      for (const m of (await api("GET", "/api/models")).data || []) {
        fs.append(el("label", {}, el("input", { type: "checkbox", value: m.name }), m.name));
      }
    } catch (e) { $("#key-error").textContent = e.message; }
    dlg.showModal();
    $("#key-name").focus();
  });
  $("#key-cancel").addEventListener("click", () => dlg.close());
  $("#key-done").addEventListener("click", closeKey);
  dlg.addEventListener("close", () => { $("#key-value").value = ""; });
  $("#key-copy").addEventListener("click", async () => {
    const v = $("#key-value");
    v.select();
    try { await navigator.clipboard.writeText(v.value); flash("Copied.", "info"); } catch { document.execCommand("copy"); }
  });
  $("#key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!$("#key-created").hidden) return closeKey();
    const models = [...document.querySelectorAll("#key-models input:checked")].map((i) => i.value);
    try {
      const r = await api("POST", "/api/keys", { name: $("#key-name").value.trim(), expires_in: $("#key-expiry").value, models });
      $("#key-inputs").hidden = true;
      $("#key-created").hidden = false;
      $("#key-value").value = r.key;
      $("#key-save").hidden = true;
      $("#key-cancel").hidden = true;
      $("#key-done").hidden = false;
      $("#key-value").select();
      $("#key-copy").focus();
    } catch (e) { $("#key-error").textContent = e.message; }
  });
}

// ---- playground ----

function playRequest() {
  const docs = $("#play-docs").value.split("\n").map((s) => s.trim()).filter((s) => s.length);
  const req = { model: $("#play-model").value, query: $("#play-query").value, documents: docs };
  const n = parseInt($("#play-topn").value, 10);
  if (n > 0) req.top_n = n;
  return req;
}

function bar(width) {
  const b = el("span", { class: "barfill" });
  b.style.width = width + "%";
  b.style.display = "block";
  return b;
}

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

async function playgroundView() {
  mount("tpl-playground");
  try {
    const list = ((await api("GET", "/api/models")).data || []).filter((m) => m.status === "running");
    $("#play-model").replaceChildren(...list.map((m) => el("option", { value: m.name }, m.name)));
    if (!list.length) flash("No model is running yet: deploy one on the Models page.");
  } catch (e) { flash(e.message); }
  $("#play-curl").addEventListener("click", async () => {
    const body = JSON.stringify(playRequest());
    const cmd = `curl ${location.origin}/v1/rerank \\\n  -H 'Content-Type: application/json' \\\n  -H 'Authorization: Bearer YOUR_API_KEY' \\\n  -d ${shellQuote(body)}`;
    const pre = $("#play-curl-text");
    pre.textContent = cmd;
    pre.hidden = false;
    try { await navigator.clipboard.writeText(cmd); flash("curl command copied.", "info"); } catch { /* shown below */ }
  });
  $("#play-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const req = playRequest();
    const ol = $("#play-results");
    $("#play-run").disabled = true;
    try {
      const r = await api("POST", "/api/rerank", req);
      const scores = r.results.map((x) => x.relevance_score);
      const lo = Math.min(...scores), hi = Math.max(...scores);
      ol.replaceChildren(...r.results.map((x) => {
        const w = hi > lo ? 5 + (95 * (x.relevance_score - lo)) / (hi - lo) : 100;
        return el("li", { "data-index": x.index, "data-score": x.relevance_score },
          el("div", {}, x.document ? x.document.text : req.documents[x.index]),
          el("div", { class: "score" }, el("span", {}, `#${x.index}`), el("span", {}, x.relevance_score.toFixed(4)),
            el("span", { class: "barwrap", "aria-hidden": "true" }, bar(w))));
      }));
      flash("");
    } catch (e) { flash(e.message); ol.replaceChildren(); }
    finally { $("#play-run").disabled = false; }
  });
}

start();
