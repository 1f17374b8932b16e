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
  // problem, when the server explains the failure: {kind, field, what, fix, detail}.
  constructor(status, message, problem) { super(message); this.status = status; this.problem = problem || null; }
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
    throw new APIError(resp.status, msg, data && data.problem);
  }
  return data;
}

// flash shows a message above the page. An error stays until the next page
// or message; information stays 8 s, across a page change, so that
// "Password changed." is still there on the page that follows.
let flashTimer = null;
function flash(msg, kind = "error") {
  const f = $("#flash");
  clearTimeout(flashTimer);
  f.textContent = msg;
  f.className = kind === "info" ? "info" : "";
  f.hidden = !msg;
  if (msg && kind === "info") flashTimer = setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 8000);
}
const clearErrorFlash = () => { if (!$("#flash").classList.contains("info")) flash(""); };

// confirmDialog asks in the page (never the browser's confirm()) and
// resolves to null when cancelled (Cancel, Escape), else to {keep}: whether
// the "keep" box, shown when opts.keep names it, was ticked.
let confirmPending = null; // settles the last dialog if its close event has not come yet
function confirmDialog({ title, text, action, danger = true, keep = "" }) {
  const dlg = $("#confirm-dialog");
  // The close event is queued: one may still be on its way when the next
  // dialog opens. It settles the dialog it belongs to, never the new one.
  if (confirmPending) confirmPending();
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-keep-row").hidden = !keep;
  $("#confirm-keep").checked = false;
  $("#confirm-keep-label").textContent = keep;
  const ok = $("#confirm-ok");
  ok.textContent = action;
  ok.className = danger ? "danger" : "";
  const back = document.activeElement;
  dlg.returnValue = "";
  dlg.showModal();
  $("#confirm-cancel").focus(); // the safe choice first
  return new Promise((resolve) => {
    const settle = () => {
      dlg.removeEventListener("close", onClose);
      confirmPending = null;
      if (back && back.isConnected && !dlg.open) back.focus();
      resolve(dlg.returnValue === "ok" ? { keep: !$("#confirm-keep-row").hidden && $("#confirm-keep").checked } : null);
    };
    const onClose = () => { if (!dlg.open) settle(); };
    confirmPending = settle;
    dlg.addEventListener("close", onClose);
  });
}

// announce tells screen readers something (politely) without moving focus.
function announce(msg) { $("#live").textContent = msg; }

const fmtBytes = (n) => {
  if (!n) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};
const fmtTime = (s) => (s ? new Date(s).toLocaleString() : "-");
const fmtCount = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "k" : String(n ?? 0));
// problemParts renders an explained failure: what happened, what to do,
// and the raw detail folded (the server strips query strings and secrets).
function problemParts(p) {
  const out = [el("p", { class: "what" }, p.what), el("p", { class: "fix" }, p.fix)];
  if (p.detail) out.push(el("details", {}, el("summary", {}, "Details"), el("code", {}, p.detail)));
  return out;
}
const listNames = (ms) => ms.map((m) => `"${m.name}"`).join(", ");
const bump = (node, key) => { node.dataset[key] = String(+(node.dataset[key] || 0) + 1); };
const modelsLink = () => el("a", { href: "#/models" }, "Models");

let timer = null;
function stopPolling() { if (timer) { clearInterval(timer); timer = null; } }

function mount(id, title) {
  stopPolling();
  document.title = `${title} · aimind`;
  const main = $("#main");
  main.replaceChildren($("#" + id).content.cloneNode(true));
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.getAttribute("href") === location.hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  return main;
}

// ---- session ----

