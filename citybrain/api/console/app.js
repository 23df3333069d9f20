// The citybrain console: the operations center's map, queues and incident pages, and the
// departments' workbench. Plain ES module, no build step; every text from the server is put
// in the page as text (never as HTML). Chinese first, English on the switch.

import { projection } from "./geo.js";

const T = {
  zh: {
    title: "城市大脑 · 运营中心", map: "地图", queues: "队列", workbench: "工作台",
    signin: "登录", signout: "退出", token: "访问令牌", signinHint: "请输入运营中心或部门的访问令牌（cbt_…）。",
    needs_location: "待定位", unrouted: "未派单", rejected_by_all: "全部退单", overdue: "已超时",
    merge_suggestions: "合并建议", incident: "事件", category: "类别", status: "状态", priority: "优先级",
    district: "区", reports: "报告", tasks: "任务", lastSeen: "最近", firstSeen: "首次",
    department: "部门", role: "角色", ackBy: "响应时限", resolveBy: "办结时限", note: "说明",
    timeline: "处理记录", suggestions: "合并建议", score: "得分", reasons: "理由",
    actions: "操作", reason: "理由", place: "定位", placeHere: "定位到此", placeHint: "在地图上点击，或搜索地址库",
    search: "搜索", merge: "合并到", mergeInto: "目标事件编号", accept: "接受", dismiss: "忽略",
    assign: "派单 / 改派", replaces: "替换部门", deadline: "办结时限", urge: "督办",
    callback: "回访", outcome: "结果", satisfied: "满意", unsatisfied: "不满意", unreachable: "未接通",
    close: "办结", verification: "核实方式", sensor_normal: "传感器恢复正常", onsite_check: "现场核查",
    reopen: "重新打开", acknowledge: "签收", start: "开始处理", resolve: "办结反馈", reject: "退单",
    extension: "申请延期", send: "提交", none: "暂无", noSuch: "没有这个事件或任务（或不属于您）",
    applied: "已执行", refused: "被拒绝", accepted: "已受理", located: "已定位", all: "全部",
    lead: "主办", helper: "协办", text: "内容", address: "地址", source: "来源", when: "时间",
    what: "事项", actor: "操作人", detail: "详情", late: "已超时", left: "剩余", open: "打开",
    myTasks: "我的任务", lang: "EN", loading: "加载中…", forbidden: "无权操作",
    "s.open": "待处理", "s.dispatched": "已派单", "s.acknowledged": "已签收", "s.in_progress": "处理中",
    "s.resolved": "已办结", "s.closed": "已结案", "s.reopened": "重新打开", "s.rejected": "已退单",
    "s.cancelled": "已取消", grid: "网格",
    "c.fire_smoke": "烟雾火情", "c.gas_leak": "燃气泄漏", "c.flooding": "积水内涝", "c.water_level": "水位超限",
    "c.manhole": "井盖异常", "c.streetlight_out": "路灯故障", "c.cable_theft": "电缆被盗", "c.noise": "噪声扰民",
    "c.air_quality": "空气质量", "c.road_damage": "道路破损", "c.garbage": "垃圾堆放", "c.device_fault": "设备故障",
    "c.device_offline": "设备离线",
  },
  en: {
    title: "City Brain · Operations Center", map: "Map", queues: "Queues", workbench: "Workbench",
    signin: "Sign in", signout: "Sign out", token: "Access token", signinHint: "Enter an operations-center or department token (cbt_…).",
    needs_location: "Needs location", unrouted: "Unrouted", rejected_by_all: "Rejected by all", overdue: "Overdue",
    merge_suggestions: "Merge suggestions", incident: "Incident", category: "Category", status: "Status", priority: "Priority",
    district: "District", reports: "Reports", tasks: "Tasks", lastSeen: "Last seen", firstSeen: "First seen",
    department: "Department", role: "Role", ackBy: "Acknowledge by", resolveBy: "Resolve by", note: "Note",
    timeline: "Timeline", suggestions: "Merge suggestions", score: "Score", reasons: "Reasons",
    actions: "Actions", reason: "Reason", place: "Place", placeHere: "Place here", placeHint: "Click the map, or search the register",
    search: "Search", merge: "Merge into", mergeInto: "Target incident id", accept: "Accept", dismiss: "Dismiss",
    assign: "Assign / reassign", replaces: "Replaces", deadline: "Resolve by", urge: "Urge",
    callback: "Callback", outcome: "Outcome", satisfied: "Satisfied", unsatisfied: "Unsatisfied", unreachable: "Unreachable",
    close: "Close", verification: "Verified by", sensor_normal: "Sensor back to normal", onsite_check: "On-site check",
    reopen: "Reopen", acknowledge: "Acknowledge", start: "Start", resolve: "Resolve", reject: "Reject",
    extension: "Ask for more time", send: "Send", none: "None", noSuch: "No such incident or task (or not yours)",
    applied: "Applied", refused: "Refused", accepted: "Accepted", located: "Located", all: "All",
    lead: "Lead", helper: "Helper", text: "Text", address: "Address", source: "Source", when: "When",
    what: "What", actor: "Actor", detail: "Detail", late: "Overdue", left: "left", open: "Open",
    myTasks: "My tasks", lang: "中文", loading: "Loading…", forbidden: "Not allowed",
    "s.open": "open", "s.dispatched": "dispatched", "s.acknowledged": "acknowledged", "s.in_progress": "in progress",
    "s.resolved": "resolved", "s.closed": "closed", "s.reopened": "reopened", "s.rejected": "rejected",
    "s.cancelled": "cancelled", grid: "Grid",
    "c.fire_smoke": "fire / smoke", "c.gas_leak": "gas leak", "c.flooding": "flooding", "c.water_level": "water level",
    "c.manhole": "manhole cover", "c.streetlight_out": "streetlight out", "c.cable_theft": "cable theft", "c.noise": "noise",
    "c.air_quality": "air quality", "c.road_damage": "road damage", "c.garbage": "garbage", "c.device_fault": "device fault",
    "c.device_offline": "device offline",
  },
};
let lang = localStorage.getItem("citybrain.lang") || "zh";
const t = (key) => (T[lang] && T[lang][key]) || T.zh[key] || key;
const cat = (c) => { const name = t(`c.${c}`); return name === `c.${c}` ? c : name; };
const QUEUES = ["needs_location", "unrouted", "rejected_by_all", "overdue", "merge_suggestions"];
const COLORS = { 1: "#c62828", 2: "#ef6c00", 3: "#f9a825", 4: "#1e88e5" };
let session = null;
let view = projection("WGS-84", false);  // how data are drawn on the map's tiles
let stream = null;
let counts = {};
let timers = [];

