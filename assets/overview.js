/* gridcc laptop view `/`: the tables' formatters and link cells (AG Grid looks them up by name:
 * no code is evaluated from strings, which the page's CSP would refuse), the light/dark switch,
 * and the case table drawn again when the filter in the URL changes or "N new — show" is clicked.
 */
(function () {
  "use strict";

  var THEME_KEY = "gridcc-theme";

  // The grid's API, or null while it is not drawn yet.
  function grid(id) {
    var grids = window.dash_ag_grid;
    if (!grids || !grids.getApi) return null;
    try {
      return grids.getApi(id);
    } catch (e) {
      return null;
    }
  }
  window.gridccGrid = grid;

  var functions = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

  // Dash's clientside callbacks of the page (callbacks/overview.py names them).
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.gridccOverview = {
    // The figures of a new URL are on their way: dim the old ones (the render puts back
    // layouts/overview.py's CONTENT_CLASS, "gridcc-kpis").
    busy: function () {
      return "gridcc-kpis gridcc-busy";
    },
  };
  functions.gridccCount = function (value) {
    return value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US");
  };
  functions.gridccPercent = function (value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  };
  functions.gridccHours = function (value) {
    if (value === null || value === undefined) return "—";
    var en = new URLSearchParams(window.location.search).get("lang") === "en";
    return value.toFixed(1) + (en ? " h" : " 小时");
  };
  functions.gridccRank = function (value) {
    return value === null || value === undefined || value >= 10000 ? "—" : String(value);
  };

  // A cell that is a link (`data.href`): a drill to a child, a case's page. A real <a>, so it
  // opens in a new tab, copies, and works without this page's scripts.
  var components = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  components.GridccLink = function (props) {
    var data = props.data || {};
    if (!data.href) return props.value === undefined ? null : String(props.value);
    return window.React.createElement("a", { href: data.href, className: "gridcc-link" }, props.value);
  };

  // ---------------------------------------------------------------- light / dark

  function overviewPage() {
    return document.querySelector(".gridcc-overview") !== null;
  }

  function wallPage() {
    // The wall and its embeds: always dark here (an embed sets its own theme), and no storage
    // (a third-party frame may have none).
    return /^\/(wall|embed)\/?$/.test(window.location.pathname);
  }

  function applyTheme() {
    // The wall is always dark; the laptop pages follow the viewer's choice (light by default).
    var theme = wallPage() ? "dark" : window.localStorage.getItem(THEME_KEY) || "light";
    var root = document.documentElement;
    if (root.getAttribute("data-bs-theme") !== theme) root.setAttribute("data-bs-theme", theme);
    if (document.body && document.body.getAttribute("data-ag-theme-mode") !== theme) {
      document.body.setAttribute("data-ag-theme-mode", theme);
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (target === null) return;
    if (target.closest("#overview-theme")) {
      var now = document.documentElement.getAttribute("data-bs-theme") === "dark";
      window.localStorage.setItem(THEME_KEY, now ? "light" : "dark");
      applyTheme();
    }
    if (target.closest("#overview-new-rows")) redrawCases();
  });

  // ---------------------------------------------------------------- the case table

  function redrawCases() {
    var api = grid("overview-cases");
    if (api) api.purgeInfiniteCache();
  }

  var shownSearch = null;

  function watch() {
    applyTheme();
    if (!overviewPage() || window.location.pathname.replace(/\/+$/, "") !== "") {
      shownSearch = null;
      return;
    }
    var search = window.location.search;
    if (shownSearch !== null && search !== shownSearch) redrawCases();
    shownSearch = search;
  }

  setInterval(watch, 250);

  // Back and forward between two filters of this page: load it afresh, so that the filter
  // controls are drawn from the URL with the figures. (Setting the controls from the URL in the
  // page raced with the callback that writes them into the URL: a second step back was undone.)
  window.addEventListener("popstate", function () {
    if (overviewPage() && window.location.pathname.replace(/\/+$/, "") === "") {
      window.location.reload();
    }
  });
  applyTheme();
})();

/* ---------------------------------------------------------------- follow-up lists (engineer D)
 * The alarm history's and the worker list's formatters (layouts/follow_lists.py names them), and
 * the alarm table read again from its first block when the filter in the URL changes (its
 * rows come block by block from the server, keyset-paged, as the case table's).
 */
(function () {
  "use strict";

  function english() {
    return new URLSearchParams(window.location.search).get("lang") === "en";
  }

  var functions = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});
  // Seconds as the largest unit that reads well: "12 分钟", "2.5 小时", "3.0 天".
  functions.gridccDuration = function (seconds) {
    if (seconds === null || seconds === undefined) return "—";
    var en = english();
    if (seconds < 60) return en ? "<1 min" : "<1 分钟";
    if (seconds < 3600) return Math.floor(seconds / 60) + (en ? " min" : " 分钟");
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + (en ? " h" : " 小时");
    return (seconds / 86400).toFixed(1) + (en ? " d" : " 天");
  };
  // Metres as kilometres with two decimals.
  functions.gridccKm = function (metres) {
    if (metres === null || metres === undefined) return "—";
    return (metres / 1000).toFixed(2) + (english() ? " km" : " 公里");
  };

  var shown = null;

  function watchAlarms() {
    if (document.querySelector(".gridcc-overview") === null) {
      shown = null;
      return;
    }
    var search = window.location.search;
    if (shown !== null && search !== shown && window.gridccGrid) {
      var api = window.gridccGrid("lists-alarms");
      if (api) api.purgeInfiniteCache();
    }
    shown = search;
  }

  setInterval(watchAlarms, 250);
})();
