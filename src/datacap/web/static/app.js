/* datacap dashboard: each page fetches the JSON API and draws with the bundled ECharts.
   No framework and no build step: the file is served as it is. */
"use strict";

// The page's words come as a JSON data block, not an inline script: the CSP allows scripts from 'self' only.
const W = (() => {
  const node = document.getElementById("dc-words");
  try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
})();
const t = (key) => W[key] || key;
const charts = (window.datacapCharts = {});
const DAY = 86400000;
const DARK = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
/* one unit policy with the CLI (datacap.units): "carrier" = GB of 1024 MB as carriers write it,
   "iec" = GiB, "si" = GB of 1000 MB */
const POLICY = document.body.dataset.units || "carrier";
const BASE = POLICY === "si" ? 1000 : 1024;
const UNITS = POLICY === "iec" ? ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
  : POLICY === "si" ? ["B", "kB", "MB", "GB", "TB", "PB"] : ["B", "KB", "MB", "GB", "TB", "PB"];

function fmtBytes(n, axis = false) {
  let v = Math.abs(Number(n) || 0);
  let i = 0;
  while (v >= BASE && i < UNITS.length - 1) { v /= BASE; i++; }
  const sign = n < 0 ? "-" : "";
  if (i === 0) return `${sign}${Math.round(v)} B`;
  const digits = axis ? (v < 1 ? 2 : 1) : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${Number(v.toFixed(digits))} ${UNITS[i]}`;  // 20 GB, 1.5 GB, 1.22 GB: no trailing zeros
}

/* an axis from 0 to a 1-2-5 step in the display unit above ``top``: ticks at 1, 2, 5, 10... of B/MB/GB */
function niceStep(top) {
  if (!(top > 0)) return { interval: 1, max: 5 };
  let unit = 1;
  while (top / unit >= BASE && unit < BASE ** 5) unit *= BASE;
  const raw = top / unit / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) * unit;
  return { interval: step, max: Math.ceil(top / step) * step };
}

function fmtRate(bps) {
  const steps = [["Gbit/s", 1e9], ["Mbit/s", 1e6], ["kbit/s", 1e3]];
  for (const [unit, size] of steps) if (bps >= size) return `${Number((bps / size).toFixed(1))} ${unit}`;
  return `${Math.round(bps)} bit/s`;
}

function fmtTime(iso) {
  if (!iso) return t("never");
  return iso.replace("T", " ").slice(0, 16);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, params = {}) {
  const url = new URL(`/api/v1/${path}`, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.append(k, v);
  const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; throw new Error("401"); }
  const body = await res.json().catch(() => ({ error: res.statusText }));
  return { ok: res.ok, status: res.status, data: body };
}

/* the API's errors are English sentences (its contract); a Chinese page says what went wrong in Chinese */
function errText(res) {
  const text = (res.data && res.data.error) || "";
  if (document.documentElement.lang !== "zh-CN") return text || t("error");
  const key = { 400: "err_400", 401: "err_401", 403: "err_403", 404: "err_404", 503: "err_503" }[res.status];
  return t(key || "err_other");
}

function notice(container, text, cls = "muted") {
  container.replaceChildren(el("p", { class: cls, text }));
}

function chart(id, option) {
  const node = document.getElementById(id);
  let c = charts[id];
  if (!c) { c = echarts.init(node, DARK ? "dark" : null, { renderer: "canvas" }); charts[id] = c; }
  // no animation: charts are final as soon as drawn (screenshots, slow phones, many points)
  c.setOption({ animation: false, backgroundColor: "transparent", ...option }, { notMerge: true });
  return c;
}
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

/* dates: <input type=date> values are local days; "until" is inclusive for people, exclusive for the API */
const isoDay = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
function nextDay(day) { const d = new Date(`${day}T12:00:00`); d.setDate(d.getDate() + 1); return isoDay(d); }
function setRange(daysBack, sinceId = "since", untilId = "until") {
  const now = new Date();
  document.getElementById(untilId).value = isoDay(now);
  document.getElementById(sinceId).value = isoDay(new Date(now.getTime() - daysBack * DAY));
}
function rangeParams() {
  const since = document.getElementById("since").value;
  const until = document.getElementById("until").value;
  return { since: since || undefined, until: until ? nextDay(until) : undefined };
}

async function fillInterfaces() {
  const select = document.getElementById("iface");
  const res = await api("interfaces");
  if (!res.ok) return;
  for (const i of res.data.interfaces) select.append(el("option", { value: i.name, text: i.name }));
}

function bytesAxis(top) {
  return { type: "value", min: 0, ...niceStep(top), axisLabel: { formatter: (v) => fmtBytes(v, true) } };
}
/* axis tooltips list each series and their total */
const tooltip = { trigger: "axis", formatter: (ps) => {
  const rows = ps.map((p) => `${p.marker}${p.seriesName}: ${fmtBytes(p.value)}`);
  const total = ps.reduce((a, p) => a + (Number(p.value) || 0), 0);
  return [ps[0].axisValueLabel, ...rows, `${t("total")}: ${fmtBytes(total)}`].join("<br>");
} };
const stackTop = (a, b) => Math.max(0, ...a.map((v, i) => v + (b[i] || 0)));

/* ---------------------------------------------------------------- overview */
async function overview() {
  pollLive();
  // independent requests in parallel: the page is drawn as soon as the slowest one answers
  const [features, summary, health] = await Promise.all([api("features"), api("summary"), api("health")]);
  const cards = document.getElementById("cards");
  if (features.data.status) await drawCards(cards); else cards.append(el("section", { class: "panel" },
    el("h2", { text: t("plan") }), el("p", { class: "muted", id: "status-missing", text: t("not_configured") })));
  const tiles = document.getElementById("summary");
  if (summary.ok) {
    if (!summary.data.interfaces.length) notice(tiles, t("no_data"));
    for (const i of summary.data.interfaces) {
      tiles.append(el("div", { class: "tile" }, el("h3", { text: i.name }),
        el("p", { text: `${t("today")}: ${fmtBytes(i.today.total_bytes)}` }),
        el("p", { text: `${t("this_month")}: ${fmtBytes(i.this_month.total_bytes)}` }),
        el("p", { text: `${t("month_estimate")}: ${fmtBytes(i.month_estimate_bytes)}` }),
        el("p", { class: "muted", text: `${t("all_time")}: ${fmtBytes(i.all_time.total_bytes)}` })));
    }
  } else notice(tiles, errText(summary), "warn");
  if (health.ok) {
    const line = document.getElementById("health");
    line.textContent = `${t("health")}: ${fmtTime(health.data.last_flush)}`;
    const store = health.data.store;
    if (store && store.writable === false) {  // a full disk: bytes wait in the daemon's memory
      line.className = "warn";
      line.textContent += ` · ${t("store_unwritable")}: ${fmtBytes(store.held_bytes)} ${t("held_in_memory")}`;
    }
  }
}

async function drawCards(container, path = "status") {
  // the dashboard also has the cycle's daily series; the fleet hub's card page only the status
  const [res, cyc] = await Promise.all([api(path), path === "status" ? api("cycle") : Promise.resolve(null)]);
  if (!res.ok) { container.append(el("p", { class: "warn", text: errText(res) })); return; }
  const series = new Map((cyc && cyc.ok ? cyc.data.cards : []).map((c) => [c.name, c]));
  for (const card of res.data.cards) container.append(cardPanel(card, series.get(card.name)));
  for (const card of res.data.cards) if (series.has(card.name)) cycleChart(card, series.get(card.name));
}

/* Every figure comes from the status model (the same one `datacap status` prints): the headline
   first, then the cycle's chart, then each bucket and pack by its own state. */
function cardPanel(card, cycle) {
  const h = card.headline || {};
  const state = h.state || "ok";
  const g = h.general || {};
  const panel = el("section", { class: "panel card", "data-card": card.name, "data-state": state },
    el("h2", { text: card.label || card.name }));
  const head = el("div", { class: "headline" });
  const big = el("div", { class: "left-figure" });
  if (g.quota !== null && g.quota !== undefined) {
    big.append(el("strong", { class: "big", text: fmtBytes(g.left ?? 0) }),
      el("span", { class: "muted", text: fill(t("left_of"), { quota: fmtBytes(g.quota) }) }));
  } else big.append(el("strong", { class: "big", text: t("unlimited") }));
  head.append(big);
  let word = t(`state_${state}`);
  if (state === "overage" && h.overage) word = fill(t("overage_cost"), { cost: money(h.overage.cost, h.overage.currency) });
  const lines = el("ul", { class: "verdict" }, el("li", {}, el("span", { class: `badge ${state}`, text: word })));
  if (state === "overage" && h.overage) lines.append(el("li", { text: `${t("overage")}: ${fmtBytes(h.overage.bytes)}` }));
  else if (state === "throttled" && h.overage && h.overage.bytes) {
    lines.append(el("li", { text: fill(t("overage_cost"), { cost: money(h.overage.cost, h.overage.currency) }) }));
  }
  if (h.lasts_cycle) lines.append(el("li", { class: "good", text: t("lasts_the_cycle") }));
  else if (h.runs_out) {
    const past = g.left !== null && g.left !== undefined && g.left <= 0;  // it ran out already
    lines.append(el("li", { class: "bad", text: fill(t(past ? "ran_out_on" : "runs_out_on"), { date: fmtDate(h.runs_out) }) }));
  }
  if (h.throttle_from) lines.append(el("li", { class: "bad", text: fill(t("throttled_from_on"), { date: fmtDate(h.throttle_from) }) }));
  if (h.daily_budget !== null && h.daily_budget !== undefined) {
    lines.append(el("li", { text: `${t("daily_budget")}: ${fmtBytes(h.daily_budget)}` }));
  }
  head.append(lines);
  panel.append(head);
  const facts = el("dl", { class: "facts" });
  const fact = (k, v) => facts.append(el("dt", { text: k }), el("dd", { text: v }));
  if (h.pace) {
    const used = h.pace.used_pct, elapsed = h.pace.elapsed_pct;
    const ahead = used !== null && used > elapsed ? ` · ${t("ahead")}` : "";
    fact(t("pace"), `${t("used")} ${pctOf(used)} / ${pctOf(elapsed)} ${t("elapsed")}${ahead}`);
  }
  if (card.cycle) fact(t("cycle_ends"), fmtDate(card.cycle.end));
  fact(t("calibration"), card.calibration ? fmtTime(card.calibration.at || "") : t("never"));
  for (const m of card.carrier_mismatch || []) {  // the carrier's total for a part is not the config's quota
    fact(t("carrier_disagrees"), `${m.part}: ${fmtBytes(m.carrier_total)} · ${t("config_says")} ${fmtBytes(m.config_quota)}`);
  }
  for (const r of card.rollover_unknown || []) fact(t("rollover_unknown"), r.bucket);
  if (cycle) panel.append(el("div", { class: "chart cycle", id: chartId("cycle", card.name), role: "img",
    "aria-label": t("cycle_chart") }));
  panel.append(facts, bucketList(card));
  return panel;
}

const pctOf = (p) => (p === null || p === undefined ? "–" : `${Math.round(p)}%`);
const chartId = (kind, name) => `${kind}-${name}`.replace(/[^\w-]/g, "_");
function fill(text, values) { return text.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? ""); }
function money(cost, currency) { return `${Number(cost).toFixed(2)} ${currency || ""}`.trim(); }

function fmtDate(iso) {
  if (!iso) return "–";
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang || "en", { month: "short", day: "numeric",
      timeZone: document.body.dataset.timezone || undefined }).format(new Date(iso));
  } catch { return iso.slice(0, 10); }
}

function scopeText(scope) {
  const parts = [];
  const covers = [...(scope.services || []), ...(scope.apps || [])];
  if (covers.length) parts.push(fill(t("covers"), { what: covers.join(", ") }));
  if (scope.hours) parts.push(fill(t("hours_only"), { hours: scope.hours.replace("-", "–") }));
  return parts.join(" · ");
}

function bucketList(card) {
  const list = el("ul", { class: "buckets" });
  for (const b of card.buckets) {
    const kind = b.kind === "rollover" ? ` · ${t("kind_rollover")}` : b.kind === "pack" ? ` · ${t("kind_pack")}` : "";
    const state = b.state || "ok";
    const title = el("div", { class: "bucket-head" }, el("strong", { text: `${b.name}${kind}` }),
      el("span", { class: `badge ${state}`, text: t(`bucket_${state}`) }));
    const bar = el("div", { class: "bar", role: "progressbar", "aria-label": b.name, "aria-valuemin": "0",
      "aria-valuemax": "100", "aria-valuenow": String(Math.round(Math.min(100, b.used_pct ?? 0))) });
    const fillBar = el("div", { class: `fill ${state}` });
    fillBar.style.width = `${Math.min(100, b.used_pct ?? 0)}%`;  // CSSOM, not a style attribute: allowed by the CSP
    bar.append(fillBar);
    const figures = b.quota_bytes === null || b.quota_bytes === undefined
      ? `${fmtBytes(b.used_bytes)} ${t("used")} · ${t("unlimited")}`
      : `${fmtBytes(b.remaining_bytes ?? 0)} ${t("left")} · ${fmtBytes(b.used_bytes)} / ${fmtBytes(b.quota_bytes)}`;
    const notes = [figures, fill(t("expires_on"), { date: fmtDate(b.expires) })];
    if (b.runs_out) notes.push(fill(t("runs_out_on"), { date: fmtDate(b.runs_out) }));
    const scope = scopeText(b.scope || {});
    list.append(el("li", { class: "bucket", "data-bucket": b.name, "data-kind": b.kind, "data-state": state },
      title, bar, el("p", { class: "muted", text: notes.join(" · ") }), ...(scope ? [el("p", { class: "scope", text: scope })] : [])));
  }
  return list;
}

function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

function cycleChart(card, cycle) {
  const days = cycle.days || [];
  const labels = days.map((d) => d.date.slice(5));
  const measured = days.map((d) => (d.forecast ? null : d.used_bytes));
  const lastMeasured = measured.reduce((at, v, i) => (v === null ? at : i), -1);
  const forecast = days.map((d, i) => (i === lastMeasured ? d.used_bytes : d.forecast ? d.used_bytes : null));
  const marks = [];
  const fg = cssVar("--fg"), muted = cssVar("--muted");
  if (cycle.quota_bytes) marks.push({ name: t("quota_line"), yAxis: cycle.quota_bytes, lineStyle: { color: cssVar("--bad"), type: "solid" } });
  for (const a of cycle.alert_lines || []) marks.push({ name: t("alert_line"), yAxis: a.used_bytes, lineStyle: { color: cssVar("--low"), type: "dotted" } });
  if (cycle.throttle_after_bytes) marks.push({ name: t("throttle_line"), yAxis: cycle.throttle_after_bytes, lineStyle: { color: cssVar("--muted"), type: "dashed" } });
  const top = Math.max(0, ...days.map((d) => d.used_bytes), ...marks.map((m) => m.yAxis));
  // lines close together: their labels take turns at the end, the start and the middle
  const spots = ["insideEndTop", "insideStartTop", "insideMiddleTop"];
  marks.sort((a, b) => a.yAxis - b.yAxis).forEach((m, i) => {
    m.label = { position: spots[i % spots.length], color: fg, formatter: () => `${m.name} ${fmtBytes(m.yAxis)}` };
  });
  chart(chartId("cycle", card.name), {
    textStyle: { color: fg },
    tooltip: { trigger: "axis", formatter: (ps) => {
      const i = ps[0].dataIndex;
      const d = days[i];
      const rows = [`${d.date}`, `${t(d.forecast ? "forecast_line" : "measured")}: ${fmtBytes(d.used_bytes)}`];
      if (cycle.quota_bytes) rows.push(`${t("left")}: ${fmtBytes(Math.max(0, cycle.quota_bytes - d.used_bytes))} / ${fmtBytes(cycle.quota_bytes)}`);
      return rows.join("<br>");
    } },
    legend: { top: 0, textStyle: { color: fg } },
    grid: { left: 8, right: 12, top: 34, bottom: 8, containLabel: true },
    xAxis: { type: "category", boundaryGap: false, data: labels, axisLabel: { color: muted, hideOverlap: true } },
    yAxis: { ...bytesAxis(top), axisLabel: { color: muted, formatter: (v) => fmtBytes(v, true) } },
    series: [
      { id: "measured", name: t("measured"), type: "line", data: measured, showSymbol: false, areaStyle: { opacity: 0.15 },
        lineStyle: { width: 2, color: cssVar("--accent") }, itemStyle: { color: cssVar("--accent") },
        markLine: { symbol: "none", silent: true, data: marks } },
      { id: "forecast", name: t("forecast_line"), type: "line", data: forecast, showSymbol: false,
        lineStyle: { width: 2, type: "dashed", color: muted }, itemStyle: { color: muted } },
    ],
  });
}
async function pollLive() {
  const box = document.getElementById("live");
  const tick = async () => {
    const res = await api("live").catch(() => null);
    if (res && res.ok) {
      box.replaceChildren(...res.data.interfaces.map((i) => el("div", { class: "rate", "data-iface": i.name },
        el("strong", { text: i.name }), el("span", { text: `↓ ${fmtRate(i.rx_bps)}` }),
        el("span", { text: `↑ ${fmtRate(i.tx_bps)}` }))));
      if (!res.data.interfaces.length) notice(box, t("no_live"));
    }
    if (!document.hidden) setTimeout(tick, 2000); else document.addEventListener("visibilitychange", tick, { once: true });
  };
  tick();
}

/* ---------------------------------------------------------------- usage */
const USAGE_SPAN = { hour: 2, day: 30, week: 84, month: 365 };
const label = (by, iso) => (by === "hour" ? iso.slice(5, 16).replace("T", " ") : by === "month" ? iso.slice(0, 7) : iso.slice(0, 10));

async function usage() {
  const by = document.getElementById("by");
  setRange(USAGE_SPAN[by.value]);
  by.addEventListener("change", () => { setRange(USAGE_SPAN[by.value]); drawUsage(); });
  document.getElementById("usage-form").addEventListener("submit", (e) => { e.preventDefault(); drawUsage(); });
  await Promise.all([fillInterfaces(), drawUsage()]);
}

async function drawUsage() {
  const by = document.getElementById("by").value;
  const iface = document.getElementById("iface").value;
  const res = await api("usage", { by, iface, ...rangeParams() });
  if (!res.ok) { document.getElementById("usage-total").textContent = errText(res); return; }
  const sums = new Map();
  for (const i of res.data.interfaces) for (const r of i.rows) {
    const acc = sums.get(r.start) || [0, 0];
    acc[0] += r.rx_bytes; acc[1] += r.tx_bytes; sums.set(r.start, acc);
  }
  const starts = [...sums.keys()].sort();
  const rx = starts.map((s) => sums.get(s)[0]);
  const tx = starts.map((s) => sums.get(s)[1]);
  chart("usage-chart", {
    tooltip, legend: { top: 0 }, grid: { left: 70, right: 16, top: 30, bottom: 70 },
    xAxis: { type: "category", data: starts.map((s) => label(by, s)) }, yAxis: bytesAxis(stackTop(rx, tx)),
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 10 }],
    series: [
      { id: "rx", name: t("rx"), type: "bar", stack: "bytes", data: rx, itemStyle: { color: "#3b82f6" } },
      { id: "tx", name: t("tx"), type: "bar", stack: "bytes", data: tx, itemStyle: { color: "#f59e0b" } },
    ],
  });
  const total = rx.reduce((a, b) => a + b, 0) + tx.reduce((a, b) => a + b, 0);
  document.getElementById("usage-total").textContent = starts.length ? `${t("total")}: ${fmtBytes(total)}` : t("no_data");
}

/* ---------------------------------------------------------------- who */
/* a client is named by its hostname, else IP, else MAC (store/reader.py client_names): never "?" */
const nameOf = (kind, row) => row[kind] || row.exe || row.hostname || row.ip || row.mac || t("unnamed");

async function who() {
  const now = new Date();
  document.getElementById("since").value = isoDay(new Date(now.getFullYear(), now.getMonth(), 1));
  document.getElementById("until").value = isoDay(now);
  document.getElementById("who-form").addEventListener("submit", (e) => { e.preventDefault(); drawWho(); });
  document.getElementById("kind").addEventListener("change", () => drawWho());
  document.getElementById("history-back").addEventListener("click", (e) => { e.preventDefault(); location.hash = ""; });
  window.addEventListener("hashchange", route);
  await drawWho();
  await route();
}

async function route() {
  const [kind, name] = location.hash.slice(1).split("/").map(decodeURIComponent);
  const history = document.getElementById("history-panel");
  const ranking = document.getElementById("ranking-panel");
  if (!kind || !name) { history.classList.add("hidden"); ranking.classList.remove("hidden"); charts["who-chart"]?.resize(); return; }
  ranking.classList.add("hidden"); history.classList.remove("hidden");
  document.getElementById("history-title").textContent = `${t(kind)}: ${name} · ${t("history")}`;
  const res = await api(`${kind}s/${encodeURIComponent(name)}`, { by: "day", ...rangeParams() });
  if (!res.ok) { document.getElementById("history-title").textContent = errText(res); return; }
  const rows = res.data.rows;
  chart("history-chart", {
    tooltip, legend: { top: 0 }, grid: { left: 70, right: 16, top: 30, bottom: 30 },
    xAxis: { type: "category", data: rows.map((r) => r.start.slice(0, 10)) },
    yAxis: bytesAxis(stackTop(rows.map((r) => r.rx_bytes), rows.map((r) => r.tx_bytes))),
    series: [
      { id: "rx", name: t("rx"), type: "bar", stack: "bytes", data: rows.map((r) => r.rx_bytes), itemStyle: { color: "#3b82f6" } },
      { id: "tx", name: t("tx"), type: "bar", stack: "bytes", data: rows.map((r) => r.tx_bytes), itemStyle: { color: "#f59e0b" } },
    ],
  });
}

async function drawWho() {
  const kind = document.getElementById("kind").value;
  const res = await api(`${kind}s`, { limit: 200, ...rangeParams() });
  const table = document.getElementById("who-table");
  if (!res.ok) { table.replaceChildren(el("caption", { text: errText(res) })); return; }
  const rows = res.data.rows;
  const top = rows.slice(0, 15).reverse();
  chart("who-chart", {
    tooltip, legend: { top: 0 }, grid: { left: 120, right: 16, top: 30, bottom: 30 },
    yAxis: { type: "category", data: top.map((r) => nameOf(kind, r)), axisLabel: { width: 110, overflow: "truncate" } },
    xAxis: { ...bytesAxis(stackTop(top.map((r) => r.rx_bytes), top.map((r) => r.tx_bytes))),
      axisLabel: { formatter: (v) => fmtBytes(v, true), hideOverlap: true, rotate: window.innerWidth < 600 ? 30 : 0 } },
    series: [
      { id: "rx", name: t("rx"), type: "bar", stack: "bytes", data: top.map((r) => r.rx_bytes), itemStyle: { color: "#3b82f6" } },
      { id: "tx", name: t("tx"), type: "bar", stack: "bytes", data: top.map((r) => r.tx_bytes), itemStyle: { color: "#f59e0b" } },
    ],
  });
  charts["who-chart"].off("click");
  charts["who-chart"].on("click", (p) => { location.hash = `${kind}/${encodeURIComponent(p.name)}`; });
  const head = el("tr", {}, ...[t("name"), t("rx"), t("tx"), t("total"), t("share"), t("flows")].map((h) => el("th", { text: h })));
  const body = rows.map((r) => {
    const name = nameOf(kind, r);
    const link = el("a", { href: `#${kind}/${encodeURIComponent(name)}`, text: name, class: "drill" });
    const cap = r.cap  // a [[clients.limits]] quota reached: blocked or throttled until the period resets
      ? [" ", el("span", { class: `badge ${r.cap.action === "block" ? "blocked" : "throttled"}`,
          text: `${t(`capped_${r.cap.action === "block" ? "blocked" : "throttled"}`)} ${r.cap.until.slice(0, 16).replace("T", " ")}` })]
      : [];
    return el("tr", {}, el("td", {}, link, ...cap), ...[fmtBytes(r.rx_bytes), fmtBytes(r.tx_bytes), fmtBytes(r.total_bytes),
      `${(r.share * 100).toFixed(1)}%`, String(r.flows)].map((v) => el("td", { class: "num", text: v })));
  });
  const un = res.data.unattributed;
  body.push(el("tr", { class: "muted" }, el("td", { text: t("unattributed") }), el("td", { class: "num", text: fmtBytes(un.rx_bytes) }),
    el("td", { class: "num", text: fmtBytes(un.tx_bytes) }), el("td", { class: "num", text: fmtBytes(un.total_bytes) }), el("td"), el("td")));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
}

