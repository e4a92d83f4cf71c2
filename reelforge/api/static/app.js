// Live refresh of server-rendered fragments: an element with data-refresh="URL" is
// re-fetched every data-interval ms (paused while a form inside it has focus).
(function () {
  "use strict";
  function refresh(el) {
    var url = el.getAttribute("data-refresh");
    var every = parseInt(el.getAttribute("data-interval") || "2000", 10);
    function tick() {
      if (document.hidden || el.contains(document.activeElement)) {
        return setTimeout(tick, every);
      }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || !r.ok) { throw new Error("status " + r.status); }
          return r.text();
        })
        .then(function (html) { el.innerHTML = html; })
        .catch(function () { /* keep the last table */ })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  });
})();
