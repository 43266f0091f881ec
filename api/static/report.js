/* gridmap · 问题上报: an inspector reports a problem from the street, previews where it will go, and sends it.
   Each report gets its Idempotency-Key once, when it is sent, and is stored (IndexedDB, photos as blobs) before
   the first attempt; every retry (online event, timer, page load, "retry now") sends the same key and body, so
   the server files one case at most, and a report leaves the queue only on 2xx or a 4xx that can never pass. */
"use strict";

const API = "/api/v1";
const STORE = { token: "gridmap.token", user: "gridmap.user", lang: "gridmap.lang" };
const RETRY_MS = 15000;
const SEARCH_DELAY_MS = 300;
const SEND_TIMEOUT_MS = 90000;
const RETRYABLE = new Set([401, 408, 425, 429]); // 4xx that may pass later: log in again, wait
const TEXT = JSON.parse(document.getElementById("text").textContent); // key → [zh, en], in report.html

let lang = localStorage.getItem(STORE.lang) === "en" ? "en" : "zh";
const state = { fix: null, fixError: null, cls: null, preview: null, receipt: null, queue: 0, failed: [],
                lastError: null, departments: null, outcomes: new Map() };
const $ = (id) => document.getElementById(id);

function t(key, vars = {}) {
  const text = (TEXT[key] || [key, key])[lang === "en" ? 1 : 0];
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

const clean = (children) => children.flat(3).filter((child) => child !== null && child !== undefined && child !== false);
const fill = (id, ...children) => $(id).replaceChildren(...clean(children));

function h(tag, props = {}, ...children) { // a DOM element; text is never parsed as HTML
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...clean(children));
  return node;
}

const facts = (rows) => h("dl", {}, rows.filter(([, value]) => value !== null && value !== undefined && value !== "")
  .map(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]));
const bullets = (title, lines) => (lines && lines.length
  ? [h("h3", {}, title), h("ul", {}, lines.map((line) => h("li", {}, line)))] : null);
const when = (moment) => (moment ? new Date(moment).toLocaleString(lang === "en" ? "en-GB" : "zh-CN",
  { dateStyle: "short", timeStyle: "short" }) : null);
const named = (item) => (lang === "en" && item.name_en) || item.name;
const showError = (id, message) => Object.assign($(id), { textContent: message || "", hidden: !message });
const offline = (error) => error.name === "TypeError" || error.name === "AbortError" || error.name === "TimeoutError";

/* ---- the API and the log-in ---- */
function session() {
  const [user, token] = [JSON.parse(localStorage.getItem(STORE.user) || "null"), localStorage.getItem(STORE.token)];
  return token && user && user.expires > Date.now() ? { ...user, token } : null;
}

function call(path, { headers = {}, timeout = 20000, ...options } = {}) {
  if (!navigator.onLine) return Promise.reject(new TypeError("offline")); // fail fast, and quietly
  const auth = session() ? { Authorization: `Bearer ${session().token}` } : {};
  return fetch(API + path, { ...options, headers: { ...auth, ...headers }, signal: AbortSignal.timeout(timeout) });
}

