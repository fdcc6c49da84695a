/* gridcc wall `/wall`, the map: areas coloured by load on their level's absolute scale (the server's
 * thresholds, read from the legend's `data-scale`) with labels (a camera count per child at high
 * levels, an open-alarm count per area above the street level), single cameras, grid workers and
 * pulsing alarms, drawn by the functions dash-leaflet calls by name (`gridccWall.*`), and kept live
 * from the stream's deltas (assets/wall.js hands them over through `gridccWallMap`): children
 * recoloured and their alarm counts moved, workers moved, new alarms drawn at their camera and
 * resolved ones removed, a new high-severity alarm flashed. The map fits its scope again whenever
 * its panel changes size. Nothing here asks the server.
 */
(function () {
  "use strict";

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // What the server says the map shows (layouts/wall_map.py scale_config): the level's thresholds
  // with their colours, and whether single alarm markers belong on it. None at a building.
  var configText = null;
  var config = null;
  function mapConfig() {
    var el = document.querySelector("#wall-legend [data-scale]");
    var text = el ? el.getAttribute("data-scale") : null;
    if (text !== configText) {
      configText = text;
      try {
        config = text ? JSON.parse(text) : null;
      } catch (e) {
        config = null;
      }
    }
    return config;
  }

  // Labels are placed by assets/wall_map_view.js (which also fits the map to its scope).
  function scheduleDeclutter() {
    if (window.gridccMapView) window.gridccMapView.placeLabels();
  }

  function badge(p) {
    if (p.alarms === undefined || p.alarms === null) return "";
    return '<span class="wall-label-alarms' + (p.high ? " wall-label-alarms-high" : "") +
      '" data-n="' + Number(p.alarms) + '">' + escapeHtml(String(p.alarms)) + "</span>";
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
        '<span class="wall-label-figures"><span class="wall-label-value">' + escapeHtml(String(p.open)) +
        "</span>" + badge(p) + "</span>" +
        (p.cameras ? '<span class="wall-label-cameras">' + escapeHtml(p.cameras) + "</span>" : "") +
        "</div>";
      scheduleDeclutter();
      var marker = window.L.marker(latlng, {
        interactive: false,
        keyboard: false,
        zIndexOffset: 10000, // over the alarm and worker markers: a figure is never covered
        icon: window.L.divIcon({ className: "wall-label wall-label-" + p.code, html: html, iconSize: null }),
      });
      marker.once("add", function () {
        if (marker._map && window.gridccMapView) window.gridccMapView.adopt(marker._map);
      });
      return marker;
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
    // A dot pulses on the map's beat (below) while its alarm is new to this page (not each time
    // the layer is drawn again) and, for a high-severity one, as long as it is open.
    var seen = firstSeen[p.id] || (firstSeen[p.id] = Date.now());
    var cls = "wall-alarm-dot wall-alarm-sev-" + p.severity + (p.high ? " wall-alarm-high" : "") +
      (Date.now() - seen < FRESH_MS ? " wall-alarm-fresh" : "");
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
  // When this page first drew each alarm (a fresh one pulses for FRESH_MS).
  var firstSeen = {};
  var FRESH_MS = 15000;

  // ------------------------------------------------------------------ what the wall's CPU goes to
  // Measured in headless Chromium (software compositing, as on many wall PCs) under a 200 events/s
  // city: animations that never stop and layers redrawn on every delta were most of a wall's CPU.
  // So: the map's layers are drawn again at most every few seconds (a point moving 2 s later is
  // invisible from 5 m), and pulses are short and on a common beat, with nothing animating between.
  var LAYERS = {
    "wall-workers": { kind: "workers", every: 3000 },
    "wall-alarm-points": { kind: "alarms", every: 2000 },
  };
  var layerDue = {};
  var layerTimer = {};

  // Draws layer `id` with the shown scope's points: at once when it was not drawn for its period,
  // else once at the end of the period (with the points of then: a drill in between draws the
  // new scope's, never the old one's).
  function drawLayer(id) {
    var wait = (layerDue[id] || 0) - Date.now();
    if (wait > 0) {
      if (!layerTimer[id]) {
        layerTimer[id] = setTimeout(function () {
          layerTimer[id] = null;
          drawLayer(id);
        }, wait);
      }
      return;
    }
    layerDue[id] = Date.now() + LAYERS[id].every;
    var scope = shownScope();
    if (scope !== null) window.gridccLive.setStore(id, collection(ofScope(LAYERS[id].kind, scope)));
  }

  // The beat: every BEAT_MS, while a new or a high-severity alarm is shown, the map pulses once
  // (those dots and the area badges of high ones, for PULSE_MS); in between nothing on it moves.
  var BEAT_MS = 8000;
  var PULSE_MS = 1100;
  setInterval(function () {
    var frame = document.querySelector(".wall-map-frame");
    if (!frame || !frame.querySelector(".wall-alarm-high, .wall-alarm-fresh, .wall-label-alarms-high")) return;
    frame.classList.add("wall-beat");
    setTimeout(function () { frame.classList.remove("wall-beat"); }, PULSE_MS);
  }, BEAT_MS);

  function rgb(hex) {
    return [1, 3, 5].map(function (i) { return parseInt(hex.slice(i, i + 2), 16); });
  }
  // The colour of `value` open cases on the level's thresholds (layouts/wall_map.py load_colour).
  function loadColour(value, stops) {
    for (var i = 1; i < stops.length; i++) {
      if (value <= stops[i][0]) {
        var x0 = stops[i - 1][0];
        var x1 = stops[i][0];
        var f = x1 <= x0 ? 0 : Math.min(Math.max((value - x0) / (x1 - x0), 0), 1);
        var c0 = rgb(stops[i - 1][1]);
        var c1 = rgb(stops[i][1]);
        return "#" + c0.map(function (a, k) {
          var v = Math.round(a + (c1[k] - a) * f);
          return (v < 16 ? "0" : "") + v.toString(16);
        }).join("");
      }
    }
    return stops[stops.length - 1][1];
  }

  // A label is placed again only when a figure's width may have changed (its digits, or a badge
  // appearing or going): placing measures every label, and a busy city changes figures ten times
  // a second.
  function relaidOut(before, after) {
    if (before.length !== after.length || before === "0" || after === "0") scheduleDeclutter();
  }

  function setBadge(code, n, high) {
    var el = document.querySelector(".wall-map .wall-label-" + code + " .wall-label-alarms");
    if (!el) return;
    if (n !== undefined && el.getAttribute("data-n") !== String(n)) {
      var before = el.textContent;
      el.setAttribute("data-n", String(n));
      el.textContent = window.gridccLive.fmt(n);
      relaidOut(before, el.textContent);
    }
    if (n === 0) high = false;
    if (high !== undefined) el.classList.toggle("wall-label-alarms-high", !!high);
  }

  // The children's fill, label and alarm count from live figures, on the level's absolute scale
  // (the same thresholds the server coloured the first render with). An inline style beats
  // Leaflet's fill attribute, so hovering (which restyles from the rendered data) keeps the live
  // colour.
  function recolour(children) {
    var api = window.gridccLive;
    var scale = mapConfig();
    Object.keys(children).forEach(function (code) {
      var child = children[code];
      var path = document.querySelector(".wall-map .wall-area-" + code);
      if (path && scale) {
        var colour = loadColour(child.open, scale.stops);
        if (path.gridccFill !== colour) {
          path.gridccFill = colour;
          path.style.fill = colour;
        }
      }
      var value = document.querySelector(".wall-map .wall-label-" + code + " .wall-label-value");
      if (value && value.textContent !== api.fmt(child.open)) {
        var before = value.textContent;
        value.textContent = api.fmt(child.open);
        relaidOut(before, value.textContent);
      }
      // `high`: open high-severity alarms, where the delta carries them.
      setBadge(code, child.alarms, child.high === undefined ? undefined : child.high > 0);
    });
  }

  function ofScope(kind, scope) {
    var all = mapped[kind];
    return Object.keys(all)
      .map(function (key) { return all[key]; })
      .filter(function (f) { return f.properties.scope === scope; });
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
    drawLayer("wall-workers");
    // Where the map holds every worker of the scope, the on-duty tile can follow it (at once).
    var on = ofScope("workers", scope).filter(function (f) { return f.properties.on; }).length;
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
        var points = !mapConfig() || mapConfig().points !== false;
        if (points && isOpen(a.status) && msg.node === scope && a.lon != null && a.lat != null) {
          mapped.alarms[a.id] = alarmFeature(a, msg.node);
          changed = true;
        }
        return;
      }
      if (!isOpen(a.status)) {
        delete mapped.alarms[a.id];
        changed = true;
      } else if (f.properties.status !== a.status) {
        // Acknowledged looks as active on the map: kept for the next drawing, no drawing for it.
        f.properties = Object.assign({}, f.properties, { status: a.status });
      }
    });
    if (changed) {
      drawLayer("wall-alarm-points");
    }
  }

  // A new high-severity alarm flashes the areas whose open alarms grew (at a building: the
  // outline) and the map's frame, a few times, then stops.
  var childAlarms = {};
  var flashedAt = 0;
  var FLASH_EVERY_MS = 10000; // a busy city's high alarms: one flash now and then, not a strobe
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
    grown.forEach(function (code) {
      if (msg.children[code].high === undefined) setBadge(code, undefined, true);
    });
    if (Date.now() - flashedAt < FLASH_EVERY_MS) return;
    flashedAt = Date.now();
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
    // The colour of `value` open cases on the shown level's scale (null at a building).
    colour: function (value) {
      var scale = mapConfig();
      return scale ? loadColour(value, scale.stops) : null;
    },
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
