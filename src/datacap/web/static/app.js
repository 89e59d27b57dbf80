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
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const DAY = 86400000;
const DARK = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

function fmtBytes(n) {
  let v = Math.abs(Number(n) || 0);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  const sign = n < 0 ? "-" : "";
  return i === 0 ? `${sign}${v} B` : `${sign}${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${UNITS[i]}`;
}

function fmtRate(bps) {
  const steps = [["Gbit/s", 1e9], ["Mbit/s", 1e6], ["kbit/s", 1e3]];
  for (const [unit, size] of steps) if (bps >= size) return `${(bps / size).toFixed(1)} ${unit}`;
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

function bytesAxis() { return { type: "value", axisLabel: { formatter: (v) => fmtBytes(v) } }; }
const tooltip = { trigger: "axis", valueFormatter: (v) => fmtBytes(v) };

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
  } else notice(tiles, summary.data.error, "warn");
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
  const res = await api(path);
  if (!res.ok) { container.append(el("p", { class: "warn", text: res.data.error })); return; }
  for (const card of res.data.cards) {
    // Every figure comes from the status model's headline (the same one `datacap status` prints).
    const h = card.headline || {};
    const state = h.state || (card.throttled ? "throttled" : card.state || "active");
    const panel = el("section", { class: "panel card", "data-card": card.name, "data-state": state },
      el("h2", {}, card.label || card.name, " ", el("span", { class: `badge ${state}`, text: t(state) })));
    const gauges = el("div", { class: "gauges" });
    panel.append(gauges);
    const facts = el("dl", { class: "facts" });
    const fact = (k, v) => facts.append(el("dt", { text: k }), el("dd", { text: v }));
    const g = h.general || {};
    if (g.quota !== null && g.quota !== undefined) fact(t("left"), `${fmtBytes(g.left ?? 0)} / ${fmtBytes(g.quota)}`);
    if (h.pace) {
      const used = h.pace.used_pct, elapsed = h.pace.elapsed_pct;
      const ahead = used !== null && used > elapsed ? ` · ${t("ahead")}` : "";
      fact(t("pace"), `${t("used")} ${pctOf(used)} / ${pctOf(elapsed)} ${t("elapsed")}${ahead}`);
    }
    if (h.daily_budget !== null && h.daily_budget !== undefined) fact(t("daily_budget"), fmtBytes(h.daily_budget));
    fact(t("forecast"), h.runs_out ? fmtTime(h.runs_out) : t("lasts_cycle"));
    if (h.throttle_from) fact(t("throttle_from"), fmtTime(h.throttle_from));
    if (card.cycle) fact(t("cycle_ends"), fmtTime(card.cycle.end));
    if (h.overage && h.overage.bytes) fact(t("overage"), `${fmtBytes(h.overage.bytes)} (${h.overage.cost} ${h.overage.currency})`);
    fact(t("calibration"), card.calibration ? fmtTime(card.calibration.at || "") : t("never"));
    for (const m of card.carrier_mismatch || []) {  // the carrier's total for a part is not the config's quota
      fact(t("carrier_disagrees"), `${m.part}: ${fmtBytes(m.carrier_total)} · ${t("config_says")} ${fmtBytes(m.config_quota)}`);
    }
    for (const r of card.rollover_unknown || []) fact(t("rollover_unknown"), r.bucket);
    panel.append(facts);
    container.append(panel);
    card.buckets.forEach((b, i) => {
      const id = `gauge-${card.name}-${i}`.replace(/[^\w-]/g, "_");
      gauges.append(el("div", { class: "gauge", id }));
      const frac = b.quota_bytes ? Math.min(b.used_bytes / b.quota_bytes, 1) : 0;
      chart(id, {
        series: [{ type: "gauge", name: b.name, min: 0, max: 100, progress: { show: true, width: 12 },
          axisLine: { lineStyle: { width: 12 } }, axisLabel: { show: false }, splitLine: { show: false },
          axisTick: { show: false }, pointer: { show: false },
          title: { offsetCenter: [0, "92%"], fontSize: 13 },
          detail: { valueAnimation: false, offsetCenter: [0, "5%"], fontSize: 14,
            formatter: () => `${fmtBytes(b.remaining_bytes ?? 0)}\n${t("left")}` },
          data: [{ value: Math.round(frac * 1000) / 10, name: `${b.name} · ${fmtBytes(b.used_bytes)} ${t("used")}` }] }],
      });
    });
  }
}
const pctOf = (p) => (p === null || p === undefined ? "–" : `${Math.round(p)}%`);

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
  if (!res.ok) { document.getElementById("usage-total").textContent = res.data.error; return; }
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
    xAxis: { type: "category", data: starts.map((s) => label(by, s)) }, yAxis: bytesAxis(),
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
const nameOf = (kind, row) => row[kind] || row.exe || row.ip || "?";

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
  if (!res.ok) { document.getElementById("history-title").textContent = res.data.error; return; }
  const rows = res.data.rows;
  chart("history-chart", {
    tooltip, legend: { top: 0 }, grid: { left: 70, right: 16, top: 30, bottom: 30 },
    xAxis: { type: "category", data: rows.map((r) => r.start.slice(0, 10)) }, yAxis: bytesAxis(),
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
  if (!res.ok) { table.replaceChildren(el("caption", { text: res.data.error })); return; }
  const rows = res.data.rows;
  const top = rows.slice(0, 15).reverse();
  chart("who-chart", {
    tooltip, legend: { top: 0 }, grid: { left: 120, right: 16, top: 30, bottom: 30 },
    yAxis: { type: "category", data: top.map((r) => nameOf(kind, r)) }, xAxis: bytesAxis(),
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
  if (!res.ok) { document.getElementById("peak").textContent = res.data.error; return; }
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
function genericTable(container, rows) {
  if (!rows.length) { notice(container, t("no_data")); return; }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : v === null || v === undefined ? "" : String(v));
  container.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { text: c })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: cell(r[c]) })))))));
}
const firstList = (doc) => Object.values(doc).find(Array.isArray) || [];

