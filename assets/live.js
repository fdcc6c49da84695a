/* gridcc live: one EventSource per page; deltas are applied in the browser, no server callback runs.
 *
 * - The stream follows the page's scope: a drill changes the URL, the watchdog sees it and reopens.
 * - EventSource stays CLOSED after a non-200 answer (a proxy's 503 during a deploy): we reopen it
 *   ourselves with backoff, forever, saying where we were (`&last=<id>`: a new EventSource sends
 *   no Last-Event-ID), so a short blip is replayed from the server's ring, not re-snapshotted.
 * - The badge has three states: live (● 实时); delayed (● 延迟 n 秒: messages arrive, but their data
 *   are more than DELAYED_MS older than the stream's best, or no message came for more than a
 *   heartbeat); stale (● 数据已过期 自 hh:mm:ss: the stream failed, or no message and no ping for two
 *   heartbeats): the last numbers are kept (dimmed by the page's CSS) and the stream is reopened.
 *   The state's class suffix is "live", "delayed" or "offline" (kept for the pages' CSS).
 * - Heartbeats are not freshness: the server also says how the pipeline behind the stream is (a
 *   `status` event when it changes, `pipeline` in every snapshot and ping: data_sources/health.py).
 *   Behind (its data arrive late) shows as delayed with its lag; stalled (nothing is applied, e.g.
 *   Redis is down) as stale since the time its data were last current — the same look as a
 *   dropped stream, though the stream itself is fine.
 * - Delay is measured without trusting the two clocks to agree: every message carries `at`, the
 *   server's ms when its data were current; (arrival − at) minus its minimum over the last few
 *   minutes is how late the data are (the minimum is a lower bound of the clock offset + network).
 * - A message from a new build of the server (its id differs from the page's meta tag) reloads the page.
 * - Figures are applied only for the scope the page shows (its content's data-scope), and re-applied
 *   after a re-render, so a snapshot that arrives before the content keeps its numbers.
 * - What a page does with them is its view: the overview's is below; other pages add theirs with
 *   `window.gridccLive.addView({badge, badgeClass, apply(figures), items(msg), reset(scope)})`.
 *   The view whose badge element is on the page is the one that is live.
 * - A snapshot on a scope the page has already heard from means the stream could not replay what
 *   it missed (an outage longer than the server's ring, a server restart): the view's
 *   `resync(scope)`, when it has one, draws what the deltas would have told it again.
 * - A view that names a `stream` (the wall) also gets `refresh` events: every scope's figures of a
 *   window recomputed by the server once per period for all its pages; `view.refresh(msg)` puts
 *   them on the page.
 * - The page's estimate of the server's time (`serverNow()`, from the same `at` stamps) is what
 *   the wall's clock and ages run on, not the PC's clock.
 * - An embed (assets/embed.js) names its token on the stream (`&embed=`: an EventSource sends no
 *   headers), opens none once it has ended (`gridccEmbedToken()` null), is told when the stream is
 *   refused instead of reloading (`gridccEmbed.denied`: it shows "link expired", never a login
 *   page), and reopens it with a replaced token through `gridccLive.reconnect()`, resuming.
 */
