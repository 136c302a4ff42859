// Shardgate dashboard: polls the gateway once a second, keeps the last HISTORY samples
// in bounded arrays and redraws uPlot charts from them. Same-origin fetches only.
//
// Each chart container carries `data-points`: how many non-empty points it drew (time
// series: samples with a value; bars: shards with traffic). `window.dashboardState` and
// `<body data-updates data-last-error>` say how many polls succeeded and the last failure.
// The browser test reads both.

import {
  Chart,
  COLORS,
  History,
  LINE_PALETTE,
  countPoints,
  fromZero,
  line,
  timeChart,
  timeOpts,
} from "./charts.js";
import { clock, fmtBytes, fmtDuration, fmtMs, fmtPct, fmtRate } from "./format.js";
import { drawFailovers, drawHeld, drawMapHeadline } from "./events.js";
import { drawGateways, drawMoves, drawServers } from "./tables.js";
import { drawHeatmap } from "./heatmap.js";
import { drawErrors, drawSlowest } from "./requests.js";
import { drawStreams } from "./streams.js";

const POLL_MS = 1000;
const TIMEOUT_MS = 2500;
const HISTORY = 120;
const SHARDS_URL = "/api/shards"; // server states only (rows are counted only with ?data=true)
// Whose figures: the whole cluster (every live gateway's, merged) unless the operator
// picks this gateway only; the choice is kept for this tab.
const SCOPE_STORE = "shardgate.scope";
const scopeSelect = document.getElementById("scope");
scopeSelect.value = sessionStorage.getItem(SCOPE_STORE) === "local" ? "local" : "cluster";
scopeSelect.addEventListener("change", () => sessionStorage.setItem(SCOPE_STORE, scopeSelect.value));
const metricsUrl = () => `/api/analytics/metrics?window=10s&scope=${scopeSelect.value}`;
const loadUrl = () => `/api/shards/load?scope=${scopeSelect.value}`;

const state = { updates: 0, lastError: null, lastUpdate: null };
window.dashboardState = state;

// The per-shard bars: at each shard, a left bar stacking reads and writes and a right
// bar stacking who served (primary, replica, cache, none). uPlot stacks through bands;
// the legend shows each part's own rate, not the running total.
const SHARD_PARTS = [
  { name: "reads", color: COLORS.blue, align: -1 },
  { name: "writes", color: COLORS.orange, align: -1 },
  { name: "primary", color: COLORS.purple, align: 1 },
  { name: "replica", color: COLORS.teal, align: 1 },
  { name: "cache", color: COLORS.green, align: 1 },
  { name: "none", color: COLORS.grey, align: 1 },
];

/** What the shard chart shows now: shard ids, and each part's rate per shard. */
const shardView = { labels: [], raw: [] };

function shardOpts() {
  const bars = (align) => uPlot.paths.bars({ size: [0.34, 48], align, gap: 1 });
  return {
    series: [
      { label: "shard", value: (_u, i) => (i == null ? "–" : shardView.labels[i]) },
      ...SHARD_PARTS.map((p, s) => ({
        label: p.name,
        stroke: p.color,
        fill: `${p.color}cc`,
        width: 1,
        paths: bars(p.align),
        points: { show: false },
        value: (_u, _v, _si, idx) => fmtRate(idx == null ? null : shardView.raw[s]?.[idx]),
      })),
    ],
    bands: [
      { series: [2, 1] },
      { series: [4, 3] },
      { series: [5, 4] },
      { series: [6, 5] },
    ],
    scales: {
      x: { time: false, range: (u) => [-0.5, Math.max(1, u.data[0].length) - 0.5] },
      y: { range: fromZero(1) },
    },
    axes: [
      {
        stroke: "#6b7385",
        grid: { show: false },
        splits: (u) => u.data[0],
        values: (_u, splits) => splits.map((i) => `shard ${shardView.labels[i] ?? ""}`),
      },
      { stroke: "#6b7385", grid: { stroke: "#eef1f6" }, size: 48 },
    ],
    cursor: { drag: { x: false, y: false } },
  };
}

// ---------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------

const history = new History(HISTORY);
const lagHistory = new History(HISTORY);

