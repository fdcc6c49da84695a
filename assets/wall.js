/* gridcc wall `/wall`: scale the 1920×1080 canvas to the screen, tick the clock, hide an idle cursor,
 * drill on a polygon click, grow the 24 h trend, and hand live items on (the stream itself is
 * assets/live.js's: this adds the wall's view to it; the map's drawing and live layers are
 * assets/wall_map.js's, the ticker and the case feed assets/wall_lists.js's, the carousel
 * assets/wall_carousel.js's).
 */
(function () {
  "use strict";

  var W = 1920;
  var H = 1080;
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
    var sx = vw / w;
    var sy = vh / H;
    if (mode === "letterbox") sx = sy = Math.min(sx, sy);
    else if (mode === "width") sy = sx;
    else if (mode === "height") sx = sy;
    var scale = [w + "px", String(sx), String(sy), (vw - w * sx) / 2 + "px", (vh - H * sy) / 2 + "px"];
    // Checked every second (a resize event can be missed), written only when it changed: a new
    // inline style on <html> makes the browser recompute the style of the whole page.
    if (scale.join() === fitted) return;
    fitted = scale.join();
    ["--wall-w", "--wall-sx", "--wall-sy", "--wall-x", "--wall-y"].forEach(function (name, i) {
      root.style.setProperty(name, scale[i]);
    });
  }
  var fitted = null;

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
    var today = parts.year + "-" + parts.month + "-" + parts.day + " " + WEEKDAYS[lang][day];
    if (date && date.textContent !== today) date.textContent = today; // no repaint for the same
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

  // ------------------------------------------------------------------ 24 h trend
  // The last bar is the current hour: it grows by the scope's case total (every status counted)
  // and the line by its closed count, from each live message, until the hour is over; the server's
  // periodic refresh of the scope draws both charts again from SQL (the new hour's bar with it).
  var trendLast = null; // {node, total, closed} of the last message

  function trendBody() {
    return document.getElementById("wall-trend-body");
  }

  function growTrend(reported, closed) {
    var gd = document.querySelector("#wall-trend-graph .js-plotly-plot");
    if (!gd || !gd.data || gd.data.length < 2) return;
    var body = trendBody();
    if (body && Date.now() >= Number(body.getAttribute("data-hour-end"))) return; // the refresh's
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

  // The hourly bars grow every 15 s, not on each of up to ten messages a second: each growth is a
  // Plotly redraw (CPU on a wall PC, and text measurements Plotly keeps), for no visible gain.
  var TREND_EVERY_MS = 15000;
  var trendPending = { reported: 0, closed: 0 };
  setInterval(function () {
    growChannels();
    if (!trendPending.reported && !trendPending.closed) return;
    growTrend(trendPending.reported, trendPending.closed);
    trendPending = { reported: 0, closed: 0 };
  }, TREND_EVERY_MS);

  // ------------------------------------------------------------------ today: 今日新增 and channels
  // Each delta counts the scope's cases reported today per channel (`reported`, every one, not
  // capped like the feed): the tile grows at once, the channels' key and donut with the trend.
  var channelPending = {};

  function figureOf(text) {
    return Number(String(text || "0").replace(/,/g, "")) || 0;
  }

  function applyReported(msg) {
    if (!msg.reported) return;
    var added = 0;
    Object.keys(msg.reported).forEach(function (channel) {
      added += msg.reported[channel];
      channelPending[channel] = (channelPending[channel] || 0) + msg.reported[channel];
    });
    var tile = document.getElementById("wall-kpi-new-today");
    var api = window.gridccLive;
    if (tile && added) api.setText("wall-kpi-new-today", api.fmt(figureOf(tile.textContent) + added));
  }

  function growChannels() {
    var pending = channelPending;
    channelPending = {};
    var channels = Object.keys(pending);
    if (!channels.length) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll(".wall-channel-row[data-channel]"));
    var byChannel = {};
    if (!rows.length) return; // not drawn (yet): the next render has them from SQL
    rows.forEach(function (row) { byChannel[row.getAttribute("data-channel")] = row; });
    // A channel the key does not show: the server's next refresh draws the chart with it.
    if (channels.some(function (channel) { return !byChannel[channel]; })) return;
    channels.forEach(function (channel) {
      var row = byChannel[channel];
      row.setAttribute("data-n", String(figureOf(row.getAttribute("data-n")) + pending[channel]));
    });
    var fmt = window.gridccLive.fmt;
    var counts = rows.map(function (row) { return figureOf(row.getAttribute("data-n")); });
    var total = counts.reduce(function (a, b) { return a + b; }, 0);
    rows.forEach(function (row, i) {
      // As layouts/wall_charts.py channels_panel draws them.
      row.querySelector(".wall-channel-n").textContent = fmt(counts[i]);
      row.querySelector(".wall-channel-share").textContent = total ? Math.round((counts[i] / total) * 100) + "%" : "—";
    });
    var shown = rows.filter(function (row, i) { return counts[i] > 0; });
    var assign = function (location, value) {
      return { operation: "Assign", location: location, params: { value: value } };
    };
    window.gridccLive.setProps("wall-channel-graph", {
      figure: {
        __dash_patch_update: "__dash_patch_update",
        operations: [
          assign(["data", 0, "labels"], shown.map(function (row) { return row.getAttribute("data-label"); })),
          assign(["data", 0, "values"], shown.map(function (row) { return figureOf(row.getAttribute("data-n")); })),
          assign(["data", 0, "marker", "colors"], shown.map(function (row) { return row.getAttribute("data-colour"); })),
          assign(["layout", "annotations", 0, "text"], fmt(total)),
        ],
      },
    });
  }

  var liveScope = null;
  var resyncs = 0;

  // A new stream or a gap: the next message (a snapshot) is the trend's new baseline, and growth
  // not drawn yet belongs to what the server draws next.
  function forgetGrowth() {
    trendLast = null;
    trendPending = { reported: 0, closed: 0 };
    channelPending = {};
  }

  function applyItems(msg) {
    applyTrend(msg);
    applyReported(msg);
    if (window.gridccWallMap) window.gridccWallMap.items(msg);
    if (window.gridccWallLists) window.gridccWallLists.items(msg);
  }

  // ------------------------------------------------------------------ painting live changes
  // Messages come up to ten times a second; the wall paints what they changed at most twice a
  // second, in an animation frame (0.5 s behind at most, within the ≤ 1 s a wall may lag): each
  // paint is style, layout and a composited frame, in software on many wall PCs, and figures
  // flickering ten times a second cannot be read from 5 m anyway. (The laptop overview applies
  // each message at once: bench/bench_latency.py measures it.)
  var PAINT_EVERY_MS = 500;
  var queued = { items: [], figures: null };
  var paintTimer = null;
  var paintedAt = 0;

  function schedulePaint() {
    if (paintTimer !== null) return;
    var wait = Math.max(0, paintedAt + PAINT_EVERY_MS - Date.now());
    paintTimer = setTimeout(function () { window.requestAnimationFrame(paint); }, wait);
  }

  function paint() {
    clearTimeout(paintTimer);
    paintTimer = null;
    paintedAt = Date.now();
    var work = queued;
    queued = { items: [], figures: null };
    work.items.forEach(applyItems);
    if (work.figures !== null) applyFigures(work.figures);
  }

  // Another stream, or a gap: what was waiting belongs to what the page no longer shows.
  function dropQueued() {
    queued = { items: [], figures: null };
  }

  function applyFigures(figures) {
    var api = window.gridccLive;
    api.setText("wall-kpi-open", api.fmt(figures.open));
    api.setText("wall-kpi-active-alarms", api.fmt(figures.alarms));
    Object.keys(figures.children).forEach(function (code) {
      var child = figures.children[code];
      api.setText("wall-rank-" + code + "-open", api.fmt(child.open));
      api.setText("wall-rank-" + code + "-alarms", api.fmt(child.alarms));
    });
    if (window.gridccWallMap) window.gridccWallMap.apply(figures);
    if (window.gridccWallLists) window.gridccWallLists.redraw();
  }

  function register() {
    var api = window.gridccLive;
    if (!api) return false;
    api.addView({
      badge: "wall-live",
      badgeClass: "wall-live",
      stream: "wall",
      apply: function (figures) {
        queued.figures = figures;
        schedulePaint();
      },
      items: function (msg) {
        queued.items.push(msg);
        schedulePaint();
      },
      reset: function (url) {
        dropQueued();
        if (url !== liveScope) {
          if (window.gridccWallLists) window.gridccWallLists.forget();
          if (window.gridccWallMap) window.gridccWallMap.reset(url);
        }
        liveScope = url;
        forgetGrowth();
      },
      // Back after a gap the stream could not replay: what happened meanwhile (alarms resolved,
      // cases moved on, the trend's growth) came in no delta. Start the lists and the trend from
      // the server's render again, and ask for one (the render callback listens to the store).
      resync: function (scope) {
        queued.items = []; // its figures (the snapshot's) stay
        if (window.gridccWallLists) window.gridccWallLists.forget();
        forgetGrowth();
        if (window.gridccWallMap) window.gridccWallMap.forgetAlarms(scope);
        resyncs += 1;
        api.setStore("wall-resync", scope + ":" + resyncs + ":" + Date.now());
      },
      // The server's periodic refresh: its regions replace the page's (they were drawn by the
      // same code as a fresh page, now). Growth counted before it is in its charts already, and
      // its lists are the truth again.
      refresh: function (msg) {
        paint(); // what came before it first: the refresh is newer
        trendPending = { reported: 0, closed: 0 };
        channelPending = {};
        Object.keys(msg.regions).forEach(function (id) {
          api.setProps(id, { children: msg.regions[id] });
        });
        if (window.gridccWallLists) window.gridccWallLists.forget();
        root.setAttribute("data-wall-refreshed", String(msg.at)); // when its figures were current
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