// --- DOM: elements from data, text as text ----------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const main = () => document.getElementById("main");
function show(...nodes) { main().replaceChildren(...nodes); }
function toast(text, bad = false) {
  const box = h("div", { class: bad ? "bad" : "" }, text);
  document.getElementById("toast").append(box);
  setTimeout(() => box.remove(), 6000);
}
const when = (iso) => (iso ? new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false }) : "");
const badge = (text, cls) => h("span", { class: `badge ${cls || ""}` }, text);
const state = (status) => h("span", { class: `badge s-${status}`, "data-status": status }, t(`s.${status}`));
const prio = (p) => badge(`P${p}`, `p${p}`);

// --- the API ----------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
  const answer = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (answer.status === 401 && path !== "/console/session") { session = null; route(); throw new Error("401"); }
  const body = answer.status === 204 ? null : await answer.json().catch(() => null);
  if (!answer.ok) {
    const detail = body && body.detail;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.field}: ${d.reason}`).join("; ") : detail || answer.statusText;
    const error = new Error(text);
    error.status = answer.status;
    throw error;
  }
  return body;
}
const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });

/** Send a command; wait until its stage answered; say what came of it. */
async function command(path, body) {
  let sent;
  try {
    sent = await post(`/api/v1${path}`, body);
  } catch (e) {
    toast(`${e.status === 403 ? t("forbidden") : t("refused")}: ${e.message}`, true);
    return null;
  }
  for (let i = 0; i < 60; i++) {
    const state = await api(sent.status_url);
    if (state.status !== "accepted") {
      toast(`${t(state.command)} · ${t(state.status)}: ${state.result || ""}`, state.status === "refused");
      return state;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  toast(`${t(sent.command)} · ${t("accepted")}`);
  return sent;
}

// --- sign-in ----------------------------------------------------------------------------------
function signInPage() {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", placeholder: "cbt_…" });
  const form = h("form", { class: "card signin", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      session = await post("/console/session", { token: input.value.trim() });
      location.hash = session.role === "operations" ? "#/queues" : "#/workbench";
      start();
    } catch (e) { toast(`${t("signin")}: ${e.message}`, true); }
  } }, h("h2", {}, t("signin")), h("p", { class: "muted" }, t("signinHint")),
    h("label", {}, t("token"), input), h("button", { class: "act", type: "submit", id: "signin" }, t("signin")));
  show(form);
  input.focus();
}

async function signOut() {
  try { await post("/console/session/end"); } catch (e) { /* ended already */ }
  session = null;
  if (stream) stream.close();
  location.hash = "";
  render();
}

// --- frame: header, navigation, live counts -----------------------------------------------------
function frame() {
  document.title = t("title");
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("title").textContent = t("title");
  const nav = document.getElementById("nav");
  const links = session ? (session.role === "operations" ? ["map", "queues"] : ["workbench", "map"]) : [];
  const here = (location.hash.split("/")[1] || "");
  nav.replaceChildren(...links.map((k) => h("a", { href: `#/${k}`, class: here === k ? "on" : "", id: `nav-${k}` }, t(k),
    k === "queues" ? h("span", { class: "count", id: "count-total" }, total()) : null)));
  const who = document.getElementById("who");
  who.replaceChildren(
    session ? h("span", {}, session.label || session.department || session.role) : "",
    h("button", { id: "lang", onclick: () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("citybrain.lang", lang); render(); } }, t("lang")),
    session ? h("button", { id: "signout", onclick: signOut }, t("signout")) : "",
  );
}
const total = () => QUEUES.filter((q) => q !== "merge_suggestions").reduce((n, q) => n + (counts[q] || 0), 0);

