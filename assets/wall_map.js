/* gridcc wall `/wall`, the map: areas coloured by load with labels (a camera count per child at high
 * levels), single cameras, grid workers and pulsing alarms, drawn by the functions dash-leaflet calls
 * by name (`gridccWall.*`), and kept live from the stream's deltas (assets/wall.js hands them over
 * through `gridccWallMap`): children recoloured, workers moved, new alarms drawn at their camera and
 * resolved ones removed, a new high-severity alarm flashed. Nothing here asks the server.
 */
(function () {
  "use strict";

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
  function box(label) {
    return (label.firstElementChild || label).getBoundingClientRect();
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
        var r = box(label.el);
        var hit = placed.some(function (p) {
          return r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top;
        });
        if (hit) {
          label.el.classList.add("wall-label-compact");
          r = box(label.el);
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
      // The marker's corner sits on the point (Leaflet positions it by an inline transform): the
      // box inside is centred on it.
      var html =
        '<div class="wall-label-box">' +
        '<span class="wall-label-name">' + escapeHtml(p.name || "") + "</span>" +
        '<span class="wall-label-value">' + escapeHtml(String(p.open)) + "</span>" +
        (p.cameras ? '<span class="wall-label-cameras">' + escapeHtml(p.cameras) + "</span>" : "") +
        "</div>";
      scheduleDeclutter();
      return window.L.marker(latlng, {
        interactive: false,
        keyboard: false,
        icon: window.L.divIcon({ className: "wall-label wall-label-" + p.code, html: html, iconSize: null }),
      });
    },
  };

  wall.camera = function (feature, latlng) {
    return window.L.circleMarker(latlng, {
      radius: 4, weight: 1, color: "#94a3b8", opacity: 0.9, fillColor: "#e2e8f0", fillOpacity: 0.7,
      interactive: false, className: "wall-camera",
    });
  };
  wall.worker = function (feature, latlng) {
    var p = feature.properties || {};
    mapped.workers[p.code] = feature;
    return pointIcon(latlng, "wall-worker wall-worker-" + (p.on ? "on" : "off"), 22);
  };
  wall.alarm = function (feature, latlng) {
    var p = feature.properties || {};
    mapped.alarms[p.id] = feature;
    var cls = "wall-alarm-dot wall-alarm-sev-" + p.severity + (p.high ? " wall-alarm-high" : "");
    return pointIcon(latlng, cls, 26);
  };

  function pointIcon(latlng, className, size) {
    return window.L.marker(latlng, {
      interactive: false,
      keyboard: false,
      icon: window.L.divIcon({ className: className, iconSize: [size, size], html: "" }),
    });
  }

  // ------------------------------------------------------------------ map, live
  // The point features the map was last drawn with, by worker code and by alarm id; each carries
  // its scope's code, so a delta moves only what the shown map holds.
  var mapped = { workers: {}, alarms: {} };
  var HIGH_SEVERITY = 3; // data_sources/wall_layers.py HIGH_SEVERITY
  var STOPS = [[0, [34, 211, 238]], [0.5, [245, 158, 11]], [1, [239, 68, 68]]]; // layouts/wall_map.py

  function loadColour(value, low, high) {
    var share = high <= low ? 0 : Math.min(Math.max((value - low) / (high - low), 0), 1);
    for (var i = 1; i < STOPS.length; i++) {
      if (share <= STOPS[i][0]) {
        var f = (share - STOPS[i - 1][0]) / (STOPS[i][0] - STOPS[i - 1][0]);
        return "#" + STOPS[i - 1][1].map(function (a, k) {
          var v = Math.round(a + (STOPS[i][1][k] - a) * f);
          return (v < 16 ? "0" : "") + v.toString(16);
        }).join("");
      }
    }
    return "#ef4444";
  }

  // The children's fill and label from live open counts, on the same scale as the server's first
  // render (the siblings' own range). An inline style beats Leaflet's fill attribute, so hovering
  // (which restyles from the rendered data) keeps the live colour.
  function recolour(children) {
    var api = window.gridccLive;
    var shown = [];
    Object.keys(children).forEach(function (code) {
      var path = document.querySelector(".wall-area-" + code);
      if (path) shown.push({ code: code, path: path, open: children[code].open });
    });
    if (!shown.length) return;
    var values = shown.map(function (s) { return s.open; });
    var low = Math.min.apply(null, values);
    var high = Math.max.apply(null, values);
    shown.forEach(function (s) {
      var colour = loadColour(s.open, low, high);
      if (s.path.gridccFill !== colour) {
        s.path.gridccFill = colour;
        s.path.style.fill = colour;
      }
      var value = document.querySelector(".wall-label-" + s.code + " .wall-label-value");
      if (value && value.textContent !== api.fmt(s.open)) {
        value.textContent = api.fmt(s.open);
        scheduleDeclutter();
      }
    });
    api.setText("wall-legend-low", api.fmt(low));
    api.setText("wall-legend-high", api.fmt(high));
  }

  function ofScope(kind, scope) {
    var all = mapped[kind];
    return Object.keys(all)
      .map(function (key) { return all[key]; })
      .filter(function (f) { return f.properties.scope === scope; });
  }

  // Map layers have no element of their id (gridccLive.setProps looks for one).
  function setLayer(id, data) {
    window.gridccLive.setStore(id, data);
  }

  function collection(features) {
    return { type: "FeatureCollection", features: features };
  }

  // Workers that moved: their new fix, on duty (a fix just came in).
  function moveWorkers(msg) {
    var moved = (msg.workers || []).filter(function (w) {
      var f = mapped.workers[w.id];
      return f && f.properties.scope === msg.node;
    });
    if (!moved.length) return;
    moved.forEach(function (w) {
      var f = mapped.workers[w.id];
      mapped.workers[w.id] = {
        type: "Feature",
        geometry: { type: "Point", coordinates: [w.lon, w.lat] },
        properties: Object.assign({}, f.properties, { on: true, at: w.at }),
      };
    });
    drawWorkers(msg.node);
  }

  function drawWorkers(scope) {
    var shown = ofScope("workers", scope);
    setLayer("wall-workers", collection(shown));
    // Where the map holds every worker of the scope, the on-duty tile can follow it.
    var on = shown.filter(function (f) { return f.properties.on; }).length;
    window.gridccLive.setText("wall-kpi-on-duty", window.gridccLive.fmt(on));
  }

  // A worker whose last fix is older than ON_DUTY goes off duty on an unattended wall too, not
  // only at the next render (data_sources/wall_layers.py ON_DUTY; a minute's grace). Fix times come
  // from the phones and the server, not this PC: they are aged by the server's time as the page
  // estimates it, so a wall PC whose clock is off does not turn the whole grid off duty.
  var ON_DUTY_MS = 31 * 60 * 1000;
  setInterval(function () {
    var scope = shownScope();
    if (scope === null) return;
    var now = window.gridccLive.serverNow();
    var changed = false;
    ofScope("workers", scope).forEach(function (f) {
      var at = Date.parse(f.properties.at || "");
      if (f.properties.on && !isNaN(at) && now - at > ON_DUTY_MS) {
        mapped.workers[f.properties.code] = Object.assign({}, f, {
          properties: Object.assign({}, f.properties, { on: false }),
        });
        changed = true;
      }
    });
    if (changed) drawWorkers(scope);
  }, 60000);

  // The scope the map shows: the KPI tiles come from the same render as the map's layers.
  function shownScope() {
    var tiles = document.querySelector(".wall-kpi-grid[data-scope]");
    return tiles ? tiles.getAttribute("data-scope") : null;
  }

  function isOpen(status) {
    return status === "active" || status === "acknowledged";
  }

  // A live alarm item at its camera, as the server draws one (layouts/wall_map.py alarms_data).
  function alarmFeature(a, scope) {
    return {
      type: "Feature",
      geometry: { type: "Point", coordinates: [a.lon, a.lat] },
      properties: {
        id: a.id, type: a.type, severity: a.severity, status: a.status,
        high: a.severity >= HIGH_SEVERITY, scope: scope,
      },
    };
  }

  // A new open alarm of the shown scope joins the map at its camera (and pulses); alarms that were
  // resolved leave it; one that changed status is redrawn.
  function updateAlarms(msg) {
    var changed = false;
    var scope = shownScope();
    (msg.alarm_feed || []).forEach(function (a) {
      var f = mapped.alarms[a.id];
      if (f && f.properties.scope !== msg.node) f = null; // drawn on another scope's map
      if (!f) {
        if (isOpen(a.status) && msg.node === scope && a.lon != null && a.lat != null) {
          mapped.alarms[a.id] = alarmFeature(a, msg.node);
          changed = true;
        }
        return;
      }
      if (!isOpen(a.status)) {
        delete mapped.alarms[a.id];
        changed = true;
      } else if (f.properties.status !== a.status) {
        f.properties = Object.assign({}, f.properties, { status: a.status });
        changed = true;
      }
    });
    if (changed) {
      setLayer("wall-alarm-points", collection(ofScope("alarms", msg.node)));
    }
  }

  // A new high-severity alarm flashes the areas whose open alarms grew (at a building: the
  // outline) and the map's frame, a few times, then stops.
  var childAlarms = {};
  function flashAlarms(msg) {
    var grown = [];
    Object.keys(msg.children || {}).forEach(function (code) {
      var now = msg.children[code].alarms;
      if (childAlarms[code] !== undefined && now > childAlarms[code]) grown.push(code);
      childAlarms[code] = now;
    });
    var high = (msg.alarm_feed || []).some(function (a) {
      return a.new && a.severity >= HIGH_SEVERITY;
    });
    if (!high) return;
    var targets = [];
    grown.forEach(function (code) {
      targets = targets.concat(Array.prototype.slice.call(document.querySelectorAll(".wall-area-" + code)));
    });
    if (!targets.length) {
      targets = Array.prototype.slice.call(document.querySelectorAll(".wall-outline"));
    }
    var frame = document.querySelector(".wall-map-frame");
    if (frame) targets.push(frame);
    targets.forEach(function (el) {
      el.classList.remove("wall-flash");
      void el.getBoundingClientRect(); // restart the animation
      el.classList.add("wall-flash");
      setTimeout(function () { el.classList.remove("wall-flash"); }, 3000);
    });
  }


  window.gridccWall = wall;
  window.gridccWallMap = {
    apply: function (figures) { recolour(figures.children); },
    items: function (msg) {
      moveWorkers(msg);
      updateAlarms(msg);
      flashAlarms(msg);
    },
    // After a gap the stream could not replay (assets/wall.js asks the server to draw the wall
    // again): the scope's alarm points drawn so far may include some resolved unseen. Forget them;
    // the new render draws the open ones (until it arrives, live ones only).
    forgetAlarms: function (scope) {
      ofScope("alarms", scope).forEach(function (f) { delete mapped.alarms[f.properties.id]; });
    },
    reset: function (url) {
      childAlarms = {}; // the next snapshot is the new scope's baseline
      // Points drawn on other scopes' maps go: back on a scope, what its new render drew counts,
      // not an alarm remembered from the last visit that was resolved meanwhile. Also keeps these
      // maps to one scope's workers and open alarms on a carousel wall.
      var scope = null;
      try {
        scope = new URL(url, window.location.href).searchParams.get("scope");
      } catch (e) {
        scope = null;
      }
      ["workers", "alarms"].forEach(function (kind) {
        Object.keys(mapped[kind]).forEach(function (key) {
          if (mapped[kind][key].properties.scope !== scope) delete mapped[kind][key];
        });
      });
    },
  };
})();
