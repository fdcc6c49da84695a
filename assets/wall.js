/* gridcc wall `/wall`: scale the 1920×1080 canvas to the screen, tick the clock, hide an idle cursor,
 * drill on a polygon click, and apply live items (the stream itself is assets/live.js's: this adds
 * the wall's view to it; the map's drawing and live layers are assets/wall_map.js's, the carousel
 * assets/wall_carousel.js's).
 */
(function () {
  "use strict";

  var W = 1920;
  var H = 1080;
  var LIST = { cases: 6, alarms: 8 }; // as many as the panels hold (data_sources/wall.py)
  var root = document.documentElement;

  function param(name) {
    return new URLSearchParams(window.location.search).get(name);
  }

  function isWall() {
    return window.location.pathname.replace(/\/$/, "") === "/wall";
  }

  // ------------------------------------------------------------------ canvas scale
  // CSS variables on <html>: the canvas uses them whenever it is (re-)rendered.
  // Ultra-wide walls (32:9, 48:9, LED walls): letterboxing 16:9 would leave most of the screen
  // black, so from WIDE_FROM the canvas grows wider in design px, as wide as the screen (up to
  // WIDE_MAX), 1080 high, and assets/wall.css lays the panels out for it (`data-wall-aspect`).
  var WIDE_FROM = 2.2;
  var WIDE_MAX = 7680;

  function designWidth(vw, vh, mode) {
    if (mode !== "letterbox" || !(vh > 0) || vw / vh < WIDE_FROM) return W;
    return Math.min(Math.floor((H * vw) / vh), WIDE_MAX);
  }

  function fit() {
    var vw = window.innerWidth;
    var vh = window.innerHeight;
    var mode = param("fit") || "letterbox";
    var w = designWidth(vw, vh, mode);
    var aspect = w > W ? "wide" : null;
    if (root.getAttribute("data-wall-aspect") !== aspect) {
      if (aspect) root.setAttribute("data-wall-aspect", aspect);
      else root.removeAttribute("data-wall-aspect");
    }
    root.style.setProperty("--wall-w", w + "px");
    var sx = vw / w;
    var sy = vh / H;
    if (mode === "letterbox") sx = sy = Math.min(sx, sy);
    else if (mode === "width") sy = sx;
    else if (mode === "height") sx = sy;
    root.style.setProperty("--wall-sx", String(sx));
    root.style.setProperty("--wall-sy", String(sy));
    root.style.setProperty("--wall-x", (vw - w * sx) / 2 + "px");
    root.style.setProperty("--wall-y", (vh - H * sy) / 2 + "px");
  }

  // ------------------------------------------------------------------ clock
  var WEEKDAYS = {
    zh: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
    en: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
  };

  function tick() {
    var clock = document.getElementById("wall-clock");
    if (!clock) return;
    var tz = clock.getAttribute("data-tz") || undefined;
    // The server's time (a wall PC's clock may be minutes off; the room reads this one).
    var now = new Date(window.gridccLive ? window.gridccLive.serverNow() : Date.now());
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
    }).formatToParts(now).forEach(function (p) { parts[p.type] = p.value; });
    var day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday);
    var lang = param("lang") === "en" ? "en" : "zh";
    clock.textContent = parts.hour + ":" + parts.minute + ":" + parts.second;
    var date = document.getElementById("wall-date");
    if (date) {
      date.textContent = parts.year + "-" + parts.month + "-" + parts.day + " " + WEEKDAYS[lang][day];
    }
  }

  // ------------------------------------------------------------------ idle cursor
  var idleTimer = null;
  function awake() {
    root.removeAttribute("data-wall-idle");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () { root.setAttribute("data-wall-idle", ""); }, 3000);
  }

  window.addEventListener("resize", fit);
  window.addEventListener("popstate", fit);
  window.addEventListener("_dashprivate_pushstate", fit);
  window.addEventListener("mousemove", awake, { passive: true });
  fit();
  awake();
  setInterval(function () {
    if (!isWall()) return;
    fit();
    tick();
  }, 1000);

  // ------------------------------------------------------------------ drill (a clientside callback)
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.gridccWall = {
    drill: function (clickData, search) {
      var code = clickData && clickData.properties && clickData.properties.code;
      var noUpdate = window.dash_clientside.no_update;
      if (!code) return noUpdate;
      var old = new URLSearchParams(search || "");
      if (old.get("scope") === code) return noUpdate;
      var query = new URLSearchParams({ scope: code }); // scope first, as the server's links
      old.forEach(function (value, key) {
        if (key !== "scope") query.append(key, value);
      });
      return "?" + query.toString();
    },
  };

  // ------------------------------------------------------------------ live items
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
  // the server callbacks listening to it run.
  function setStore(id, data) {
    var clientside = window.dash_clientside;
    if (clientside && clientside.set_props) clientside.set_props(id, { data: data });
  }

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

  // As layouts/wall_panels.py `alarm_actions`: 确认 while active, 转案件 until there is a case.
  function alarmActions(item, data) {
    var a = data.labels.actions || {};
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
    setStore("wall-alarm-action", { alarm: alarmId, "case": action === "case", nonce: Date.now() });
  });

  // ------------------------------------------------------------------ 24 h trend
  // The last bar is the current hour: it grows by the scope's case total (every status counted)
  // and the line by its closed count, from each live message. When the hour is over (and every few
  // minutes anyway) the server reloads both charts from SQL (a key set on ids.Wall.TREND_TICK).
  var trendLast = null; // {node, total, closed} of the last message
  var trendAsked = null;

  function trendBody() {
    return document.getElementById("wall-trend-body");
  }

  function growTrend(reported, closed) {
    var gd = document.querySelector("#wall-trend-graph .js-plotly-plot");
    if (!gd || !gd.data || gd.data.length < 2) return;
    var body = trendBody();
    if (body && Date.now() >= Number(body.getAttribute("data-hour-end"))) return; // a new hour: reload
    var last = gd.data[0].y.length - 1;
    var operations = [];
    // "Add", not an Assign of what the figure shows: two messages before Plotly redraws would
    // both read the same old value and one increment would be lost.
    if (reported) {
      operations.push({ operation: "Add", location: ["data", 0, "y", last], params: { value: reported } });
    }
    if (closed) {
      operations.push({ operation: "Add", location: ["data", 1, "y", last], params: { value: closed } });
    }
    if (operations.length) {
      window.gridccLive.setProps("wall-trend-graph", {
        figure: { __dash_patch_update: "__dash_patch_update", operations: operations },
      });
    }
  }

  function applyTrend(msg) {
    if (!msg.counts) return;
    var total = 0;
    Object.keys(msg.counts).forEach(function (status) { total += msg.counts[status]; });
    var closed = msg.counts.closed || 0;
    if (trendLast !== null && trendLast.node === msg.node) {
      trendPending.reported += Math.max(0, total - trendLast.total);
      trendPending.closed += Math.max(0, closed - trendLast.closed);
    } else {
      trendPending = { reported: 0, closed: 0 };
    }
    trendLast = { node: msg.node, total: total, closed: closed };
  }

  // The hourly bars grow every few seconds, not on each of up to ten messages a second: each
  // growth is a Plotly redraw (CPU, and text measurements Plotly keeps), for no visible gain.
  var TREND_EVERY_MS = 5000;
  var trendPending = { reported: 0, closed: 0 };
  setInterval(function () {
    if (!trendPending.reported && !trendPending.closed) return;
    growTrend(trendPending.reported, trendPending.closed);
    trendPending = { reported: 0, closed: 0 };
  }, TREND_EVERY_MS);

  function checkHour() {
    var body = trendBody();
    // Not while the stream is down: the server is likely gone too, and a failed callback is an
    // error in the console for nothing. The refresh is still due when the stream is back.
    if (!body || root.getAttribute("data-wall-state") === "offline") return;
    var due = body.getAttribute("data-refresh-at"); // the hour's end or earlier
    var now = Date.now();
    // Ask once per due time, and again each minute while it stays due: a refresh that failed
    // (server restarting, SQL error) must not leave the trend stuck in an old day.
    if (now >= Number(due) && (trendAsked === null || trendAsked.due !== due || now - trendAsked.at > 60000)) {
      trendAsked = { due: due, at: now };
      setStore("wall-trend-tick", due + ":" + now);
    }
  }
  setInterval(function () {
    if (isWall()) checkHour();
  }, 5000);

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
  var liveScope = null;
  var resyncs = 0;

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

  function applyItems(msg) {
    applyTrend(msg);
    if (window.gridccWallMap) window.gridccWallMap.items(msg);
    if ((msg.feed || []).length) {
      merge("cases", msg.feed.slice().reverse());
      render("cases", "wall-feed-list", caseItem);
    }
    if ((msg.alarm_feed || []).length) {
      merge("alarms", msg.alarm_feed.slice().reverse());
      render("alarms", "wall-alarm-list", alarmItem);
    }
  }

  function register() {
    var api = window.gridccLive;
    if (!api) return false;
    api.addView({
      badge: "wall-live",
      badgeClass: "wall-live",
      apply: function (figures) {
        api.setText("wall-kpi-open", api.fmt(figures.open));
        api.setText("wall-kpi-active-alarms", api.fmt(figures.alarms));
        Object.keys(figures.children).forEach(function (code) {
          var child = figures.children[code];
          api.setText("wall-rank-" + code + "-open", api.fmt(child.open));
          api.setText("wall-rank-" + code + "-alarms", api.fmt(child.alarms));
        });
        if (window.gridccWallMap) window.gridccWallMap.apply(figures);
        // A re-render (drill, language) brings the server's lists: put live items back on top.
        render("cases", "wall-feed-list", caseItem, true);
        render("alarms", "wall-alarm-list", alarmItem, true);
      },
      items: applyItems,
      reset: function (url) {
        if (url !== liveScope) {
          live = { cases: [], alarms: [] };
          if (window.gridccWallMap) window.gridccWallMap.reset(url);
        }
        liveScope = url;
        trendLast = null; // the next message (a snapshot) is the new baseline
        trendPending = { reported: 0, closed: 0 };
      },
      // Back after a gap the stream could not replay: what happened meanwhile (alarms resolved,
      // cases moved on, the trend's growth) came in no delta. Start the lists and the trend from
      // the server's render again, and ask for one (the render callback listens to the store).
      resync: function (scope) {
        live = { cases: [], alarms: [] };
        trendLast = null;
        trendPending = { reported: 0, closed: 0 };
        if (window.gridccWallMap) window.gridccWallMap.forgetAlarms(scope);
        resyncs += 1;
        setStore("wall-resync", scope + ":" + resyncs + ":" + Date.now());
      },
      state: function (state) {
        root.setAttribute("data-wall-state", state);
      },
    });
    return true;
  }

  // live.js loads first (assets load in name order); wait for it if it has not run yet.
  if (!register()) {
    var wait = setInterval(function () {
      if (register()) clearInterval(wait);
    }, 100);
  }
})();
