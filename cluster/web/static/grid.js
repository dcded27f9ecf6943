// Live grid: while a run is queued or running, poll grid.json and recolour the cells.
// A new or removed run (or task) changes the table's shape: then the page reloads.
(function () {
  "use strict";
  var table = document.getElementById("grid");
  if (!table) { return; }
  var INTERVAL_MS = 4000;
  var status = document.getElementById("grid-status");

  function setState(el, state) {
    el.className = el.className.replace(/\bstate-\S+/g, "").trim() + " state-" + state;
    el.title = el.title.replace(/: [^:]*$/, ": " + state);
  }

  function apply(data) {
    var known = table.dataset.runs;
    var now = data.runs.map(function (r) { return r.run_id; }).join(" ");
    if (known !== now) { window.location.reload(); return; }
    data.runs.forEach(function (run) {
      var head = table.querySelector('a.run-head[data-run-id="' + CSS.escape(run.run_id) + '"]');
      if (head) { setState(head, run.state); }
    });
    var missing = false;
    Object.keys(data.states).forEach(function (taskId) {
      var byRun = data.states[taskId];
      Object.keys(byRun).forEach(function (runId) {
        var cell = table.querySelector('a.cell[data-task-id="' + CSS.escape(taskId) +
                                        '"][data-run-id="' + CSS.escape(runId) + '"]');
        if (cell) { setState(cell, byRun[runId]); } else { missing = true; }
      });
    });
    // a task instance appeared since the page was drawn (a new run starts with none)
    if (missing) { window.location.reload(); return; }
    table.dataset.active = data.active ? "true" : "false";
    if (status && !data.active) { status.textContent = ""; }
  }

  function poll() {
    if (table.dataset.active !== "true") { return; }
    fetch(table.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { apply(data); })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () {
        if (table.dataset.active === "true") { window.setTimeout(poll, INTERVAL_MS); }
      });
  }

  window.setTimeout(poll, INTERVAL_MS);
})();