function listen() {
  if (stream) stream.close();
  stream = new EventSource("/api/v1/queues/stream");
  stream.addEventListener("queues", (ev) => {
    counts = JSON.parse(ev.data);
    for (const q of QUEUES) {
      const el = document.getElementById(`count-${q}`);
      if (el) el.textContent = counts[q] || 0;
    }
    const all = document.getElementById("count-total");
    if (all) all.textContent = total();
  });
}

// --- router -----------------------------------------------------------------------------------
function route() { render(); }
async function render() {
  timers.forEach(clearInterval);
  timers = [];
  frame();
  if (!session) return signInPage();
  const [, page, id] = location.hash.split("/");
  try {
    if (page === "incident" && id) return await incidentPage(decodeURIComponent(id));
    if (page === "task" && id) return await taskPage(decodeURIComponent(id));
    if (page === "map") return await mapPage();
    if (page === "workbench") return await workbenchPage();
    if (page === "queues" || session.role === "operations") return await queuesPage(id || "needs_location");
    return await workbenchPage();
  } catch (e) {
    if (e.message === "401") return;
    show(h("div", { class: "card", id: "error" }, e.status === 404 ? t("noSuch") : e.status === 403 ? t("forbidden") : e.message));
  }
}

// --- queues -----------------------------------------------------------------------------------
async function queuesPage(queue) {
  if (!QUEUES.includes(queue)) queue = "needs_location";
  const page = await api(`/api/v1/incidents?queue=${queue}&limit=200`);
  // built after the wait: counts that arrived meanwhile are in them
  const tabs = h("div", { class: "tabs" }, QUEUES.map((q) => h("a", { href: `#/queues/${q}`, class: q === queue ? "on" : "", id: `tab-${q}` },
    t(q), h("span", { class: "count", id: `count-${q}` }, counts[q] || 0))));
  show(h("h2", {}, t("queues")), tabs, incidentTable(page.incidents, queue));
}