async function alerts() {
  const features = (await api("features")).data;
  const rules = document.getElementById("alert-rules");
  const history = document.getElementById("alert-history");
  if (!features.alerts) { notice(rules, t("not_configured")); notice(history, t("not_configured")); return; }
  const [a, h] = await Promise.all([api("alerts"), api("alerts/history")]);
  if (a.ok) genericTable(rules, firstList(a.data)); else notice(rules, a.data.error, "warn");
  if (h.ok) genericTable(history, firstList(h.data)); else notice(history, h.data.error, "warn");
}

/* a card's resolved config as nested key/value lists: readable whatever fields the plan model has */
function describe(value) {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return document.createTextNode(value.join(", "));
    return el("ol", { class: "kv-list" }, ...value.map((v) => el("li", {}, describe(v))));
  }
  if (value !== null && typeof value === "object") {
    const dl = el("dl", { class: "facts" });
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined || (Array.isArray(v) && !v.length)) continue;
      dl.append(el("dt", { text: k }), el("dd", {}, describe(v)));
    }
    return dl;
  }
  return document.createTextNode(String(value));
}

async function plan() {
  const box = document.getElementById("plan");
  const res = await api("plan");
  if (!res.ok) { notice(box, res.data.error, "warn"); return; }
  if (!res.data.cards.length) { notice(box, t("not_configured")); return; }
  box.replaceChildren(...res.data.cards.map((c) => el("section", { class: "plan-card" },
    el("h3", { text: c.name || "?" }), describe(c))));
}

/* ---------------------------------------------------------------- calibrate */
async function calibrate() {
  const features = (await api("features")).data;
  if (!features.calibration) {
    document.getElementById("calibrate-result").textContent = t("not_configured");
    document.querySelectorAll("#calibrate-form input, #calibrate-form textarea, #calibrate-form button")
      .forEach((n) => { n.disabled = true; });
    return;
  }
  const plans = await api("plan");
  if (plans.ok) for (const c of plans.data.cards) document.getElementById("card-names").append(el("option", { value: c.name || "" }));
  const out = document.getElementById("calibrate-result");
  document.getElementById("calibrate-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams(new FormData(e.target));
    const res = await fetch("/api/v1/calibrate", { method: "POST", body, credentials: "same-origin" });
    const doc = await res.json().catch(() => ({ error: res.statusText }));
    if (res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
    out.className = res.ok ? "ok" : "warn";
    out.textContent = res.ok ? `${t("saved")}: ${JSON.stringify(doc)}` : `${t("error")}: ${doc.error}`;
  });
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

const PAGES = { overview, usage, who, when, alerts, plan, calibrate, hubcard };
const page = PAGES[document.body.dataset.page];
if (page) page().then(() => { document.body.dataset.ready = "1"; });