/* ---------------------------------------------------------------- when */
async function when() {
  setRange(27);
  document.getElementById("when-form").addEventListener("submit", (e) => { e.preventDefault(); drawWhen(); });
  await Promise.all([fillInterfaces(), drawWhen()]);
}

async function drawWhen() {
  const iface = document.getElementById("iface").value;
  const res = await api("heatmap", { iface, ...rangeParams() });
  if (!res.ok) { document.getElementById("peak").textContent = errText(res); return; }
  const d = res.data;
  const points = [];
  let max = 0;
  d.cells.forEach((row, day) => row.forEach((v, hour) => { points.push([hour, day, v]); max = Math.max(max, v); }));
  chart("heatmap-chart", {
    tooltip: { formatter: (p) => `${t(d.weekdays[p.value[1]])} ${p.value[0]}:00 · ${fmtBytes(p.value[2])}` },
    grid: { left: 60, right: 16, top: 10, bottom: 100 },
    xAxis: { type: "category", data: [...Array(24).keys()].map(String), splitArea: { show: true } },
    yAxis: { type: "category", data: d.weekdays.map(t), inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 5,
      formatter: (v) => fmtBytes(v), inRange: { color: ["#f1f5f9", "#93c5fd", "#1d4ed8", "#7c2d12"] } },
    series: [{ id: "heat", name: t("heatmap"), type: "heatmap", data: points }],
  });
  document.getElementById("peak").textContent = d.peak
    ? `${t("peak")}: ${t(d.peak.weekday)} ${d.peak.hour}:00–${d.peak.hour + 1}:00 (${fmtBytes(d.peak.total_bytes)}) · ${t("total")} ${fmtBytes(d.total_bytes)}`
    : t("no_data");
}

