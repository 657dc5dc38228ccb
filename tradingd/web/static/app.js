// The dashboard page: reads the API, updates itself from /api/stream (server-sent events read with fetch, so the
// token header can go with it), and polls instead when there is no live feed (`tradingd serve`).
"use strict";

const TOKEN_KEY = "tradingd_dashboard_token";
const POLL_MS = 5000;
// At most one refresh every 2 s: a fast replay completes many iterations a second, and each refresh is CPU the
// daemon's process shares (the GIL) with its trading loop.
const MIN_REFRESH_MS = 2000;
let lastRefresh = 0;
let refreshTimer = null;
const $ = (id) => document.getElementById(id);
let pendingAction = null;
let refreshing = false;
let refreshAgain = false;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

function askToken(why, then) {
  pendingAction = then || null;
  $("token-note").textContent = why || "kept in this tab's session storage only";
  $("token-box").hidden = false;
  $("token").focus();
}

$("token-save").addEventListener("click", () => {
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  $("token-box").hidden = true;
  const action = pendingAction;
  pendingAction = null;
  if (action) action(); else refresh();
});

function say(text, bad) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
  box.style.background = bad ? "#ffebe9" : "#dafbe1";
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ headers: headers() }, options || {}));
  if (response.status === 401 || response.status === 403) {
    if (response.status === 403) sessionStorage.removeItem(TOKEN_KEY);
    const error = new Error("token"); error.status = response.status; throw error;
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }  // a 500's body is plain text
  if (!response.ok || body === null) {
    const error = new Error((body && body.detail) || `${response.status} ${response.statusText}`);
    error.status = response.status; throw error;
  }
  return body;
}

const fmt = (v, d = 2) => (v === null || v === undefined || v === "") ? "–" : Number(v).toLocaleString(undefined,
  { minimumFractionDigits: d, maximumFractionDigits: d });
const cls = (v) => (v === null || v === undefined) ? "" : (Number(v) < 0 ? "neg" : (Number(v) > 0 ? "pos" : ""));
function cell(text, className) { const td = document.createElement("td"); td.textContent = text; if (className) td.className = className; return td; }
function fillRows(tableId, rows, toCells) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows.map((row) => { const tr = document.createElement("tr"); tr.append(...toCells(row)); return tr; }));
}
function listItems(listId, items) {
  $(listId).replaceChildren(...items.map((text) => { const li = document.createElement("li"); li.textContent = text; return li; }));
}

function gauge(label, value, limit, of) {
  const share = (value === null || !limit) ? 0 : Math.min(100, value / limit * 100);
  const kind = share >= 100 ? "over" : (share >= 80 ? "near" : "");
  const div = document.createElement("div");
  div.className = "gauge";
  div.innerHTML = `<div>${label}: <b>${value === null ? "–" : fmt(value)}%</b> ${of || "of " + fmt(limit) + "% limit"}</div>
    <div class="bar"><div class="fill ${kind}" style="width:${share}%"></div></div>`;
  return div;
}

function showSelection(selection) {
  const risk = selection.risk_metrics;
  $("gauges").replaceChildren(gauge("Daily loss", risk.daily_loss_pct, risk.max_daily_loss_pct),
    gauge("Drawdown", risk.current_drawdown, risk.max_drawdown_pct));
  $("at-risk").textContent = "at risk: " + (risk.at_risk ? "yes" : "no");
}

function showStatus(s) {
  $("mode").textContent = s.mode;
  const state = s.trading_state.state;
  $("state").textContent = state;
  $("state").className = "pill state " + state;
  $("state").title = s.trading_state.reasons.map((r) => r.code + ": " + r.detail).join("\n");
  $("session").textContent = s.session ? "session " + s.session : "no session yet";
  $("equity").textContent = s.equity === null ? "" : "$" + fmt(s.equity);
  $("exposure").replaceChildren(...s.exposure.map((t) => gauge(`${t.tier} $${fmt(t.exposure, 0)} of $${fmt(t.allocation, 0)}`,
    t.pct_of_allocation, 100, "of its allocation")));
  listItems("breakers", [
    "trading state: " + state + (s.trading_state.reasons.length ? " (" + s.trading_state.reasons.map((r) => r.code).join(", ") + ")" : ""),
    ...Object.entries(s.breakers).map(([name, value]) => `${name}: ${value === null ? "clear" : "TRIPPED " + value}`),
  ]);
  listItems("limits", Object.entries(s.limits).map(([k, v]) => `${k}: ${v}`));
  const pf = s.portfolio;  // the same figures as `tradingd status` (README "Portfolio risk metrics")
  const why = pf.note ? " (" + pf.note + ")" : "";
  listItems("portfolio", [
    "volatility: " + (pf.volatility_pct === null ? "n/a" : fmt(pf.volatility_pct) + "% annualised, " + pf.lookback_sessions + "-session") + why,
    "diversification ratio: " + (pf.diversification_ratio === null ? "n/a" : fmt(pf.diversification_ratio)),
    "positions weighed: " + pf.positions,
  ]);
}

