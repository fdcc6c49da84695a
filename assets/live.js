/* gridcc live: one EventSource per page; deltas are applied in the browser, no server callback runs.
 *
 * - The stream follows the page's scope: a drill changes the URL, the watchdog sees it and reopens.
 * - EventSource stays CLOSED after a non-200 answer (a proxy's 503 during a deploy): we reopen it
 *   ourselves with backoff, forever.
 * - No message and no ping for two heartbeats: show "offline since", keep the last numbers, reopen.
 * - A snapshot from a new build of the server reloads the page.
 */
(function () {
  "use strict";

  var BADGE = "overview-live";
  var source = null;
  var streamUrl = null;
  var lastMessage = 0;
  var heartbeatMs = 15000;
  var backoffMs = 1000;
  var reopenTimer = null;
  var build = null;
  var offlineSince = null;
  var liveFeed = [];

  function lang() {
    return new URLSearchParams(window.location.search).get("lang") === "en" ? "en" : "zh";
  }

  function wantedUrl() {
    if (!document.getElementById(BADGE)) return null; // no live panels on this page
    var scope = new URLSearchParams(window.location.search).get("scope") || "";
    return "/live/stream?scope=" + encodeURIComponent(scope);
  }

  function setProps(id, props) {
    var clientside = window.dash_clientside;
    if (document.getElementById(id) && clientside && clientside.set_props) {
      clientside.set_props(id, props);
    }
  }

  function fmt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function badge(state) {
    var en = lang() === "en";
    var text;
    if (state === "live") {
      text = en ? "● Live" : "● 实时";
    } else {
      var t = offlineSince ? offlineSince.toLocaleTimeString("en-GB") : "";
      text = (en ? "● Offline since " : "● 离线 自 ") + t;
    }
    setProps(BADGE, { children: text, className: "gridcc-live gridcc-live-" + state });
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

  function apply(msg) {
    setProps("overview-kpi-open", { children: fmt(msg.open) });
    setProps("overview-kpi-active-alarms", { children: fmt(msg.alarms) });
    Object.keys(msg.children || {}).forEach(function (code) {
      var child = msg.children[code];
      setProps("overview-cell-" + code + "-open", { children: fmt(child.open) });
      setProps("overview-cell-" + code + "-active-alarms", { children: fmt(child.alarms) });
    });
    applyFeed(msg.feed);
  }

  function onMessage(event) {
    lastMessage = Date.now();
    backoffMs = 1000;
    if (offlineSince !== null || event.type === "snapshot") {
      offlineSince = null;
      badge("live");
    }
    var msg = JSON.parse(event.data);
    if (msg.build) {
      if (build !== null && build !== msg.build) {
        window.location.reload();
        return;
      }
      build = msg.build;
    }
    if (msg.heartbeat) heartbeatMs = msg.heartbeat * 1000;
    if (event.type !== "ping") apply(msg);
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
    liveFeed = [];
    source = new EventSource(url);
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
    if (Date.now() - lastMessage > 2 * heartbeatMs) {
      markOffline();
      open(url);
    }
  }

  setInterval(watchdog, 1000);
})();
