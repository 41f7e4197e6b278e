// vantiq-sim console. Everything it shows comes from the control API; the event stream
// (/sim/events) only says what to read again, so nothing is missed: notifications are
// fetched by sequence number, violations and sources whole.
"use strict";

const $ = (id) => document.getElementById(id);
const KEEP = 1000; // notifications kept per source on the page

const state = {
  sources: [],         // every source's status, as the control API gives it
  selected: null,      // the selected source's name
  notes: new Map(),    // source -> notifications, newest first
  next: new Map(),     // source -> next sequence number to fetch
  arrivals: new Map(), // source -> arrival times (ms) of recent notifications, for the rate
  loads: [],           // query load results, oldest first
  stream: null,
};

// ---- JSON shown exactly ----------------------------------------------------------------
// JavaScript numbers are doubles: JSON.parse would show 2^70 or a 39-digit id rounded.
// What the page shows is therefore cut from the JSON text as the emulator sent it, and
// only re-indented; JSON.parse is used for the fields the page acts on.

/// Walks `text` (JSON), calling `at(i, depth, ch)` for each character outside strings.
function scan(text, at) {
  let depth = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') { inString = true; continue; }
    if (ch === "{" || ch === "[") depth++;
    if (ch === "}" || ch === "]") depth--;
    at(i, depth, ch);
  }
}

/// The raw texts of a JSON array's elements, or of a JSON object's member values by key.
function rawParts(text) {
  const parts = [];
  let start = 1;
  scan(text, (i, depth, ch) => {
    if ((ch === "," && depth === 1) || ((ch === "]" || ch === "}") && depth === 0)) {
      const part = text.slice(start, i).trim();
      if (part) parts.push(part);
      start = i + 1;
    }
  });
  if (text.trim()[0] !== "{") return parts;
  const members = {};
  for (const part of parts) {
    let colon = -1;
    scan(part, (i, depth, ch) => { if (colon < 0 && ch === ":" && depth === 0) colon = i; });
    members[JSON.parse(part.slice(0, colon))] = part.slice(colon + 1).trim();
  }
  return members;
}

/// Re-indents JSON text, keeping every number as written.
function pretty(text) {
  let out = "", depth = 0, inString = false;
  const nl = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === "\\") out += text[++i];
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') { inString = true; out += ch; continue; }
    if (/\s/.test(ch)) continue;
    if (ch === "{" || ch === "[") {
      const close = ch === "{" ? "}" : "]";
      const next = text.slice(i + 1).trimStart()[0];
      if (next === close) { out += ch + close; i = text.indexOf(close, i + 1); continue; }
      depth++;
      out += ch + nl();
    } else if (ch === "}" || ch === "]") {
      depth--;
      out += nl() + ch;
    } else if (ch === ",") out += "," + nl();
    else if (ch === ":") out += ": ";
    else out += ch;
  }
  return out;
}

// ---- the control API -------------------------------------------------------------------

function token() {
  return sessionStorage.getItem("vantiq-sim-token") || "";
}

/// Calls the control API; resolves with the answer's JSON text (`raw`) and its parse.
async function apiRaw(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : body,
  });
  const raw = await resp.text();
  const data = raw ? JSON.parse(raw) : null;
  if (resp.status === 401) showTokenForm();
  if (!resp.ok) {
    const message = data && data.error ? data.error : resp.statusText;
    throw new Error(message + " (HTTP " + resp.status + ")");
  }
  return { raw, data };
}

async function api(method, path, body) {
  return (await apiRaw(method, path, body)).data;
}

const enc = encodeURIComponent;
const sourcePath = (name, rest) => "/sim/sources/" + enc(name) + (rest || "");

// ---- the event stream ------------------------------------------------------------------

