/* gridcc wall `/wall`, the map's view: it fits the scope into its panel again whenever the panel
 * changes size, and places the areas' labels so that no two overlap. assets/wall_map.js draws the
 * map and asks for a placement (`gridccMapView.placeLabels()`) when a label's figures change width.
 */
(function () {
  "use strict";

  // Label placement: the largest areas first, each label whole where it fits (inside the map and
  // clear of the labels placed so far), else its figures alone, else none (an area too small or
  // too crowded to hold one). No two shown labels ever overlap.
  var declutterFrame = null;
  function scheduleDeclutter() {
    if (declutterFrame === null) declutterFrame = window.requestAnimationFrame(declutter);
  }
  function box(label) {
    return (label.firstElementChild || label).getBoundingClientRect();
  }
  function areaSize(code) {
    var size = 0;
    document.querySelectorAll(".wall-map .wall-area-" + code).forEach(function (path) {
      var r = path.getBoundingClientRect();
      size += r.width * r.height;
    });
    return size;
  }
  function fits(r, frame, placed) {
    if (r.left < frame.left || r.right > frame.right || r.top < frame.top || r.bottom > frame.bottom) {
      return false;
    }
    return !placed.some(function (p) {
      return r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top;
    });
  }
  function declutter() {
    declutterFrame = null;
    var frameEl = document.querySelector(".wall-map-frame");
    if (!frameEl) return;
    var frame = frameEl.getBoundingClientRect();
    var labels = Array.prototype.slice.call(document.querySelectorAll(".wall-map .wall-label"));
    labels.forEach(function (el) { el.classList.remove("wall-label-compact", "wall-label-hidden"); });
    var placed = [];
    labels
      .map(function (el) {
        var code = (el.className.match(/wall-label-(\d+)/) || [])[1];
        return { el: el, size: code ? areaSize(code) : 0 };
      })
      .sort(function (a, b) { return b.size - a.size; })
      .forEach(function (label) {
        var r = box(label.el);
        if (!fits(r, frame, placed)) {
          label.el.classList.add("wall-label-compact");
          r = box(label.el);
          if (!fits(r, frame, placed)) {
            label.el.classList.add("wall-label-hidden");
            return;
          }
        }
        placed.push(r);
      });
  }

  // The map fits its scope (the server's `viewport`, applied by dash-leaflet's fitBounds) again
  // whenever its panel changes size: a wall switched to the wide layout, a window resized.
  function adopt(map) {
    if (map.gridccAdopted) return;
    map.gridccAdopted = true;
    var fitBounds = map.fitBounds;
    map.fitBounds = function (bounds, options) {
      map.gridccFit = [bounds, options];
      return fitBounds.call(map, bounds, options);
    };
    map.on("zoomend moveend viewreset resize", scheduleDeclutter);
    if (!window.ResizeObserver) return;
    var observer = new window.ResizeObserver(function () {
      map.invalidateSize({ pan: false });
      if (map.gridccFit) {
        fitBounds.call(map, map.gridccFit[0], Object.assign({}, map.gridccFit[1], { animate: false }));
      }
      scheduleDeclutter();
    });
    observer.observe(map.getContainer());
    map.on("unload", function () { observer.disconnect(); });
  }
  if (window.L && window.L.Map) {
    window.L.Map.addInitHook(function () { adopt(this); });
  }

  window.gridccMapView = { placeLabels: scheduleDeclutter, adopt: adopt };
})();
