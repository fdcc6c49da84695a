/* gridcc wall `/wall`, the alarm ticker and the case feed: their lines are DOM built here over the
 * server's rendered items (the element's `data-initial`, layouts/wall_panels.py says why), with the
 * live items of the stream merged on top by id; and the ticker's 确认 / 转案件 buttons. assets/wall.js
 * hands the stream's items over through `gridccWallLists`.
 */
(function () {
  "use strict";

  var LIST = { cases: 6, alarms: 6 }; // as many as the panels hold (data_sources/wall.py)

  function isWall() {
    // The wall, and an embed of its panels (layouts/embed.py: the same ids).
    var path = window.location.pathname.replace(/\/$/, "");
    return path === "/wall" || path === "/embed";
  }

  function listData(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return {
        initial: JSON.parse(el.getAttribute("data-initial") || "[]"),
        labels: JSON.parse(el.getAttribute("data-labels") || "{}"),
        tz: el.getAttribute("data-tz") || undefined,
        scope: el.getAttribute("data-scope"),
        places: JSON.parse(el.getAttribute("data-places") || "{}"),
      };
    } catch (e) {
      return null;
    }
  }

  function day(d, tz) {
    return d.toLocaleDateString("en-CA", { timeZone: tz }); // YYYY-MM-DD in the centre's zone
  }

  // "hh:mm" today (the command centre's day, by the server's clock), "MM-DD hh:mm" before:
  // yesterday's 21:22 must not read as today's.
  function hhmm(iso, tz) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    var time = d.toLocaleTimeString("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    var now = new Date(window.gridccLive ? window.gridccLive.serverNow() : Date.now());
    var date = day(d, tz);
    return date === day(now, tz) ? time : date.slice(5) + " " + time;
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

  // Where an item is: the child of the list's scope it lies in (the server names it for the
  // items it drew; a live item carries its path of node codes, the scope's child follows the scope).
  function placeOf(item, data) {
    var code = item.area;
    if (!code && item.path) {
      var at = item.path.indexOf(data.scope);
      code = at >= 0 ? item.path[at + 1] : null;
    }
    return (code && data.places[code]) || "";
  }

  // A camera's name after the area the line already names: "源丰社区1-1号楼摄像机3" in 源丰社区 is
  // "1-1号楼摄像机3", in 1-1号楼 "摄像机3".
  function cameraName(name, area) {
    var at = area ? name.indexOf(area) : -1;
    return at >= 0 && name.length > at + area.length ? name.slice(at + area.length) : name;
  }

  function caseItem(item, data) {
    var l = data.labels;
    return div(item.id, "wall-feed-item" + (item.fresh ? " wall-new" : ""), [
      span("wall-time", hhmm(item.at, data.tz)),
      span("wall-chip wall-chip-" + item.status, (l.status || {})[item.status] || item.status),
      span("wall-feed-place", placeOf(item, data)),
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
    var actions = span("wall-alarm-actions", "");
    alarmActions(item, data).forEach(function (node) { actions.appendChild(node); });
    var area = placeOf(item, data);
    // Two lines: what, its state, when and the buttons; then where (the area, the camera) in full.
    return div(item.id, cls, [
      span("wall-sev", ""),
      span("wall-alarm-type", (l.alarm || {})[item.type] || item.type),
      span("wall-alarm-status", (l.alarm_status || {})[item.status] || item.status),
      span("wall-time", hhmm(item.at, data.tz)),
      actions,
      span("wall-alarm-place", [area, cameraName(item.place || "", area)].filter(Boolean).join(" · ")),
    ]);
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
    ofScope(data.scope);
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

  // Items received live, newest first, per list, and the scope they came for; merged over the
  // rendered ones by id, but only over lists of that scope (each list says its `data-scope`): a
  // drill or a carousel step renders the new scope's lists before its stream is open, and the old
  // scope's live items must not be drawn on them for one moment.
  var live = { scope: null, cases: [], alarms: [] };

  function ofScope(scope) {
    if (live.scope !== scope) live = { scope: scope, cases: [], alarms: [] };
    return live;
  }
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

  var animatedAt = {};
  var CALM_MS = 5000;

  function render(kind, id, build, onlyIfStale) {
    var el = document.getElementById(id);
    if (el === null) return;
    var initial = el.getAttribute("data-initial");
    // Drawn already over this element and its data (a re-render brings a new element or data).
    // Checked first: the page's observer asks on every change anywhere in the page.
    if (onlyIfStale && rendered[id] === initial && renderedInto[id] === el) return;
    var data = listData(id);
    if (data === null) return;
    var items = ofScope(el.getAttribute("data-scope"))[kind];
    rendered[id] = initial;
    renderedInto[id] = el;
    // New lines slide in (and a severe alarm flashes) on a calm list; on a busy one they just
    // appear: motion every second draws the eye for nothing and costs a wall PC its CPU.
    var now = Date.now();
    var animate = now - (animatedAt[kind] || 0) > CALM_MS;
    if (animate && items.some(function (it) { return it.fresh; })) animatedAt[kind] = now;
    if (!animate) items.forEach(function (it) { it.fresh = false; });
    var seen = {};
    var all = [];
    items.concat(data.initial).forEach(function (it) {
      if (seen[it.id]) {
        if (!seen[it.id].place && it.place) seen[it.id].place = it.place; // keep the camera's name
        return;
      }
      seen[it.id] = it;
      all.push(it);
    });
    if (kind === "alarms") all = needingActionFirst(all);
    var lines = document.createDocumentFragment();
    all.slice(0, LIST[kind]).forEach(function (it) { lines.appendChild(build(it, data)); });
    if (!all.length) lines.appendChild(div("empty", "wall-empty", [document.createTextNode(el.getAttribute("data-empty") || "")]));
    el.replaceChildren(lines);
    // The lines are new elements each time: a new item slides in (and flashes) once, not again
    // whenever the list is drawn while it is still on it.
    live[kind].forEach(function (it) { it.fresh = false; });
  }

  function isOpen(item) {
    return item.status === "active" || item.status === "acknowledged";
  }

  // The ticker's order, as the server's (data_sources/wall.py latest_alarms): alarms waiting for
  // action first, the most severe and then the newest first; closed ones after them.
  function needingActionFirst(items) {
    return items
      .map(function (item, i) { return { item: item, i: i }; })
      .sort(function (a, b) {
        var x = a.item;
        var y = b.item;
        if (isOpen(x) !== isOpen(y)) return isOpen(x) ? -1 : 1;
        if (isOpen(x) && x.severity !== y.severity) return y.severity - x.severity;
        return a.i - b.i; // newest first already (live on top, then the server's order)
      })
      .map(function (entry) { return entry.item; });
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

  var pending = { cases: false, alarms: false };
  var frame = null;
  var drawnAt = 0;
  var DRAW_EVERY_MS = 1000;

  function drawPending() {
    frame = null;
    drawnAt = Date.now();
    if (pending.cases) render("cases", "wall-feed-list", caseItem);
    if (pending.alarms) render("alarms", "wall-alarm-list", alarmItem);
    pending = { cases: false, alarms: false };
  }

  window.gridccWallLists = {
    // New items of a message: merged over the lists and drawn.
    // Drawn at most once a second, in an animation frame, however many messages came meanwhile:
    // lines sliding in ten times a second flicker and cannot be read from 5 m, and each drawing
    // costs a wall PC layout and paint.
    items: function (msg) {
      ofScope(msg.node);
      if ((msg.feed || []).length) {
        merge("cases", msg.feed.slice().reverse());
        pending.cases = true;
      }
      if ((msg.alarm_feed || []).length) {
        merge("alarms", msg.alarm_feed.slice().reverse());
        pending.alarms = true;
      }
      if ((pending.cases || pending.alarms) && frame === null) {
        var wait = Math.max(0, drawnAt + DRAW_EVERY_MS - Date.now());
        frame = setTimeout(function () { window.requestAnimationFrame(drawPending); }, wait);
      }
    },
    // A re-render (drill, language) brings the server's lists: put the live items back on top.
    redraw: renderLists,
    // Another scope, a gap the stream could not replay, or the server's periodic refresh: the
    // server's lists are the truth again, drawn at once.
    forget: function () {
      live = { scope: null, cases: [], alarms: [] };
      rendered = {};
      // After the renderer has put the new lists (if any) on the page: never the old ones again.
      window.requestAnimationFrame(renderLists);
    },
  };
})();
