/* gridcc embed `/embed` (layouts/embed.py): its token, the requests that carry it, the layout of its
 * panels in the frame, and the messages with the portal that frames it. Only on the embed page
 * (assets load on every page, before Dash's renderer starts).
 *
 * THE TOKEN
 * - It comes in the page's URL (`?token=`) and is the page's only credential (a third-party
 *   iframe gets no cookies): every Dash request (`/_dash-update-component`, `/_dash-layout`,
 *   `/_dash-dependencies`) carries it in the `X-Gridcc-Embed` header (the fetch wrapper below),
 *   the live stream as `&embed=` (an EventSource sends no headers: assets/live.js asks
 *   `window.gridccEmbedToken()`, which is null once the token has ended).
 * - Its expiry: the `exp` of its payload (itsdangerous: base64url(JSON) "." signature, a leading
 *   "." marking a zlib-compressed payload), else the page's `data-expires-at`, or the
 *   `X-Gridcc-Embed-Expires` header of a Dash response (Unix seconds). It is compared with the
 *   server's time (the `Date` of its answers), so a viewer's clock minutes off changes nothing.
 * - The address keeps the token the page opened with (Dash's locations hold copies of it, and a
 *   rewritten address makes them push their stale copy back); a reload for a new build opens with
 *   the current one (`gridccEmbed.reload()`, asked by assets/live.js). The page's own navigations
 *   (a drill) replace its history entry instead of adding one: the portal's Back button leaves
 *   the portal page, it does not step back through drills in a frame.
 * - When it ends (the stream's `denied` event, {"reason": "expired"} or "revoked"; a 401 from a
 *   callback; or its expiry passing with no replacement) the panels give way to a neutral
 *   "链接已过期 / Link expired" (never a login page), the stream closes and no Dash request leaves
 *   (the renderer is answered "no update" in the page). A token from the portal brings them back.
 *
 * MESSAGES (window.postMessage)
 * The portal is the parent window at an origin the page allows (`data-origins`: its grant's, the
 * same the server puts in the page's CSP frame-ancestors, plus this server's own). Its origin is
 * `location.ancestorOrigins[0]` (Chromium, Safari), else that of `document.referrer` (so a portal
 * must not frame with referrerpolicy="no-referrer" for Firefox; failing both, the first allowed
 * message names it). Messages go to that origin only (never "*"), and are taken only from the
 * parent window at it. A portal sends nothing before `gridcc:ready`.
 *  embed → portal
 *   {type: "gridcc:ready"}  the page is up and listening;
 *   {type: "gridcc:state", state: "live" | "stale" | "expired", reason?}  when it changes (stale:
 *       the data are late or the stream is down, for 2 s or more; the last frame stays. reason:
 *       why it expired, "expired", "revoked", …);
 *   {type: "gridcc:token-expiring", expiresAt: <ms, server time>, expiresIn: <ms>}  once per
 *       token, 60 s before its expiry, or a fifth of its life for a short one, at least 5 s before;
 *   {type: "gridcc:height", height: <px>}  when it changes: the height its panels want at the
 *       frame's width (for a frame that sizes itself to its content);
 *   {type: "gridcc:drill", scope: <code>}  the viewer drilled down (a map area, a ranking row);
 *   {type: "gridcc:error", error: "scope", scope: <code>, reason}  a scope the token does not
 *       cover (or no such area) was refused; the page goes back to the scope it showed.
 *  portal → embed
 *   {type: "gridcc:token", token: <T>}  the token from now on: no reload, nothing on the page is
 *       lost; the stream reconnects with it where it was, later requests carry it;
 *   {type: "gridcc:set", scope?: <code>, lang?: "zh" | "en"}  another scope (within the token's:
 *       the server refuses others) and/or language, without a reload.
 */