async function errorText(response) { // {"detail": "..."} or FastAPI's validation list
  try {
    const { detail } = await response.json();
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    if (detail) return String(detail);
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status}`;
}

async function logIn(event) {
  event.preventDefault();
  const form = event.target;
  showError("login-error", null);
  try {
    const response = await call("/auth/token", { method: "POST", body: new URLSearchParams(new FormData(form)) });
    if (!response.ok) throw new Error(await errorText(response));
    const token = await response.json();
    localStorage.setItem(STORE.token, token.access_token);
    localStorage.setItem(STORE.user, JSON.stringify({ name: token.name, role: token.role,
                                                        expires: Date.now() + token.expires_in * 1000 }));
    form.reset();
    showView();
    flush();
  } catch (error) {
    showError("login-error", offline(error) ? t("network") : error.message);
  }
}

function logOut(message) { // waiting reports stay on the phone, for this user's next log-in
  [STORE.token, STORE.user].forEach((name) => localStorage.removeItem(name));
  showView();
  if (typeof message === "string") showError("login-error", message);
}

function showView() {
  const user = session();
  $("login-view").hidden = !!user;
  $("report-view").hidden = !user;
  $("who").textContent = user ? t("logged_in", { name: user.name }) : "";
  refreshQueue();
}

/* ---- where the inspector stands (browser geolocation is WGS84) ---- */
function locate() {
  const failed = (message) => { state.fixError = message; renderFix(); };
  if (!("geolocation" in navigator)) return failed(t("no_geolocation"));
  navigator.geolocation.watchPosition((position) => {
    const { longitude, latitude, accuracy } = position.coords;
    Object.assign(state, { fix: { lon: longitude, lat: latitude, accuracy, at: position.timestamp }, fixError: null });
    renderFix();
  }, (error) => failed(error.message || `code ${error.code}`), { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
}

function renderFix() {
  const fix = state.fix;
  $("fix").textContent = fix ? t("fix", { lon: fix.lon.toFixed(6), lat: fix.lat.toFixed(6) }) : t("locating");
  $("fix-accuracy").textContent = state.fixError ? t("geo_error", { msg: state.fixError })
    : fix ? t("accuracy", { m: Math.round(fix.accuracy) }) : "";
}

/* ---- what the problem is: the catalogue ---- */
let searchTimer = null, searchRound = 0;
async function search() {
  const query = $("class-search").value.trim();
  const round = ++searchRound;
  if (!query) return $("class-results").replaceChildren();
  let found = [], message = null;
  try {
    const lists = await Promise.all(["event", "component"].map(async (type) => {
      const response = await call(`/catalogue/${type}?q=${encodeURIComponent(query)}`);
      if (!response.ok) throw new Error(await errorText(response));
      return (await response.json()).map((item) => ({ ...item, case_type: type }));
    }));
    found = lists.flat().slice(0, 30);
  } catch (error) {
    message = offline(error) ? t("network") : error.message;
  }
  if (round !== searchRound) return; // a newer search is under way
  fill("class-results", found.length ? found.map((item) => h("li", {}, h("button",
    { type: "button", onclick: () => pick(item) }, named(item), " ", h("small", {}, `${t(item.case_type)} ${item.code}`))))
    : h("li", { class: "hint" }, message || t("no_match")));
}

function pick(item) {
  state.cls = { case_type: item.case_type, code: item.code, name: item.name, name_en: item.name_en };
  $("class-search").value = "";
  $("class-results").replaceChildren();
  renderPicked();
  preview();
}

function renderPicked() {
  const cls = state.cls;
  $("class-picked").textContent = cls ? t("picked", { name: named(cls), type: t(cls.case_type), code: cls.code }) : "";
  $("component-row").hidden = !cls || cls.case_type !== "component";
}

/* ---- preview: where the report would go, without filing it ---- */
function missing({ sending = false } = {}) {
  const component = $("component-id").value.trim();
  if (sending && !session()) return t("need_login");
  if (!state.fix) return t("need_fix");
  if (!state.cls) return t("need_class");
  if (component && !/^[0-9]{16}$/.test(component)) return t("bad_component");
  if (sending && $("self-disposed").checked && !$("photos").files.length) return t("need_photo");
  return null;
}

async function preview() {
  const problem = missing();
  state.preview = problem ? { error: problem } : { loading: true };
  renderPreview();
  if (problem) return;
  const { lon, lat, accuracy } = state.fix;
  const body = { x: lon, y: lat, crs: "wgs84", accuracy, class_code: state.cls.code, case_type: state.cls.case_type,
                 component_id: $("component-id").value.trim() || undefined };
  try {
    const response = await call("/assign", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
    state.preview = response.ok ? { decision: await response.json() } : { error: await errorText(response) };
    if (!state.departments) { // code → names, once, so that the preview can name the department
      const list = await call("/departments");
      if (list.ok) state.departments = new Map((await list.json()).map((d) => [d.code, d]));
    }
  } catch (error) {
    if (!state.preview.decision) state.preview = { error: offline(error) ? t("network") : error.message };
  }
  renderPreview();
}

function department(code, name) {
  const known = state.departments && state.departments.get(code);
  return code ? `${known ? named(known) : name || code} (${code})` : null;
}

function renderPreview() {
  const p = state.preview;
  const d = p && p.decision;
  $("preview").hidden = !p;
  if (!p) return;
  $("preview").className = `panel${p.error || (d && d.ambiguous) ? " warn" : ""}`;
  fill("preview", h("h2", {}, t("preview_title")), p.loading ? h("p", {}, t("previewing")) : null,
    p.error ? h("p", { class: "error" }, p.error) : null, d ? [facts([
      [t("unit_grid"), d.unit_grid], [t("duty_grid"), d.duty_grid],
      [t("place"), [d.district, d.street, d.community].filter(Boolean).join(" · ")],
      [t("road"), d.road_name && `${d.road_name} (${d.road_grade || "?"}, ${Math.round(d.road_distance_m)} m)`],
      [t("department"), department(d.department)],
      [t("time_limit"), d.time_limit != null ? `${d.time_limit} ${t(d.time_limit_unit)}` : null]]),
      d.ambiguous ? h("p", { class: "error" }, t("ambiguous"), d.ambiguity_reason || "") : null] : null);
}

/* ---- the offline queue: IndexedDB stores "queue" and "failed", keyed by the Idempotency-Key ---- */
let database = null;
function transact(stores, mode, work) {
  database ||= new Promise((resolve, reject) => {
    const open = indexedDB.open("gridmap-report", 1);
    open.onupgradeneeded = () => ["queue", "failed"].forEach((name) => open.result.createObjectStore(name, { keyPath: "key" }));
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  return database.then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(stores, mode);
    const request = work(tx);
    tx.oncomplete = () => resolve(request && request.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  }));
}

const mine = async (store) => (await transact(store, "readonly", (tx) => tx.objectStore(store).getAll()))
  .filter((item) => session() && item.user === session().name).sort((a, b) => a.created - b.created);

async function refreshQueue() {
  try {
    state.queue = (await mine("queue")).length;
    state.failed = await mine("failed");
  } catch (_) { /* no IndexedDB here: nothing is queued */ }
  renderQueue();
}

function renderQueue() {
  $("net").hidden = navigator.onLine;
  $("queue-panel").hidden = !state.queue;
  $("queue-status").textContent = t("queued", { n: state.queue })
    + (state.lastError ? ` · ${t("last_error", { msg: state.lastError })}` : "");
  fill("failed", state.failed.map((item) => h("div", { class: "panel failed-item" },
    h("h2", {}, t("failed_title")), h("p", { class: "error" }, item.error),
    facts([[t("class"), item.label], [t("description"), item.fields.description], [t("reported_at"), when(item.created)]]),
    h("button", { type: "button", onclick: () => dismiss(item.key) }, t("dismiss")))));
}

async function dismiss(key) {
  await transact("failed", "readwrite", (tx) => tx.objectStore("failed").delete(key));
  refreshQueue();
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only (https, 127.0.0.1)
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function draft() { // the report as it will be sent, every time: fields, photo blobs and its one key
  const { fix, cls } = state;
  const fields = { x: String(fix.lon), y: String(fix.lat), crs: "wgs84", accuracy: String(fix.accuracy),
                   class_code: cls.code, case_type: cls.case_type, captured_at: new Date(fix.at).toISOString(),
                   self_disposed: String($("self-disposed").checked) };
  const optional = { component_id: $("component-id").value.trim(), description: $("description").value.trim(),
                     address: $("address").value.trim() };
  for (const [name, value] of Object.entries(optional)) if (value) fields[name] = value;
  return { key: newKey(), user: session().name, created: Date.now(), label: `${cls.code} ${cls.name}`, fields,
           photos: Array.from($("photos").files, (file) => ({ name: file.name, blob: file })) };
}

async function post(item) { // → {done, receipt} | {failed, detail} | {status?, detail}: try again later
  const body = new FormData();
  for (const [name, value] of Object.entries(item.fields)) body.append(name, value);
  for (const photo of item.photos) body.append("photos", photo.blob, photo.name);
  try {
    const response = await call("/reports", { method: "POST", body, headers: { "Idempotency-Key": item.key },
                                              timeout: SEND_TIMEOUT_MS });
    if (response.ok) return { done: true, receipt: await response.json() };
    const later = response.status >= 500 || RETRYABLE.has(response.status);
    return { failed: !later, status: response.status, detail: await errorText(response) };
  } catch (_) { // no answer, or half of one: the same key makes the next attempt safe
    return { detail: t("network") };
  }
}

function settle(item, outcome) {
  if (state.outcomes.has(item.key)) state.outcomes.set(item.key, outcome);
  if (outcome.done) Object.assign(state, { receipt: outcome.receipt, lastError: null });
  else if (!outcome.failed) state.lastError = outcome.detail;
  if (outcome.done) renderReceipt(true);
}

let flushing = null, again = false; // the pass under way; whether another was asked for
function flush() { // one pass at a time
  if (flushing) return (again = true) && flushing;
  flushing = (async () => {
    do { again = false; await flushOnce(); } while (again);
  })().catch((error) => { state.lastError = String(error); }).finally(() => { flushing = null; refreshQueue(); });
  return flushing;
}

async function flushOnce() {
  for (const item of await mine("queue")) {
    if (!navigator.onLine || !session()) break;
    const outcome = await post(item);
    settle(item, outcome);
    if (outcome.done) await transact("queue", "readwrite", (tx) => tx.objectStore("queue").delete(item.key));
    if (outcome.failed) { // will never pass: out of the queue, but kept in sight (without the photos)
      await transact(["queue", "failed"], "readwrite", (tx) => {
        tx.objectStore("queue").delete(item.key);
        tx.objectStore("failed").put({ ...item, photos: item.photos.map((p) => ({ name: p.name })), error: outcome.detail });
      });
    }
    if (outcome.status === 401) return logOut(t("expired"));
    if (!outcome.done && !outcome.failed) break; // the network or the server is down: wait for the next round
  }
}

const busy = (on) => Object.assign($("send"), { disabled: on, textContent: t(on ? "sending" : "send") });
async function send(event) {
  event.preventDefault();
  if (showError("send-error", missing({ sending: true })).textContent) return; // not ready: the reason is shown
  const item = draft();
  state.outcomes.set(item.key, {}); // this send waits for its report's outcome
  busy(true);
  try { // into the queue first: a page closed mid-upload is sent again, with the same key, next time
    await transact("queue", "readwrite", (tx) => tx.objectStore("queue").put(item));
    await flush();
  } catch (error) { // no IndexedDB (private mode?): one direct attempt, still with the key
    settle(item, await post(item));
    if (!state.outcomes.get(item.key).done) showError("send-error", t("no_storage", { msg: error.message }));
  }
  const outcome = state.outcomes.get(item.key);
  state.outcomes.delete(item.key);
  if (outcome.failed) { // the form still holds the report: show the reason there, not twice
    await transact("failed", "readwrite", (tx) => tx.objectStore("failed").delete(item.key)).catch(() => null);
    showError("send-error", outcome.detail);
  } else { // filed, or queued: the form is free for the next report
    $("report-form").reset();
    Object.assign(state, { cls: null, preview: null });
    render();
  }
  busy(false);
  await refreshQueue();
}

function renderReceipt(scroll = false) {
  const r = state.receipt;
  $("receipt").hidden = !r;
  if (!r) return;
  fill("receipt", h("h2", {}, t("receipt_title")), h("p", { id: "case-number", class: "number" }, r.number),
    r.replayed ? h("p", {}, t("replayed")) : null,
    r.merged_into ? h("p", { class: "error" }, t("merged", { n: r.merged_into })) : null,
    facts([[t("status"), r.status], [t("unit_grid"), r.unit_grid], [t("duty_grid"), r.duty_grid],
      [t("department"), department(r.department, r.department_name)],
      [t("acceptance_deadline"), when(r.acceptance_deadline)], [t("time_limit"), r.disposal_time_limit]]),
    r.ambiguous ? h("p", { class: "error" }, t("ambiguous"), r.ambiguity_reason || "") : null,
    bullets(t("routing"), r.routing.map((line) => line.text)),
    bullets(t("flags"), r.flags.map((flag) => flag.message || JSON.stringify(flag))),
    bullets(t("duplicates"), r.duplicate_candidates.map((d) => `${d.number} · ${d.status} · ${d.distance_m} m`)));
  if (scroll) $("receipt").scrollIntoView({ block: "start" });
}

/* ---- language and wiring ---- */
function render() {
  [renderFix, renderPicked, renderPreview, renderQueue, () => renderReceipt()].forEach((draw) => draw());
  const photos = $("photos").files.length;
  $("photo-count").textContent = photos ? t("photo_count", { n: photos }) : "";
}

function applyLanguage(next = lang) {
  localStorage.setItem(STORE.lang, lang = next);
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.title = `gridmap · ${t("title")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  [$("lang").textContent, $("lang").lang] = lang === "en" ? ["中文", "zh-CN"] : ["English", "en"];
  render();
  showView();
}

// the script is deferred: the document is parsed by now
$("lang").addEventListener("click", () => applyLanguage(lang === "en" ? "zh" : "en"));
$("login-form").addEventListener("submit", logIn);
$("logout").addEventListener("click", () => logOut());
$("class-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, SEARCH_DELAY_MS); });
$("preview-button").addEventListener("click", preview);
$("component-id").addEventListener("change", () => state.cls && preview());
$("photos").addEventListener("change", render);
$("report-form").addEventListener("submit", send);
$("retry").addEventListener("click", flush);
window.addEventListener("online", () => { renderQueue(); flush(); });
window.addEventListener("offline", renderQueue);
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && flush());
setInterval(flush, RETRY_MS);
applyLanguage();
locate();
flush();