(function () {
  "use strict";

  var views = [];
  var source = null;
  var streamUrl = null;
  var lastMessage = 0;
  var heartbeatMs = 15000;
  var backoffMs = 1000;
  var reconnectMaxMs = 5000; // the server's `reconnect_max`: recovery stays quick after long outages
  var reopenTimer = null;
  var offlineSince = null;
  // The pipeline behind the stream, as the server last said: {state: live|behind|stalled, lag
  // (s), since (server ms its data were last current, when stalled)}.
  var pipeline = { state: "live", lag: 0, since: null };
  var DELAYED_MS = 5000;
  var SKEW_WINDOW_MS = 120000;
  var skew = { now: null, previous: null, since: 0 }; // min(arrival − at) in this and the last window
  var lagMs = 0;
  var clockOffsetMs = 0; // this PC's clock − the server's (kept across reconnects; 0 until known)
  var heard = false; // the current stream has answered (opened or sent a message)
  var shownBadge = null;
  var liveFeed = [];
  var figures = null; // {node, open, alarms, children: {code: {open, alarms}}} of the shown scope
  // The id of the last delta or snapshot this page applied, its scope and the stream's URL (every
  // one has an id).
  var lastId = { scope: null, id: "", url: null };

  function lang() {
    return new URLSearchParams(window.location.search).get("lang") === "en" ? "en" : "zh";
  }

  function pageBuild() {
    var meta = document.querySelector('meta[name="gridcc-build"]');
    return meta ? meta.getAttribute("content") : null;
  }

  function shownScope() {
    var content = document.querySelector("[data-scope]");
    return content ? content.getAttribute("data-scope") : null;
  }

  function activeView() {
    for (var i = 0; i < views.length; i++) {
      if (document.getElementById(views[i].badge)) return views[i];
    }
    return null;
  }

  // The language the content was drawn in (its `data-lang`; the URL's otherwise).
  function shownLang() {
    var content = document.querySelector("[data-scope]");
    return (content && content.getAttribute("data-lang")) || lang();
  }

  // An embed's token (assets/embed.js): undefined on other pages, null once it has ended.
  function embedToken() {
    return typeof window.gridccEmbedToken === "function" ? window.gridccEmbedToken() : undefined;
  }

  // The stream's URL with the page's credential, where it must travel in it (an embed's token).
  function credited(url) {
    var token = embedToken();
    return token ? url + "&embed=" + encodeURIComponent(token) : url;
  }

  // A view with a `stream` name (the wall) gets the server's periodic refresh of its scope in
  // the language it shows, on the same stream.
  function wantedUrl() {
    if (embedToken() === null) return null; // an embed whose token has ended
    var view = activeView();
    if (view === null) return null; // no live panels on this page
    var scope = shownScope();
    if (scope === null) return null;
    var url = "/live/stream?scope=" + encodeURIComponent(scope);
    return view.stream ? url + "&view=" + view.stream + "&lang=" + shownLang() : url;
  }

  function setProps(id, props) {
    var clientside = window.dash_clientside;
    if (document.getElementById(id) && clientside && clientside.set_props) {
      clientside.set_props(id, props);
    }
  }

  // A dcc.Store (or a map layer) has no element of its id in the page: set it directly; the server
  // callbacks listening to it run.
  function setStore(id, data) {
    var clientside = window.dash_clientside;
    if (clientside && clientside.set_props) clientside.set_props(id, { data: data });
  }

  // A live figure is written straight into its element's text: a set_props makes Dash's renderer
  // re-check every component of the page (three store updates, each running every component's
  // selector), which on a big page costs milliseconds per figure and, with 20 walls on one
  // machine, was most of the browser's time. React keeps the element: a re-render with the same
  // props leaves the text alone, a new layout (a drill) brings its own figures, and `reapply`
  // writes the live ones again. Elements with children elements still go through set_props.
  function setText(id, text) {
    var el = document.getElementById(id);
    if (el === null || el.textContent === text) return;
    if (el.childElementCount === 0) {
      el.textContent = text;
    } else {
      setProps(id, { children: text });
    }
  }

  function fmt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function badge(state, delaySeconds, since) {
    var view = activeView();
    if (view === null) return;
    var en = lang() === "en";
    var text;
    if (state === "live") {
      text = en ? "● Live" : "● 实时";
    } else if (state === "delayed") {
      text = en ? "● Delayed " + delaySeconds + " s" : "● 延迟 " + delaySeconds + " 秒";
    } else {
      // In the command centre's time, as the page's clock (data-tz), not the screen's.
      var clock = document.querySelector("[data-tz]");
      var tz = clock ? clock.getAttribute("data-tz") || undefined : undefined;
      var when = since || offlineSince;
      var t = when ? when.toLocaleTimeString("en-GB", { timeZone: tz, hourCycle: "h23" }) : "";
      text = (en ? "● Stale since " : "● 数据已过期 自 ") + t;
    }
    var className = view.badgeClass + " " + view.badgeClass + "-" + state;
    var el = document.getElementById(view.badge);
    var key = view.badge + "|" + text + "|" + className;
    // Once per message at most, and only when it changes: no re-render per delta for a badge.
    if (el && key === shownBadge && el.textContent === text) return;
    shownBadge = key;
    setProps(view.badge, { children: text, className: className });
    if (view.state) view.state(state);
  }

  // How late the data of a message stamped `at` (server ms) are, net of the clocks' offset.
  function measureLag(at) {
    var now = Date.now();
    var seen = now - at;
    if (now - skew.since > SKEW_WINDOW_MS) {
      skew.previous = skew.now;
      skew.now = null;
      skew.since = now;
    }
    if (skew.now === null || seen < skew.now) skew.now = seen;
    var best = skew.previous === null ? skew.now : Math.min(skew.now, skew.previous);
    lagMs = Math.max(0, seen - best);
    clockOffsetMs = best;
  }

  // The server's time now, as well as the page can tell: this PC's clock minus its offset from the
  // server's (plus the network's least delay), measured from the messages' `at`. Ages of server
  // stamps (a worker's last fix) are taken against this, not against a wall PC's drifting clock.
  function serverNow() {
    return Date.now() - clockOffsetMs;
  }

  // Live, delayed or stalled (the stream is up): from the pipeline's state, the last message's lag
  // and the silence since it.
  function showFreshness() {
    if (offlineSince !== null || !heard) return; // stale, or nothing to say yet
    if (pipeline.state === "stalled") {
      badge("offline", 0, new Date(pipeline.since || serverNow()));
      return;
    }
    var silence = Date.now() - lastMessage - heartbeatMs;
    var behind = pipeline.state === "behind" ? Math.max(pipeline.lag * 1000, DELAYED_MS + 1) : 0;
    var late = Math.max(lagMs > DELAYED_MS ? lagMs : 0, silence > 1000 ? silence : 0, behind);
    if (late > 0) badge("delayed", Math.round(late / 1000));
    else badge("live");
  }

  var FEED_LENGTH = 10;

  function feedItem(item, labels) {
    var row = document.createElement("div");
    row.className = "gridcc-feed-item" + (item.new ? " gridcc-feed-new" : "");
    var status = document.createElement("span");
    status.className = "gridcc-feed-status";
    status.textContent = labels[item.status] || item.status;
    var title = document.createElement("a");
    title.className = "gridcc-feed-title";
    title.href = "/case?" + new URLSearchParams({ id: item.id, lang: lang() }).toString();
    title.textContent = item.title;
    row.appendChild(status);
    row.appendChild(title);
    return row;
  }

  function parsed(el, name, fallback) {
    try {
      return JSON.parse(el.getAttribute(name) || fallback);
    } catch (e) {
      return JSON.parse(fallback);
    }
  }

  // The overview's feed is rendered here, not by Dash (layouts/overview.py says why): the scope's
  // latest cases from the page (`data-initial`), below the ones that came live since.
  var renderedFeed = null; // [element, its data-initial, live items] as last rendered

  function renderFeed() {
    var el = document.getElementById("overview-feed");
    if (el === null) return;
    var initial = el.getAttribute("data-initial") || "[]";
    if (renderedFeed !== null && renderedFeed[0] === el && renderedFeed[1] === initial &&
        renderedFeed[2] === liveFeed) return;
    renderedFeed = [el, initial, liveFeed];
    var labels = parsed(el, "data-labels", "{}");
    var items = liveFeed.concat(parsed(el, "data-initial", "[]")).slice(0, FEED_LENGTH);
    var rows = document.createDocumentFragment();
    items.forEach(function (item) {
      rows.appendChild(feedItem(item, labels));
    });
    if (!items.length) rows.appendChild(document.createTextNode(el.getAttribute("data-empty") || ""));
    el.replaceChildren(rows);
  }

  function applyFeed(items) {
    if (!items || !items.length) return;
    liveFeed = items.slice().reverse().concat(liveFeed).slice(0, FEED_LENGTH);
    renderFeed();
  }

  // Render the feed as soon as Dash puts it (or a new scope's) on the page, not a second later.
  new MutationObserver(renderFeed).observe(document, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["data-initial"],
  });

  function remember(msg, full) {
    if (full || figures === null || figures.node !== msg.node) {
      figures = { node: msg.node, open: 0, alarms: 0, children: {} };
    }
    figures.open = msg.open;
    figures.alarms = msg.alarms;
    Object.keys(msg.children || {}).forEach(function (code) {
      figures.children[code] = msg.children[code];
    });
  }

  function reapply() {
    var view = activeView();
    if (view === null || figures === null || figures.node !== shownScope()) return;
    view.apply(figures);
  }

  // The overview `/`: every figure there is of the page's filter, which only the server can apply:
  // a delta of its scope makes it draw them again (at most once per period), and adds its new
  // cases to the latest cases at once.
  // Measured (bench/bench_latency.py, 20 pages at 1,000 events/s on 2 cores): a refresh every 10 s
  // with the map's outlines, all pages at once, kept the browsers too busy to show their streams
  // (p95 6.8 s); every 30 s (the default), spread over the period, without the outlines.
  var lastTick = null;
  var tickTimer = null;

  function tickMs() {
    // GRIDCC_LAPTOP_REFRESH_S, as the page was drawn with it (30 s by default).
    var content = document.querySelector("[data-refresh-ms]");
    var ms = content ? Number(content.getAttribute("data-refresh-ms")) : NaN;
    return ms > 0 ? ms : 30000;
  }

  var tickOwed = false; // a change came while the page was hidden

  function tick() {
    // At most one server refresh of the filtered figures per period, the last change included.
    var period = tickMs();
    if (lastTick === null) lastTick = Date.now() - period * Math.random(); // pages opened together tick apart
    var wait = lastTick + period - Date.now();
    if (tickTimer !== null) return;
    tickTimer = setTimeout(function () {
      tickTimer = null;
      // A tab in the background is not read: it draws again when it is shown, not before.
      if (document.visibilityState === "hidden") {
        tickOwed = true;
        return;
      }
      lastTick = Date.now();
      setStore("overview-tick", lastTick);
    }, Math.max(0, wait));
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" || !tickOwed) return;
    tickOwed = false;
    tick();
  });

  views.push({
    badge: "overview-live",
    badgeClass: "gridcc-live",
    apply: function () {},
    items: function (msg, type) {
      applyFeed(msg.feed);
      if (type === "delta") tick(); // a snapshot is what the page was drawn with
    },
    reset: function () {
      liveFeed = [];
      renderFeed();
    },
    // Back after a gap the stream could not replay: the feed missed what came meanwhile. Draw the
    // page again from the server (the render callback listens to the store).
    resync: function (scope) {
      liveFeed = [];
      setStore("overview-resync", scope + ":" + Date.now());
    },
  });

  function markLive() {
    heard = true;
    lastMessage = Date.now();
    backoffMs = 1000;
    offlineSince = null;
    showFreshness();
  }

  function onMessage(event) {
    var msg = JSON.parse(event.data);
    if (typeof msg.at === "number") measureLag(msg.at);
    if (msg.pipeline) pipeline = msg.pipeline;
    markLive();
    if (msg.build && pageBuild() !== null && msg.build !== pageBuild()) {
      // A new build is serving: load its page (an embed with its current token).
      if (window.gridccEmbed) window.gridccEmbed.reload();
      else window.location.reload();
      return;
    }
    if (msg.heartbeat) heartbeatMs = msg.heartbeat * 1000;
    if (msg.reconnect_max) reconnectMaxMs = msg.reconnect_max * 1000;
    if (event.type === "ping" || msg.node !== shownScope()) return;
    var gap = event.type === "snapshot" && lastId.scope === msg.node;
    lastId = { scope: msg.node, id: event.lastEventId || "", url: streamUrl };
    remember(msg, event.type === "snapshot");
    reapply();
    var view = activeView();
    if (gap && view !== null && view.resync) view.resync(msg.node);
    if (view !== null && view.items) view.items(msg, event.type);
  }

  // The server's periodic refresh of the scope (the figures of a window, which no delta carries,
  // drawn by the same code as a fresh page): the view puts its regions on the page, and the live
  // figures it was drawn with are the new baseline. Only for the scope and language shown.
  function onRefresh(event) {
    var msg = JSON.parse(event.data);
    if (typeof msg.at === "number") measureLag(msg.at);
    markLive();
    var view = activeView();
    if (view === null || !view.refresh || msg.node !== shownScope() || msg.lang !== shownLang()) return;
    remember(msg.figures, true);
    view.refresh(msg);
    reapply();
  }

  // The pipeline's state changed (server-side, checked every second): say so at once.
  function onStatus(event) {
    var msg = JSON.parse(event.data);
    if (typeof msg.at === "number") measureLag(msg.at);
    pipeline = msg;
    markLive();
  }

  function close() {
    if (source) {
      source.close();
      source = null;
    }
  }

  function markOffline() {
    if (offlineSince === null) offlineSince = new Date(serverNow());
    badge("offline");
  }

  // `again`: the same stream with new credentials (an embed's replaced token): the page keeps
  // what it shows, the stream resumes after the last message.
  function open(url, again) {
    close();
    clearTimeout(reopenTimer);
    streamUrl = url;
    lastMessage = Date.now();
    lagMs = 0;
    heard = false;
    var view = activeView();
    if (!again) {
      skew = { now: null, previous: null, since: Date.now() }; // a new path may have a new offset
      if (view !== null && view.reset) view.reset(url);
      figures = null;
    }
    var resume = lastId.id && url === lastId.url;
    source = new EventSource(credited(resume ? url + "&last=" + encodeURIComponent(lastId.id) : url));
    source.onopen = markLive;
    ["snapshot", "delta", "ping"].forEach(function (name) {
      source.addEventListener(name, onMessage);
    });
    source.addEventListener("refresh", onRefresh);
    source.addEventListener("status", onStatus);
    // Signed out, user disabled or display revoked (checked every heartbeat): the page itself
    // now answers with the login form or the "display disabled" screen. An embed's token
    // expired or was revoked: the embed says so itself.
    source.addEventListener("denied", function (event) {
      close();
      if (window.gridccEmbed) {
        var reason = null;
        try {
          reason = JSON.parse(event.data).reason;
        } catch (e) {
          reason = null;
        }
        window.gridccEmbed.denied(reason || "expired");
        return;
      }
      window.location.reload();
    });
    source.onerror = function () {
      markOffline();
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (non-200 answer). Refused for who we are (401/403: the session
        // expired meanwhile)? Reload: the page shows why. Otherwise reopen ourselves, with
        // backoff, forever. The cap is low (5 s by default): however long the outage, the page
        // is back soon after the server; the jitter spreads a room of walls.
        var refused = streamUrl;
        fetch(credited(refused), { method: "HEAD", credentials: "same-origin", cache: "no-store" })
          .then(function (response) {
            if ((response.status === 401 || response.status === 403) && streamUrl === refused) {
              if (window.gridccEmbed) window.gridccEmbed.denied(String(response.status));
              else window.location.reload();
            }
          })
          .catch(function () {});
        reopenTimer = setTimeout(function () {
          open(streamUrl);
        }, backoffMs * (0.8 + 0.4 * Math.random()));
        backoffMs = Math.min(backoffMs * 2, reconnectMaxMs);
      }
    };
  }

  function watchdog() {
    var url = wantedUrl();
    if (url === null) {
      close();
      clearTimeout(reopenTimer); // a backoff still pending would reopen a stream nobody wants
      streamUrl = null;
      return;
    }
    if (url !== streamUrl) {
      open(url);
      return;
    }
    reapply(); // the content may have re-rendered with older numbers than the stream's
    if (Date.now() - lastMessage > 2 * heartbeatMs) {
      markOffline();
      open(url);
      return;
    }
    showFreshness(); // a missed heartbeat turns the badge amber before it turns red
  }

  window.gridccLive = {
    addView: function (view) {
      views.push(view);
    },
    // Open the page's stream again now, with the credentials of now (an embed's replaced token,
    // or none once it ended: then it closes), resuming where it was.
    reconnect: function () {
      var url = wantedUrl();
      if (url !== null && url === streamUrl) open(url, true);
      else watchdog();
    },
    setProps: setProps,
    setStore: setStore,
    setText: setText,
    fmt: fmt,
    serverNow: serverNow,
    lang: lang,
  };

  setInterval(watchdog, 1000);
})();