function showEquity(curve) {
  const x = curve.points.map((p) => p.session);
  const traces = [{ x, y: curve.points.map((p) => p.equity), name: "equity", mode: "lines", line: { color: "#0969da" } }];
  if (curve.points.some((p) => p.benchmark !== null)) {
    traces.push({ x, y: curve.points.map((p) => p.benchmark), name: curve.benchmark || "benchmark", mode: "lines",
      line: { color: "#8c959f", dash: "dot" } });
  }
  Plotly.react("equity-chart", traces, { margin: { l: 60, r: 10, t: 10, b: 30 }, legend: { orientation: "h" },
    yaxis: { tickprefix: "$" } }, { displayModeBar: false, responsive: true });
}

function showFills(fills) {
  listItems("fills", fills.slice(-30).reverse().map((f) =>
    `${f.ts.slice(0, 16).replace("T", " ")}  ${f.side.toUpperCase()} ${fmt(f.qty, 4)} ${f.symbol} @ ${fmt(f.price)}`));
}

// Each panel renders from its own answer: a failed request shows its error in its panel, the others still render.
const PANELS = [
  ["status", "/api/status"], ["selection", "/api/smart-selection"], ["positions", "/api/positions"],
  ["orders", "/api/orders?status=open"], ["fills", "/api/fills"], ["equity", "/api/equity"],
  ["candidates", "/api/candidates"], ["warnings", "/api/warnings?limit=20"], ["health", "/api/health"],
];

function render(name, value) {
  if (name === "status") showStatus(value);
  else if (name === "selection") showSelection(value);
  else if (name === "equity") showEquity(value);
  else if (name === "positions") fillRows("positions", value, (p) => [cell(p.symbol), cell(p.tier || "–", "text"), cell(fmt(p.qty, 4)),
    cell(fmt(p.avg_entry_price)), cell(fmt(p.market_price)), cell(fmt(p.market_value)),
    cell(fmt(p.unrealized_pl), cls(p.unrealized_pl)), cell(fmt(p.unrealized_pl_pct), cls(p.unrealized_pl_pct))]);
  else if (name === "orders") fillRows("orders", value, (o) => [cell(o.symbol), cell(o.side, "text"), cell(o.order_type, "text"),
    cell(o.qty === null ? "$" + o.notional : fmt(o.qty, 4)), cell(o.stop_price === null ? "–" : fmt(o.stop_price)),
    cell(o.status, "text")]);
  else if (name === "candidates") showCandidates(value);
  else if (name === "fills") showFills(value);
  else if (name === "warnings") listItems("warnings", value.map((w) => `${w.ts.slice(0, 16).replace("T", " ")}  ${w.kind}: ${w.detail}`));
  else if (name === "health") {
    $("health").textContent = "health: " + value.status;
    $("health").title = `broker: ${value.broker.reason}\nstream: ${value.stream.reason}`;
  }
}

function showCandidates(candidates) {
  fillRows("candidates", candidates.candidates, (c) => {
    const p = c.win_probability ?? predicted.get(c.symbol) ?? null;  // null: no trained predictor, never a guess
    return [cell(c.rank ?? "–"), cell(c.symbol, "text"), cell(fmt(c.score, 3)), cell(fmt(c.zscore, 2)),
      cell(fmt(c.rvol, 2)), cell(p === null ? "–" : fmt(p * 100, 1) + "%")];
  });
  $("candidates-note").textContent = candidates.as_of ? `scan of ${candidates.as_of}` : (candidates.note || "");
}

// Where a panel's error shows: the element the panel renders into.
const PANEL_ERROR_TARGET = {
  status: "exposure", selection: "gauges", positions: "positions", orders: "orders", fills: "fills",
  equity: "equity-chart", candidates: "candidates-note", warnings: "warnings", health: "health",
};

