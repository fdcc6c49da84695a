/* bench_latency's probe watcher, added to every measured page before its own scripts run.
 *
 * window.__bench.shown[marker]   = Date.now() when a feed title with the marker first is in the DOM
 *                                  (a MutationObserver: the moment the page shows it, before paint);
 * window.__bench.arrived[marker] = Date.now() when the marker first reached the page at all: in a
 *                                  server-sent event (EventSource wrapped) or in a Dash callback
 *                                  response (fetch wrapped). A marker that arrived but was never shown
 *                                  was pushed out of the 10-item feed before it could be rendered.
 */
(function () {
  "use strict";

  var PATTERN = /BENCHPROBE-[0-9]+/g;
  var bench = (window.__bench = { shown: {}, arrived: {} });

  function note(into, text) {
    var now = Date.now();
    var found = String(text).match(PATTERN) || [];
    for (var i = 0; i < found.length; i++) {
      if (!(found[i] in into)) into[found[i]] = now;
    }
  }

  function scan() {
    var titles = document.getElementsByClassName("gridcc-feed-title");
    for (var i = 0; i < titles.length; i++) note(bench.shown, titles[i].textContent);
  }
  new MutationObserver(scan).observe(document, {
    childList: true,
    subtree: true,
    characterData: true,
  });

  var NativeEventSource = window.EventSource;
  function BenchEventSource(url, options) {
    var source = new NativeEventSource(url, options);
    ["snapshot", "delta"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        note(bench.arrived, event.data);
      });
    });
    return source;
  }
  BenchEventSource.prototype = NativeEventSource.prototype;
  BenchEventSource.CONNECTING = NativeEventSource.CONNECTING;
  BenchEventSource.OPEN = NativeEventSource.OPEN;
  BenchEventSource.CLOSED = NativeEventSource.CLOSED;
  window.EventSource = BenchEventSource;

  var nativeFetch = window.fetch;
  window.fetch = function () {
    return nativeFetch.apply(this, arguments).then(function (response) {
      if (String(response.url).indexOf("_dash-update-component") >= 0) {
        response
          .clone()
          .text()
          .then(function (text) {
            note(bench.arrived, text);
          });
      }
      return response;
    });
  };
})();
