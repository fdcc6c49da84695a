/* gridcc wall `/wall`: a click (or Enter) on a ranking row drills down to its node.
 *
 * The rows are plain elements with `data-code` (layouts/wall_ranking.py ranking_panel): the server
 * renders the ranking once per scope and language for every page watching it, so the rows cannot
 * carry a page's own parameters (`fit`, `rotate`, …). The new search is built here from the page's
 * URL, as gridccWall.drill builds it for a map click, and set on the dcc.Location `wall-url`
 * (refresh=False): Location pushes it into the browser's history (UNSAFE_componentWillReceiveProps
 * → pushState) and set_props notifies the wall's render callback, which listens to its `search`.
 */
(function () {
  "use strict";

  var ROW = ".wall-rank-row[data-code]";

  /** "?scope=<code>&<the other parameters>", or null when `code` is already the scope. */
  function drillSearch(code, search) {
    var old = new URLSearchParams(search || "");
    if (old.get("scope") === code) return null;
    var query = new URLSearchParams({ scope: code }); // scope first, as the server's links
    old.forEach(function (value, key) {
      if (key !== "scope") query.append(key, value);
    });
    return "?" + query.toString();
  }

  function drill(row) {
    var clientside = window.dash_clientside;
    if (!clientside || !clientside.set_props) return;
    var search = drillSearch(row.getAttribute("data-code"), window.location.search);
    if (search) clientside.set_props("wall-url", { search: search });
  }

  function rowOf(event) {
    var target = event.target;
    return target && target.closest ? target.closest(ROW) : null;
  }

  document.addEventListener("click", function (event) {
    var row = rowOf(event);
    if (row && event.button === 0) drill(row);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    var row = rowOf(event);
    if (row && row === event.target) drill(row);
  });
})();
