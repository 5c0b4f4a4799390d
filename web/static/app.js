// Socius dashboard: a small hash-routed page over the /api/ routes (socius.web.api).
// Every piece of run data is put into the page as text (el() appends text nodes, or textContent):
// never as HTML, so an agent's post containing <script> shows as characters.
"use strict";

const POLL_MS = 2000;
const state = { timer: null, charts: [], route: "" };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "value") e.value = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null) continue;
    e.append(kid instanceof Node ? kid : String(kid));   // strings become text nodes
  }
  return e;
}

function text(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

async function api(path, opts) {
  const r = await fetch("/api/" + path, Object.assign({ credentials: "same-origin" }, opts || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = { detail: r.statusText }; }
  if (!r.ok) {
    const err = new Error(body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

function enc(s) { return encodeURIComponent(s); }
function main() { return document.getElementById("main"); }
function setStatus(s) { document.getElementById("status").textContent = s; }
function showError(target, err) {
  const msg = err.status === 401 ? "Not signed in: open the URL that `socius serve` printed (it ends in ?token=…)." : err.message;
  target.append(el("p", { class: "error", role: "alert" }, msg));
}

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

function nav(run, here) {
  const n = document.getElementById("nav");
  n.replaceChildren();
  n.append(el("a", { href: "#/" }, "runs"));
  if (!run) return;
  for (const [key, label, href] of [["overview", "overview", `#/run/${enc(run)}`], ["agents", "agents", `#/run/${enc(run)}/agents`],
                                    ["label", "label", `#/run/${enc(run)}/label`]]) {
    n.append(el("a", { href, class: key === here ? "here" : null }, label));
  }
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || "") };
}

async function route() {
  stopPolling();
  const { parts, params } = parseHash();
  const m = el("div", { class: "page" });   // a route still loading draws into its own, detached, page
  main().replaceChildren(m);
  try {
    if (parts[0] !== "run") { nav(null); return await pageRuns(m); }
    const run = parts[1];
    if (parts[2] === "agents") { nav(run, "agents"); return await pageAgents(m, run, params); }
    if (parts[2] === "agent") { nav(run, "agents"); return await pageAgent(m, run, parts[3]); }
    if (parts[2] === "label") { nav(run, "label"); return await pageLabel(m, run, params); }
    nav(run, "overview");
    return await pageOverview(m, run);
  } catch (err) { showError(m, err); }
}

// ---------------------------------------------------------------- runs
async function pageRuns(m) {
  m.append(el("h1", {}, "Runs"));
  const runs = await api("runs");
  const rows = runs.map(r => el("tr", { class: "row", onclick: () => { location.hash = `#/run/${enc(r.name)}`; } },
    el("td", {}, r.name), el("td", {}, text(r.scenario)), el("td", { class: "num" }, text(r.tick)),
    el("td", {}, r.status), el("td", { class: "num" }, text(r.entities)), el("td", {}, r.path)));
  m.append(el("table", { id: "runs" }, el("tr", {}, ["run", "scenario", "tick", "status", "entities", "path"].map(h => el("th", {}, h))), rows));
}

// ---------------------------------------------------------------- overview
function card(k, v, id) { return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v", id }, text(v))); }

function compact(v) {
  if (v === null || v === undefined) return "";
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(4)}`;
}

function lineChart(target, title, x, series) {
  const opts = { title, width: 380, height: 200, scales: { x: { time: false } }, legend: { show: series.length > 1 },
                 axes: [{}, { size: 52, values: (u, splits) => splits.map(compact) }],
                 series: [{ label: "tick" }].concat(series.map((s, i) => ({ label: s.label, stroke: ["#2f6fdd", "#e67e22", "#27ae60", "#c0392b", "#8e44ad"][i % 5], width: 1.5 }))) };
  const box = el("div", { class: "chart", "data-chart": title });
  target.append(box);
  const u = new uPlot(opts, [x].concat(series.map(s => s.values)), box);
  state.charts.push(u);
  return u;
}

async function pageOverview(m, run) {
  const info = await api(`runs/${enc(run)}`);
  m.append(el("h1", {}, `${run} `, el("span", { class: "muted" }, `${text(info.scenario)} · ${info.path}`)));
  const meta = info.run || {};
  const rate = meta.run_s ? meta.ticks / meta.run_s : null;
  m.append(el("div", { class: "cards" }, card("tick", info.live ? `${info.tick}` : info.tick, "tick"), card("status", info.status, "run-status"),
    card("ticks/s", rate, "rate"), card("agents", info.entities, "agents"), card("seed", info.seed, null),
    card("tokens", null, "tokens"), card("cost", null, "cost"),
    card("state hash", info.state_hash ? info.state_hash.slice(0, 12) : null, null)));
  if (info.live && (info.ranks || 1) > 1) m.append(el("p", { class: "muted", id: "read-only" }, `live over ${info.ranks} MPI ranks: read-only (no steering); agents from the latest snapshot`));
  else if (info.live) m.append(liveControls(run, info));
  const ranksBox = el("div", { id: "ranks" });
  m.append(ranksBox);
  m.append(el("h2", {}, "Metrics"));
  const metricsBox = el("div", { class: "charts", id: "metrics" });
  m.append(metricsBox);
  m.append(el("h2", {}, "Decision pipeline"));
  const decBox = el("div", { class: "charts", id: "decisions" });
  m.append(decBox);
  let version = null, lastTick = info.tick, lastTime = Date.now();
  async function refresh() {
    const now = await api(`runs/${enc(run)}`);
    document.getElementById("tick").textContent = text(now.tick);
    if (now.entities !== null && now.entities !== undefined) document.getElementById("agents").textContent = now.entities.toLocaleString("en-US");
    document.getElementById("run-status").textContent = now.status;
    if (now.live) {
      document.getElementById("rate").textContent = text(now.ticks_per_s);
      const eta = document.getElementById("eta");
      if (eta) eta.textContent = now.eta_s === null ? "—" : `${Math.round(now.eta_s)} s`;
      const pb = document.getElementById("pause");
      if (pb) pb.textContent = now.paused ? "resume" : "pause";
    } else if (now.status === "running" && now.tick > lastTick) {
      document.getElementById("rate").textContent = text((now.tick - lastTick) / ((Date.now() - lastTime) / 1000));
      lastTick = now.tick; lastTime = Date.now();
    }
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
    if (now.version === version) return;
    version = now.version;
    const [met, dec, rk] = await Promise.all([api(`runs/${enc(run)}/metrics`), api(`runs/${enc(run)}/decisions`),
                                              api(`runs/${enc(run)}/ranks`)]);
    for (const c of state.charts) c.destroy();
    state.charts = [];
    metricsBox.replaceChildren(); decBox.replaceChildren();
    drawMetrics(metricsBox, met.columns);
    drawDecisions(decBox, dec.columns);
    drawCost(dec.cost);
    drawRanks(ranksBox, rk.ranks);
  }
  await refresh();
  state.timer = setInterval(() => refresh().catch(err => setStatus(err.message)), POLL_MS);
}

function steerable(info) { return info.live && (info.ranks || 1) === 1 && !["finished", "stopped"].includes(info.status); }

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

function liveControls(run, info) {
  const msg = el("span", { id: "live-msg", class: "muted" });
  const say = (p) => p.then(r => { msg.textContent = r.tick !== undefined ? `done at tick ${r.tick}` + (r.path ? `: ${r.path}` : "") : "ok"; msg.className = "muted"; })
    .catch(err => { msg.textContent = err.message; msg.className = "error"; });
  const at = el("input", { type: "number", id: "fork-at", min: 0, style: "width:6em", placeholder: "tick" });
  const pause = el("button", { id: "pause", onclick: () => say(post(`runs/${enc(run)}/${pause.textContent === "pause" ? "pause" : "resume"}`)
    .then(r => { pause.textContent = r.paused ? "resume" : "pause"; return r; })) }, info.paused ? "resume" : "pause");
  return el("div", { class: "toolbar", id: "live" }, el("span", {}, `live · ${info.ticks} ticks · ETA `, el("span", { id: "eta" }, info.eta_s ? `${Math.round(info.eta_s)} s` : "—")),
    pause, el("button", { id: "snapshot", onclick: () => say(post(`runs/${enc(run)}/snapshot`)) }, "snapshot now"),
    el("label", {}, "fork at ", at), el("button", { id: "fork", onclick: () => say(post(`runs/${enc(run)}/fork`, { at: Number(at.value) })
      .then(r => { msg.textContent = `forking into ${r.out}`; return r; })) }, "fork"), msg);
}

function parseValue(v) { try { return JSON.parse(v); } catch (e) { return v; } }

function drawMetrics(box, cols) {
  const names = Object.keys(cols);
  if (!names.length) { box.append(el("p", { class: "muted" }, "No metrics yet (a run writes metrics.parquet at each snapshot and every few seconds).")); return; }
  const n = cols[names[0]].length;
  const x = cols.tick ? cols.tick : Array.from({ length: n }, (_, i) => i);
  for (const name of names) {
    if (name === "tick" || !cols[name].every(v => v === null || typeof v === "number" || typeof v === "boolean")) continue;
    lineChart(box, name, x, [{ label: name, values: cols[name].map(v => v === null ? null : Number(v)) }]);
  }
}

function drawDecisions(box, cols) {
  if (!cols.tick || !cols.tick.length) { box.append(el("p", { class: "muted" }, "No LLM decisions logged (decisions.parquet).")); return; }
  const x = cols.tick, pick = (...ks) => ks.filter(k => cols[k]).map(k => ({ label: k, values: cols[k] }));
  lineChart(box, "requests and agents", x, pick("requests", "agents"));
  lineChart(box, "dedup ratio (agents / request)", x, pick("dedup_ratio"));
  lineChart(box, "tokens", x, pick("prompt_tokens", "output_tokens"));
  lineChart(box, "parse outcomes", x, pick("ok", "extracted", "fallback", "failed"));
  lineChart(box, "seconds: engine vs ours", x, pick("engine_s", "own_s"));
}

function drawCost(cost) {
  const t = document.getElementById("tokens"), c = document.getElementById("cost");
  if (!cost) return;
  if (t) { t.textContent = cost.tokens.toLocaleString("en-US"); t.title = `${cost.prompt_tokens} prompt + ${cost.output_tokens} output`; }
  if (c) { c.textContent = cost.usd === null ? "—" : `$${cost.usd.toFixed(cost.usd < 1 ? 4 : 2)}`; c.title = cost.note || "from the engine config's prices per million tokens"; }
}

function drawRanks(box, rows) {
  box.replaceChildren();
  if (!rows || !rows.length) return;
  const ms = v => v === null || v === undefined ? "—" : (1000 * v).toFixed(1);
  const comm = r => Object.values(r.comm_s || {}).reduce((a, b) => a + b, 0);
  box.append(el("h2", {}, `Ranks (${rows.length})`), el("table", { id: "ranks-table" },
    el("tr", {}, ["rank", "host", "entities", "tick", "tick ms", "busy ms", "comm ms", "halo / route / reduce ms", "bytes routed / tick"].map(h => el("th", {}, h))),
    rows.map(r => el("tr", { "data-rank": r.rank }, el("td", { class: "num" }, String(r.rank)), el("td", {}, text(r.host)),
      el("td", { class: "num" }, text(r.entities)), el("td", { class: "num" }, text(r.tick)), el("td", { class: "num" }, ms(r.tick_s)),
      el("td", { class: "num" }, ms(r.busy_s)), el("td", { class: "num" }, ms(comm(r))),
      el("td", { class: "num" }, ["halo", "route", "reduce"].map(k => ms((r.comm_s || {})[k])).join(" / ")),
      el("td", { class: "num" }, text(Math.round(r.route_bytes || 0)))))));
}

// ---------------------------------------------------------------- agents
async function pageAgents(m, run, params) {
  const meta = await api(`runs/${enc(run)}/agents/columns`);
  const numeric = meta.columns.filter(c => c.numeric).map(c => c.name)
    .sort((a, b) => (b.startsWith("Profile.") - a.startsWith("Profile.")));   // profile columns first
  const q = {
    where: params.get("where") || "", q: params.get("q") || "", sort: params.get("sort") || "",
    desc: params.get("desc") === "1", offset: Number(params.get("offset") || 0), limit: Number(params.get("limit") || 50),
    columns: params.get("columns") || meta.default.join(","), hist: params.get("hist") || numeric[0] || "",
  };
  m.append(el("h1", {}, `Agents of ${run} `, el("span", { class: "muted" }, `${meta.agents} at tick ${meta.tick}`)));
  const where = el("input", { type: "text", class: "wide", id: "where", placeholder: "Profile.age >= 60 and Mood.emotion == 2", value: q.where });
  const search = el("input", { type: "text", id: "search", placeholder: "text search", value: q.q });
  const cols = el("input", { type: "text", class: "wide", id: "columns", value: q.columns, title: "columns, comma-separated" });
  const hist = el("select", { id: "hist" }, numeric.map(n => el("option", { value: n, selected: n === q.hist }, n)));
  const go = (change) => {
    const p = Object.assign({}, q, { where: where.value, q: search.value, columns: cols.value, hist: hist.value }, change || {});
    const s = new URLSearchParams({ where: p.where, q: p.q, sort: p.sort, desc: p.desc ? "1" : "0", offset: String(p.offset),
                                    limit: String(p.limit), columns: p.columns, hist: p.hist });
    location.hash = `#/run/${enc(run)}/agents?${s}`;
  };
  const onEnter = e => { if (e.key === "Enter") go({ offset: 0 }); };
  where.addEventListener("keydown", onEnter); search.addEventListener("keydown", onEnter); cols.addEventListener("keydown", onEnter);
  hist.addEventListener("change", () => go());
  m.append(el("div", { class: "toolbar" }, el("label", {}, "where ", where), el("label", {}, "search ", search),
    el("button", { id: "apply", onclick: () => go({ offset: 0 }) }, "filter")));
  m.append(el("div", { class: "toolbar" }, el("label", {}, "columns ", cols), el("span", { class: "muted" }, "all: " + meta.columns.map(c => c.name).join(", "))));
  const info = await api(`runs/${enc(run)}`);
  if (steerable(info)) {
    const target = el("input", { type: "text", id: "iv-set", placeholder: "Profile.occupation" });
    const value = el("input", { type: "text", id: "iv-value", placeholder: "value (JSON or text)" });
    const ivMsg = el("span", { id: "iv-msg", class: "muted" });
    const apply = () => post(`runs/${enc(run)}/interventions`, { set: target.value.trim(), value: parseValue(value.value), where: where.value.trim() || null })
      .then(r => { ivMsg.textContent = `${r.status}: ${r.matched} agents at tick ${r.tick !== undefined ? r.tick + 1 : "next"}`; ivMsg.className = "muted"; })
      .catch(err => { ivMsg.textContent = err.message; ivMsg.className = "error"; });
    m.append(el("div", { class: "toolbar" }, el("label", {}, "set ", target), el("label", {}, "= ", value),
      el("button", { id: "iv-apply", onclick: apply }, "intervene on the selection (next tick)"), ivMsg));
  }
  const out = el("div", { id: "agents" });
  m.append(out);
  let page;
  try {
    page = await api(`runs/${enc(run)}/agents?` + new URLSearchParams({ where: q.where, q: q.q, sort: q.sort, desc: q.desc, offset: q.offset, limit: q.limit, columns: q.columns }));
  } catch (err) { showError(out, err); return; }
  const names = Object.keys(page.columns);
  const head = el("tr", {}, el("th", {}, "id"), names.map(n => el("th", { onclick: () => go({ sort: n, desc: q.sort === n ? !q.desc : false, offset: 0 }) },
    n + (q.sort === n ? (q.desc ? " ▼" : " ▲") : ""))));
  const rows = page.ids.map((id, i) => el("tr", { class: "row", "data-id": id, onclick: () => { location.hash = `#/run/${enc(run)}/agent/${id}`; } },
    el("td", { class: "num" }, String(id)), names.map(n => { const v = page.columns[n][i]; return el("td", { class: typeof v === "number" ? "num" : null }, text(v)); })));
  out.append(el("p", { id: "total" }, `${page.total} agents match · showing ${page.total ? page.offset + 1 : 0}–${page.offset + page.ids.length}`),
    el("div", { class: "toolbar" }, el("button", { disabled: q.offset === 0, onclick: () => go({ offset: Math.max(0, q.offset - q.limit) }) }, "◀ prev"),
      el("button", { id: "next", disabled: q.offset + q.limit >= page.total, onclick: () => go({ offset: q.offset + q.limit }) }, "next ▶")),
    el("table", { id: "agent-table" }, head, rows));
  if (!q.hist) return;
  const hbox = el("div", { class: "charts" });
  m.append(el("h2", {}, "Histogram ", hist), hbox);
  const h = await api(`runs/${enc(run)}/agents/histogram?` + new URLSearchParams({ column: q.hist, where: q.where, q: q.q }));
  if (!h.counts.length) { hbox.append(el("p", { class: "muted" }, "no values")); return; }
  const mids = h.counts.map((_, i) => (h.edges[i] + h.edges[i + 1]) / 2);
  const box = el("div", { class: "chart", "data-chart": "histogram" });
  hbox.append(box);
  state.charts.push(new uPlot({ title: `${h.column} (${h.total} values)`, width: 520, height: 220, scales: { x: { time: false } }, legend: { show: false },
    series: [{}, { label: "count", fill: "rgba(47,111,221,.35)", stroke: "#2f6fdd", paths: uPlot.paths.bars({ size: [0.9, 80] }) }] }, [mids, h.counts], box));
}

// ---------------------------------------------------------------- one agent
function kvTable(obj) {
  return el("table", {}, Object.entries(obj).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, text(v)))));
}