function showLogin() {
  $("#top").hidden = true;
  mount("tpl-login", "Log in");
  $("#login-password").focus(); // autofocus does not apply to a template cloned later
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
  mount("tpl-password", "Choose a new password");
  $("#pw-current").focus();
  // A mistyped new password would lock the admin out: both must match
  // before anything is sent.
  const mismatch = () => {
    const a = $("#pw-new").value, b = $("#pw-confirm").value;
    return b !== "" && a !== b ? "The two new passwords differ: type the same one twice." : "";
  };
  $("#pw-confirm").addEventListener("input", () => { if (!mismatch()) $("#pw-confirm-hint").textContent = ""; });
  $("#pw-new").addEventListener("input", () => { if (!mismatch()) $("#pw-confirm-hint").textContent = ""; });
  $("#password-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const differ = mismatch() || ($("#pw-confirm").value === "" ? "Type the new password again to confirm it." : "");
    $("#pw-confirm-hint").textContent = differ;
    if (differ) { $("#pw-confirm").focus(); return; }
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
  clearErrorFlash();
  switch (location.hash) {
    case "#/keys": return keysView();
    case "#/playground": return playgroundView();
    default: return modelsView();
  }
}

// ---- models ----
//
// The table refreshes every second. Rows are kept and only the cells whose
// content changed are rebuilt, so focus, an open "Whole error" and the
// screen reader's place survive the refresh; status changes are announced
// through the polite live region.

const SOURCES = { local: "Local path", modelscope: "ModelScope", huggingface: "Hugging Face" };
const BUSY = ["pending", "downloading", "loading"];
let modelRows = new Map(); // name → {tr, cells, primary, sig, status}
let lastModels = [];
let refreshing = null; // the table body a refresh is under way for

// folded shows a long message (an error with two sha256 values, a
// self-check's reasons) as its start and a "details" with the whole.
function folded(msg, cls, whole) {
  if (msg.length <= 160) return [el("span", { class: "sub " + cls }, msg)];
  return [el("span", { class: "sub " + cls }, msg.slice(0, 120).trimEnd() + "…"),
    el("details", { class: "more" }, el("summary", {}, whole), el("span", { class: "sub " + cls }, msg))];
}

function statusParts(m) {
  const out = [el("span", { class: "status " + m.status, "data-status": m.status }, m.status)];
  if (m.status === "downloading" && m.progress && m.progress.total) {
    const pct = Math.floor((m.progress.done * 100) / m.progress.total);
    out.push(" ", el("progress", { max: 100, value: pct, "aria-label": `download of ${m.name}: ${pct}%` }),
      el("span", { class: "sub" }, `${pct}% of ${fmtBytes(m.progress.total)}, ${fmtBytes(m.progress.rate)}/s`));
  }
  // self_check comes with servers that check a model after loading it.
  const sc = m.self_check;
  if (sc && sc.status === "suspect") {
    out.push(el("span", { class: "badge suspect", "data-self-check": "suspect" }, "suspect"),
      ...folded("Self-check: " + (sc.reason || "the scores are not what this model should give"), "reason", "Whole self-check"));
  } else if (sc && sc.status === "passed") {
    out.push(" ", el("span", { class: "quiet", "data-self-check": "passed" }, "checked"));
  }
  if (m.status === "error" && m.problem) out.push(el("div", { class: "problem", "data-problem": m.problem.kind }, ...problemParts(m.problem)));
  else if (m.status === "error" && m.error) out.push(...folded(m.error, "error", "Whole error"));
  return out;
}

function primaryAction(m) {
  if (m.status === "running" || BUSY.includes(m.status)) return ["stop", "Stop"];
  if (m.status === "error") return ["start", "Retry"];
  return ["start", "Start"];
}

function newRow(name) {
  const td = (label, cls) => el("td", { "data-label": label, class: cls });
  const cells = { name: td("Name", "name-cell"), source: td("Source"), file: td("File"), size: td("Size"), status: td("Status"), memory: td("Memory") };
  const primary = el("button", { type: "button", class: "secondary", "data-role": "primary" });
  primary.addEventListener("click", () => modelAction(name, primary.dataset.action));
  const logs = el("button", { type: "button", class: "secondary", "data-role": "logs", "aria-label": `Logs of ${name}` }, "Logs");
  logs.addEventListener("click", () => showLogs(name));
  const del = el("button", { type: "button", class: "danger", "data-role": "delete", "aria-label": `Delete ${name}` }, "Delete");
  del.addEventListener("click", () => modelAction(name, "delete"));
  const tr = el("tr", { "data-model": name }, ...Object.values(cells), el("td", { class: "actions-cell" }, primary, logs, del));
  return { tr, cells, primary, sig: {}, status: null };
}

// setCell rebuilds one cell when its content changed.
function setCell(row, key, sig, build) {
  if (row.sig[key] === sig) return;
  row.sig[key] = sig;
  row.cells[key].replaceChildren(el("div", { class: "v" }, ...build()));
}

function updateRow(row, m) {
  const where = m.repo || m.path || "";
  const file = m.file || (m.path || "").split("/").pop();
  const quant = m.quant || (m.facts && m.facts.FileType) || "";
  const mem = m.status === "running" ? fmtBytes(m.memory_estimate) : "-";
  // Where clients send requests for this model (the API's URL on this
  // server, as the browser reaches it) and the "model" to name.
  const endpoint = `${location.origin}/v1/rerank`;
  setCell(row, "name", m.name, () => [el("strong", {}, m.name),
    el("code", { class: "sub endpoint", "data-endpoint": endpoint, title: `POST ${endpoint} with "model": "${m.name}"` }, "POST /v1/rerank")]);
  setCell(row, "source", m.source + "\n" + where, () => [SOURCES[m.source] || m.source, el("span", { class: "sub" }, where)]);
  setCell(row, "file", file + "\n" + quant, () => [file || "-", el("span", { class: "sub" }, quant)]);
  setCell(row, "size", String(m.size || 0), () => [fmtBytes(m.size)]);
  setCell(row, "status", JSON.stringify([m.status, m.progress, m.error, m.problem, m.self_check]), () => statusParts(m));
  const device = m.status === "running" ? (m.device || "") : "";
  setCell(row, "memory", mem + "\n" + device, () => device ? [mem, el("span", { class: "sub" }, device)] : [mem]);
  const [action, label] = primaryAction(m);
  if (row.primary.dataset.action !== action || row.primary.textContent !== label) {
    row.primary.dataset.action = action;
    row.primary.textContent = label;
    row.primary.setAttribute("aria-label", `${label} ${m.name}`);
  }
}

async function refreshModels() {
  const body = $("#models-table tbody");
  if (!body || refreshing === body) return; // one refresh of a table at a time
  refreshing = body;
  let list;
  try { list = (await api("GET", "/api/models")).data || []; } catch (e) { flash(e.message); return; } finally { if (refreshing === body) refreshing = null; }
  if (!body.isConnected) return;
  lastModels = list;
  const changes = [];
  const seen = new Set();
  let prev = null;
  for (const m of list) {
    seen.add(m.name);
    let row = modelRows.get(m.name);
    if (!row) { row = newRow(m.name); modelRows.set(m.name, row); }
    updateRow(row, m);
    if (row.status !== null && row.status !== m.status) changes.push(`${m.name} is ${m.status}`);
    row.status = m.status;
    // Rows already in place are not moved: moving one would take the focus from its button.
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== row.tr) body.insertBefore(row.tr, want);
    prev = row.tr;
  }
  for (const [name, row] of modelRows) {
    if (!seen.has(name)) { row.tr.remove(); modelRows.delete(name); }
  }
  $("#models-empty").hidden = list.length > 0;
  if (changes.length) announce(changes.join(". ") + ".");
  bump(document.body, "modelsRefreshes"); // tests wait on this
}