const charts = {
  throughput: timeChart(
    "chart-throughput",
    [
      line("last 1 s", COLORS.blue, fmtRate, { fill: "#3b6fd822" }),
      line("10 s average", COLORS.orange, fmtRate, { dash: [6, 4] }),
    ],
    (v) => fmtRate(v),
    fromZero(1),
  ),
  latency: timeChart(
    "chart-latency",
    [line("p50", COLORS.blue, fmtMs), line("p99", COLORS.red, fmtMs)],
    (v) => `${+v.toFixed(2)}`,
    fromZero(1),
  ),
  errors: timeChart(
    "chart-errors",
    [
      line("error rate", COLORS.red, fmtPct, { fill: "#d6454522" }),
      line("errors/s", COLORS.grey, fmtRate, { scale: "perSec", dash: [4, 4], width: 1.5 }),
    ],
    (v) => `${+v.toFixed(1)} %`,
    fromZero(5),
    {
      scales: { perSec: { range: fromZero(1) } },
      axes: [{ scale: "perSec", side: 1, size: 48, stroke: "#9aa3b5", grid: { show: false } }],
    },
  ),
  cache: timeChart(
    "chart-cache",
    [line("hit ratio", COLORS.green, fmtPct, { fill: "#1f9d5522" })],
    (v) => `${v} %`,
    () => [0, 100],
  ),
  lag: new Chart(document.getElementById("chart-replica-lag"), (names) =>
    timeOpts(
      names.map((n, i) => line(n, LINE_PALETTE[i % LINE_PALETTE.length], fmtBytes)),
      fmtBytes,
      fromZero(1024),
    ),
  ),
  shards: new Chart(document.getElementById("chart-shards"), shardOpts),
};

function record(t, report) {
  const lookups = report.cache.hits + report.cache.misses;
  const latency = report.latency.overall;
  history.push(t, {
    rps1: report.throughput.last_1s,
    rps10: report.throughput.last_10s,
    p50: latency.count > 0 ? latency.p50 : null,
    p99: latency.count > 0 ? latency.p99 : null,
    errorRate: report.errors.rate * 100,
    errorsPerSec: report.errors.per_sec,
    hitRatio: lookups > 0 ? report.cache.hit_ratio * 100 : null,
  });
  const lags = {};
  for (const r of report.replicas) lags[`shard ${r.shard} · ${r.server}`] = r.lag_bytes;
  lagHistory.push(t, lags);
}

function drawTimeCharts() {
  const x = history.x;
  const draw = (chart, names) => {
    const columns = names.map((n) => history.column(n));
    chart.draw([x, ...columns], "time", countPoints(columns));
  };
  draw(charts.throughput, ["rps1", "rps10"]);
  draw(charts.latency, ["p50", "p99"]);
  draw(charts.errors, ["errorRate", "errorsPerSec"]);
  draw(charts.cache, ["hitRatio"]);

  const names = lagHistory.names();
  const lagColumns = names.map((n) => lagHistory.column(n));
  charts.lag.draw([lagHistory.x, ...lagColumns], names.join("\n"), countPoints(lagColumns), names);
}

/** Per-shard rates over the report's detail window, shards in numeric order. */
function drawShards(report) {
  const order = (id) => (/^\d+$/.test(id) ? Number(id) : Infinity); // "other" goes last
  const ids = Object.keys(report.shards).sort((a, b) => order(a) - order(b));
  const secs = Math.max(1, report.detail_window_secs);
  const raw = SHARD_PARTS.map((p) =>
    ids.map((id) => {
      const s = report.shards[id];
      const n = p.name === "reads" || p.name === "writes" ? s[p.name] : s.by_role[p.name];
      return n / secs;
    }),
  );
  // Running totals within each bar: reads, reads+writes; primary, +replica, +cache, +none.
  const stacked = raw.map((values, s) =>
    values.map((v, i) => {
      let total = v;
      for (let below = s - 1; below >= 0 && SHARD_PARTS[below].align === SHARD_PARTS[s].align; below--) {
        total += raw[below][i];
      }
      return total;
    }),
  );
  const x = ids.map((_, i) => i);
  const withTraffic = ids.filter((id) => report.shards[id].requests > 0).length;
  shardView.labels = ids;
  shardView.raw = raw;
  charts.shards.draw([x, ...stacked], ids.join(","), withTraffic);
}

