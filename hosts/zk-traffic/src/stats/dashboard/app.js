// zk-stats dashboard: polls the JSON endpoints and draws with <canvas>.
// No framework, no CDN: this file is compiled into the zk-stats binary.
"use strict";

const params = new URLSearchParams(location.search);
const EVERY_MS = Math.max(500, 1000 * Number(params.get("refresh") || 2));
const HISTORY_S = 300;
const COLORS = ["#4e9af1", "#f1a94e", "#5fd38d", "#e66bd1", "#f1e14e", "#6be6e0", "#ff6b6b", "#a58cf0", "#9aa5b1"];

const $ = (id) => document.getElementById(id);
let paused = false;
let timer = null;

function fmt(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n * 100) / 100);
}

function fmtBytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(2) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function fmtUs(us) {
  if (!us) return "–";
  if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + " ms";
  return us + " µs";
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function table(id, head, rows, empty) {
  const t = $(id);
  t.replaceChildren();
  const tr = el("tr");
  for (const h of head) tr.append(el("th", {}, h));
  t.append(tr);
  if (rows.length === 0) {
    const r = el("tr");
    const td = el("td", { colspan: head.length, class: "empty" }, empty || "nothing yet");
    r.append(td);
    t.append(r);
    return;
  }
  for (const row of rows) {
    const r = el("tr");
    row.forEach((cell, i) => {
      const td = el("td", i === 0 ? { title: String(cell) } : {}, String(cell));
      r.append(td);
    });
    t.append(r);
  }
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}

// A line chart of several series over the history's seconds.
function lineChart(canvas, legend, xs, series, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400;
  const h = Number(canvas.getAttribute("height")) || 200;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.height = h + "px";
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 54, right = 8, top = 8, bottom = 20;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  if (max <= 0) max = 1;
  const css = getComputedStyle(document.body);
  const line = css.getPropertyValue("--line") || "#333";
  const muted = css.getPropertyValue("--muted") || "#888";
  g.strokeStyle = line;
  g.fillStyle = muted;
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
    g.fillText((opts.yfmt || fmt)((max * i) / 4), 2, y + 4);
  }
  if (xs.length > 1) {
    const t0 = xs[0], t1 = xs[xs.length - 1];
    g.fillText(new Date(t0 * 1000).toISOString().substring(11, 19), left, h - 4);
    const last = new Date(t1 * 1000).toISOString().substring(11, 19);
    g.fillText(last, left + pw - g.measureText(last).width, h - 4);
  }
  const n = xs.length;
  series.forEach((s, i) => {
    g.strokeStyle = s.color || COLORS[i % COLORS.length];
    g.lineWidth = 1.5;
    g.beginPath();
    s.values.forEach((v, j) => {
      const x = left + (n <= 1 ? pw : (pw * j) / (n - 1));
      const y = top + ph - (ph * v) / max;
      if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  });
  legend.replaceChildren();
  series.forEach((s, i) => {
    const item = el("span");
    const sw = el("i");
    sw.style.background = s.color || COLORS[i % COLORS.length];
    item.append(sw, document.createTextNode(s.name + " " + (opts.yfmt || fmt)(s.values[s.values.length - 1] || 0)));
    legend.append(item);
  });
}

function drawHistory(hist) {
  const secs = hist.seconds.slice(-HISTORY_S);
  const xs = secs.map((s) => s.t);
  // The busiest request types over the shown stretch, the rest as "other".
  const totals = {};
  for (const s of secs) for (const [k, v] of Object.entries(s.requests)) totals[k] = (totals[k] || 0) + v;
  const types = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
  const shown = types.slice(0, 7);
  const series = shown.map((t) => ({ name: t, values: secs.map((s) => s.requests[t] || 0) }));
  if (types.length > shown.length) {
    series.push({
      name: "other",
      values: secs.map((s) => shown.reduce((acc, t) => acc - (s.requests[t] || 0), s.total)),
    });
  }
  series.unshift({ name: "all", color: "#d9dee4", values: secs.map((s) => s.total) });
  lineChart($("ops"), $("ops-legend"), xs, series, {});
  lineChart($("lat"), $("lat-legend"), xs, [
    { name: "p50", values: secs.map((s) => s.p50_us) },
    { name: "p90", values: secs.map((s) => s.p90_us) },
    { name: "p99", values: secs.map((s) => s.p99_us) },
    { name: "max", values: secs.map((s) => s.max_us) },
  ], { yfmt: fmtUs });
  lineChart($("bytes"), $("bytes-legend"), xs, [
    { name: "requests", values: secs.map((s) => s.request_bytes) },
    { name: "replies", values: secs.map((s) => s.reply_bytes) },
  ], { yfmt: fmtBytes });
  lineChart($("events"), $("events-legend"), xs, [
    { name: "errors", color: "#ff6b6b", values: secs.map((s) => s.errors) },
    { name: "watch events", values: secs.map((s) => s.events) },
    { name: "connects", values: secs.map((s) => s.connects) },
    { name: "closes", values: secs.map((s) => s.closes) },
    { name: "expired", values: secs.map((s) => s.expired) },
  ], {});
}

function cards(info, hist, paths) {
  const secs = hist.seconds;
  const last = secs.slice(-10);
  const rate = last.length ? last.reduce((a, s) => a + s.total, 0) / last.length : 0;
  const c = $("cards");
  c.replaceChildren();
  const items = [
    ["requests/s (last 10 s)", fmt(rate)],
    ["reads", fmt(paths["total/reads"] || 0)],
    ["writes", fmt(paths["total/writes"] || 0)],
    ["read bytes", fmtBytes(paths["total/readBytes"] || 0)],
    ["write bytes", fmtBytes(paths["total/writeBytes"] || 0)],
    ["packets", fmt(info.capture.packets)],
    ["kernel drops", fmt(info.capture.kernel_drops)],
    ["connections tracked", fmt(info.flows.active)],
  ];
  for (const [k, v] of items) {
    const d = el("div", { class: "card" });
    d.append(el("div", { class: "v" }, v), el("div", { class: "k" }, k));
    c.append(d);
  }
}

function topRows(rows) {
  return rows.map((r) => [r.key === "" ? "(no path)" : r.key, fmt(r.requests), fmt(r.reads), fmt(r.writes), fmt(r.watches), fmtBytes(r.bytes), fmt(r.events), r.top_type]);
}

const TOP_HEAD = ["", "requests", "reads", "writes", "watches", "bytes", "events", "most"];

function errorsTable(paths) {
  const rows = Object.entries(paths)
    .filter(([k]) => k.startsWith("Failed"))
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => [k.substring(6), fmt(v)]);
  table("errors", ["reply type", "failed"], rows, "no error replies");
}

function healthTable(info) {
  const d = info.decoder, f = info.flows;
  const errs = (m) => Object.values(m).reduce((a, b) => a + b, 0);
  table("health", ["", "value"], [
    ["source", info.source],
    ["state", info.state],
    ["packets", fmt(info.capture.packets)],
    ["kernel drops", fmt(info.capture.kernel_drops)],
    ["requests / replies / events", `${fmt(d.requests)} / ${fmt(d.replies)} / ${fmt(d.events)}`],
    ["unpaired replies", fmt(d.unpaired_replies)],
    ["decode errors (link / frame / message)", `${errs(d.link_errors)} / ${errs(d.frame_errors)} / ${errs(d.decode_errors)}`],
    ["flows active / capacity", `${fmt(f.active)} / ${fmt(f.capacity)}`],
    ["flows evicted", fmt(f.evicted)],
    ["table evictions (paths / ips / auths)", `${info.tables.paths.evictions} / ${info.tables.ips.evictions} / ${info.tables.auths.evictions}`],
  ]);
}

function latencyTable(lat) {
  const rows = Object.entries(lat.types)
    .sort((a, b) => b[1].count - a[1].count)
    .map(([t, h]) => [t, fmt(h.count), fmtUs(h.p50_us), fmtUs(h.p90_us), fmtUs(h.p99_us), fmtUs(h.p999_us), fmtUs(h.max_us)]);
  table("latencies", ["type", "replies", "p50", "p90", "p99", "p99.9", "max"], rows);
}

async function refresh() {
  const win = $("window").value;
  const q = new URLSearchParams({ window: win, n: "15", sort: $("sort").value, depth: $("depth").value || "0" });
  const prefix = $("prefix").value.trim();
  if (prefix) q.set("prefix", prefix);
  try {
    const [info, hist, top, paths, lat] = await Promise.all([
      getJSON("/json/info"),
      getJSON("/json/history?last=" + HISTORY_S),
      getJSON("/json/top?" + q),
      getJSON("/json/paths?top=0&window=" + win),
      getJSON("/json/latencies?window=" + win),
    ]);
    $("source").textContent = info.source;
    const st = $("state");
    st.textContent = info.state;
    st.className = "pill " + (info.state.startsWith("failed") ? "failed" : info.state);
    cards(info, hist, paths);
    drawHistory(hist);
    table("paths", ["path", ...TOP_HEAD.slice(1)], topRows(top.paths));
    table("clients", ["client", ...TOP_HEAD.slice(1)], topRows(top.clients));
    table("auths", ["identity", ...TOP_HEAD.slice(1)], topRows(top.auths));
    latencyTable(lat);
    errorsTable(paths);
    healthTable(info);
    $("updated").textContent = "Last update " + new Date().toLocaleTimeString() + ".";
    $("problem").textContent = "";
    document.body.dataset.loaded = "1";
  } catch (e) {
    $("problem").textContent = String(e.message || e);
  }
}

function schedule() {
  clearTimeout(timer);
  if (!paused) timer = setTimeout(async () => { await refresh(); schedule(); }, EVERY_MS);
}

$("every").textContent = String(EVERY_MS / 1000);
for (const id of ["window", "sort", "depth", "prefix"]) $(id).addEventListener("change", () => refresh());
$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "resume" : "pause";
  schedule();
});
window.addEventListener("resize", () => refresh());
refresh().then(schedule);