async function modelAction(name, action) {
  const m = lastModels.find((x) => x.name === name) || {};
  try {
    if (action === "delete") {
      const local = m.source === "local";
      const text = local ? `Its record goes; the file ${m.path} stays on disk: aimind never removes a local file.`
        : "Its record goes, and the file aimind downloaded for it too, unless another model uses it or you keep it.";
      const keepLabel = local ? "" : `Keep the downloaded file${m.file ? " " + m.file : ""} (a later deploy of it needs no download)`;
      const answer = await confirmDialog({ title: `Delete model "${name}"?`, text, action: "Delete", keep: keepLabel });
      if (!answer) return;
      const row = modelRows.get(name);
      const next = row && (row.tr.nextElementSibling || row.tr.previousElementSibling);
      const d = await api("DELETE", `/api/models/${encodeURIComponent(name)}?files=true&keep_file=${answer.keep}`);
      flash(`Deleted model "${name}"` + (d && d.note ? `: ${d.note}.` : "."), "info");
      await refreshModels();
      // The focused Delete button went with its row: keep the keyboard user nearby.
      if (!document.activeElement || document.activeElement === document.body) {
        const to = next && next.isConnected ? next.querySelector("button") : $("#deploy-open");
        if (to) to.focus();
      }
    } else {
      if (action === "stop" && !await confirmDialog({ title: `Stop model "${name}"?`, text: "Its memory is freed; requests for it fail until it is started again.", action: "Stop", danger: false })) return;
      await api("POST", `/api/models/${encodeURIComponent(name)}/${action}`);
      await refreshModels();
    }
  } catch (e) { flash(e.message); }
}

// showLogs opens a model's recent events, refreshed every second while open.
let logsTimer = null;
async function showLogs(name) {
  const dlg = $("#logs-dialog");
  $("#logs-title").textContent = `Logs of ${name}`;
  $("#logs-list").replaceChildren();
  $("#logs-empty").hidden = true;
  let shown = "";
  const load = async () => {
    let list;
    try { list = (await api("GET", `/api/models/${encodeURIComponent(name)}/logs`)).data || []; } catch (e) { list = [{ time: new Date().toISOString(), level: "ERROR", message: e.message }]; }
    const sig = JSON.stringify(list);
    if (sig === shown) return; // unchanged: keep the reader's scroll position
    const ol = $("#logs-list");
    const atEnd = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4;
    shown = sig;
    ol.replaceChildren(...list.map((x) => el("li", { "data-level": x.level },
      el("time", { datetime: x.time }, new Date(x.time).toLocaleTimeString()), el("span", { class: "lvl " + x.level }, x.level), x.message,
      x.attrs && Object.keys(x.attrs).length ? el("span", { class: "attrs" }, Object.entries(x.attrs).map(([k, v]) => `${k}=${v}`).join("  ")) : "")));
    $("#logs-empty").hidden = list.length > 0;
    if (atEnd) ol.scrollTop = ol.scrollHeight;
    bump(dlg, "loads"); // tests wait on this
  };
  clearInterval(logsTimer);
  dlg.addEventListener("close", () => { clearInterval(logsTimer); logsTimer = null; }, { once: true });
  dlg.showModal();
  await load();
  if (dlg.open) logsTimer = setInterval(load, 1000);
}