function connect() {
  if (state.stream) state.stream.close();
  const url = "/sim/events" + (token() ? "?access_token=" + enc(token()) : "");
  const stream = new EventSource(url);
  state.stream = stream;
  stream.onopen = () => setLive(true);
  stream.onerror = () => {
    setLive(false);
    // A refused stream (bad token) does not retry by itself: ask the API why.
    if (stream.readyState === EventSource.CLOSED) api("GET", "/sim/sources").catch(() => {});
  };
  stream.addEventListener("sources", (e) => {
    state.sources = JSON.parse(e.data);
    rawParts(e.data).forEach((raw, i) => { state.sources[i].configRaw = rawParts(raw).config; });
    renderSources();
  });
  stream.addEventListener("notifications", (e) => {
    const { source, count } = JSON.parse(e.data);
    fetchNotifications(source, count);
  });
  stream.addEventListener("violations", () => fetchViolations());
}

function setLive(on) {
  const live = $("live");
  live.textContent = on ? "live" : "offline";
  live.className = "badge " + (on ? "on" : "off");
}

function showTokenForm() {
  $("token-form").classList.remove("hidden");
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("vantiq-sim-token", $("token").value);
  $("token").value = "";
  $("token-form").classList.add("hidden");
  connect();
});

// ---- sources ---------------------------------------------------------------------------

function renderSources() {
  const list = $("sources");
  list.replaceChildren();
  for (const s of state.sources) {
    const li = document.createElement("li");
    li.dataset.source = s.name;
    if (s.name === state.selected) li.classList.add("selected");
    const name = document.createElement("span");
    name.textContent = s.name;
    li.append(name, badge(s.state));
    li.addEventListener("click", () => select(s.name));
    list.append(li);
  }
  if (!state.selected && state.sources.length) select(state.sources[0].name);
  else renderSource();
}

function badge(word) {
  const b = document.createElement("span");
  b.className = "badge " + word.replace(/ /g, "-");
  b.textContent = word;
  return b;
}

function select(name) {
  state.selected = name;
  const s = current();
  if (s) $("config-json").value = pretty(s.configRaw);
  for (const li of $("sources").children) {
    li.classList.toggle("selected", li.dataset.source === name);
  }
  $("query-frames").replaceChildren();
  ["query-result", "publish-result", "config-result", "action-result"].forEach((id) => say(id, ""));
  renderSource();
  renderNotifications();
}

function current() {
  return state.sources.find((s) => s.name === state.selected);
}

function renderSource() {
  const s = current();
  $("source").classList.toggle("hidden", !s);
  if (!s) return;
  $("source-name").textContent = s.name;
  $("source-state").replaceChildren(badge(s.state));
  $("source-since").textContent = s.connected_at_ms ? new Date(s.connected_at_ms).toLocaleString() : "-";
  $("source-connections").textContent = String(s.connections);
  $("source-frames").textContent = s.frame_type || "-";
  // Never the secret itself: only whether the connector presented one.
  const n = s.reconnect_secret_count;
  $("source-secret").textContent = n === 0 ? "none presented" : n === 1 ? "present" : "present (" + n + " different)";
  $("source-reading").textContent = s.reading_stopped ? "stopped" : "reading";
  $("source-config").textContent = pretty(s.configRaw);
  const history = $("history");
  history.replaceChildren();
  for (const h of [...s.history].reverse()) {
    const li = document.createElement("li");
    li.dataset.event = h.event;
    li.textContent = new Date(h.at_ms).toLocaleTimeString() + "  " + h.event + (h.detail ? ": " + h.detail : "");
    history.append(li);
  }
}

// ---- notifications ---------------------------------------------------------------------

