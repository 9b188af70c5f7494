// The report's per-row table: unpack the rows, then search, filter, sort and unfold them.
// Everything is drawn with textContent: a row's text (a model's output, a judge's
// rationale) can never become markup, a script or a request.
//
// Search, filters and sort run over every row; only the first PAGE rows that match are
// in the page, and "Show more" adds the next PAGE. With a table row element for every row,
// a 10,000-row report showed its rows 9.25 s after it was opened in headless Chromium
// (2.94 s this way) and a 100,000-row one never did within 240 s (19.1 s this way):
// bench/bench_report_browser.py.
(function () {
  "use strict";
  var PAGE = 500;
  var $ = function (id) { return document.getElementById(id); };
  var status = $("rows-status");

  function unpack(text) {
    var bytes = Uint8Array.from(atob(text.trim()), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (v === 0) return "0";
    var a = Math.abs(v);
    // As harness.numbers.number: whole numbers in full up to 1e15, then 4 digits (1e+30).
    if (a >= 1e15) return v.toExponential(3).replace(/\.?0+e/, "e");
    if (a >= 1e5) return Math.round(v).toLocaleString("en-US");
    return String(Number(v.toPrecision(4)));
  }

  function clip(text, n) {
    if (!text) return "";
    var line = String(text).replace(/\s+/g, " ").trim();
    return line.length <= n ? line : line.slice(0, n - 1) + "…";
  }

  function prompt(data, row, r) {
    var run = row.runs[r];
    return data.runs[r].template.map(function (part) {
      if (typeof part === "string") return part;
      if (part.c !== undefined) return row[part.c] === undefined || row[part.c] === null ? "" : String(row[part.c]);
      return run.fields[part.f];
    }).join("");
  }

  function start(data) {
    var runs = data.runs, metrics = data.metrics, rows = data.rows;
    var compare = runs.length > 1;
    var state = { q: "", failed: false, metric: -1, below: NaN, flip: "all", cand: 1, sort: null, dir: 1, limit: PAGE };
    var table = $("row-table"), head = table.tHead.rows[0], body = table.tBodies[0];
    var more = $("rows-more");
    var sorted = null, matches = [];  // the rows in the sort's order (made once per sort), the ones shown

    rows.forEach(function (row, i) { row.pos = i; });

    // What a row is searched for: its id, input, expected answers, outputs, errors and
    // judge rationales (not its context, which every prompt of a RAG set repeats). Made
    // at the first search, not before the table shows.
    function searchText(row) {
      if (row.text === undefined) {
        var parts = [row.id, row.input].concat(row.expected);
        row.runs.forEach(function (run) {
          if (!run) return;
          parts.push(run.output, run.error);
          Object.keys(run.judges || {}).forEach(function (j) {
            run.judges[j].forEach(function (s) { parts.push(s[2], s[3]); });
          });
        });
        row.text = parts.filter(Boolean).join("\n").toLowerCase();
      }
      return row.text;
    }

    function failed(row) {
      if (row.failed === undefined) {
        row.failed = row.runs.some(function (run) {
          return run && !!(run.error || Object.keys(run.judges || {}).some(function (j) {
            return run.judges[j].some(function (s) { return s[3]; });
          }));
        });
      }
      return row.failed;
    }

    var columns = [{ key: "pos", label: "#" }, { key: "id", label: "id" }, { key: "input", label: "input" }];
    if (!compare) columns.push({ key: "output", label: "output" });
    metrics.forEach(function (m, k) {
      columns.push({ key: k, label: m.name + (m.dir > 0 ? " ↑" : m.dir < 0 ? " ↓" : ""), metric: true });
    });
    columns.push({ key: "flags", label: "" });
    columns.forEach(function (c) {
      var th = el("th", c.metric ? "num" : "", c.label);
      if (c.key !== "flags") {
        th.tabIndex = 0;
        th.title = c.metric && compare ? "sort by the change from the base run" : "sort";
        th.addEventListener("click", function () { sortBy(c.key, th); });
        th.addEventListener("keydown", function (e) {  // focusable, so the keyboard sorts too
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(c.key, th); }
        });
      }
      head.appendChild(th);
    });

    function value(row, r, k) {
      var run = row.runs[r];
      return run && run.values[k] !== undefined ? run.values[k] : null;
    }

    function sortValue(row, key) {
      if (typeof key === "number") {
        if (!compare) return value(row, 0, key);
        var b = value(row, 0, key), c = value(row, state.cand, key);
        return b === null || c === null ? null : c - b;
      }
      if (key === "output") return row.runs[0] ? row.runs[0].output || "" : "";
      return row[key];
    }

    // A cell's text: the score, or for a judge answering with labels of its own
    // (rude/neutral/warm) the label its samples gave, when they agree (their mean is a
    // number no answer said); sorting and filters still use the number.
    function cell(row, r, k) {
      var v = value(row, r, k), run = row.runs[r], name = metrics[k].name;
      if (v === null || !run || (runs[r].labelled || []).indexOf(name) < 0) return fmt(v);
      var said = ((run.judges || {})[name] || []).map(function (s) { return s[0]; });
      var same = said.length && said.every(function (l) { return l !== null && l === said[0]; });
      return same ? String(said[0]) : fmt(v);
    }

    function flipOf(row) {
      var f = row.flips && row.flips[state.cand - 1];
      return f ? { worse: f[0], better: f[1] } : { worse: [], better: [] };
    }

    function fillCells(row) {
      var tr = row.tr, cells = tr.cells, i = 0;
      cells[i++].textContent = row.pos + 1;
      cells[i++].textContent = row.id;
      cells[i++].textContent = clip(row.input, 140);
      if (!compare) {
        var run = row.runs[0];
        cells[i++].textContent = run ? clip(run.error ? "failed: " + run.error : run.output, 140) : "";
      }
      var flip = flipOf(row);
      metrics.forEach(function (m, k) {
        var td = cells[i++];
        if (!compare) {
          td.textContent = cell(row, 0, k);
        } else {
          td.textContent = cell(row, 0, k) + " → " + cell(row, state.cand, k);
        }
        td.className = "num" + (flip.worse.indexOf(m.name) >= 0 ? " worse" : flip.better.indexOf(m.name) >= 0 ? " better" : "");
      });
      var flags = cells[i];
      flags.textContent = "";
      if (failed(row)) flags.appendChild(el("span", "badge fail", "failed"));
      if (flip.worse.length) flags.appendChild(el("span", "badge worse", "worse"));
      else if (flip.better.length) flags.appendChild(el("span", "badge better", "better"));
    }

    // A row's table row, made the first time it is listed and filled each time.
    function rowElement(row) {
      if (!row.tr) {
        var tr = el("tr", "row");
        tr.tabIndex = 0;
        for (var c = 0; c < columns.length; c++) tr.appendChild(el("td"));
        tr.addEventListener("click", function () { toggle(row); });
        tr.addEventListener("keydown", function (e) { if (e.key === "Enter") toggle(row); });
        row.tr = tr;
      }
      fillCells(row);
      return row.tr;
    }

    function section(parent, title, text, cls) {
      parent.appendChild(el("h4", "", title));
      parent.appendChild(el("pre", cls || "", text));
    }

    function detail(row) {
      var td = el("td");
      td.colSpan = columns.length;
      var usesContext = runs.some(function (run) {
        return run.template.some(function (p) { return p.c === "context"; });
      });
      var box = el("div", "detail");
      if (row.expected.length) section(box, row.expected.length > 1 ? "expected (any of)" : "expected", row.expected.join("\n— or —\n"));
      if (row.context && !usesContext) section(box, "context", row.context);
      if (row.data) {  // the data's other columns, each under its name
        box.appendChild(el("h4", "", "data"));
        var fields = el("table", "row-data");
        Object.keys(row.data).forEach(function (name) {
          var v = row.data[name], tr = el("tr");
          tr.appendChild(el("th", "", name));
          tr.appendChild(el("td", "", v === null ? "–" : typeof v === "string" ? v : JSON.stringify(v)));
          fields.appendChild(tr);
        });
        box.appendChild(fields);
      }
      row.runs.forEach(function (run, r) {
        var part = el("div", "run-detail");
        part.appendChild(el("h3", "", runs[r].label));
        if (!run) { part.appendChild(el("p", "note", "this run has no such row")); box.appendChild(part); return; }
        var pair = el("div", "pair"), left = el("div"), right = el("div");
        if (runs[r].system) section(left, "system prompt", runs[r].system);
        section(left, "prompt", prompt(data, row, r), "prompt");
        if (run.error) section(right, "error", run.error, "err");
        else section(right, "output", run.output === null ? "" : run.output, "output");
        pair.appendChild(left);
        pair.appendChild(right);
        part.appendChild(pair);
        var facts = [];
        if (run.latency !== undefined) facts.push("latency " + fmt(run.latency) + " s");
        if (run.tokens) facts.push("tokens " + run.tokens[0] + " in / " + run.tokens[1] + " out");
        if (run.cached !== undefined) facts.push(run.cached ? "from the cache" : "called");
        if (facts.length) part.appendChild(el("p", "note", facts.join(" · ")));
        var scores = el("table", "row-scores");
        metrics.forEach(function (m, k) {
          var tr = el("tr");
          tr.appendChild(el("th", "", m.name));
          tr.appendChild(el("td", "num", fmt(run.values[k])));
          var samples = (run.judges || {})[m.name] || [];
          var why = el("td", "why");
          samples.forEach(function (s, n) {
            var line = el("div", s[3] ? "err" : "");
            var head = (samples.length > 1 ? "sample " + (n + 1) + ": " : "") + (s[0] === null ? "no verdict" : s[0]);
            line.appendChild(el("b", "", head));
            line.appendChild(document.createTextNode(" " + (s[3] ? "failed: " + s[3] : s[2] || "")));
            why.appendChild(line);
          });
          tr.appendChild(why);
          scores.appendChild(tr);
        });
        part.appendChild(scores);
        box.appendChild(part);
      });
      td.appendChild(box);
      var tr = el("tr", "detail-row");
      tr.appendChild(td);
      return tr;
    }

    function toggle(row) {
      if (row.open) {
        row.open.remove();
        row.open = null;
        row.tr.classList.remove("open");
      } else {
        row.open = detail(row);
        row.tr.after(row.open);
        row.tr.classList.add("open");
      }
    }

    function sortBy(key, th) {
      state.dir = state.sort === key ? -state.dir : 1;
      state.sort = key;
      sorted = null;
      Array.prototype.forEach.call(head.cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      apply();
    }

    function visible(row) {
      if (state.q && searchText(row).indexOf(state.q) < 0) return false;
      if (state.failed && !failed(row)) return false;
      if (state.metric >= 0 && !isNaN(state.below)) {
        var v = value(row, compare ? state.cand : 0, state.metric);
        if (v === null || !(v < state.below)) return false;
      }
      if (state.flip !== "all") {
        var f = flipOf(row);
        if (state.flip === "worse" && !f.worse.length) return false;
        if (state.flip === "better" && !(f.better.length && !f.worse.length)) return false;
        if (state.flip === "flipped" && !(f.worse.length || f.better.length)) return false;
      }
      return true;
    }

    function order() {
      if (sorted === null) {
        sorted = rows.slice();
        if (state.sort !== null) {
          sorted.sort(function (a, b) {
            var x = sortValue(a, state.sort), y = sortValue(b, state.sort);
            if (x === null || x === undefined) return y === null || y === undefined ? a.pos - b.pos : 1;
            if (y === null || y === undefined) return -1;
            if (x < y) return -state.dir;
            if (x > y) return state.dir;
            return a.pos - b.pos;
          });
        }
      }
      return sorted;
    }

    // The rows that match, from the first page again.
    function apply() {
      matches = order().filter(visible);
      state.limit = PAGE;
      list();
    }

    // The first state.limit matching rows, each followed by its unfolded detail if open.
    function list() {
      var listed = Math.min(state.limit, matches.length), part = document.createDocumentFragment();
      for (var i = 0; i < listed; i++) {
        part.appendChild(rowElement(matches[i]));
        if (matches[i].open) part.appendChild(matches[i].open);
      }
      body.textContent = "";
      body.appendChild(part);
      var count = function (n) { return n.toLocaleString("en-US"); };
      status.textContent = "Showing " + count(matches.length) + " of " + count(rows.length) +
        (rows.length === 1 ? " row" : " rows") +
        (listed < matches.length ? ", the first " + count(listed) + " listed" : "");
      more.hidden = listed >= matches.length;
      more.textContent = "Show " + count(Math.min(PAGE, matches.length - listed)) + " more";
    }

    var metricSelect = $("filter-metric");
    metrics.forEach(function (m, k) { metricSelect.appendChild(new Option(m.name, String(k))); });
    $("search").addEventListener("input", function (e) { state.q = e.target.value.trim().toLowerCase(); apply(); });
    $("filter-failed").addEventListener("change", function (e) { state.failed = e.target.checked; apply(); });
    metricSelect.addEventListener("change", function (e) { state.metric = Number(e.target.value); apply(); });
    $("filter-below").addEventListener("input", function (e) { state.below = parseFloat(e.target.value); apply(); });
    if (compare) {
      var flip = $("filter-flip"), cand = $("candidate");
      flip.hidden = false;
      flip.addEventListener("change", function (e) { state.flip = e.target.value; apply(); });
      if (runs.length > 2) {
        cand.hidden = false;
        runs.slice(1).forEach(function (run, i) { cand.appendChild(new Option("vs " + run.label, String(i + 1))); });
        cand.addEventListener("change", function (e) {
          state.cand = Number(e.target.value);
          if (typeof state.sort === "number") sorted = null;  // a metric sorts by its change
          apply();  // lists its rows again, each filled for this candidate
        });
      }
    }
    more.addEventListener("click", function () { state.limit += PAGE; list(); });
    $("row-controls").hidden = false;
    apply();
    document.body.setAttribute("data-rows-ready", "true");
  }

  if (typeof DecompressionStream === "undefined") {
    status.textContent = "This browser cannot unpack the rows (it needs DecompressionStream: " +
      "Chrome 80, Firefox 113, Safari 16.4 or newer).";
    return;
  }
  unpack($("rows-data").textContent).then(start, function (error) {
    status.textContent = "The rows could not be read: " + error;
  });
})();