function showPanelError(name, error) {
  const target = $(PANEL_ERROR_TARGET[name]);
  const text = `${name}: could not load (${error.message})`;
  if (target.tagName === "TABLE") {
    const td = cell(text, "error"); td.colSpan = 8;
    const tr = document.createElement("tr"); tr.append(td);
    target.querySelector("tbody").replaceChildren(tr);
  } else if (target.tagName === "UL") listItems(target.id, [text]);
  else {
    if (name === "equity" && window.Plotly) Plotly.purge(target);  // a plotly div keeps its state: clear it first
    target.textContent = text;
  }
}

let predicted = new Map();

async function refresh() {
  if (refreshing) { refreshAgain = true; return; }
  const wait = lastRefresh + MIN_REFRESH_MS - Date.now();
  if (wait > 0) {
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, wait);
    return;
  }
  refreshing = true;
  lastRefresh = Date.now();
  try {
    const results = await Promise.allSettled(PANELS.map(([, path]) => api(path)));
    const failed = [];
    let needToken = false;
    const selection = results[1];
    if (selection.status === "fulfilled") predicted = new Map(selection.value.top_scores.map((s) => [s.symbol, s.win_probability]));
    PANELS.forEach(([name], i) => {
      const result = results[i];
      if (result.status === "fulfilled") {
        try { render(name, result.value); } catch (error) { failed.push(name); showPanelError(name, error); }
        return;
      }
      const error = result.reason;
      if (error.status === 401 || error.status === 403) { needToken = true; return; }
      failed.push(name);
      showPanelError(name, error);
    });
    if (needToken) askToken("this dashboard needs its token for reads too");
    else if (failed.length) say("could not refresh: " + failed.join(", "), true);
    else if ($("message").style.background === "rgb(255, 235, 233)") say("", false);
  } finally {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; refresh(); }
  }
}

async function act(path, body) {
  if (!token()) { askToken("halt and resume need the dashboard token", () => act(path, body)); return; }
  try {
    const result = await api(path, { method: "POST", headers: headers({ "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body) });
    say(result.message, false);
    refresh();
  } catch (error) {
    if (error.status === 401 || error.status === 403) askToken("that token was refused: enter the dashboard token", () => act(path, body));
    else say(error.message, true);
  }
}

$("halt").addEventListener("click", () => act("/api/halt", { reason: $("reason").value.trim() || "dashboard" }));
$("resume").addEventListener("click", () => act("/api/resume"));

// ---- live updates ------------------------------------------------------------------------------------------------

let lastEventId = null;
let pollTimer = null;

function poll(why) {
  $("feed").textContent = "polling every " + POLL_MS / 1000 + " s";
  $("feed").title = why;
  if (!pollTimer) pollTimer = setInterval(refresh, POLL_MS);
}

function handle(kind, data) {
  if (kind === "OrderFilled") {
    const li = document.createElement("li");
    li.textContent = `${data.fill_ts.slice(0, 16).replace("T", " ")}  ${data.side.toUpperCase()} ${fmt(data.qty, 4)} ${data.symbol} @ ${fmt(data.price)}`;
    $("fills").prepend(li);
  }
  if (kind === "IterationCompleted" || kind === "TradingStateChanged" || kind === "CircuitBreakerTripped" || kind === "reset") refresh();
}

async function stream() {
  try {
    const h = headers({ Accept: "text/event-stream" });
    if (lastEventId !== null) h["Last-Event-ID"] = lastEventId;
    const response = await fetch("/api/stream", { headers: h });
    if (response.status === 404) { poll("no live feed (tradingd serve): polling"); return; }
    if (!response.ok) throw new Error("stream " + response.status);
    $("feed").textContent = "live";
    $("feed").title = "server-sent events from the daemon";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message", data = "", id = null;
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
          else if (line.startsWith("id: ")) id = line.slice(4);
        }
        if (id !== null) lastEventId = id;
        if (data) { try { handle(kind, JSON.parse(data)); } catch (e) { /* a malformed event is skipped */ } }
      }
    }
    throw new Error("stream ended");
  } catch (error) {
    // The daemon stopped or restarted: poll meanwhile, try the stream again later.
    poll("live feed lost (" + error.message + "): polling, retrying the stream");
    setTimeout(() => { clearInterval(pollTimer); pollTimer = null; stream(); }, 10000);
  }
}

refresh();
stream();
