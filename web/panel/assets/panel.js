// usipipo panel: CSRF header for htmx requests, the dashboard's uPlot
// charts, and a record of CSP violations (which tests read). No inline
// script anywhere: the CSP forbids it.
(function () {
  "use strict";
  window.usipipoCSP = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    window.usipipoCSP.push(e.violatedDirective + " " + e.blockedURI);
  });

  // htmx requests carry the session's CSRF token as a header; a form's own
  // hidden field is newer than the page's meta tag after a boosted logout.
  document.addEventListener("htmx:configRequest", function (e) {
    var elt = e.detail.elt, tok = "";
    var field = elt && elt.querySelector && elt.querySelector("input[name=csrf]");
    if (field) {
      tok = field.value;
    } else {
      var meta = document.querySelector("meta[name=csrf-token]");
      tok = meta ? meta.content : "";
    }
    if (tok) {
      e.detail.headers["X-CSRF-Token"] = tok;
    }
  });

  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }

  function opts(el, series, axes, extra) {
    var o = {
      width: Math.max(el.clientWidth, 280), height: 220,
      series: series, axes: axes,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } }
    };
    for (var k in extra) { o[k] = extra[k]; }
    return o;
  }

  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : null;

  function draw(el, d) {
    var kind = el.getAttribute("data-chart"), chart;
    var x = { label: "day" };
    if (kind === "revenue") {
      chart = new uPlot(opts(el, [x,
        { label: "Stars", stroke: "#d4a017", width: 2, scale: "stars" },
        { label: "USD", stroke: "#2e7d32", width: 2, dash: [6, 4], scale: "usd", value: function (u, v) { return v == null ? "" : "$" + v.toFixed(2); } }
      ], [{}, { scale: "stars", label: "Stars" }, { scale: "usd", side: 1, label: "USD", grid: { show: false } }], {}),
      [d.days, d.stars, d.usd], el);
    } else if (kind === "traffic") {
      var fv = function (u, v) { return v == null ? "" : fmtBytes(v); };
      chart = new uPlot(opts(el, [x,
        { label: "from clients", stroke: "#1565c0", width: 2, value: fv },
        { label: "to clients", stroke: "#6a1b9a", width: 2, value: fv }
      ], [{}, { values: function (u, vs) { return vs.map(function (v) { return fmtBytes(v); }); }, size: 70 }], {}),
      [d.days, d.bytes_in, d.bytes_out], el);
    } else if (kind === "users") {
      chart = new uPlot(opts(el, [x,
        { label: "new users", stroke: "#00838f", fill: "rgba(0,131,143,0.3)", width: 1, paths: bars }
      ], [{}, {}], { scales: { x: { range: function (u, lo, hi) { return [lo - 43200, hi + 43200]; } } } }), [d.days, d.new_users], el);
    } else if (kind === "keys") {
      var names = Object.keys(d.active_keys).sort();
      var xs = names.map(function (_, i) { return i; });
      chart = new uPlot(opts(el, [{ label: "protocol", value: function (u, v) { return v == null ? "" : names[v]; } },
        { label: "active", stroke: "#37474f", fill: "rgba(55,71,79,0.4)", width: 1, paths: bars }
      ], [{ values: function (u, vs) { return vs.map(function (v) { return names[v] === undefined ? "" : names[v]; }); }, splits: function () { return xs; } }, {}],
      { scales: { x: { time: false, range: [-0.5, names.length - 0.5] } } }),
      [xs, names.map(function (n) { return d.active_keys[n]; })], el);
    }
    if (chart) {
      // How many non-zero points the chart shows: tests and monitoring read it.
      var pts = 0;
      chart.data.slice(1).forEach(function (ys) { ys.forEach(function (y) { if (y) { pts++; } }); });
      el.setAttribute("data-points", String(pts));
      el.setAttribute("data-drawn", "true");
    }
  }

  function charts(root) {
    var box = root.querySelector ? root.querySelector("#charts") : null;
    if (!box && root.id === "charts") { box = root; }
    if (!box || box.getAttribute("data-loaded")) { return; }
    box.setAttribute("data-loaded", "true");
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (d) {
        box.querySelectorAll("[data-chart]").forEach(function (el) { draw(el, d); });
      })
      .catch(function (err) { box.setAttribute("data-error", String(err)); });
  }

  htmx.onLoad(charts);
})();
