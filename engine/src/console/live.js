// Switchboard console: live refresh. The page's [data-live] part is fetched again when
// the server says something changed (server-sent events from /console/events), unless
// the user is typing in a form on the page. Everything works without this script.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource || !window.fetch || !window.DOMParser) return;

  // Typing, or a form changed and not sent: never throw that away.
  function busy() {
    var a = document.activeElement;
    if (a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.type !== "submit") return true;
    var fields = live.querySelectorAll("input, textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type !== "hidden" && f.value !== f.defaultValue) return true;
    }
    return false;
  }

  var waiting = false;
  function refresh() {
    waiting = false;
    if (busy()) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text || busy()) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("[data-live]");
        if (fresh) {
          live.innerHTML = fresh.innerHTML;
          document.documentElement.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {});
  }

  var events = new EventSource("/console/events");
  events.addEventListener("change", function () {
    // Changes come in bursts: one fetch per burst.
    if (!waiting) {
      waiting = true;
      window.setTimeout(refresh, 300);
    }
  });
})();
