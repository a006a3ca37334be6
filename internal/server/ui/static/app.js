// stripeline's UI script: the few live parts of server-rendered pages.
// No framework; every page works without it, and it only adds: the stream
// filter and field picker, the connection test, live refresh of a running
// pipeline and the live log of a run.
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }

  // Forms that ask before they act (delete).
  $$("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      var msg = f.getAttribute("data-confirm");
      var choice = $("input[name=tables]:checked", f);
      if (choice) msg += choice.value === "drop" ? "\n\nIts tables, state and history will be dropped." : "\n\nIts tables stay in the destination.";
      if (!window.confirm(msg)) ev.preventDefault();
    });
  });

  // Toggle groups: a radio or select shows the elements whose data-when
  // names its value.
  $$("[data-toggle]").forEach(function (ctl) {
    var group = ctl.getAttribute("data-toggle");
    function apply() {
      var v = ctl.type === "radio" ? ($('[data-toggle="' + group + '"]:checked') || {}).value : ctl.value;
      $$('[data-group="' + group + '"]').forEach(function (e) {
        e.hidden = e.getAttribute("data-when").split(" ").indexOf(v) < 0;
      });
    }
    ctl.addEventListener("change", apply);
    apply();
  });

  // The stream picker: filter, count, select all / none, lazy field lists.
  var picker = $("[data-picker]");
  if (picker) {
    var filter = $("[data-filter]", picker);
    var count = $("[data-count]", picker);
    var boxes = $$("input[name=streams]", picker);
    var updateCount = function () {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      count.textContent = n === 0 ? "none ticked: the default streams" : n + " of " + boxes.length + " streams";
    };
    boxes.forEach(function (b) { b.addEventListener("change", updateCount); });
    updateCount();
    if (filter) {
      filter.addEventListener("input", function () {
        var q = filter.value.trim().toLowerCase();
        $$(".stream", picker).forEach(function (s) {
          s.classList.toggle("hidden", q !== "" && s.getAttribute("data-name").indexOf(q) < 0);
        });
      });
    }
    $$("[data-select]", picker).forEach(function (btn) {
      btn.addEventListener("click", function () {
        var mode = btn.getAttribute("data-select");
        $$(".stream", picker).forEach(function (s) {
          if (s.classList.contains("hidden")) return;
          var b = $("input[name=streams]", s);
          b.checked = mode === "all" || (mode === "defaults" && s.hasAttribute("data-default"));
        });
        updateCount();
      });
    });
    var catalog = null;
    var loadCatalog = function () {
      if (!catalog) {
        catalog = fetch("/api/v1/streams", { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) throw new Error("the catalog did not load (" + r.status + ")");
          return r.json();
        }).then(function (body) {
          var byName = {};
          body.streams.forEach(function (s) { byName[s.name] = s; });
          return byName;
        });
      }
      return catalog;
    };
    $$("details[data-fields]", picker).forEach(function (d) {
      d.addEventListener("toggle", function () {
        var cols = $(".cols", d);
        if (!d.open || cols.childElementCount > 0) return;
        var name = d.getAttribute("data-fields");
        loadCatalog().then(function (byName) {
          (byName[name] ? byName[name].columns : []).forEach(function (c) {
            var l = el("label");
            l.appendChild(el("input", { type: "checkbox", name: "fields." + name, value: c.name }));
            l.appendChild(document.createTextNode(c.name));
            cols.appendChild(l);
          });
        }).catch(function (e) { cols.appendChild(el("span", { "class": "errtext" }, e.message)); });
      });
    });
  }

  // The connection test: POST the form's connection to the API.
  var testBtn = $("[data-test-connection]");
  if (testBtn) {
    testBtn.addEventListener("click", function () {
      var form = testBtn.form;
      var out = $("[data-test-result]");
      var val = function (n) { var e = form.elements[n]; return e ? e.value.trim() : ""; };
      var mode = ($("input[name=key_mode]:checked", form) || {}).value;
      var conn = { account: val("account"), api_base: val("api_base"), proxy: val("proxy") };
      if (mode === "env") conn.key_ref = "env:" + val("key_env");
      else if (val("api_key") !== "") conn.api_key = val("api_key");
      var body = { connection: conn };
      if (val("name") !== "" && form.hasAttribute("data-editing")) body.pipeline = val("name");
      out.className = "conn-result muted";
      out.textContent = "Testing the connection…";
      testBtn.disabled = true;
      fetch("/api/v1/connections/test", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, body: j }; });
      }).then(function (res) {
        out.textContent = "";
        if (!res.ok) {
          out.className = "conn-result err";
          out.textContent = res.body.error ? res.body.error.message : "The test failed.";
          return;
        }
        var c = res.body;
        out.className = "conn-result ok";
        out.textContent = "Connected to " + c.account.id + (c.account.display_name ? " (" + c.account.display_name + ")" : "") +
          " in " + c.mode + " mode with a " + c.key_type + " key " + c.key + ": " + c.readable + " streams readable" +
          (c.forbidden ? ", " + c.forbidden + " forbidden" : "") + (c.errors ? ", " + c.errors + " with errors" : "") + ".";
      }).catch(function (e) {
        out.className = "conn-result err";
        out.textContent = "The test did not reach the server: " + e.message;
      }).then(function () { testBtn.disabled = false; });
    });
  }

  // Live parts: a fragment refreshed while something runs.
  $$("[data-live]").forEach(function (box) {
    var url = box.getAttribute("data-live");
    var tick = function () {
      if (box.getAttribute("data-active") !== "1") return;
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (html) {
        var tmp = document.createElement("div");
        tmp.innerHTML = html;
        var next = tmp.firstElementChild;
        if (!next) return;
        box.innerHTML = next.innerHTML;
        box.setAttribute("data-active", next.getAttribute("data-active"));
      }).catch(function () { /* try again on the next tick */ }).then(function () {
        if (box.getAttribute("data-active") === "1") setTimeout(tick, 2000);
      });
    };
    setTimeout(tick, 2000);
  });

  // A run's live log: Server-Sent Events from the API.
  var log = $("[data-follow]");
  if (log && window.EventSource) {
    var es = new EventSource(log.getAttribute("data-follow"));
    var stick = true;
    log.addEventListener("scroll", function () { stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8; });
    es.addEventListener("line", function (ev) {
      var l = JSON.parse(ev.data);
      var row = el("span", { "class": "l lv-" + l.level });
      row.appendChild(el("span", { "class": "t" }, (l.time || "").replace("T", " ").slice(0, 19) + " "));
      row.appendChild(document.createTextNode(l.level + " " + l.msg));
      var attrs = Object.keys(l.attrs || {}).map(function (k) { return k + "=" + l.attrs[k]; }).join(" ");
      if (attrs) row.appendChild(el("span", { "class": "a" }, " " + attrs));
      log.appendChild(row);
      if (stick) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("end", function () {
      es.close();
      window.location.reload();
    });
  }
})();
