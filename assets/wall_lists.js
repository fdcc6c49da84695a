/* gridcc wall `/wall`, the alarm ticker and the case feed: their lines are DOM built here over the
 * server's rendered items (the element's `data-initial`, layouts/wall_panels.py says why), with the
 * live items of the stream merged on top by id; and the ticker's 确认 / 转案件 buttons. assets/wall.js
 * hands the stream's items over through `gridccWallLists`.
 */
(function () {
  "use strict";

  var LIST = { cases: 6, alarms: 8 }; // as many as the panels hold (data_sources/wall.py)

  function isWall() {
    return window.location.pathname.replace(/\/$/, "") === "/wall";
  }

  function listData(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return {
        initial: JSON.parse(el.getAttribute("data-initial") || "[]"),
        labels: JSON.parse(el.getAttribute("data-labels") || "{}"),
        tz: el.getAttribute("data-tz") || undefined,
      };
    } catch (e) {
      return null;
    }
  }

  function hhmm(iso, tz) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  // The lists' lines are DOM built here, not Dash components (layouts/wall_panels.py says why).
  function span(className, text) {
    var node = document.createElement("span");
    node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function div(key, className, children) {
    var node = document.createElement("div");
    node.className = className;
    node.setAttribute("data-key", key);
    children.forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function caseItem(item, data) {
    var l = data.labels;
    return div(item.id, "wall-feed-item" + (item.fresh ? " wall-new" : ""), [
      span("wall-time", hhmm(item.at, data.tz)),
      span("wall-chip wall-chip-" + item.status, (l.status || {})[item.status] || item.status),
      span("wall-feed-cat", (l.category || {})[item.category] || item.category || ""),
      span("wall-feed-title", item.title || ""),
    ]);
  }

  // A dcc.Store has no element in the page (gridccLive.setProps looks for one): set it directly;
  // Alarms turned into a case from this page, before the server's lists know it.
  var caseOpened = {};

  function button(alarmId, action, text) {
    var node = document.createElement("button");
    node.className = "wall-act wall-act-" + action;
    node.textContent = text;
    node.setAttribute("data-alarm", alarmId);
    node.setAttribute("data-action", action);
    return node;
  }

  // 确认 while the alarm is active, 转案件 until it has a case (none on a display-only instance).
  function alarmActions(item, data) {
    var a = data.labels.actions;
    if (!a) return []; // a display-only wall (GRIDCC_WALL_ACTIONS=false)
    if (item.status !== "active" && item.status !== "acknowledged") return [];
    if (item.case_id || caseOpened[item.id]) return [span("wall-act-done", a.has_case || "")];
    var buttons = [button(item.id, "case", a.to_case || "")];
    if (item.status === "active") buttons.unshift(button(item.id, "ack", a.acknowledge || ""));
    return buttons;
  }

  function alarmItem(item, data) {
    var l = data.labels;
    var closed = item.status !== "active" && item.status !== "acknowledged";
    var cls = "wall-alarm-item wall-sev-" + item.severity + (closed ? " wall-closed" : "") +
      (item.status === "acknowledged" ? " wall-acked" : "") + (item.fresh ? " wall-new" : "");
    return div(item.id, cls, [
      span("wall-sev", ""),
      span("wall-alarm-type", (l.alarm || {})[item.type] || item.type),
      span("wall-alarm-place", item.place || ""),
      span("wall-alarm-status", (l.alarm_status || {})[item.status] || item.status),
      span("wall-time", hhmm(item.at, data.tz)),
    ].concat(alarmActions(item, data)));
  }

  // A ticker button: the server acknowledges (and opens the case) through the ingest path; the
  // alarm's new status comes back on the live stream like any other change.
  document.addEventListener("click", function (event) {
    var target = event.target && event.target.closest ? event.target.closest(".wall-act") : null;
    if (!target || !isWall()) return;
    var alarmId = target.getAttribute("data-alarm");
    var action = target.getAttribute("data-action");
    if (!alarmId) return;
    // An earlier failure's note must not take back what this click shows.
    document.querySelectorAll(".wall-toast-failed[data-alarm]").forEach(function (el) {
      el.removeAttribute("data-alarm");
    });
    target.classList.add("wall-act-busy");
    if (action === "case") {
      caseOpened[alarmId] = true;
      redrawAlarm(alarmId); // an acknowledged alarm gets no live change from its new case
    }
    window.gridccLive.setStore("wall-alarm-action", { alarm: alarmId, "case": action === "case", nonce: Date.now() });
  });

  // The server says an action failed: the alarm gets its 转案件 button back.
  function checkFailed() {
    var failed = document.querySelector(".wall-toast-failed[data-alarm]");
    var alarmId = failed && failed.getAttribute("data-alarm");
    if (!alarmId) return;
    // Its buttons are usable again (a failed 确认 too, not only a failed 转案件).
    document.querySelectorAll(".wall-act-busy").forEach(function (el) {
      if (el.getAttribute("data-alarm") === alarmId) el.classList.remove("wall-act-busy");
    });
    if (!caseOpened[alarmId]) return;
    delete caseOpened[alarmId];
    redrawAlarm(alarmId);
  }

  // Draw the ticker again with `alarmId` among the live items (taken from the server's list when
  // it is not live yet), so its buttons follow `caseOpened`.
  function redrawAlarm(alarmId) {
    var data = listData("wall-alarm-list");
    if (data === null) return;
    var known = live.alarms.some(function (it) { return it.id === alarmId; });
    if (!known) {
      var item = data.initial.filter(function (it) { return it.id === alarmId; })[0];
      if (!item) return;
      live.alarms.unshift(Object.assign({}, item));
      live.alarms = live.alarms.slice(0, LIST.alarms);
    }
    rendered["wall-alarm-list"] = null;
    render("alarms", "wall-alarm-list", alarmItem, true);
  }
  setInterval(function () {
    if (isWall()) checkFailed();
  }, 1000);

  // Items received live, newest first, per list; merged over the rendered ones by id.
  var live = { cases: [], alarms: [] };
  var rendered = {}; // per list id: the data-initial it was last merged over
  var renderedInto = {}; // per list id: the element it was last drawn into

  function merge(kind, incoming) {
    var known = {};
    live[kind].forEach(function (it) { known[it.id] = it; });
    incoming.forEach(function (it) {
      var before = known[it.id];
      var item = Object.assign({}, before || {}, it, { fresh: !before && !!it.new });
      if (before) live[kind].splice(live[kind].indexOf(before), 1);
      live[kind].unshift(item);
    });
    live[kind] = live[kind].slice(0, LIST[kind]);
  }

  function render(kind, id, build, onlyIfStale) {
    var el = document.getElementById(id);
    var data = listData(id);
    if (data === null) return;
    var initial = el.getAttribute("data-initial");
    // Drawn already over this element and its data (a re-render brings a new element or data).
    if (onlyIfStale && rendered[id] === initial && renderedInto[id] === el) return;
    rendered[id] = initial;
    renderedInto[id] = el;
    var seen = {};
    var all = [];
    live[kind].concat(data.initial).forEach(function (it) {
      if (seen[it.id]) {
        if (!seen[it.id].place && it.place) seen[it.id].place = it.place; // keep the camera's name
        return;
      }
      seen[it.id] = it;
      all.push(it);
    });
    var lines = document.createDocumentFragment();
    all.slice(0, LIST[kind]).forEach(function (it) { lines.appendChild(build(it, data)); });
    if (!all.length) lines.appendChild(div("empty", "wall-empty", [document.createTextNode(el.getAttribute("data-empty") || "")]));
    el.replaceChildren(lines);
    // The lines are new elements each time: a new item slides in (and flashes) once, not again
    // whenever the list is drawn while it is still on it.
    live[kind].forEach(function (it) { it.fresh = false; });
  }

  function renderLists() {
    if (!isWall()) return;
    render("cases", "wall-feed-list", caseItem, true);
    render("alarms", "wall-alarm-list", alarmItem, true);
  }

  // Draw the lists as soon as Dash puts them (or a new scope's) on the page.
  new MutationObserver(renderLists).observe(document, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["data-initial"],
  });

  window.gridccWallLists = {
    // New items of a message: merged over the lists and drawn.
    items: function (msg) {
      if ((msg.feed || []).length) {
        merge("cases", msg.feed.slice().reverse());
        render("cases", "wall-feed-list", caseItem);
      }
      if ((msg.alarm_feed || []).length) {
        merge("alarms", msg.alarm_feed.slice().reverse());
        render("alarms", "wall-alarm-list", alarmItem);
      }
    },
    // A re-render (drill, language) brings the server's lists: put the live items back on top.
    redraw: renderLists,
    // Another scope, or a gap the stream could not replay: the server's lists are the truth again.
    forget: function () {
      live = { cases: [], alarms: [] };
    },
  };
})();