async function pageAgent(m, run, id) {
  const a = await api(`runs/${enc(run)}/agents/${enc(id)}`);
  m.append(el("h1", {}, `Agent ${a.id} `, el("span", { class: "muted" }, `snapshot of tick ${a.tick}`)));
  const grid = el("div", { class: "grid2", id: "components" });
  for (const [name, cols] of Object.entries(a.components)) grid.append(el("div", {}, el("h2", {}, name), kvTable(cols)));
  m.append(grid);
  for (const [name, items] of Object.entries(a.memory)) {
    m.append(el("h2", {}, `${name} (${items.length})`),
      items.length ? el("table", {}, el("tr", {}, el("th", {}, "tick"), el("th", {}, "importance"), el("th", {}, "text")),
        items.map(it => el("tr", {}, el("td", { class: "num" }, text(it.tick)), el("td", { class: "num" }, text(it.importance)), el("td", {}, it.text))))
        : el("p", { class: "muted" }, "empty"));
  }
  const info = await api(`runs/${enc(run)}`);
  if (steerable(info)) {
    const question = el("input", { type: "text", class: "wide", id: "question", placeholder: "ask this agent something" });
    const store = el("input", { type: "checkbox", id: "store" });
    const answer = el("pre", { class: "text", id: "answer" });
    const ask = () => { answer.textContent = "…"; post(`runs/${enc(run)}/interview`, { ids: [a.id], question: question.value, store: store.checked })
      .then(r => { answer.textContent = r.answers[0] || "(no answer)"; answer.dataset.tick = r.tick; })
      .catch(err => { answer.textContent = err.message; }); };
    question.addEventListener("keydown", e => { if (e.key === "Enter") ask(); });
    m.append(el("h2", {}, "Interview"), el("div", { class: "toolbar" }, question, el("label", {}, store, " store as a memory"),
      el("button", { id: "ask", onclick: ask }, "ask")), answer);
  }
  m.append(el("h2", {}, `Recent decisions (${a.decisions.length})`));
  const dec = el("div", { id: "decisions" });
  for (const d of a.decisions) {
    dec.append(el("div", { class: "decision" }, el("div", { class: "muted" }, `tick ${d.tick} · ${d.decision} · ${d.kind}` + (d.model ? ` · ${d.model}` : "") + (d.adapter ? ` · adapter ${d.adapter}` : "")),
      el("div", {}, "prompt"), el("pre", { class: "text prompt" }, d.prompt), el("div", {}, "reply"), el("pre", { class: "text reply" }, d.completion),
      d.error ? el("p", { class: "error" }, d.error) : null));
  }
  if (!a.decisions.length) dec.append(el("p", { class: "muted" }, "none logged"));
  m.append(dec);
  m.append(el("h2", {}, `Messages in flight (${a.messages.length})`));
  m.append(a.messages.length ? el("table", {}, el("tr", {}, ["kind", "direction", "tick", "sender", "target", "payload"].map(h => el("th", {}, h))),
    a.messages.map(x => el("tr", {}, el("td", {}, x.kind), el("td", {}, x.direction), el("td", {}, text(x.tick)), el("td", {}, text(x.sender)),
      el("td", {}, text(x.target)), el("td", {}, text(x.payload))))) : el("p", { class: "muted" }, "none in the snapshot's inbox"));
}