function modelsView() {
  mount("tpl-models", "Models");
  $("#models-endpoint").replaceChildren("Clients call ", el("code", {}, `POST ${location.origin}/v1/rerank`), " with ",
    el("code", {}, '"model": "NAME"'), " and an API key; the Playground's View code has the whole call.");
  modelRows = new Map();
  refreshModels();
  timer = setInterval(refreshModels, 1000);
  setupDeploy();
}

// ---- deploy dialog ----

let filesCache = [];
let repoChosen = "";
let saving = false;

function setupDeploy() {
  const dlg = $("#deploy-dialog");
  const form = $("#deploy-form");
  $("#deploy-open").addEventListener("click", () => { resetDeploy(); dlg.showModal(); $("#deploy-search").focus(); search(); });
  $("#deploy-cancel").addEventListener("click", () => dlg.close());
  $("#deploy-source").addEventListener("change", () => {
    const local = $("#deploy-source").value === "local";
    $("#hub-fields").hidden = local;
    $("#local-fields").hidden = !local;
    clearRepo();
    $("#deploy-repo").value = "";
    clearProblems();
    if (!local) search();
    updateSave();
  });
  let debounce = null;
  $("#deploy-search").addEventListener("input", () => {
    searchSeq++; // answers to what was typed before are stale now
    clearTimeout(debounce);
    debounce = setTimeout(search, 300);
  });
  // Enter in a field never deploys: in Search it searches, in Repository it
  // reads the repository's files. Only Save (or Enter on it) deploys.
  const enterInField = (ev) => ev.key === "Enter" && ev.target instanceof HTMLInputElement;
  form.addEventListener("keydown", (ev) => {
    if (!enterInField(ev)) return;
    ev.preventDefault();
    if (ev.target.id === "deploy-search") { clearTimeout(debounce); search(); }
    if (ev.target.id === "deploy-repo") chooseRepo($("#deploy-repo").value.trim());
  });
  // Implicit submission follows keypress, which some input paths send on
  // their own even when keydown was handled.
  form.addEventListener("keypress", (ev) => { if (enterInField(ev)) ev.preventDefault(); });
  $("#deploy-gguf").addEventListener("change", search);
  $("#deploy-repo").addEventListener("change", () => { if ($("#deploy-repo").value.trim() !== repoChosen) chooseRepo($("#deploy-repo").value.trim()); });
  let repoDebounce = null;
  $("#deploy-repo").addEventListener("input", () => {
    clearTimeout(repoDebounce);
    const v = $("#deploy-repo").value.trim();
    if (repoPattern.test(v)) repoDebounce = setTimeout(() => { if ($("#deploy-repo").value.trim() === v && v !== repoChosen) chooseRepo(v); }, 500);
  });
  $("#deploy-file").addEventListener("change", () => { showEstimate(); updateSave(); });
  $("#deploy-path").addEventListener("input", () => {
    const base = $("#deploy-path").value.split("/").pop().replace(/\.gguf$/i, "").replace(/[-._](f32|f16|fp16|bf16|q[2-8](_[0-9a-z]+)*|iq[1-4](_[a-z0-9]+)*)$/i, "");
    $("#deploy-name").value = base;
    checkName();
    updateSave();
  });
  $("#deploy-name").addEventListener("input", () => { checkName(); updateSave(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    bump(form, "submits"); // tests check that Enter in a field submits nothing
    if ($("#deploy-save").disabled) return;
    const source = $("#deploy-source").value;
    const req = { source, name: $("#deploy-name").value.trim() };
    if (source === "local") req.path = $("#deploy-path").value.trim();
    else { req.repo = $("#deploy-repo").value.trim(); req.file = $("#deploy-file").value; }
    saving = true;
    updateSave();
    clearProblems();
    try {
      await api("POST", "/api/models", req);
      dlg.close();
      flash(`Deploying ${req.name}…`, "info");
      refreshModels();
    } catch (e) {
      showProblem(e, source === "local" ? "path" : "");
    } finally { saving = false; updateSave(); }
  });
}

const PROBLEM_FIELDS = ["search", "repo", "file", "path", "name"];

// showProblem puts an error next to the field it concerns: the server's
// problem names it; otherwise the given field, or under the form.
function showProblem(e, field) {
  const p = e.problem;
  const where = (p && p.field && $(`#deploy-${p.field}-problem`)) || (field && $(`#deploy-${field}-problem`)) || $("#deploy-error");
  where.className = "problem";
  where.dataset.kind = p ? p.kind : "";
  where.replaceChildren(...(p ? problemParts(p) : [el("p", { class: "what" }, e.message)]));
}

// Once a repository's files were asked for, a "hub cannot be reached"
// under Search says nothing the Repository field does not.
function settleSearchProblem() {
  if ($("#deploy-search-problem").dataset.kind === "unreachable") clearProblem("search");
}

function showNotice(field, msg) {
  const where = $(`#deploy-${field}-problem`);
  where.className = "problem info";
  where.dataset.kind = "notice";
  where.replaceChildren(el("p", { class: "what" }, msg));
}

function clearProblem(field) {
  const where = field ? $(`#deploy-${field}-problem`) : $("#deploy-error");
  if (where) { where.replaceChildren(); where.dataset.kind = ""; }
}

function clearProblems() {
  for (const f of PROBLEM_FIELDS) clearProblem(f);
  clearProblem();
}

function clearRepo() {
  filesCache = [];
  repoChosen = "";
  $("#deploy-results").replaceChildren();
  $("#deploy-results-title").textContent = "";
  $("#deploy-file").replaceChildren();
  $("#deploy-file-hint").textContent = "";
  $("#deploy-estimate").textContent = "";
}

function resetDeploy() {
  $("#deploy-form").reset();
  $("#deploy-source").value = "huggingface";
  $("#hub-fields").hidden = false;
  $("#local-fields").hidden = true;
  clearRepo();
  clearProblems();
  $("#deploy-name-hint").textContent = "";
  saving = false;
  updateSave();
}

// updateSave allows Save only for a deployable choice: a repository with a
// GGUF file (or a local path) and a name.
function updateSave() {
  const local = $("#deploy-source").value === "local";
  const ready = local ? $("#deploy-path").value.trim() !== "" : filesCache.length > 0 && $("#deploy-file").value !== "";
  const named = !!$("#deploy-name").value.trim();
  $("#deploy-save").disabled = saving || !ready || !named;
  // Say what Save waits for, rather than leave a grey button.
  let why = "";
  if (saving) why = "";
  else if (local && !ready) why = "Save needs the path of a .gguf file on the server.";
  else if (!local && !repoChosen) why = "Save needs a repository: type its id (owner/name) or choose one from the list.";
  else if (!local && !ready) why = filesCache.length || $("#deploy-file-hint").textContent || $("#deploy-repo-problem").textContent ? "Save needs a GGUF file of the repository." : `Reading the files of ${repoChosen}…`;
  else if (!named) why = "Save needs a name.";
  $("#deploy-save-hint").textContent = why;
}

function checkName() {
  const n = $("#deploy-name").value.trim();
  $("#deploy-name-hint").textContent = n && lastModels.some((m) => m.name === n) ? `A model named "${n}" exists already: choose another name.` : "";
}

let searchSeq = 0;
// search lists repositories; before anything is typed, the source's
// reranker repositories, most downloaded first.
async function search() {
  const source = $("#deploy-source").value;
  if (source === "local") return;
  const typed = $("#deploy-search").value.trim();
  const where = source === "modelscope" ? "ModelScope" : "Hugging Face";
  const seq = ++searchSeq;
  const ul = $("#deploy-results");
  const title = $("#deploy-results-title");
  try {
    const r = await api("GET", `/api/hub/search?source=${source}&q=${encodeURIComponent(typed || "reranker")}&gguf=${$("#deploy-gguf").checked}`);
    if (seq !== searchSeq) return; // a newer search is under way
    const repos = r.data || [];
    title.textContent = typed ? `Repositories on ${where} matching "${typed}", most downloaded first:` : `Reranker repositories on ${where}, most downloaded first:`;
    ul.replaceChildren(...repos.map((repo) => el("li", {},
      el("button", { type: "button", "data-repo": repo.id, "aria-pressed": String(repo.id === repoChosen), onclick: () => pickRepo(repo.id) },
        el("span", {}, repo.id), el("span", { class: "stats" }, `↓ ${fmtCount(repo.downloads)}  ♥ ${fmtCount(repo.likes)}`)))));
    if (!repos.length) ul.replaceChildren(el("li", { class: "hint" }, "No matching repositories."));
    clearProblem("search");
    // Typing is enough: the repository whose id was typed, or the only
    // result, is chosen (its files listed, the default file selected), as
    // GPUStack's guide has it. An id the search does not find (a private or
    // unlisted repository) is tried directly.
    if (typed) {
      const exact = repos.find((x) => x.id.toLowerCase() === typed.toLowerCase());
      const only = repos.length === 1 ? repos[0] : null;
      const pick = exact || only;
      if (pick && pick.id !== repoChosen) pickRepo(pick.id);
      else if (!repos.length && repoPattern.test(typed) && typed !== repoChosen) pickRepo(typed);
    }
  } catch (e) {
    if (seq !== searchSeq) return;
    ul.replaceChildren();
    title.textContent = "";
    if (e.status === 501) title.textContent = `${where} offers no search here: type the repository id (owner/name) under Repository, for example gpustack/bge-reranker-v2-m3-GGUF, and press Enter.`;
    else showProblem(e, "search");
    // With no search, an id typed in Search is still tried directly.
    if (typed && repoPattern.test(typed) && typed !== repoChosen) pickRepo(typed);
  }
}

const repoPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

// pickRepo marks repo as chosen in the list and under Repository, and lists its files.
function pickRepo(repo) {
  for (const b of $("#deploy-results").querySelectorAll("button[data-repo]")) b.setAttribute("aria-pressed", String(b.dataset.repo === repo));
  $("#deploy-repo").value = repo;
  chooseRepo(repo);
}

async function chooseRepo(repo) {
  const source = $("#deploy-source").value;
  const sel = $("#deploy-file");
  filesCache = [];
  repoChosen = repo;
  sel.replaceChildren();
  $("#deploy-estimate").textContent = "";
  $("#deploy-file-hint").textContent = "";
  clearProblem("repo");
  clearProblem("file");
  updateSave();
  if (!repo) return;
  try {
    const r = await api("GET", `/api/hub/files?source=${source}&repo=${encodeURIComponent(repo)}`);
    if (repoChosen !== repo) return; // another repository was chosen meanwhile
    filesCache = r.files || [];
    sel.replaceChildren(...filesCache.map((f) => el("option", { value: f.path, selected: f.path === r.default },
      `${f.path} (${f.quant || "?"}, ${fmtBytes(f.size)})`)));
    $("#deploy-file-hint").textContent = filesCache.length ? "" : `${repo} has no GGUF file, and aimind serves GGUF files only: choose another repository.`;
    clearProblem();
    if (r.notice) showNotice("repo", r.notice);
    $("#deploy-name").value = r.name || "";
    checkName();
    showEstimate();
  } catch (e) {
    if (repoChosen === repo) showProblem(e, "repo");
  }
  if (repoChosen === repo) settleSearchProblem();
  updateSave();
}

function showEstimate() {
  const f = filesCache.find((x) => x.path === $("#deploy-file").value);
  $("#deploy-estimate").textContent = f ? `Memory estimate: about ${fmtBytes(f.memory_estimate || f.size)} once loaded.` : "";
}

// ---- API keys ----

const keyNameRule = /^[\p{L}\p{N} ._-]{1,64}$/u; // as the server checks it
let lastKeys = [];

async function refreshKeys() {
  const body = $("#keys-table tbody");
  if (!body) return;
  let list;
  try { list = (await api("GET", "/api/keys")).data || []; } catch (e) { flash(e.message); return; }
  if (!body.isConnected) return;
  list.sort((a, b) => new Date(b.created) - new Date(a.created)); // newest first
  lastKeys = list;
  const now = Date.now();
  const td = (label, cls, ...kids) => el("td", { "data-label": label, class: cls }, el("div", { class: "v" }, ...kids));
  body.replaceChildren(...list.map((k) => {
    const expired = k.expires && new Date(k.expires).getTime() <= now;
    return el("tr", { "data-key": k.id, "data-expired": expired ? "true" : undefined },
      td("Name", "name-cell", el("strong", {}, k.name), el("span", { class: "sub" }, `id ${k.id}`)),
      td("Key", undefined, el("code", {}, k.prefix + "…")),
      td("Created", undefined, fmtTime(k.created)),
      td("Last used", undefined, fmtTime(k.last_used)),
      expired ? td("Expires", undefined, el("span", { class: "status expired" }, "expired"), el("span", { class: "sub" }, fmtTime(k.expires)))
        : td("Expires", undefined, k.expires ? fmtTime(k.expires) : "never"),
      td("Models", undefined, (k.models || []).length ? k.models.join(", ") : "all"),
      el("td", { class: "actions-cell" }, el("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name} (id ${k.id})`, onclick: async () => {
        if (!await confirmDialog({ title: `Revoke API key "${k.name}"?`, text: `Key id ${k.id}. Clients using it stop working at once.`, action: "Revoke" })) return;
        try { await api("DELETE", `/api/keys/${encodeURIComponent(k.id)}`); refreshKeys(); } catch (e) { flash(e.message); }
      } }, "Revoke")));
  }));
  $("#keys-empty").hidden = list.length > 0;
  bump(document.body, "keysRefreshes");
}

