// The stats dashboard: reads the stats API of the server that served this page
// (relative URLs only: the page must work on a network without internet) with
// the key entered in the page (session.js) and redraws every 30 seconds. Every piece of data is set as text (textContent,
// setAttribute), never parsed as HTML: ticket text is citizen input.
"use strict";

(() => {
  const REFRESH_MS = 30000;
  const REQUEST_TIMEOUT_MS = 10000;
  const CITY_TZ = "Asia/Shanghai";
  // The SVG namespace is a name, not an address: nothing is fetched from it.
  const SVG_NS = "http://www.w3.org/2000/svg";

  const API = {
    summary: "/v1/stats/summary",
    trend: "/v1/stats/trend",
    ranking: "/v1/stats/ranking",
    overdue: "/v1/tickets?overdue=true&limit=50",
    dispatch: "/v1/stats/dispatch-quality",
  };
  const DECIDERS = { rule: "规则", list: "权责清单", model: "模型", manual: "人工", unknown: "未记录" };
  const COUNTS = {
    received: "today-received",
    dispatched: "today-dispatched",
    resolved_on_spot: "today-on-spot",
    linked: "today-linked",
    resolved: "today-resolved",
    overdue: "today-overdue",
  };
  const RATES = {
    completion: ["办结率", "到期工单中按期办结的"],
    response: ["响应率", "派单后在响应时限内签收的"],
    resolution: ["解决率", "回访评价中表示问题已解决的"],
    satisfaction: ["满意率", "回访评价为满意或基本满意的"],
  };

  const byId = (id) => document.getElementById(id);
  const session = window.hotlineSession;

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function count(value) {
    return typeof value === "number" ? value.toLocaleString("zh-CN") : "—";
  }

  function percent(value) {
    return typeof value === "number" ? (value * 100).toFixed(1) + "%" : "—";
  }

  // Times from the API carry their offset; one without is UTC (as stored).
  function parseTime(text) {
    if (typeof text !== "string") return null;
    const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(text);
    const when = new Date(hasZone ? text : text + "Z");
    return Number.isNaN(when.getTime()) ? null : when;
  }

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: CITY_TZ, month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const clockFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: CITY_TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function overdueFor(deadline) {
    const hours = Math.floor((Date.now() - deadline.getTime()) / 3600000);
    if (hours < 1) return "已超不足 1 小时";
    if (hours < 24) return "已超 " + hours + " 小时";
    return "已超 " + Math.floor(hours / 24) + " 天 " + (hours % 24) + " 小时";
  }

  async function getJson(url) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      const response = await session.call(url, "application/json", abort.signal);
      if (!response.ok) throw new Error(url + " 返回 HTTP " + response.status);
      return await response.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // --- today's numbers -------------------------------------------------------

  function renderSummary(summary) {
    byId("today-date").textContent = summary.to || "—";
    const counts = summary.counts || {};
    for (const [field, id] of Object.entries(COUNTS)) byId(id).textContent = count(counts[field]);
    const rates = summary.rates || {};
    for (const [name, [label, rule]] of Object.entries(RATES)) {
      const rate = rates[name] || {};
      const numerator = typeof rate.numerator === "number" ? rate.numerator : 0;
      const denominator = typeof rate.denominator === "number" ? rate.denominator : 0;
      const value = byId("rate-" + name);
      value.textContent = percent(rate.value);
      value.dataset.numerator = String(numerator);
      value.dataset.denominator = String(denominator);
      byId("rate-" + name + "-fraction").textContent = numerator + " / " + denominator;
      byId("card-" + name).title = label + " = " + numerator + " / " + denominator
        + "（" + rule + "）" + (denominator ? "" : "；今日尚无可计算的工单");
    }
  }

  // --- the 30-day trend ---------------------------------------------------------

  function niceCeiling(max) {
    if (max <= 5) return 5;
    const power = Math.pow(10, Math.floor(Math.log10(max)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
    return 10 * power;
  }

  function renderTrend(trend) {
    const days = Array.isArray(trend.days) ? trend.days : [];
    const W = 960, H = 280, left = 48, right = 16, top = 16, bottom = 40;
    const plotW = W - left - right, plotH = H - top - bottom;
    const chart = svg("svg", {
      viewBox: "0 0 " + W + " " + H, width: "100%", preserveAspectRatio: "xMidYMid meet",
      class: "trend", "data-days": days.length,
    });
    const peak = Math.max(0, ...days.map((d) => Math.max(d.received || 0, d.dispatched || 0)));
    const ceiling = niceCeiling(peak);
    const y = (v) => top + plotH - (v / ceiling) * plotH;
    for (let i = 0; i <= 5; i++) {
      const v = (ceiling / 5) * i, yy = y(v);
      chart.append(svg("line", { x1: left, x2: W - right, y1: yy, y2: yy, class: "gridline" }));
      chart.append(svg("text", { x: left - 8, y: yy + 4, class: "axis y" }, Math.round(v * 10) / 10));
    }
    const band = days.length ? plotW / days.length : plotW;
    const labelEvery = Math.max(1, Math.ceil(days.length / 10));
    const points = [];
    days.forEach((d, i) => {
      const x = left + i * band, received = d.received || 0, dispatched = d.dispatched || 0;
      const isToday = d.day === trend.to;
      const bar = svg("rect", {
        x: x + band * 0.2, width: band * 0.6, y: y(received), height: y(0) - y(received),
        class: "bar-received" + (isToday ? " today" : ""),
        "data-day": d.day, "data-received": received, "data-dispatched": dispatched,
      });
      bar.append(svg("title", {}, d.day + "　受理 " + received + "　派单 " + dispatched));
      chart.append(bar);
      points.push([x + band / 2, y(dispatched), d.day]);
      if (i % labelEvery === 0 || i === days.length - 1) {
        const label = isToday ? "今日" : String(d.day).slice(5);
        chart.append(svg("text", { x: x + band / 2, y: H - bottom + 18, class: "axis x" }, label));
      }
    });
    if (points.length) {
      chart.append(svg("polyline", {
        points: points.map(([px, py]) => px + "," + py).join(" "), class: "line-dispatched",
      }));
      for (const [px, py, day] of points) {
        chart.append(svg("circle", { cx: px, cy: py, r: 3, class: "dot-dispatched", "data-day": day }));
      }
    }
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(0), y2: y(0), class: "baseline" }));
    if (peak === 0) {
      chart.append(svg("text", { x: left + plotW / 2, y: top + plotH / 2, class: "nodata" },
        "近 30 日暂无数据"));
    }
    byId("trend-chart").replaceChildren(chart);
  }

  // --- the department ranking ---------------------------------------------------

  function renderRanking(ranking) {
    const departments = Array.isArray(ranking.departments) ? ranking.departments : [];
    byId("ranking-period").textContent = ranking.from && ranking.to
      ? "（" + ranking.from + " 至 " + ranking.to + "）" : "";
    const rows = departments.map((d) => {
      const row = element("tr", null, d.laggard ? "laggard" : "");
      row.dataset.department = String(d.department);
      const name = element("td");
      name.append(element("span", d.department_name || d.department, "dept"));
      name.append(element("span", " " + d.department, "dept-id"));
      if (d.laggard) name.append(element("span", "靠后", "badge"));
      row.append(
        element("td", d.rank == null ? "—" : d.rank, "num"), name, element("td", count(d.dispatched), "num"),
        element("td", percent(d.response_rate), "num"),
        element("td", percent(d.resolution_rate), "num"),
        element("td", percent(d.satisfaction_rate), "num"),
        element("td", percent(d.completion_rate), "num"),
        element("td", percent(d.score), "num score"),
      );
      if (d.laggard) row.title = "排名靠后：本期至少5件工单的单位中，综合得分处于最低的10%（同分同判）";
      return row;
    });
    byId("ranking-table").tBodies[0].replaceChildren(...rows);
    byId("ranking-empty").hidden = rows.length > 0;
  }

  // --- overdue tickets ----------------------------------------------------------

  function renderOverdue(page) {
    const items = Array.isArray(page.items) ? page.items : [];
    const total = typeof page.total === "number" ? page.total : items.length;
    byId("overdue-total").textContent = "共 " + total + " 件"
      + (total > items.length ? "，显示最近 " + items.length + " 件" : "");
    const rows = items.map((t) => {
      const id = String(t.ticket_id);
      const link = element("a", id);
      link.href = "/v1/tickets/" + encodeURIComponent(id);
      link.className = "ticket-link";
      link.addEventListener("click", (event) => {
        event.preventDefault();
        getJson(link.getAttribute("href")).then(renderTicket, (error) => console.error(error));
      });
      const idCell = element("td");
      idCell.append(link);
      const deadline = parseTime(t.deadline);
      const due = element("td", deadline ? timeFormat.format(deadline) : "—");
      if (deadline) due.append(element("small", overdueFor(deadline), "late"));
      const text = String(t.text || "");
      const textCell = element("td", text.length > 40 ? text.slice(0, 40) + "…" : text, "text");
      textCell.title = text;
      const row = element("tr");
      row.dataset.ticket = id;
      row.append(idCell, element("td", t.department || "—"), element("td", t.district || "—"),
        due, textCell);
      return row;
    });
    byId("overdue-list").tBodies[0].replaceChildren(...rows);
    byId("overdue-empty").hidden = rows.length > 0;
  }

  // One ticket's history, opened from the overdue list (a plain link could not
  // carry the key). The contact is as the API gives it: masked unless entitled.
  function renderTicket(ticket) {
    byId("ticket-id").textContent = String(ticket.ticket_id);
    byId("ticket-status").textContent = String(ticket.status || "");
    const contact = ticket.contact || {};
    byId("ticket-contact").textContent = "联系人：" + [contact.name, contact.phone, contact.town,
      contact.address].filter(Boolean).join("，");
    byId("ticket-text").textContent = String(ticket.text || "");
    const steps = (Array.isArray(ticket.history) ? ticket.history : []).map((step) => {
      const at = parseTime(step.at);
      const actor = step.actor ? step.actor.kind + ":" + step.actor.id : "";
      return element("li", (at ? timeFormat.format(at) : "") + "  " + step.event_type + "  " + actor);
    });
    byId("ticket-history").replaceChildren(...steps);
    byId("ticket-detail").hidden = false;
    byId("ticket-detail").scrollIntoView();
  }

  // --- dispatch quality (派单准确率) ------------------------------------------------

  function renderDispatch(report) {
    byId("dispatch-period").textContent = report.from && report.to
      ? "（受理于 " + report.from + " 至 " + report.to + "）" : "";
    const first = report.first_time_right || {};
    const numerator = typeof first.numerator === "number" ? first.numerator : 0;
    const denominator = typeof first.denominator === "number" ? first.denominator : 0;
    byId("rate-first-time-right").textContent = percent(first.value);
    byId("rate-first-time-right-fraction").textContent = numerator + " / " + denominator;
    const deciders = Object.entries(report.by_decided_by || {}).map(([name, rate]) => {
      const row = element("tr");
      row.dataset.decidedBy = name;
      row.append(element("td", DECIDERS[name] || name), element("td", count(rate.denominator), "num"),
        element("td", percent(rate.value), "num"));
      return row;
    });
    byId("dispatch-deciders").tBodies[0].replaceChildren(...deciders);
    const returns = (Array.isArray(report.returns_by_reason) ? report.returns_by_reason : [])
      .map((r) => {
        const row = element("tr");
        row.append(element("td", r.reason, "text"), element("td", count(r.returns), "num"));
        return row;
      });
    byId("dispatch-returns").tBodies[0].replaceChildren(...returns);
    const misroutes = (Array.isArray(report.misroutes) ? report.misroutes : []).map((m) => {
      const row = element("tr");
      row.append(element("td", m.dispatched_to, "dept"), element("td", m.finally, "dept"),
        element("td", count(m.tickets), "num"));
      return row;
    });
    byId("dispatch-misroutes").tBodies[0].replaceChildren(...misroutes);
    byId("dispatch-misroutes-empty").hidden = misroutes.length > 0;
  }

  // --- refresh loop -------------------------------------------------------------

  const SECTIONS = [
    ["今日数据", API.summary, renderSummary],
    ["趋势", API.trend, renderTrend],
    ["部门排名", API.ranking, renderRanking],
    ["超期工单", API.overdue, renderOverdue],
    ["派单质量", API.dispatch, renderDispatch],
  ];

  async function refresh() {
    if (!session.signedIn()) return;
    // Each section stands alone: one failing request leaves the others current.
    const results = await Promise.allSettled(
      SECTIONS.map(([, url, render]) => getJson(url).then(render)));
    if (!session.signedIn()) return; // the key was refused meanwhile
    const failed = SECTIONS.filter((_, i) => results[i].status === "rejected").map(([name]) => name);
    results.forEach((r) => { if (r.status === "rejected") console.error(r.reason); });
    const status = byId("status");
    const now = clockFormat.format(new Date());
    if (failed.length) {
      status.dataset.state = "error";
      status.textContent = failed.join("、") + " 加载失败（" + now + "），30 秒后重试";
    } else {
      status.dataset.state = "ok";
      status.textContent = "更新于 " + now;
    }
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  }

  let timer = null;

  async function loop() {
    clearTimeout(timer);
    try {
      await refresh();
    } finally {
      timer = setTimeout(loop, REFRESH_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", () => session.start(loop));
})();