function incidentTable(incidents, id) {
  if (!incidents.length) return h("p", { class: "muted", id: `empty-${id}` }, t("none"));
  return h("table", { id: `list-${id}` },
    h("tr", {}, [t("incident"), t("category"), t("priority"), t("status"), t("district"), t("reports"), t("lastSeen")].map((x) => h("th", {}, x))),
    incidents.map((i) => h("tr", { class: i.overdue ? "overdue" : "" },
      h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(i.incident_id)}`, class: "incident-link" }, i.incident_id)),
      h("td", {}, cat(i.category)), h("td", {}, prio(i.priority)),
      h("td", {}, state(i.status), " ", i.location_status === "located" ? "" : badge(t("needs_location"))),
      h("td", {}, i.district || "—"), h("td", {}, i.reports_total), h("td", {}, when(i.last_seen)))));
}

// --- map --------------------------------------------------------------------------------------
function baseMap(el, options = {}) {
  const map = L.map(el, { preferCanvas: true, ...options });
  view = projection(session.tiles_crs, Boolean(session.tiles));
  if (session.tiles) L.tileLayer(session.tiles, { maxZoom: 18 }).addTo(map);
  return map;
}
const geoJSON = (data, options) => L.geoJSON(data, { ...options, coordsToLatLng: (c) => L.latLng(...view.toMap(c[0], c[1])) });
async function districtsLayer(map) {
  const geo = await api("/api/v1/city/districts");
  const layer = geoJSON(geo, { style: { color: "#43617f", weight: 1, fillColor: "#9db7d1", fillOpacity: 0.15 },
    onEachFeature: (f, l) => l.bindTooltip(`${f.properties.name} ${f.properties.code}`) }).addTo(map);
  map.fitBounds(layer.getBounds());
  // the management grid (网格), drawn when zoomed in far enough to read it
  const grid = geoJSON(null, { style: { color: "#7d8fa3", weight: 0.5, fill: false }, interactive: false }).addTo(map);
  map.on("moveend", async () => {
    grid.clearLayers();
    if (map.getZoom() < 14) return;
    const b = map.getBounds();
    const [west, south] = view.fromMap(b.getSouthWest()), [east, north] = view.fromMap(b.getNorthEast());
    grid.addData(await api(`/api/v1/city/grid?bbox=${[west, south, east, north].map((v) => v.toFixed(5)).join(",")}`));
  });
  return layer;
}
async function mapPage() {
  const box = h("div", { id: "map" });
  const filter = h("select", { id: "map-filter" }, h("option", { value: "" }, t("all")),
    ["fire_smoke", "gas_leak", "flooding", "manhole", "streetlight_out", "noise", "air_quality"].map((c) => h("option", { value: c }, cat(c))));
  show(h("div", { class: "row" }, h("h2", {}, t("map")), filter), box);
  const map = baseMap(box);
  await districtsLayer(map);
  const markers = L.layerGroup().addTo(map);
  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => h("div", { class: "legend" }, [1, 2, 3, 4].map((p) => h("div", {}, h("span", { class: `dot p${p}` }), `P${p}`)));
  legend.addTo(map);
  async function load() {
    const category = filter.value ? `&category=${filter.value}` : "";
    const page = await api(`/api/v1/incidents?limit=500${category}`);
    markers.clearLayers();
    for (const i of page.incidents) {
      if (i.lon === null || ["closed", "resolved"].includes(i.status)) continue;
      L.circleMarker(view.toMap(i.lon, i.lat), { radius: 6 + Math.min(8, i.reports_total), color: COLORS[i.priority] || "#555", fillOpacity: 0.7 })
        .bindPopup(h("div", {}, h("b", {}, cat(i.category)), " ", `P${i.priority}`, h("br"), i.status, h("br"),
          h("a", { href: `#/incident/${encodeURIComponent(i.incident_id)}` }, i.incident_id)))
        .addTo(markers);
    }
  }
  filter.addEventListener("change", load);
  await load();
  timers.push(setInterval(load, 15000));
}

