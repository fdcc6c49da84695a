/* gridcc wall `/wall`: scale the 1920×1080 canvas to the screen, tick the clock, hide an idle cursor,
 * draw the map's areas and labels, drill on a polygon click, and apply live items (the stream itself
 * is assets/live.js's: this adds the wall's view to it).
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
  function fit() {
    var vw = window.innerWidth;
    var vh = window.innerHeight;
    var mode = param("fit") || "letterbox";
    var sx = vw / W;
    var sy = vh / H;
    if (mode === "letterbox") sx = sy = Math.min(sx, sy);
    else if (mode === "width") sy = sx;
    else if (mode === "height") sx = sy;
    root.style.setProperty("--wall-sx", String(sx));
    root.style.setProperty("--wall-sy", String(sy));
    root.style.setProperty("--wall-x", (vw - W * sx) / 2 + "px");
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
    var now = new Date();
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

  // ------------------------------------------------------------------ map
  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // Labels that would overlap a more loaded neighbour's keep only their figure.
  var declutterFrame = null;
  function scheduleDeclutter() {
    if (declutterFrame === null) declutterFrame = window.requestAnimationFrame(declutter);
  }
  function declutter() {
    declutterFrame = null;
    var labels = Array.prototype.slice.call(document.querySelectorAll(".wall-label"));
    labels.forEach(function (el) { el.classList.remove("wall-label-compact", "wall-label-hidden"); });
    var placed = [];
    labels
      .map(function (el) {
        var value = el.querySelector(".wall-label-value");
        return { el: el, open: Number((value ? value.textContent : "0").replace(/,/g, "")) };
      })
      .sort(function (a, b) { return b.open - a.open; })
      .forEach(function (label) {
        var r = label.el.getBoundingClientRect();
        var hit = placed.some(function (p) {
          return r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top;
        });
        if (hit) {
          label.el.classList.add("wall-label-compact");
          r = label.el.getBoundingClientRect();
          hit = placed.some(function (p) {
            return r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top;
          });
          label.el.classList.toggle("wall-label-hidden", hit);
        }
        if (!hit) placed.push(r);
      });
  }

  var wall = {
    areaStyle: function (feature) {
      var p = feature.properties || {};
      return {
        className: "wall-area wall-area-" + p.code,
        color: "#7dd3fc", weight: 1.5, opacity: 0.9,
        fillColor: p.color || "#22d3ee", fillOpacity: 0.6,
      };
    },
    areaHover: function () {
      return { weight: 3, color: "#e0f2fe", fillOpacity: 0.8 };
    },
    outlineStyle: function () {
      return { color: "#22d3ee", weight: 3, opacity: 0.8, fill: false, className: "wall-outline" };
    },
    label: function (feature, latlng) {
      var p = feature.properties || {};
      var html =
        '<span class="wall-label-name">' + escapeHtml(p.name || "") + "</span>" +
        '<span class="wall-label-value">' + escapeHtml(String(p.open)) + "</span>";
      scheduleDeclutter();
      return window.L.marker(latlng, {
        interactive: false,
        keyboard: false,
        icon: window.L.divIcon({ className: "wall-label wall-label-" + p.code, html: html, iconSize: null }),
      });
    },
  };

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
  window.gridccWall = wall;

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

  function span(className, text) {
    return { type: "Span", namespace: "dash_html_components", props: { className: className, children: text } };
  }

  function div(key, className, children) {
    return { type: "Div", namespace: "dash_html_components", props: { key: key, className: className, children: children } };
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

  function alarmItem(item, data) {
    var l = data.labels;
    var closed = item.status !== "active" && item.status !== "acknowledged";
    var cls = "wall-alarm-item wall-sev-" + item.severity + (closed ? " wall-closed" : "") + (item.fresh ? " wall-new" : "");
    return div(item.id, cls, [
      span("wall-sev", ""),
      span("wall-alarm-type", (l.alarm || {})[item.type] || item.type),
      span("wall-alarm-place", item.place || ""),
      span("wall-alarm-status", (l.alarm_status || {})[item.status] || item.status),
      span("wall-time", hhmm(item.at, data.tz)),
    ]);
  }

  // Items received live, newest first, per list; merged over the rendered ones by id.
  var live = { cases: [], alarms: [] };
  var rendered = {}; // per list id: the data-initial it was last merged over
  var liveScope = null;

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
    if (data === null || !live[kind].length) return;
    var initial = el.getAttribute("data-initial");
    if (onlyIfStale && rendered[id] === initial) return;
    rendered[id] = initial;
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
    window.gridccLive.setProps(id, {
      children: all.slice(0, LIST[kind]).map(function (it) { return build(it, data); }),
    });
  }

  function applyItems(msg) {
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
        // A re-render (drill, language) brings the server's lists: put live items back on top.
        render("cases", "wall-feed-list", caseItem, true);
        render("alarms", "wall-alarm-list", alarmItem, true);
      },
      items: applyItems,
      reset: function (url) {
        if (url !== liveScope) live = { cases: [], alarms: [] };
        liveScope = url;
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