/* ---------------------------------------------------------------- alerts, plan */
function threshold(c) { return c.percent !== null && c.percent !== undefined ? `${c.percent}%` : fmtBytes(c.bytes); }
function duration(seconds) {
  const units = [[86400, "unit_day"], [3600, "unit_hour"], [60, "unit_minute"]];
  for (const [size, key] of units) if (seconds >= size && seconds % size === 0) return fill(t(key), { n: seconds / size });
  return fill(t("unit_second"), { n: seconds });
}

/* a rule as a sentence in the page's language: "剩余不足 20% 时通知 phone" */
function ruleSentence(rule, labels) {
  const c = rule.condition || { kind: "unknown" };
  const values = { x: c.kind === "remaining_below" || c.kind === "used_above" ? threshold(c) : fmtBytes(c.bytes || 0),
    f: c.factor, kinds: (c.kinds || []).map((k) => t(`kind_${k}`)).join(t("or")), age: duration(c.seconds || 0) };
  const when = fill(t(`when_${c.kind}`), values);
  const to = rule.notify.length ? rule.notify.join(t("and")) : "";
  const sp = /[\w%)]$/.test(when) ? " " : "";  // "剩余不足 20% 时通知": a space after Latin, none after Han
  let text = to ? fill(t("rule_notify"), { when, to, sp }) : fill(t("rule_record"), { when, sp });
  if (rule.do) text += fill(t(`do_${rule.do.kind}`), { rate: fmtRate(rule.do.rate_bps || 0), slot: rule.do.slot, iccid: rule.do.iccid });
  const who = rule.card ? labels.get(rule.card) || rule.card : t("all_cards");
  const what = rule.bucket ? (rule.bucket === "*" ? t("each_bucket") : rule.bucket) : t("general_quota");
  return { who: `${who} · ${what}`, text };
}