// --- one incident -----------------------------------------------------------------------------
async function incidentPage(id) {
  const inc = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
  const ops = session.role === "operations";
  const head = h("div", { class: "card", id: "incident-head" },
    h("h2", {}, `${t("incident")} ${inc.incident_id} `, prio(inc.priority), " ", state(inc.status), " ",
      inc.location_status === "located" ? badge(t("located")) : badge(t("needs_location"), "p2")),
    h("div", {}, `${t("category")}: ${cat(inc.category)} · ${t("district")}: ${inc.district || "—"} · ${t("reports")}: ${inc.reports_total} · ${t("firstSeen")}: ${when(inc.first_seen)} · ${t("lastSeen")}: ${when(inc.last_seen)}`));
  const reports = h("div", { class: "card" }, h("h3", {}, t("reports")), h("table", { id: "reports" },
    h("tr", {}, [t("when"), t("source"), t("text"), t("address")].map((x) => h("th", {}, x))),
    inc.reports.map((r) => h("tr", {}, h("td", {}, when(r.observed_at)), h("td", {}, r.feed || r.source_kind), h("td", {}, r.text || ""), h("td", {}, r.address || "")))));
  const tasks = h("div", { class: "card" }, h("h3", {}, t("tasks")), inc.tasks_detail.length ? h("table", { id: "tasks" },
    h("tr", {}, [t("department"), t("role"), t("status"), t("resolveBy"), t("note"), ""].map((x) => h("th", {}, x))),
    inc.tasks_detail.map((k) => h("tr", { class: k.overdue ? "overdue" : "", "data-department": k.department },
      h("td", {}, k.department), h("td", {}, t(k.role)), h("td", {}, state(k.status)),
      h("td", {}, countdown(k.resolve_deadline, k.status)), h("td", {}, k.note || k.reason || ""),
      h("td", {}, ops && ["dispatched", "acknowledged", "in_progress"].includes(k.status)
        ? h("button", { class: "act ghost urge", onclick: () => ask(t("urge"), (reason) => command(`/tasks/${k.dispatch_id}/urge`, { reason })) }, t("urge"))
        : session.department === k.department ? h("a", { href: `#/task/${k.dispatch_id}` }, t("open")) : "")))) : h("p", { class: "muted" }, t("none")));
  const parts = [head];
  const placeable = ops && inc.status !== "closed";
  if (placeable) parts.push(await placeCard(inc));
  parts.push(h("div", { class: "row" }, h("div", { class: "grow" }, reports, tasks,
    ops ? suggestionsCard(inc) : "", timelineCard(inc)), ops ? actionsCard(inc) : ""));
  show(...parts);
  if (placeable) await drawPlaceMap(inc);
}

function countdown(iso, status) {
  const el = h("span", { class: "countdown" });
  const tick = () => {
    if (!["dispatched", "acknowledged", "in_progress"].includes(status)) { el.textContent = when(iso); return; }
    const ms = new Date(iso) - Date.now();
    const abs = Math.abs(ms), hours = Math.floor(abs / 3.6e6), minutes = Math.floor((abs % 3.6e6) / 6e4), seconds = Math.floor((abs % 6e4) / 1e3);
    const span = `${hours}:${String(minutes).padStart(2, "0")}:${String(seconds).padStart(2, "0")}`;
    el.textContent = ms < 0 ? `${t("late")} ${span}` : `${span} ${t("left")}`;
    el.classList.toggle("late", ms < 0);
  };
  tick();
  timers.push(setInterval(tick, 1000));
  return el;
}

