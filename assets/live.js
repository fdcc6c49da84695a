/* gridcc live: one EventSource per page; deltas are applied in the browser, no server callback runs.
 *
 * - The stream follows the page's scope: a drill changes the URL, the watchdog sees it and reopens.
 * - EventSource stays CLOSED after a non-200 answer (a proxy's 503 during a deploy): we reopen it
 *   ourselves with backoff, forever.
 * - No message and no ping for two heartbeats: show "offline since", keep the last numbers, reopen.
 * - A message from a new build of the server (its id differs from the page's meta tag) reloads the page.
 * - Figures are applied only for the scope the page shows (its content's data-scope), and re-applied
 *   after a re-render, so a snapshot that arrives before the content keeps its numbers.
 * - What a page does with them is its view: the overview's is below; other pages add theirs with
 *   `window.gridccLive.addView({badge, badgeClass, apply(figures), items(msg), reset(scope)})`.
 *   The view whose badge element is on the page is the one that is live.
 */
(function () {
  "use strict";

  var views = [];
  var source = null;
  var streamUrl = null;
  var lastMessage = 0;
  var heartbeatMs = 15000;
  var backoffMs = 1000;
  var reopenTimer = null;
  var offlineSince = null;
  var liveFeed = [];
  var figures = null; // {node, open, alarms, children: {code: {open, alarms}}} of the shown scope

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

  function wantedUrl() {
    if (activeView() === null) return null; // no live panels on this page
    var scope = shownScope();
    return scope === null ? null : "/live/stream?scope=" + encodeURIComponent(scope);
  }

  function setProps(id, props) {
    var clientside = window.dash_clientside;
    if (document.getElementById(id) && clientside && clientside.set_props) {
      clientside.set_props(id, props);
    }
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) setProps(id, { children: text });
  }

  function fmt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function badge(state) {
    var view = activeView();
    if (view === null) return;
    var en = lang() === "en";
    var text;
    if (state === "live") {
      text = en ? "● Live" : "● 实时";
    } else {
      var t = offlineSince ? offlineSince.toLocaleTimeString("en-GB") : "";
      text = (en ? "● Offline since " : "● 离线 自 ") + t;
    }
    setProps(view.badge, { children: text, className: view.badgeClass + " " + view.badgeClass + "-" + state });
    if (view.state) view.state(state);
  }

  function feedItem(item) {
    return {
      type: "Div",
      namespace: "dash_html_components",
      props: {
        className: "gridcc-feed-item" + (item.new ? " gridcc-feed-new" : ""),
        children: [
          { type: "Span", namespace: "dash_html_components",
            props: { className: "gridcc-feed-status", children: item.status_label || item.status } },
          { type: "Span", namespace: "dash_html_components",
            props: { className: "gridcc-feed-title", children: item.title } },
        ],
      },
    };
  }

  function applyFeed(items) {
    if (!items || !items.length) return;
    var el = document.getElementById("overview-feed");
    if (!el) return;
    var initial = [];
    try {
      initial = JSON.parse(el.dataset.initial || "[]");
    } catch (e) {
      initial = [];
    }
    liveFeed = items.slice().reverse().concat(liveFeed).slice(0, 10);
    var labels = JSON.parse(el.dataset.labels || "{}");
    var all = liveFeed.concat(initial).slice(0, 10).map(function (it) {
      it.status_label = labels[it.status] || it.status;
      return feedItem(it);
    });
    setProps("overview-feed", { children: all });
  }

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

  // The overview `/`: KPI tiles, the children's table cells and the latest cases.
  views.push({
    badge: "overview-live",
    badgeClass: "gridcc-live",
    apply: function (figures) {
      setText("overview-kpi-open", fmt(figures.open));
      setText("overview-kpi-active-alarms", fmt(figures.alarms));
      Object.keys(figures.children).forEach(function (code) {
        var child = figures.children[code];
        setText("overview-cell-" + code + "-open", fmt(child.open));
        setText("overview-cell-" + code + "-active-alarms", fmt(child.alarms));
      });
    },
    items: function (msg) {
      applyFeed(msg.feed);
    },
    reset: function () {
      liveFeed = [];
    },
  });

  function markLive() {
    lastMessage = Date.now();
    backoffMs = 1000;
    offlineSince = null;
    badge("live");
  }

  function onMessage(event) {
    markLive();
    var msg = JSON.parse(event.data);
    if (msg.build && pageBuild() !== null && msg.build !== pageBuild()) {
      window.location.reload(); // a new build is serving: load its page
      return;
    }
    if (msg.heartbeat) heartbeatMs = msg.heartbeat * 1000;
    if (event.type === "ping" || msg.node !== shownScope()) return;
    remember(msg, event.type === "snapshot");
    reapply();
    var view = activeView();
    if (view !== null && view.items) view.items(msg);
  }

  function close() {
    if (source) {
      source.close();
      source = null;
    }
  }

  function markOffline() {
    if (offlineSince === null) offlineSince = new Date();
    badge("offline");
  }

  function open(url) {
    close();
    clearTimeout(reopenTimer);
    streamUrl = url;
    lastMessage = Date.now();
    var view = activeView();
    if (view !== null && view.reset) view.reset(url);
    figures = null;
    source = new EventSource(url);
    source.onopen = markLive;
    ["snapshot", "delta", "ping"].forEach(function (name) {
      source.addEventListener(name, onMessage);
    });
    source.onerror = function () {
      markOffline();
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (non-200 answer): reopen ourselves, with backoff, forever.
        reopenTimer = setTimeout(function () {
          open(streamUrl);
        }, backoffMs);
        backoffMs = Math.min(backoffMs * 2, 30000);
      }
    };
  }

  function watchdog() {
    var url = wantedUrl();
    if (url === null) {
      close();
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
    }
  }

  window.gridccLive = {
    addView: function (view) {
      views.push(view);
    },
    setProps: setProps,
    setText: setText,
    fmt: fmt,
    lang: lang,
  };

  setInterval(watchdog, 1000);
})();