async function alerts() {
  const features = (await api("features")).data;
  const rules = document.getElementById("alert-rules");
  const history = document.getElementById("alert-history");
  if (!features.alerts) { notice(rules, t("not_configured")); notice(history, t("not_configured")); return; }
  const [a, h, p] = await Promise.all([api("alerts"), api("alerts/history"), api("plan")]);
  const labels = new Map((p.ok ? p.data.cards : []).map((c) => [c.name, c.label || c.name]));
  if (!a.ok) notice(rules, errText(a), "warn");
  else if (!a.data.rules.length) notice(rules, t("no_data"));
  else rules.replaceChildren(el("ul", { class: "rules" }, ...a.data.rules.map((r) => {
    const s = ruleSentence(r, labels);
    const fired = (r.states || []).filter((x) => x.status === "fired");
    const state = fired.length ? fill(t("rule_fired"), { date: fmtTime(fired[0].fired_at) }) : t("rule_armed");
    return el("li", { class: "rule", "data-rule": r.rule }, el("p", { class: "rule-text", text: s.text }),
      el("p", { class: "muted", text: `${s.who} · ${state}` }));
  })));
  if (!h.ok) { notice(history, errText(h), "warn"); return; }
  if (!h.data.alerts.length) { notice(history, t("no_alerts_yet")); return; }
  history.replaceChildren(el("ol", { class: "timeline" }, ...h.data.alerts.map((ev) => {
    const sent = el("ul", { class: "deliveries" }, ...ev.deliveries.map((d) => el("li", {},
      el("span", { class: "channel", text: d.channel }), " ",
      el("span", { class: `badge ${deliveryState(d)}`, text: fill(t(`delivery_${d.status}`), { n: d.attempts }) }))));
    return el("li", { class: "event" }, el("time", { datetime: ev.fired_at, text: fmtTime(ev.fired_at) }),
      el("div", { class: "message" }, el("strong", { text: ev.title }), el("p", { text: ev.body }), sent));
  })));
}
const deliveryState = (d) => (d.status === "delivered" ? "ok" : d.status === "pending" ? "low" : "exhausted");