let pending = null;
async function placeCard(inc) {
  const results = h("ul", { class: "results", id: "place-results" });
  const q = h("input", { id: "place-search", placeholder: t("search") });
  q.addEventListener("keydown", async (ev) => {
    if (ev.key !== "Enter") return;
    const found = await api(`/api/v1/city/places?q=${encodeURIComponent(q.value)}`);
    results.replaceChildren(...found.map((p) => h("li", { onclick: () => setPending(p.lon, p.lat, p.name) }, `${p.name} (${p.kind}, ${p.district})`)));
  });
  const reason = h("input", { id: "place-reason", placeholder: t("reason") });
  const button = h("button", { class: "act", id: "place-here", disabled: true, onclick: async () => {
    if (!pending) return;
    const state = await command(`/incidents/${encodeURIComponent(inc.incident_id)}/place`,
      { lon: pending.lon, lat: pending.lat, address: pending.name || null, reason: reason.value || t("place") });
    if (state && state.status === "applied") setTimeout(render, 800);
  } }, t("placeHere"));
  return h("div", { class: "card", id: "place" }, h("h3", {}, t("place"), " ", h("span", { class: "muted" }, t("placeHint"))),
    h("div", { class: "row" }, h("div", { class: "grow" }, h("div", { id: "placemap" })),
      h("div", {}, q, results, reason, " ", button, h("div", { id: "pending", class: "muted" }))));
}
let placeMap = null, pendingMarker = null;
function setPending(lon, lat, name) {
  pending = { lon, lat, name };
  document.getElementById("place-here").disabled = false;
  document.getElementById("pending").textContent = `${lon.toFixed(6)}, ${lat.toFixed(6)} ${name || ""}`;
  if (pendingMarker) pendingMarker.remove();
  pendingMarker = L.marker(view.toMap(lon, lat)).addTo(placeMap);
  placeMap.setView(view.toMap(lon, lat), Math.max(placeMap.getZoom(), 13));
}
async function drawPlaceMap(inc) {
  pending = null;
  placeMap = baseMap(document.getElementById("placemap"));
  await districtsLayer(placeMap);
  if (inc.lon !== null) L.circleMarker(view.toMap(inc.lon, inc.lat), { radius: 9, color: COLORS[inc.priority] }).addTo(placeMap);
  placeMap.on("click", (ev) => { const [lon, lat] = view.fromMap(ev.latlng); setPending(lon, lat, ""); });
}

