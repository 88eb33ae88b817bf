// Renders /api/openapi.json as a list of operations. No dependencies.
(function () {
  "use strict";
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function resolve(spec, s) {
    if (s && s.$ref) {
      var parts = s.$ref.replace(/^#\//, "").split("/");
      var v = spec;
      parts.forEach(function (p) { v = v && v[p]; });
      return v || {};
    }
    return s || {};
  }
  function schemaText(spec, s) {
    s = resolve(spec, s);
    if (s.properties) {
      var o = {};
      Object.keys(s.properties).forEach(function (k) {
        var p = resolve(spec, s.properties[k]);
        o[k] = p.type || (p.properties ? "object" : "any");
      });
      return JSON.stringify(o, null, 2);
    }
    return JSON.stringify(s, null, 2);
  }
  fetch("/api/openapi.json").then(function (r) { return r.json(); }).then(function (spec) {
    document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
    document.getElementById("desc").textContent = spec.info.description || "";
    var root = document.getElementById("ops");
    var byTag = {};
    Object.keys(spec.paths).forEach(function (path) {
      var item = spec.paths[path];
      ["get", "post", "put", "patch", "delete"].forEach(function (m) {
        if (!item[m]) return;
        var tag = (item[m].tags || ["other"])[0];
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: m, op: item[m] });
      });
    });
    Object.keys(byTag).sort().forEach(function (tag) {
      root.appendChild(el("h2", "", tag));
      byTag[tag].forEach(function (o) {
        var s = el("section", "op");
        var sec = o.op.security;
        var scope = sec && sec.length === 0 ? "public" : (o.op["x-scope"] ? "scope: " + o.op["x-scope"] : "");
        s.appendChild(el("span", "scope", scope));
        var h = el("div");
        h.appendChild(el("span", "m " + o.method, o.method.toUpperCase()));
        h.appendChild(el("code", "", o.path));
        s.appendChild(h);
        s.appendChild(el("p", "", o.op.summary || ""));
        var body = o.op.requestBody && o.op.requestBody.content && o.op.requestBody.content["application/json"];
        if (body) {
          s.appendChild(el("div", "", "Request body:"));
          s.appendChild(el("pre", "", schemaText(spec, body.schema)));
        }
        var codes = Object.keys(o.op.responses || {}).join(", ");
        s.appendChild(el("div", "", "Responses: " + codes));
        root.appendChild(s);
      });
    });
  });
})();