(function () {
  "use strict";

  var EMBED_PATH = /^\/embed\/?$/;
  if (!EMBED_PATH.test(window.location.pathname)) return;

  var HEADER = "X-Gridcc-Embed";
  var EXPIRES_HEADER = "X-Gridcc-Embed-Expires";
  // data_sources/embed/tokens.py: `[.]payload.signature` in base64url, at most 2,048 characters.
  var TOKEN_SHAPE = /^\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
  var TOKEN_MAX = 2048;
  var CODE = /^[0-9A-Za-z_-]{1,32}$/; // a node code (the schema's `Code`)
  // After the expiry, the server's own word (the stream's `denied`, sent at the expiry) comes first.
  var GRACE_MS = 2000;
  var WARN_MAX_MS = 60000;
  var WARN_MIN_MS = 5000;
  var html = document.documentElement;
  var URL_ID = "wall-url"; // layouts/ids.py Wall.URL: the page's scope and language
  var RESYNC_ID = "wall-resync"; // layouts/ids.py Wall.RESYNC: draws the panels again
  var replaceState = window.history.replaceState;

  html.setAttribute("data-embed", "");

  function param(name, search) {
    return new URLSearchParams(search === undefined ? window.location.search : search).get(name);
  }

  function setLang() {
    html.lang = param("lang") === "en" ? "en" : "zh-CN";
  }
  setLang();

  // ------------------------------------------------------------------ the token and its expiry
  var token = param("token") || "";
  var expiresAt = null; // ms, the server's clock
  var issuedAt = null;
  var warned = false; // token-expiring posted for this token
  var ended = null; // why the token ended ("expired", "revoked", …); null while it holds

  // The server's time, from the `Date` of its answers (whole seconds: ±0.5 s, well inside the
  // server's leeway), so that a viewer's clock minutes off neither blanks the panel early nor
  // keeps it past its end. Null until the first answer: nothing expires on a guess.
  var clockOffset = null; // this PC's clock − the server's, ms

  function learnClock(response) {
    var date = Date.parse(response.headers.get("Date") || "");
    if (!isNaN(date)) clockOffset = Date.now() - (date + 500);
  }

  function serverNow() {
    return Date.now() - (clockOffset || 0);
  }

  function bytesOf(base64url) {
    var text = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) text += "=";
    var binary = window.atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // The token's claims (not verified: only the server can, and does), or null.
  function claimsOf(value) {
    return new Promise(function (resolve) {
      var compressed = value.charAt(0) === ".";
      var bytes = bytesOf((compressed ? value.slice(1) : value).split(".")[0]);
      if (!compressed) {
        resolve(JSON.parse(new TextDecoder().decode(bytes)));
      } else if (window.DecompressionStream) {
        var inflated = new Blob([bytes]).stream().pipeThrough(new window.DecompressionStream("deflate"));
        resolve(new Response(inflated).text().then(JSON.parse));
      } else {
        resolve(null);
      }
    }).then(
      function (claims) { return claims && typeof claims === "object" ? claims : null; },
      function () { return null; }
    );
  }

  function setExpiry(expiresMs, issuedMs) {
    if (!(expiresMs > 0)) return;
    expiresAt = expiresMs;
    if (issuedMs > 0) issuedAt = issuedMs;
    check();
  }

  function learnExpiry(value) {
    claimsOf(value).then(function (claims) {
      if (value !== token || claims === null) return;
      if (typeof claims.exp === "number") setExpiry(claims.exp * 1000, claims.iat * 1000);
    });
  }

  // How long before the expiry the portal is told: 60 s, or a fifth of a short token's life,
  // never less than 5 s.
  function warningMs() {
    var life = issuedAt !== null ? expiresAt - issuedAt : null;
    var lead = life !== null && life > 0 ? life / 5 : WARN_MAX_MS;
    return Math.max(WARN_MIN_MS, Math.min(WARN_MAX_MS, lead));
  }

  function check() {
    if (ended !== null || expiresAt === null || clockOffset === null) return;
    var now = serverNow();
    if (!warned && now >= expiresAt - warningMs()) {
      var left = Math.max(0, Math.round(expiresAt - now));
      warned = post({ type: "gridcc:token-expiring", expiresAt: expiresAt, expiresIn: left });
    }
    if (now >= expiresAt + GRACE_MS) end("expired");
  }
  setInterval(check, 1000);

  function reconnect() {
    var live = window.gridccLive;
    if (live && live.reconnect) live.reconnect();
  }

  // The token no longer holds: the neutral message, no stream, no Dash request.
  function end(reason) {
    if (ended !== null) return;
    ended = typeof reason === "string" && reason ? reason.slice(0, 40) : "expired";
    html.setAttribute("data-embed-state", "expired");
    report();
    reconnect(); // gridccEmbedToken() is null now: live.js closes the stream and opens none
  }

  function replaceToken(value) {
    if (typeof value !== "string" || value.length > TOKEN_MAX || !TOKEN_SHAPE.test(value)) return;
    if (value === token) return;
    token = value;
    warned = false;
    expiresAt = null;
    issuedAt = null;
    learnExpiry(value);
    var revived = ended !== null;
    ended = null;
    html.removeAttribute("data-embed-state");
    reconnect(); // the same stream with the new token, resuming where it was
    if (revived) {
      // Requests were answered "no update" meanwhile: the server draws the panels again.
      var clientside = window.dash_clientside;
      if (clientside && clientside.set_props) clientside.set_props(RESYNC_ID, { data: "embed:" + Date.now() });
    }
    report();
  }

  window.gridccEmbedToken = function () {
    return ended === null && token ? token : null;
  };
  window.gridccEmbed = {
    // A reload (a new build is serving): with the token of now, not the one the page opened with.
    reload: function () {
      window.location.replace(window.location.pathname + withCurrentToken(window.location.search));
    },
    // The stream was refused: `reason` is the `denied` event's, or the HTTP status of a refused
    // reconnection ("401", "403").
    denied: function (reason) {
      end(reason === "401" ? "expired" : reason === "403" ? "refused" : reason);
    },
  };

  // ------------------------------------------------------------------ Dash's requests
  var nativeFetch = window.fetch.bind(window);

  function dashRequest(input) {
    var url = typeof input === "string" ? input : input instanceof URL ? input.href : input && input.url;
    if (!url) return null;
    var parsed;
    try {
      parsed = new URL(url, window.location.href);
    } catch (e) {
      return null;
    }
    if (parsed.origin !== window.location.origin) return null;
    var match = /\/_dash-([a-z-]+)$/.exec(parsed.pathname);
    return match ? match[1] : null;
  }

  function withToken(input, init, value) {
    var options = Object.assign({}, init || {});
    var headers = new Headers(options.headers || (input instanceof Request ? input.headers : undefined));
    headers.set(HEADER, value);
    options.headers = headers;
    return options;
  }

  // What the renderer gets instead of a request that must not be made: a callback "no update"
  // (no error in the console), anything else nothing.
  function quiet(kind) {
    if (kind === "update-component") return Promise.resolve(new Response(null, { status: 204 }));
    return new Promise(function () {});
  }

  function bodyOf(init) {
    try {
      return JSON.parse(init && typeof init.body === "string" ? init.body : "null");
    } catch (e) {
      return null;
    }
  }

  // The page's `search` a render was asked for (the wall's render listens to it), or null.
  function searchOf(body) {
    var found = null;
    if (!body || typeof body.output !== "string" || body.output.indexOf("wall-title.children") < 0) return null;
    (body.inputs || []).concat(body.state || []).forEach(function (dep) {
      if (dep && dep.id === URL_ID && dep.property === "search" && typeof dep.value === "string") found = dep.value;
    });
    return found;
  }

  function reasonOf(response) {
    return response
      .clone()
      .json()
      .then(function (body) { return body && typeof body.reason === "string" ? body.reason : null; })
      .catch(function () { return null; });
  }

  function send(input, init, kind, again) {
    var sent = token;
    return nativeFetch(input, withToken(input, init, sent)).then(function (response) {
      learnClock(response);
      var expires = Number(response.headers.get(EXPIRES_HEADER));
      if (sent === token && expires > 0) setExpiry(expires * 1000, null);
      if (response.status === 401) {
        if (sent !== token && again) return send(input, init, kind, false); // replaced meanwhile
        return reasonOf(response).then(function (reason) {
          if (sent === token) end(reason || "expired");
          return quiet(kind);
        });
      }
      if (kind === "update-component") {
        var search = searchOf(bodyOf(init));
        if (search !== null && (response.status === 403 || response.status === 404)) {
          return reasonOf(response).then(function (reason) {
            refused(search, reason);
            return quiet(kind);
          });
        }
        if (search !== null && response.status === 200) drawn(search);
      }
      return response;
    });
  }

  window.fetch = function (input, init) {
    var kind = dashRequest(input);
    if (kind === null) return nativeFetch(input, init);
    if (ended !== null || !token) return quiet(kind);
    return send(input, init, kind, true);
  };

  // ------------------------------------------------------------------ the page's scope and address
  var shown = { search: null, scope: param("scope") }; // what the last render drew; the address's scope
  var asked = null; // a scope this page went to itself (the portal's, or back from a refusal)
  var marker = null;

  // The scope a render drew, for the stream and the map's live layers (assets/live.js and
  // wall_map.js follow the first `.wall-kpi-grid[data-scope]`): where the token grants no KPI
  // tiles, this hidden marker stands in for them (after the app in the document: real tiles win).
  function drawn(search) {
    shown.search = search;
    if (root === null) return;
    var scope = param("scope", search) || root.getAttribute("data-root-scope");
    if (!scope) return;
    var lang = param("lang", search);
    if (marker === null) {
      marker = document.createElement("div");
      marker.className = "wall-kpi-grid embed-scope-marker";
      marker.hidden = true;
      document.body.appendChild(marker);
    }
    marker.setAttribute("data-scope", scope);
    marker.setAttribute("data-lang", lang === "en" || lang === "zh" ? lang : root.getAttribute("data-lang") || "zh");
  }

  function go(search) {
    var clientside = window.dash_clientside;
    if (clientside && clientside.set_props) clientside.set_props(URL_ID, { search: search });
  }

  // The server refused a scope (outside the token's, or none such): say so, and go back to the
  // scope shown.
  function refused(search, reason) {
    var scope = param("scope", search);
    post({ type: "gridcc:error", error: "scope", scope: scope, reason: reason || "refused" });
    if (shown.search === null || param("scope") !== scope) return;
    var back = shown.search;
    if (param("lang")) back = withParam(back, "lang", param("lang"));
    asked = param("scope", back);
    go(back);
  }

  // `search` with `name` set to `value`, the rest as it was written (no re-encoding: Dash's
  // location compares the strings).
  function withParam(search, name, value) {
    var pattern = new RegExp("([?&])" + name + "=[^&#]*");
    var pair = name + "=" + encodeURIComponent(value);
    if (pattern.test(search)) return search.replace(pattern, function (_, separator) { return separator + pair; });
    return search + (search.length > 1 ? "&" : search ? "" : "?") + pair;
  }

  function withCurrentToken(search) {
    return token ? withParam(search, "token", token) : search;
  }

  // A new address: its language, and a drill to tell the portal about.
  function navigated() {
    setLang();
    var scope = param("scope");
    if (scope === shown.scope) return;
    shown.scope = scope;
    if (scope !== null && scope === asked) {
      asked = null;
      return;
    }
    if (scope !== null) post({ type: "gridcc:drill", scope: scope });
  }

  window.history.pushState = function (state, title, url) {
    replaceState.call(window.history, state, title, url);
    navigated();
  };
  window.history.replaceState = function (state, title, url) {
    replaceState.call(window.history, state, title, url);
    navigated();
  };
  window.addEventListener("popstate", navigated);

  // The portal's `gridcc:set`: the page's address changes as a drill does, and the wall's render
  // (listening to it) draws the new scope or language.
  function setView(msg) {
    var search = window.location.search;
    if (typeof msg.scope === "string" && CODE.test(msg.scope)) {
      if (msg.scope !== param("scope")) asked = msg.scope;
      search = withParam(search, "scope", msg.scope);
    }
    if (msg.lang === "zh" || msg.lang === "en") search = withParam(search, "lang", msg.lang);
    if (search !== window.location.search) go(search);
  }

  // ------------------------------------------------------------------ the portal
  var root = null; // the page's `.embed-root`, once the router has drawn it
  var ready = false; // "gridcc:ready" posted
  var allowed = [];
  var parentOrigin = null;
  var framed = window.parent !== window;
  // A page going away says nothing more (its stream's end is no news to the portal).
  window.addEventListener("pagehide", function () {
    framed = false;
  });

  function isAllowed(origin) {
    return allowed.indexOf(origin) >= 0;
  }

  function parentOf() {
    var ancestors = window.location.ancestorOrigins;
    if (ancestors && ancestors.length) return ancestors[0];
    try {
      return document.referrer ? new URL(document.referrer).origin : null;
    } catch (e) {
      return null;
    }
  }

  function post(msg) {
    if (!framed || parentOrigin === null) return false;
    if (!ready && msg.type !== "gridcc:ready") {
      ready = true; // whatever comes first, the portal hears "ready" before it
      window.parent.postMessage({ type: "gridcc:ready" }, parentOrigin);
    }
    window.parent.postMessage(msg, parentOrigin);
    return true;
  }

  window.addEventListener("message", function (event) {
    if (root === null || !framed || event.source !== window.parent) return;
    if (!isAllowed(event.origin) || (parentOrigin !== null && event.origin !== parentOrigin)) return;
    var msg = event.data;
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
    if (parentOrigin === null) {
      parentOrigin = event.origin; // neither ancestorOrigins nor a referrer named it
      if (!ready && post({ type: "gridcc:ready" })) ready = true;
    }
    if (msg.type === "gridcc:token") replaceToken(msg.token);
    else if (msg.type === "gridcc:set") setView(msg);
  });

  // live, stale or expired, as the portal was last told. Stale is told once it has lasted
  // STALE_MS: a blip is no news, nor is the stream's end when the page itself goes away.
  var STALE_MS = 2000;
  var told = null;
  var staleTimer = null;

  function stateNow() {
    if (ended !== null) return "expired";
    var wall = html.getAttribute("data-wall-state"); // the wall's live view: live, delayed, offline
    if (wall === "live") return "live";
    return wall === "delayed" || wall === "offline" ? "stale" : null;
  }

  function report() {
    var state = stateNow();
    if (state === null || state === told) return;
    if (state === "stale") {
      if (staleTimer === null) {
        staleTimer = setTimeout(function () {
          staleTimer = null;
          if (stateNow() === "stale" && told !== "stale" && post({ type: "gridcc:state", state: "stale" })) told = "stale";
        }, STALE_MS);
      }
      return;
    }
    var msg = { type: "gridcc:state", state: state };
    if (state === "expired") msg.reason = ended;
    if (post(msg)) told = state;
  }

  new MutationObserver(function () {
    // The wall's ultra-wide variant is for walls: an embed lays its panels out itself.
    if (html.hasAttribute("data-wall-aspect")) html.removeAttribute("data-wall-aspect");
    report();
  }).observe(html, { attributes: true, attributeFilter: ["data-wall-state", "data-wall-aspect"] });

  // ------------------------------------------------------------------ layout in the frame
  // Columns for the frame and its panels: cells nearest the panels' own shapes, as few empty ones
  // as may be, none narrower than MIN_W; rows no lower than the tallest minimum of the panels
  // shown (below it the page scrolls, and the height it reports asks for more). The last panel
  // spans what its row leaves empty. One panel alone fills its frame, whatever its size.
  // Per panel: the width / height it reads best at, the least height it is legible in (px).
  var SHAPES = {
    kpis: [1.6, 220],
    map: [1.4, 180],
    alarms: [1.2, 200],
    feed: [1.2, 200],
    trend: [2.0, 150],
    channels: [1.8, 150],
    ranking: [1.5, 220],
    funnel: [1.6, 170],
    categories: [1.4, 180],
  };
  var MIN_W = 220;
  var toldHeight = null;

  function shapeOf(panels) {
    var aspect = 0;
    var least = 0;
    panels.forEach(function (panel) {
      var shape = SHAPES[panel.getAttribute("data-panel")] || [1.6, 160];
      aspect += shape[0] / panels.length;
      least = Math.max(least, shape[1]);
    });
    return { aspect: aspect, least: least };
  }

  function best(n, width, height, gap, shape) {
    var choice = { cols: 1, rows: n, cost: Infinity, w: width };
    for (var cols = 1; cols <= n; cols++) {
      var rows = Math.ceil(n / cols);
      var w = (width - gap * (cols - 1)) / cols;
      var h = (height - gap * (rows - 1)) / rows;
      if (cols > 1 && w < MIN_W) break;
      var cost = Math.abs(Math.log(w / Math.max(h, 1) / shape.aspect)) + 0.25 * (cols * rows - n);
      if (h < shape.least) cost += (2 * (shape.least - h)) / shape.least;
      if (cost < choice.cost) choice = { cols: cols, rows: rows, cost: cost, w: w };
    }
    return choice;
  }

  function setStyle(el, name, value) {
    if (el.style.getPropertyValue(name) === value) return;
    if (value) el.style.setProperty(name, value);
    else el.style.removeProperty(name);
  }

  function arrange() {
    var grid = root && root.querySelector(".embed-grid");
    if (!grid) return;
    var panels = Array.prototype.filter.call(grid.children, function (p) { return !p.hidden; });
    var n = panels.length;
    if (grid.getAttribute("data-count") !== String(n)) grid.setAttribute("data-count", String(n));
    if (!n) return;
    var style = window.getComputedStyle(grid);
    var gap = parseFloat(style.columnGap) || 0;
    var padX = (parseFloat(style.paddingLeft) || 0) + (parseFloat(style.paddingRight) || 0);
    var padY = (parseFloat(style.paddingTop) || 0) + (parseFloat(style.paddingBottom) || 0);
    var width = root.clientWidth - padX;
    var shape = shapeOf(panels);
    var choice = best(n, width, root.clientHeight - padY, gap, shape);
    setStyle(grid, "--embed-columns", "repeat(" + choice.cols + ", minmax(0, 1fr))");
    setStyle(grid, "--embed-row-min", n > 1 ? shape.least + "px" : "0px");
    var empty = choice.cols * choice.rows - n;
    panels.forEach(function (panel, i) {
      setStyle(panel, "--embed-span", i === n - 1 && empty > 0 ? String(empty + 1) : "");
    });
    var rowHeight = Math.max(shape.least, choice.w / shape.aspect);
    var height = Math.ceil(choice.rows * rowHeight + gap * (choice.rows - 1) + padY);
    if (height !== toldHeight && post({ type: "gridcc:height", height: height })) toldHeight = height;
  }

  // Lines and rows that do not fit whole are left out, never cut: the lists' last lines, the
  // categories' smallest, the ranking's middle (its best and its worst stay).
  function rectOf(el) {
    if (el.getClientRects().length) return el.getBoundingClientRect();
    var box = null;
    Array.prototype.forEach.call(el.children, function (child) {
      var r = child.getBoundingClientRect();
      if (!r.width && !r.height) return;
      box = box === null ? { top: r.top, bottom: r.bottom } : { top: Math.min(box.top, r.top), bottom: Math.max(box.bottom, r.bottom) };
    });
    return box;
  }

  function fits(box, items) {
    var frame = box.getBoundingClientRect();
    return items.every(function (el) {
      if (el.classList.contains("embed-cut")) return true;
      var r = rectOf(el);
      return r === null || (r.top >= frame.top - 1 && r.bottom <= frame.bottom + 1);
    });
  }

  function fitFromEnd(box) {
    var items = Array.prototype.slice.call(box.children);
    var kept = items.slice();
    while (kept.length > 1 && !fits(box, items)) kept.pop().classList.add("embed-cut");
  }

  function fitRanking(box) {
    var cols = Array.prototype.slice.call(box.querySelectorAll(".wall-rank-col"));
    var rows = cols.map(function (col) {
      return Array.prototype.filter.call(col.children, function (row) {
        return !row.classList.contains("wall-rank-head") && window.getComputedStyle(row).display !== "none";
      });
    });
    var all = [].concat.apply([], rows);
    var top = rows[0] || [];
    var bottom = rows[1] || [];
    var turn = 0;
    while (!fits(box, all)) {
      // From the middle: the end of 红榜, the start of 黑榜 (a single list: its end).
      var from = turn % 2 === 1 ? bottom : top;
      if (from.length <= 1) from = from === top ? bottom : top;
      if (from.length <= 1) break;
      (from === bottom ? from.shift() : from.pop()).classList.add("embed-cut");
      turn += 1;
    }
  }

  // The wall's charts keep fixed margins (their panels have one size); in a narrow frame Plotly
  // tilts the hours' labels and they would be cut: the axes grow their margins instead.
  function roomForTicks(gd) {
    var layout = gd.layout || {};
    var x = layout.xaxis || {};
    var y = layout.yaxis || {};
    if (!window.Plotly || !gd.data || (x.automargin === true && y.automargin === true)) return;
    window.Plotly.relayout(gd, { "xaxis.automargin": true, "yaxis.automargin": true });
  }

  function watchCharts() {
    Array.prototype.forEach.call(root.querySelectorAll(".embed-panel .js-plotly-plot"), function (gd) {
      if (gd.gridccEmbedWatched || typeof gd.on !== "function") return;
      gd.gridccEmbedWatched = true;
      gd.on("plotly_afterplot", function () { roomForTicks(gd); });
      roomForTicks(gd);
    });
  }

  function fit() {
    if (root === null) return;
    watchCharts();
    Array.prototype.forEach.call(root.querySelectorAll(".embed-cut"), function (el) {
      el.classList.remove("embed-cut");
    });
    var shownPanels = ".embed-panel:not([hidden]) ";
    Array.prototype.forEach.call(
      root.querySelectorAll(shownPanels + ".wall-list, " + shownPanels + ".wall-bars, " + shownPanels + ".wall-funnel-body"),
      fitFromEnd
    );
    Array.prototype.forEach.call(root.querySelectorAll(shownPanels + ".wall-rank-cols"), fitRanking);
  }

  var frame = null;
  function schedule() {
    if (frame === null) {
      frame = window.requestAnimationFrame(function () {
        frame = null;
        arrange();
        fit();
      });
    }
  }

  // Changes in the panels (a render, a live line, a refresh), not in the map's own layers.
  var contentObserver = new MutationObserver(function (records) {
    var inPanels = records.some(function (record) {
      var el = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      return el && !el.closest(".leaflet-container");
    });
    if (inPanels) schedule();
  });
  var sizeObserver = window.ResizeObserver ? new window.ResizeObserver(schedule) : null;
  window.addEventListener("resize", schedule);
  if (document.fonts && document.fonts.ready) document.fonts.ready.then(schedule);

  // The router draws the page's root (its allowed origins, panels, first expiry) after this runs.
  function adopt(el) {
    root = el;
    allowed = (el.getAttribute("data-origins") || "").split(/\s+/).filter(Boolean);
    allowed.push(window.location.origin);
    var origin = framed ? parentOf() : null;
    if (parentOrigin === null) parentOrigin = origin !== null && isAllowed(origin) ? origin : null;
    var first = Number(el.getAttribute("data-expires-at"));
    if (expiresAt === null && first > 0) setExpiry(first * 1000, null);
    contentObserver.disconnect();
    contentObserver.observe(el, { childList: true, subtree: true });
    if (sizeObserver) {
      sizeObserver.disconnect();
      sizeObserver.observe(el);
    }
    if (shown.search !== null) drawn(shown.search);
    schedule();
    if (!ready && post({ type: "gridcc:ready" })) ready = true;
    told = null;
    report();
  }

  new MutationObserver(function () {
    if (root !== null && root.isConnected) return;
    var el = document.querySelector(".embed-root");
    if (el !== null) adopt(el);
  }).observe(document, { childList: true, subtree: true });

  if (token) learnExpiry(token);
})();