function drawHeadline(report) {
  const latency = report.latency.overall;
  const summary = report.replica_summary;
  setText("uptime", fmtDuration(report.uptime_secs));
  setText("rps", fmtRate(report.throughput.last_1s));
  setText("p99", latency.count > 0 ? fmtMs(latency.p99) : "–");
  setText("error-rate", fmtPct(report.errors.rate * 100));
  setText("replicas-healthy", `${summary.healthy} / ${summary.replicas}`);
  drawCoverage(report);
}

/** Whose figures these are: this gateway, or the gateways merged and those missing. */
function drawCoverage(report) {
  const el = document.getElementById("coverage");
  if (report.scope !== "cluster") {
    el.textContent = "this gateway";
    el.title = "";
    el.className = "";
    return;
  }
  const merged = report.gateways.length;
  const listed = merged + report.missing_gateways.length;
  el.textContent = `${merged} of ${listed} gateways`;
  el.title = report.missing_gateways.map((g) => `${g.address}: ${g.reason}`).join("\n");
  el.className = report.partial ? "partial" : "";
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

// ---------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------

// Once the gateway has API keys, its data needs one (scopes metrics and admin): asked
// for on a 401 or 403, kept in sessionStorage (this tab only), sent as a bearer token.
const KEY_STORE = "shardgate.apiKey";

function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("key-input");
  sessionStorage.setItem(KEY_STORE, input.value.trim());
  input.value = "";
  event.target.hidden = true;
});

async function getJson(url) {
  const headers = { accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(url, {
    cache: "no-store",
    headers,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  if (res.status === 401 || res.status === 403) {
    document.getElementById("key-form").hidden = false;
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}

function showStatus(ok, message) {
  const status = document.getElementById("status");
  status.className = `status ${ok ? "live" : "down"}`;
  status.textContent = message;
  const banner = document.getElementById("banner");
  if (ok) {
    banner.hidden = true;
  } else {
    banner.hidden = false;
    banner.textContent =
      `Cannot reach the gateway: ${message}. The charts keep their history and ` +
      `polling goes on every second; they resume when it answers again.`;
  }
  document.body.dataset.updates = String(state.updates);
  document.body.dataset.lastError = state.lastError ?? "";
}

let failingSince = null;

// This gateway's slowest requests and recent errors: every fifth poll.
const REQUESTS_EVERY = 5;
let polls = 0;

async function pollRequests() {
  const [slowest, errors] = await Promise.allSettled([
    getJson("/api/analytics/slowest?window=5m&limit=10"),
    getJson("/api/analytics/errors?limit=10"),
  ]);
  if (slowest.status === "fulfilled") drawSlowest(slowest.value);
  if (errors.status === "fulfilled") drawErrors(errors.value);
}

async function poll() {
  const started = performance.now();
  const t = Date.now() / 1000;
  const [metrics, shards, load] = await Promise.allSettled([
    getJson(metricsUrl()),
    getJson(SHARDS_URL),
    getJson(loadUrl()),
  ]);
  if (metrics.status === "fulfilled") {
    record(t, metrics.value);
    drawHeadline(metrics.value);
    drawShards(metrics.value);
  } else {
    history.push(t, {}); // a gap, so an outage shows on every time chart
    lagHistory.push(t, {});
  }
  drawTimeCharts();
  if (polls++ % REQUESTS_EVERY === 0) pollRequests();
  if (shards.status === "fulfilled") {
    drawServers(shards.value);
    drawGateways(shards.value);
    drawMoves(shards.value);
    drawFailovers(shards.value);
    drawHeld(shards.value);
    drawMapHeadline(shards.value);
    drawStreams(shards.value, t);
    if (load.status === "fulfilled") drawHeatmap(load.value, shards.value);
  }

  const failure = [metrics, shards, load].find((r) => r.status === "rejected");
  if (failure) {
    failingSince ??= new Date();
    state.lastError = String(failure.reason?.message ?? failure.reason);
    showStatus(false, `${state.lastError} (since ${clock(failingSince)})`);
  } else {
    failingSince = null;
    state.updates += 1;
    state.lastUpdate = new Date().toISOString();
    showStatus(true, `live · ${clock(new Date())}`);
  }
  setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started)));
}

if (typeof uPlot === "undefined") {
  state.lastError = "the chart library did not load";
  showStatus(false, state.lastError);
} else {
  poll();
}