// ---------------------------------------------------------------- labelling
async function pageLabel(m, run, params) {
  const name = el("input", { type: "text", id: "labeller", value: params.get("name") || localStorage.getItem("socius-labeller") || "", placeholder: "your name" });
  const policy = el("input", { type: "text", id: "policy", value: params.get("policy") || "uniform", title: "uniform, per-decision:K, outcome-first, per-cohort:K:EXPR, with ,cap:N" });
  const box = el("div", { id: "queue" });
  const saved = el("span", { id: "saved", class: "muted" }, "0 saved");
  m.append(el("h1", {}, `Label replies of ${run}`),
    el("div", { class: "toolbar" }, el("label", {}, "name ", name), el("label", {}, "policy ", policy),
      el("button", { id: "load", onclick: () => load() }, "load queue"), saved),
    el("p", { class: "muted" }, "Keys: ", el("kbd", {}, "1"), "–", el("kbd", {}, "5"), " score · ", el("kbd", {}, "r"), " rewrite · ",
      el("kbd", {}, "Enter"), " save (Ctrl+Enter in the rewrite box) · ", el("kbd", {}, "n"), " next"), box);
  let items = [], profiles = {}, at = 0, score = null, count = 0;
  const revision = el("textarea", { id: "revision", rows: 5, cols: 90, placeholder: "a better reply (optional)" });
  async function load() {
    box.replaceChildren();
    if (!name.value.trim()) { box.append(el("p", { class: "error" }, "Give your name first.")); return; }
    localStorage.setItem("socius-labeller", name.value.trim());
    try {
      const r = await api(`runs/${enc(run)}/labels/queue?` + new URLSearchParams({ name: name.value.trim(), policy: policy.value, k: 50 }));
      items = r.items; profiles = r.profiles; at = 0; show();
    } catch (err) { showError(box, err); }
  }
  function show() {
    box.replaceChildren(); score = null; revision.value = "";
    if (at >= items.length) { box.append(el("p", { id: "done" }, "Queue done — load it again for more.")); return; }
    const it = items[at];
    const scoreBtns = [1, 2, 3, 4, 5].map(s => el("button", { "data-score": s, onclick: () => pick(s) }, String(s)));
    box.append(el("div", { class: "decision", id: "item", "data-reply": it.reply_id },
      el("div", { class: "muted" }, `${at + 1} / ${items.length} · tick ${it.tick} · ${it.decision} · agent ${it.entity}`),
      profiles[String(it.entity)] ? kvTable(profiles[String(it.entity)]) : null,
      el("div", {}, "prompt"), el("pre", { class: "text prompt" }, it.prompt), el("div", {}, "reply"), el("pre", { class: "text reply" }, it.completion),
      el("div", { class: "toolbar scores" }, "score ", scoreBtns), revision,
      el("div", { class: "toolbar" }, el("button", { id: "save", onclick: () => save() }, "save (Enter)"), el("button", { onclick: () => next() }, "next (n)")),
      el("p", { id: "msg", class: "muted" })));
  }
  function pick(s) { score = s; for (const b of box.querySelectorAll("[data-score]")) b.classList.toggle("on", Number(b.dataset.score) === s); }
  function next() { at += 1; show(); }
  async function save() {
    const it = items[at];
    if (!it) return;
    const msg = document.getElementById("msg");
    const body = { name: name.value.trim(), labels: [{ reply: it.reply_id, score, revision: revision.value.trim() || null }] };
    try {
      await api(`runs/${enc(run)}/labels`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      count += 1; saved.textContent = `${count} saved`; next();
    } catch (err) { msg.textContent = err.message; msg.className = "error"; }
  }
  function onKey(e) {
    if (!document.getElementById("item")) return;
    const inText = e.target === revision, inInput = e.target.tagName === "INPUT";
    if (inText) { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); save(); } else if (e.key === "Escape") revision.blur(); return; }
    if (inInput) return;
    if (e.key >= "1" && e.key <= "5") pick(Number(e.key));
    else if (e.key === "r") { e.preventDefault(); revision.focus(); }
    else if (e.key === "Enter") { e.preventDefault(); save(); }
    else if (e.key === "n") next();
  }
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => document.removeEventListener("keydown", onKey), { once: true });
  if (name.value.trim()) await load();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