async function fetchNotifications(source, count) {
  const since = state.next.get(source) || 0;
  if (count <= since) return;
  const { raw, data: batch } = await apiRaw("GET", sourcePath(source, "/notifications?since=" + since));
  if (!batch.length) return;
  rawParts(raw).forEach((item, i) => { batch[i].raw = rawParts(item).object; });
  const list = state.notes.get(source) || [];
  const now = Date.now();
  const arrivals = (state.arrivals.get(source) || []).filter((t) => now - t < 10000);
  for (const n of batch) {
    if (n.seq < (state.next.get(source) || 0)) continue; // fetched twice
    list.unshift(n);
    arrivals.push(now);
    state.next.set(source, n.seq + 1);
  }
  list.length = Math.min(list.length, KEEP);
  state.notes.set(source, list);
  state.arrivals.set(source, arrivals);
  if (source === state.selected) renderNotifications();
}

function renderNotifications() {
  const source = state.selected;
  const list = state.notes.get(source) || [];
  const filter = $("notification-filter").value.trim();
  const ol = $("notifications");
  ol.replaceChildren();
  for (const n of list) {
    const text = pretty(n.raw);
    if (filter && !text.includes(filter)) continue;
    const li = document.createElement("li");
    li.dataset.seq = String(n.seq);
    const pre = document.createElement("pre");
    pre.textContent = "#" + n.seq + " " + text;
    li.append(pre);
    ol.append(li);
  }
  const total = state.next.get(source) || 0;
  const recent = (state.arrivals.get(source) || []).filter((t) => Date.now() - t < 10000).length;
  $("notification-stats").textContent = total + " received, " + (recent / 10).toFixed(1) + "/s over 10 s";
}

$("notification-filter").addEventListener("input", renderNotifications);

// ---- violations ------------------------------------------------------------------------

async function fetchViolations() {
  const all = await api("GET", "/sim/violations");
  $("violation-count").textContent = all.length + (all.length === 1 ? " violation" : " violations");
  $("violation-count").className = "badge" + (all.length ? " bad" : "");
  const ol = $("violations");
  ol.replaceChildren();
  for (const v of [...all].reverse()) {
    const li = document.createElement("li");
    li.dataset.kind = v.kind;
    const kind = document.createElement("div");
    kind.className = "kind";
    kind.textContent = v.kind + (v.source ? " (" + v.source + ")" : "");
    const detail = document.createElement("pre");
    detail.textContent = v.detail;
    li.append(kind, detail);
    ol.append(li);
  }
}

// ---- forms and buttons -----------------------------------------------------------------

function say(id, text, ok) {
  const p = $(id);
  p.textContent = text;
  p.className = "result" + (text ? (ok ? " ok" : " error") : "");
}

/// Parses a text area as JSON; `object` demands a JSON object. Says what is wrong.
function readJson(id, resultId, object) {
  let value;
  try {
    value = JSON.parse($(id).value);
  } catch (e) {
    say(resultId, "not valid JSON: " + e.message);
    return undefined;
  }
  if (object && (value === null || typeof value !== "object" || Array.isArray(value))) {
    say(resultId, "must be a JSON object");
    return undefined;
  }
  // Sent as typed, so numbers keep every digit.
  return $(id).value;
}

$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = readJson("publish-json", "publish-result", true);
  if (body === undefined) return;
  try {
    await api("POST", sourcePath(state.selected, "/publish"), body);
    say("publish-result", "published", true);
  } catch (err) {
    say("publish-result", err.message);
  }
});

$("query-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = readJson("query-json", "query-result", true);
  if (body === undefined) return;
  const frames = $("query-frames");
  frames.replaceChildren();
  say("query-result", "waiting for the answer...", true);
  const started = performance.now();
  try {
    const { raw, data: out } = await apiRaw("POST", sourcePath(state.selected, "/query"), body);
    const ms = (performance.now() - started).toFixed(1);
    const rawFrames = rawParts(rawParts(raw).frames);
    for (const [i, f] of out.frames.entries()) {
      const li = document.createElement("li");
      li.dataset.status = String(f.status);
      const kind = f.status === 100 ? "partial" : f.status >= 300 ? "error" : "final";
      const pre = document.createElement("pre");
      const rawBody = rawParts(rawFrames[i]).body;
      pre.textContent = f.status + " " + kind + "\n" + (rawBody === undefined ? "(no body)" : pretty(rawBody));
      li.append(pre);
      frames.append(li);
    }
    if (out.status >= 300) say("query-result", "error " + out.status + " after " + ms + " ms: " + rawParts(raw).error);
    else if (out.status === 204) say("query-result", "no data (204) after " + ms + " ms", true);
    else say("query-result", out.rows.length + " rows, status " + out.status + ", " + ms + " ms", true);
  } catch (err) {
    say("query-result", err.message);
  }
});

