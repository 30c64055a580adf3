// Live refresh of the status page, as progressive enhancement: every 2 s it reads
// /api/stats and rewrites each [data-stat] cell and [data-slot] badge (text only, never
// HTML). Without JavaScript the page is the server's snapshot; formats match site.py's.
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  var stamp = document.getElementById("updated");
  if (!stamp || !window.fetch) { return; }

  function lookup(data, path) {
    var steps = path.split(".");
    for (var i = 0; i < steps.length; i++) {
      if (data === null || typeof data !== "object") { return null; }
      data = data[steps[i]];
    }
    return data === undefined ? null : data;
  }
  function isNumber(v) { return typeof v === "number" && isFinite(v); }
  function grouped(v, digits) {
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  var formats = {
    count: function (v) { return isNumber(v) ? grouped(v, 0) : "—"; },
    seconds: function (v) { return isNumber(v) ? grouped(v, 0) + " s" : "—"; },
    micros: function (v) {
      if (!isNumber(v)) { return "—"; }
      return v < 1000 ? grouped(v, 0) + " µs" : grouped(v / 1000, 1) + " ms";
    },
    text: function (v) { return typeof v === "string" && v ? v : "—"; }
  };
  formats.state = formats.text;

  function apply(stats) {
    document.querySelectorAll("[data-slot]").forEach(function (el) {
      var slot = stats[el.getAttribute("data-slot")];
      var down = !slot || slot.status === "unavailable";
      el.textContent = down ? "unavailable" : "up";
      el.className = "badge " + (down ? "down" : "up");
    });
    document.querySelectorAll("[data-stat]").forEach(function (el) {
      var format = formats[el.getAttribute("data-format")] || formats.text;
      el.textContent = format(lookup(stats, el.getAttribute("data-stat")));
    });
  }

  function tick() {
    if (document.hidden) { setTimeout(tick, PERIOD_MS); return; }
    fetch("/api/stats", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (stats) {
        apply(stats);
        stamp.textContent = "Live: refreshed every 2 s from /api/stats, last at " +
          new Date().toLocaleTimeString("en-GB") + ".";
        stamp.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { stamp.textContent = "Live refresh failed; retrying every 2 s."; })
      .then(function () { setTimeout(tick, PERIOD_MS); });
  }
  setTimeout(tick, PERIOD_MS);
})();