// checkKeyName shows, as the name is typed, what the server would refuse
// and which keys already carry the name.
function checkKeyName() {
  const n = $("#key-name").value.trim();
  const hint = $("#key-name-hint");
  const same = lastKeys.filter((k) => k.name === n);
  if (n && !keyNameRule.test(n)) hint.textContent = `"${n}" cannot be used: see the rules above.`;
  else if (same.length) hint.textContent = `A key named "${n}" exists already (id ${same.map((k) => k.id).join(", ")}); the new one gets its own id.`;
  else hint.textContent = "";
  $("#key-save").disabled = !!n && !keyNameRule.test(n);
}

async function keysView() {
  mount("tpl-keys", "API Keys");
  refreshKeys();
  const dlg = $("#key-dialog");
  $("#key-open").addEventListener("click", async () => {
    $("#key-form").reset();
    $("#key-inputs").hidden = false;
    $("#key-created").hidden = true;
    $("#key-save").hidden = false;
    $("#key-save").disabled = false;
    $("#key-cancel").hidden = false;
    $("#key-done").hidden = true;
    $("#key-error").textContent = "";
    $("#key-name-hint").textContent = "";
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
  $("#key-name").addEventListener("input", checkKeyName);
  $("#key-cancel").addEventListener("click", () => dlg.close());
  $("#key-done").addEventListener("click", () => dlg.close());
  // However the dialog closes (Done, Cancel, Escape), the key is forgotten
  // and the list shows what the server has.
  dlg.addEventListener("close", () => { $("#key-value").value = ""; refreshKeys(); });
  $("#key-copy").addEventListener("click", async () => {
    const v = $("#key-value");
    v.select();
    try { await navigator.clipboard.writeText(v.value); flash("Copied.", "info"); } catch { document.execCommand("copy"); }
  });
  $("#key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!$("#key-created").hidden) return dlg.close();
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

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function playRequest() {
  const docs = $("#play-docs").value.split("\n").map((s) => s.trim()).filter((s) => s.length);
  const req = { model: $("#play-model").value, query: $("#play-query").value, documents: docs };
  const n = parseInt($("#play-topn").value, 10);
  if (n > 0) req.top_n = n;
  if ($("#play-normalize").checked) req.normalize = true;
  return req;
}

function bar(fraction) {
  const b = el("span", { class: "barfill" });
  b.style.width = (100 * Math.min(1, Math.max(0, fraction))) + "%";
  return b;
}

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

// pyLiteral writes a JSON value as Python source (True, False, None).
function pyLiteral(v, indent = "") {
  const next = indent + "    ";
  if (v === null) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (Array.isArray(v)) return v.length ? "[\n" + v.map((x) => next + pyLiteral(x, next)).join(",\n") + ",\n" + indent + "]" : "[]";
  if (typeof v === "object") return "{\n" + Object.entries(v).map(([k, x]) => `${next}${JSON.stringify(k)}: ${pyLiteral(x, next)}`).join(",\n") + ",\n" + indent + "}";
  return JSON.stringify(v);
}

// CODE gives, for the playground's request, the same call in curl, Python
// (requests) and Node.js (fetch, Node 18 or newer), sent to this server.
const CODE = {
  curl: (url, req) => `curl ${url} \\\n  -H 'Content-Type: application/json' \\\n  -H 'Authorization: Bearer YOUR_API_KEY' \\\n  -d ${shellQuote(JSON.stringify(req))}`,
  python: (url, req) => `import requests

body = ${pyLiteral(req)}
resp = requests.post(
    ${JSON.stringify(url)},
    headers={"Authorization": "Bearer YOUR_API_KEY"},
    json=body,
    timeout=60,
)
resp.raise_for_status()
for r in resp.json()["results"]:
    print(r["index"], r["relevance_score"])
`,
  node: (url, req) => `// rerank.mjs: node rerank.mjs
const body = ${JSON.stringify(req, null, 2)};
const resp = await fetch(${JSON.stringify(url)}, {
  method: "POST",
  headers: { "Content-Type": "application/json", Authorization: "Bearer YOUR_API_KEY" },
  body: JSON.stringify(body),
});
if (!resp.ok) throw new Error(\`\${resp.status}: \${await resp.text()}\`);
for (const r of (await resp.json()).results) console.log(r.index, r.relevance_score);
`,
};

// noModelRunning says why the playground has nothing to run, and where to
// go about it.
function noModelRunning(list) {
  if (!list.length) return ["No model is deployed yet: deploy one on the ", modelsLink(), " page."];
  const busy = list.filter((m) => BUSY.includes(m.status));
  if (busy.length) return [`No model is running yet: ${listNames(busy)} ${busy.length > 1 ? "are" : "is"} getting ready (see the `, modelsLink(), " page); it can be used here once it is running."];
  const stopped = list.filter((m) => m.status === "stopped");
  const failed = list.filter((m) => m.status === "error");
  const parts = [];
  if (stopped.length) parts.push(`${listNames(stopped)} ${stopped.length > 1 ? "are" : "is"} stopped`);
  if (failed.length) parts.push(`${listNames(failed)} failed`);
  return [`No model is running: ${parts.join(" and ")}. Start one on the `, modelsLink(), " page."];
}

async function playgroundView() {
  mount("tpl-playground", "Playground");
  let list = [];
  try { list = (await api("GET", "/api/models")).data || []; } catch (e) { flash(e.message); }
  if (!$("#play-form")) return; // the user went elsewhere meanwhile
  const running = list.filter((m) => m.status === "running");
  $("#play-model").replaceChildren(...running.map((m) => el("option", { value: m.name }, m.name)));
  if (!running.length) {
    $("#play-empty").replaceChildren(...noModelRunning(list));
    $("#play-empty").hidden = false;
    $("#play-run").disabled = true;
  }
  // A model its self-check flagged is usable, but its scores may be wrong:
  // say so above the form, for the model chosen.
  const warnSuspect = () => {
    const m = running.find((x) => x.name === $("#play-model").value);
    const sc = m && m.self_check;
    const box = $("#play-suspect");
    box.hidden = !(sc && sc.status === "suspect");
    if (!box.hidden) {
      box.replaceChildren(el("strong", {}, `The self-check flagged "${m.name}" as suspect: its scores may be wrong.`),
        " Results are shown all the same. Its Logs on the ", modelsLink(), " page have the whole check.",
        el("details", { class: "more" }, el("summary", {}, "Why"), el("span", {}, sc.reason || "")));
    }
  };
  $("#play-model").addEventListener("change", warnSuspect);
  warnSuspect();
  // View code: the form's request in curl, Python or Node.js, kept up to
  // date while the panel is open.
  let lang = "curl";
  const showCode = () => {
    $("#play-code-text").textContent = CODE[lang](`${location.origin}/v1/rerank`, playRequest());
    for (const b of document.querySelectorAll("#play-code-panel .tab")) b.setAttribute("aria-selected", String(b.dataset.lang === lang));
  };
  $("#play-code").addEventListener("click", () => {
    const panel = $("#play-code-panel");
    panel.hidden = !panel.hidden;
    $("#play-code").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) showCode();
  });
  for (const b of document.querySelectorAll("#play-code-panel .tab")) b.addEventListener("click", () => { lang = b.dataset.lang; showCode(); });
  $("#play-form").addEventListener("input", () => { if (!$("#play-code-panel").hidden) showCode(); });
  $("#play-code-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#play-code-text").textContent); flash("Code copied.", "info"); } catch { /* it is shown to copy by hand */ }
  });
  // The calibrated-scores box changes the request; with results on screen
  // it runs it again, so that what is shown is what the API answers.
  $("#play-normalize").addEventListener("change", () => {
    if (!$("#play-out").hidden && !$("#play-run").disabled) $("#play-form").requestSubmit();
  });
  $("#play-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const req = playRequest();
    const ol = $("#play-results");
    $("#play-run").disabled = true;
    try {
      const r = await api("POST", "/api/rerank", req);
      // With normalize the API gives sigmoid(logit) as relevance_score and
      // the logit as raw_score; without, the logit as relevance_score. The
      // relevance_score the API answered is shown first, as it is.
      ol.replaceChildren(...r.results.map((x) => {
        const logit = req.normalize ? x.raw_score : x.relevance_score;
        const score = req.normalize ? x.relevance_score : sigmoid(x.relevance_score);
        const other = req.normalize ? `raw_score (logit) ${logit.toFixed(4)}` : `sigmoid ${score.toFixed(3)}`;
        return el("li", { "data-index": x.index, "data-logit": logit, "data-score": score, "data-relevance": x.relevance_score },
          el("div", {}, x.document ? x.document.text : req.documents[x.index]),
          el("div", { class: "score" }, el("span", {}, `#${x.index}`),
            el("span", { class: "rel" }, `relevance_score ${x.relevance_score.toFixed(req.normalize ? 3 : 4)}`),
            el("span", {}, other), el("span", { class: "barwrap", "aria-hidden": "true" }, bar(score))));
      }));
      $("#play-explain").textContent = req.normalize
        ? "Calibrated (\"normalize\": true): relevance_score is sigmoid(logit), from 0 to 1, and raw_score the model's logit. The bar is the relevance_score."
        : "Raw (the API's default): relevance_score is the model's logit, any real number, higher is more relevant. The bar shows sigmoid(logit), from 0 to 1; tick \"calibrated scores\" to get it as relevance_score.";
      $("#play-out").dataset.normalize = String(!!req.normalize);
      $("#play-results-title").textContent = `Ranked documents (${r.results.length} of ${req.documents.length})`;
      $("#play-out").hidden = false;
      $("#play-out").scrollIntoView({ block: "start" });
      announce(`${r.results.length} ranked documents below.`);
      clearErrorFlash();
    } catch (e) { flash(e.message); ol.replaceChildren(); $("#play-out").hidden = true; }
    finally { $("#play-run").disabled = false; }
  });
}

start();