$("config-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = readJson("config-json", "config-result", false);
  if (body === undefined) return;
  try {
    await api("PUT", sourcePath(state.selected, "/config"), body);
    say("config-result", "configuration set", true);
  } catch (err) {
    say("config-result", err.message);
  }
});

for (const [id, path, done] of [
  ["reconnect", "/reconnect", "reconnectRequired sent"],
  ["drop", "/drop", "connection dropped"],
  ["stop-reading", "/stop-reading", "reading stopped"],
  ["resume-reading", "/resume-reading", "reading resumed"],
]) {
  $(id).addEventListener("click", async () => {
    try {
      await api("POST", sourcePath(state.selected, path));
      say("action-result", done, true);
    } catch (err) {
      say("action-result", err.message);
    }
  });
}

// ---- the query load generator and its chart --------------------------------------------

$("load-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = readJson("load-json", "load-result", true);
  if (body === undefined) return;
  const queries = $("load-queries").value;
  const inFlight = $("load-in-flight").value;
  say("load-result", "running...", true);
  try {
    const path = sourcePath(state.selected, "/query-load?queries=" + enc(queries) + "&in_flight=" + enc(inFlight));
    const r = await api("POST", path, body);
    state.loads.push({ label: queries + " x" + inFlight, ...r });
    say("load-result", r.answered + " answered, " + Math.round(r.rate) + " queries/s, p99 " + r.latency_us.p99.toFixed(0) + " us", true);
    drawLoads();
  } catch (err) {
    say("load-result", err.message);
  }
});

/// Latency percentiles of each run as bars (log scale), the rate as a line.
function drawLoads() {
  const canvas = $("load-chart");
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 36;
  g.clearRect(0, 0, W, H);
  const runs = state.loads.slice(-8);
  if (!runs.length) return;
  const keys = ["p50", "p90", "p99", "max"];
  const colors = ["#90cdf4", "#4299e1", "#2b6cb0", "#1a365d"];
  const maxUs = Math.max(...runs.flatMap((r) => keys.map((k) => r.latency_us[k])), 1);
  const maxRate = Math.max(...runs.map((r) => r.rate), 1);
  const logMax = Math.log10(maxUs + 1);
  const slot = (W - 2 * pad) / runs.length;
  const bar = slot / (keys.length + 1);
  g.font = "11px sans-serif";
  g.fillStyle = "#1d2330";
  g.fillText("latency (us, log scale)  p50 p90 p99 max", pad, 12);
  g.fillText("rate (queries/s): line", W - pad - 110, 12);
  runs.forEach((r, i) => {
    keys.forEach((k, j) => {
      const h = (Math.log10(r.latency_us[k] + 1) / logMax) * (H - 2 * pad);
      g.fillStyle = colors[j];
      g.fillRect(pad + i * slot + j * bar, H - pad - h, bar - 2, h);
    });
    g.fillStyle = "#1d2330";
    g.fillText(r.label, pad + i * slot, H - pad + 14);
  });
  g.strokeStyle = "#c53030";
  g.beginPath();
  runs.forEach((r, i) => {
    const x = pad + i * slot + slot / 2;
    const y = H - pad - (r.rate / maxRate) * (H - 2 * pad);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
    g.fillStyle = "#c53030";
    g.fillText(Math.round(r.rate) + "/s", x - 14, y - 4);
  });
  g.stroke();
}

connect();
