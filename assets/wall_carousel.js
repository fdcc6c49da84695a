/* gridcc wall `/wall`, carousel `?rotate=N`.
 *
 * Every N seconds after a scope has rendered, the wall shows the next child of the scope it started
 * on (its "root", in code order), then the root again, and so on, with no mouse or keyboard.
 * Any click, key or wheel pauses it for `?rotate_pause=` seconds (default 300) after the last input,
 * so an operator who drills in is not pulled away; then it goes on (from the root if the operator
 * left the carousel's scopes). The root survives a reload (sessionStorage), e.g. when a
 * new build reloads the page in the middle of a round. While the stream is down (the wall shows
 * stale data) it holds on the scope shown: a drill needs the server, and the stale state must stay
 * on screen; it goes on a full period after the stream is back.
 * <html data-wall-rotate="running|paused|held">.
 */
(function () {
  "use strict";

  var root = document.documentElement;

  function param(name) {
    return new URLSearchParams(window.location.search).get(name);
  }

  function isWall() {
    return window.location.pathname.replace(/\/$/, "") === "/wall";
  }

  var CAROUSEL_KEY = "gridcc-wall-carousel";
  var carousel = { root: null, list: [], scope: null, since: 0, pausedUntil: 0 };

  function seconds(name, fallback) {
    var n = Number(param(name));
    return param(name) !== null && isFinite(n) && n > 0 ? n * 1000 : fallback;
  }

  function remembered() {
    try {
      return JSON.parse(window.sessionStorage.getItem(CAROUSEL_KEY) || "null");
    } catch (e) {
      return null; // storage blocked: the carousel simply restarts from the scope shown
    }
  }

  function remember(state) {
    try {
      window.sessionStorage.setItem(CAROUSEL_KEY, JSON.stringify(state));
    } catch (e) {
      /* not kept over a reload, nothing else lost */
    }
  }

  function goTo(code) {
    var query = new URLSearchParams({ scope: code }); // scope first, as the server's links
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      if (key !== "scope") query.append(key, value);
    });
    var clientside = window.dash_clientside;
    if (clientside && clientside.set_props) clientside.set_props("wall-url", { search: "?" + query.toString() });
  }

  function rotate() {
    var period = seconds("rotate", 0);
    if (!isWall() || !period) {
      carousel.root = null;
      root.removeAttribute("data-wall-rotate");
      return;
    }
    var grid = document.querySelector(".wall-kpi-grid[data-scope]");
    if (!grid) return;
    var scope = grid.getAttribute("data-scope");
    var now = Date.now();
    if (scope !== carousel.scope) {
      carousel.scope = scope; // the period counts from when a scope has rendered
      carousel.since = now;
    }
    if (carousel.root === null) {
      var saved = remembered();
      if (saved && (saved.root === scope || (saved.list || []).indexOf(scope) >= 0)) {
        carousel.root = saved.root;
        carousel.list = saved.list || [];
      } else {
        carousel.root = scope;
      }
    }
    if (scope === carousel.root) {
      var children = grid.getAttribute("data-children");
      carousel.list = children ? children.split(",") : [];
      remember({ root: carousel.root, list: carousel.list });
    }
    if (root.getAttribute("data-wall-state") === "offline") {
      root.setAttribute("data-wall-rotate", "held");
      carousel.since = now;
      return;
    }
    var paused = now < carousel.pausedUntil;
    root.setAttribute("data-wall-rotate", paused ? "paused" : "running");
    if (paused || now - carousel.since < period || !carousel.list.length) return;
    var order = [carousel.root].concat(carousel.list);
    goTo(order[(order.indexOf(scope) + 1) % order.length]); // not in the round (-1): the root
    carousel.since = now; // wait a full period for the render before moving on again
  }

  function pauseCarousel() {
    carousel.pausedUntil = Date.now() + seconds("rotate_pause", 300000);
    if (root.hasAttribute("data-wall-rotate")) root.setAttribute("data-wall-rotate", "paused");
  }

  ["pointerdown", "keydown", "wheel"].forEach(function (name) {
    window.addEventListener(name, pauseCarousel, { capture: true, passive: true });
  });
  setInterval(rotate, 250);
})();