function suggestionsCard(inc) {
  return h("div", { class: "card", id: "suggestions" }, h("h3", {}, t("suggestions")), inc.suggestions.length ? h("table", {},
    h("tr", {}, [t("incident"), t("score"), t("reasons"), ""].map((x) => h("th", {}, x))),
    inc.suggestions.map((s) => h("tr", {},
      h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(s.candidate_id)}` }, s.candidate_id), " ", state(s.status)),
      h("td", {}, s.score.toFixed(2)), h("td", {}, s.reasons.join("; ")),
      h("td", {}, h("button", { class: "act accept", onclick: () => ask(t("accept"), (reason) => command(`/incidents/${encodeURIComponent(inc.incident_id)}/suggestions/${encodeURIComponent(s.candidate_id)}/accept`, { reason })) }, t("accept")), " ",
        h("button", { class: "act ghost dismiss", onclick: () => ask(t("dismiss"), (reason) => command(`/incidents/${encodeURIComponent(inc.incident_id)}/suggestions/${encodeURIComponent(s.candidate_id)}/dismiss`, { reason })) }, t("dismiss")))))) : h("p", { class: "muted" }, t("none")));
}

function timelineCard(inc) {
  return h("div", { class: "card" }, h("h3", {}, t("timeline")), h("ul", { class: "timeline", id: "timeline" },
    inc.timeline.map((e) => h("li", {}, h("span", { class: "src" }, e.source), `${when(e.at)} · ${e.what}`,
      e.department ? ` · ${e.department}` : "", e.actor ? ` · ${e.actor}` : "", e.detail ? ` · ${e.detail}` : ""))));
}

/** Ask for a reason (every decision is recorded with one), then act. */
function ask(title, act) {
  const reason = window.prompt(`${title} — ${t("reason")}`, "");
  if (reason) act(reason).then((state) => { if (state && state.status === "applied") setTimeout(render, 800); });
}

function actionsCard(inc) {
  const path = (what) => `/incidents/${encodeURIComponent(inc.incident_id)}/${what}`;
  const field = (name, control) => h("label", {}, t(name), control);
  const reasonBox = (id) => h("input", { id, placeholder: t("reason") });
  const run = (what, body, reasonId) => async () => {
    const state = await command(path(what), { ...body(), reason: document.getElementById(reasonId).value || t(what) });
    if (state && state.status === "applied") setTimeout(render, 800);
  };
  const into = h("input", { id: "merge-into", placeholder: t("mergeInto") });
  const department = h("select", { id: "assign-department" });
  api("/api/v1/departments").then((list) => department.replaceChildren(...list.map((d) => h("option", { value: d.code }, `${d.name} (${d.code})`))));
  const replaces = h("select", { id: "assign-replaces" }, h("option", { value: "" }, "—"),
    inc.tasks_detail.filter((k) => ["dispatched", "acknowledged", "in_progress"].includes(k.status)).map((k) => h("option", { value: k.department }, k.department)));
  const deadline = h("input", { id: "assign-deadline", type: "datetime-local" });
  const outcome = h("select", { id: "callback-outcome" }, ["satisfied", "unsatisfied", "unreachable"].map((o) => h("option", { value: o }, t(o))));
  const verification = h("select", { id: "close-verification" }, ["callback", "onsite_check", "sensor_normal"].map((o) => h("option", { value: o }, t(o))));
  return h("div", { class: "card actions", id: "actions" }, h("h3", {}, t("actions")),
    h("div", { class: "action" }, h("b", {}, t("callback")), field("outcome", outcome), reasonBox("callback-reason"),
      h("button", { class: "act", id: "do-callback", onclick: run("callback", () => ({ outcome: outcome.value }), "callback-reason") }, t("send"))),
    h("div", { class: "action" }, h("b", {}, t("close")), field("verification", verification), reasonBox("close-reason"),
      h("button", { class: "act", id: "do-close", onclick: run("close", () => ({ verification: verification.value }), "close-reason") }, t("close"))),
    h("div", { class: "action" }, h("b", {}, t("assign")), field("department", department), field("replaces", replaces), field("deadline", deadline), reasonBox("assign-reason"),
      h("button", { class: "act", id: "do-assign", onclick: run("assign", () => ({ department: department.value, replaces: replaces.value || null,
        resolve_deadline: deadline.value ? new Date(deadline.value).toISOString() : null }), "assign-reason") }, t("send"))),
    h("div", { class: "action" }, h("b", {}, t("merge")), into, reasonBox("merge-reason"),
      h("button", { class: "act warn", id: "do-merge", onclick: run("merge", () => ({ into: into.value.trim() }), "merge-reason") }, t("merge"))),
    h("div", { class: "action" }, h("b", {}, t("reopen")), reasonBox("reopen-reason"),
      h("button", { class: "act warn", id: "do-reopen", onclick: run("reopen", () => ({}), "reopen-reason") }, t("reopen"))));
}

// --- the departments' workbench ---------------------------------------------------------------
async function workbenchPage() {
  const page = await api("/api/v1/tasks?limit=200");
  const open = page.tasks.filter((k) => ["dispatched", "acknowledged", "in_progress"].includes(k.status));
  const done = page.tasks.filter((k) => !open.includes(k));
  const table = (tasks, id) => tasks.length ? h("table", { id },
    h("tr", {}, [t("incident"), t("category"), t("priority"), t("status"), t("district"), t("ackBy"), t("resolveBy")].map((x) => h("th", {}, x))),
    tasks.map((k) => h("tr", { class: k.overdue ? "overdue" : "" },
      h("td", {}, h("a", { href: `#/task/${k.dispatch_id}`, class: "task-link" }, k.dispatch_id)), h("td", {}, cat(k.category)), h("td", {}, prio(k.priority)),
      h("td", {}, state(k.status)), h("td", {}, k.district || "—"),
      h("td", {}, k.status === "dispatched" ? countdown(k.ack_deadline, k.status) : when(k.ack_deadline)), h("td", {}, countdown(k.resolve_deadline, k.status))))) : h("p", { class: "muted" }, t("none"));
  show(h("h2", {}, t("myTasks")), table(open, "open-tasks"), h("h3", {}, t("status")), table(done, "done-tasks"));
}