const hhmm = (minutes) => `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
function hoursText(hours) {
  if (!hours) return "";
  if (Array.isArray(hours)) return `${hhmm(hours[0])}–${hhmm(hours[1])}`;
  return String(hours).replace("-", "–");
}

function cycleText(c) {
  if (!c) return "";
  if (c.kind === "monthly") return fill(t("cycle_monthly"), { day: c.day || 1 });
  const date = c.start ? fmtDay(c.start) : "";
  return fill(t(c.kind === "days" ? "cycle_days" : "cycle_once"), { n: c.length, date });
}
function fmtDay(iso) { return iso.slice(0, 10); }

function allowanceRow(b, pack) {
  const covers = [...(b.services || []), ...(b.apps || [])];
  const scope = [covers.length ? fill(t("covers"), { what: covers.join(", ") }) : t("general_traffic")];
  if (b.hours) scope.push(fill(t("hours_only"), { hours: hoursText(b.hours) }));
  if (b.rollover) scope.push(t("rolls_over"));
  const quota = b.quota === null || b.quota === undefined ? t("unlimited") : fmtBytes(b.quota);
  const cells = [b.name, quota, scope.join(" · ")];
  if (pack) cells.push(b.end ? `${fmtDay(b.start)} – ${fmtDay(b.end)}` : fill(t("pack_days"), { date: fmtDay(b.start), n: b.days }));
  return el("tr", {}, ...cells.map((v) => el("td", { text: v })));
}

async function plan() {
  const box = document.getElementById("plan");
  const res = await api("plan");
  if (!res.ok) { notice(box, errText(res), "warn"); return; }
  if (!res.data.cards.length) { notice(box, t("not_configured")); return; }
  box.replaceChildren(...res.data.cards.map((c) => {
    const facts = el("dl", { class: "facts" });
    const fact = (k, v) => { if (v) facts.append(el("dt", { text: t(k) }), el("dd", { text: v })); };
    fact("interface", (c.interfaces || []).join(", "));
    fact("cycle", cycleText(c.cycle));
    if (c.throttle) fact("throttle", fill(t("throttle_text"), { after: fmtBytes(c.throttle.after), rate: fmtRate(c.throttle.rate) }));
    if (c.overage) fact("overage", fill(t("overage_text"), { price: c.overage.price, currency: c.overage.currency, per: fmtBytes(c.overage.per) }));
    const head = (cols) => el("thead", {}, el("tr", {}, ...cols.map((h) => el("th", { text: t(h) }))));
    const parts = [el("h3", { text: c.label || c.name }), facts];
    if ((c.buckets || []).length) parts.push(el("div", { class: "table-wrap" }, el("table", { class: "plan-table" },
      head(["bucket", "quota_col", "covers_col"]), el("tbody", {}, ...c.buckets.map((b) => allowanceRow(b, false))))));
    if ((c.packs || []).length) parts.push(el("div", { class: "table-wrap" }, el("table", { class: "plan-table" },
      head(["pack", "quota_col", "covers_col", "valid"]), el("tbody", {}, ...c.packs.map((b) => allowanceRow(b, true))))));
    return el("section", { class: "plan-card", "data-card": c.name }, ...parts);
  }));
}

/* ---------------------------------------------------------------- calibrate */
async function calibrate() {
  const features = (await api("features")).data;
  const form = document.getElementById("calibrate-form");
  const out = document.getElementById("calibrate-result");
  if (!features.calibration) {
    out.textContent = t("not_configured");
    form.querySelectorAll("input, select, textarea, button").forEach((n) => { n.disabled = true; });
    return;
  }
  const plans = await api("plan");
  const cards = plans.ok ? plans.data.cards : [];
  const cardSel = document.getElementById("cal-card");
  const bucketSel = document.getElementById("cal-bucket");
  for (const c of cards) cardSel.append(el("option", { value: c.name, text: c.label || c.name }));
  const fillBuckets = () => {
    const c = cards.find((x) => x.name === cardSel.value) || {};
    bucketSel.replaceChildren(el("option", { value: "", text: t("general_quota") }),
      ...(c.buckets || []).map((b) => el("option", { value: b.name, text: b.name })),
      ...(c.packs || []).map((b) => el("option", { value: b.name, text: `${b.name} · ${t("kind_pack")}` })));
  };
  cardSel.addEventListener("change", fillBuckets);
  fillBuckets();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    const res = await fetch("/api/v1/calibrate", { method: "POST", body, credentials: "same-origin",
      headers: { "X-Datacap-CSRF": form.dataset.formToken } });
    const doc = await res.json().catch(() => ({ error: res.statusText }));
    if (res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
    out.className = res.ok ? "ok" : "warn";
    out.textContent = res.ok ? calibrationSentence(doc, cards) : `${t("error")}: ${errText({ status: res.status, data: doc })}`;
  });
}

/* "联通副卡 · 通用流量：按运营商数据已用 8.50 GB（本机计为 8.61 GB，相差 -110 MB），已保存。" */
function calibrationSentence(doc, cards) {
  const card = cards.find((c) => c.name === doc.card);
  const name = card ? card.label || card.name : doc.card;
  if (!doc.calibrations.length) return fill(t("calibrated_none"), { card: name });
  return doc.calibrations.map((k) => fill(t(k.drift_bytes === null ? "calibrated" : "calibrated_drift"), {
    card: name, what: k.bucket || t("general_quota"), used: fmtBytes(k.carrier_used_bytes),
    local: fmtBytes(k.local_used_bytes ?? 0), drift: fmtBytes(k.drift_bytes ?? 0),
  })).join(" ");
}

/* quick ranges: set the dates, then apply like the form's own button */
document.querySelectorAll(".preset").forEach((b) => b.addEventListener("click", () => {
  const now = new Date();
  document.getElementById("until").value = isoDay(now);
  document.getElementById("since").value = b.dataset.days === "month"
    ? isoDay(new Date(now.getFullYear(), now.getMonth(), 1)) : isoDay(new Date(now.getTime() - Number(b.dataset.days) * DAY));
  b.form.requestSubmit();
}));

/* the fleet hub's card page: the same card panel, from the hub's status of that card */
const hubcard = () => drawCards(document.getElementById("cards"), document.body.dataset.statusApi);

/* the phone's tab bar: the active tab in view, the fading edge only while more tabs lie beyond it */
const navBar = document.querySelector("header nav");
if (navBar) {
  navBar.querySelector("a.on")?.scrollIntoView({ block: "nearest", inline: "center" });
  const edge = () => {
    navBar.classList.toggle("at-end", navBar.scrollLeft + navBar.clientWidth >= navBar.scrollWidth - 2);
    navBar.classList.toggle("scrolled", navBar.scrollLeft > 2);
  };
  navBar.addEventListener("scroll", edge, { passive: true });
  edge();
}

const PAGES = { overview, usage, who, when, alerts, plan, calibrate, hubcard };
const page = PAGES[document.body.dataset.page];
if (page) page().then(() => { document.body.dataset.ready = "1"; });