async function taskPage(id) {
  const k = await api(`/api/v1/tasks/${encodeURIComponent(id)}`);
  const note = h("textarea", { id: "task-note", placeholder: `${t("note")} / ${t("reason")}` });
  const days = h("input", { id: "extension-deadline", type: "datetime-local" });
  const act = (what, body) => async () => {
    try {
      await post(`/api/v1/tasks/${encodeURIComponent(id)}/${what}`, body ? body() : undefined);
      toast(`${t(what)} · ${t("accepted")}`);
      setTimeout(render, 1200);
    } catch (e) { toast(`${t(what)}: ${e.message}`, true); }
  };
  const open = ["dispatched", "acknowledged", "in_progress"].includes(k.status);
  show(h("div", { class: "card", id: "task-head" }, h("h2", {}, `${k.dispatch_id} `, prio(k.priority), " ", state(k.status)),
      h("div", {}, `${t("incident")}: ${k.incident_id} · ${t("category")}: ${cat(k.category)} · ${t("district")}: ${k.district || "—"} · ${t("role")}: ${t(k.role)}`),
      h("div", {}, `${t("ackBy")}: `, countdown(k.ack_deadline, k.status === "dispatched" ? k.status : "done"), ` · ${t("resolveBy")}: `, countdown(k.resolve_deadline, k.status))),
    h("div", { class: "card" }, h("h3", {}, t("reports")), h("table", {},
      h("tr", {}, [t("when"), t("source"), t("text"), t("address")].map((x) => h("th", {}, x))),
      k.reports.map((r) => h("tr", {}, h("td", {}, when(r.observed_at)), h("td", {}, r.feed || r.source_kind), h("td", {}, r.text || ""), h("td", {}, r.address || ""))))),
    open ? h("div", { class: "card actions", id: "task-actions" }, h("h3", {}, t("actions")), note,
      h("div", { class: "row" },
        k.status === "dispatched" ? h("button", { class: "act", id: "do-acknowledge", onclick: act("acknowledge") }, t("acknowledge")) : "",
        k.status !== "in_progress" ? h("button", { class: "act ghost", id: "do-start", onclick: act("start") }, t("start")) : "",
        h("button", { class: "act", id: "do-resolve", onclick: act("resolve", () => ({ note: note.value || t("resolve") })) }, t("resolve")),
        h("button", { class: "act warn", id: "do-reject", onclick: act("reject", () => ({ reason: note.value || t("reject") })) }, t("reject"))),
      h("div", { class: "action" }, h("b", {}, t("extension")), days,
        h("button", { class: "act ghost", id: "do-extension", onclick: act("extension", () => ({ resolve_deadline: new Date(days.value).toISOString(), reason: note.value || t("extension") })) }, t("send"))))
      : h("p", { class: "muted" }, k.note || ""));
}

// --- start --------------------------------------------------------------------------------------
async function start() {
  listen();
  render();
}
window.addEventListener("hashchange", route);
(async () => {
  try { session = await api("/console/session"); } catch (e) { session = null; }
  if (session) start(); else render();
})();
