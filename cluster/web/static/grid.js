// The live grid: polls grid.json and updates only the cells that changed; swaps in the
// server-rendered table when runs or tasks come or go (no page reload); folds task
// groups; opens a task instance in the side panel (click, or Enter on a cell) with its
// tries, log, rendered fields, XComs and actions; arrow keys move between cells.
// Plain JavaScript, no library: nodes may have no internet, and the CSP allows only
// this origin's scripts.
(function () {
  "use strict";
  var wrap = document.getElementById("grid-wrap");
  if (!wrap) { return; }
  var panel = document.getElementById("grid-panel");
  var statusLine = document.getElementById("grid-status");
  var ACTIVE_MS = 3000;
  var IDLE_MS = 20000;
  var LOG_MS = 3000;
  var marks = {};
  try { marks = JSON.parse(wrap.dataset.marks || "{}"); } catch (e) { marks = {}; }
  var foldKey = "tradewind.grid.folded." + wrap.dataset.dagId;
  var folded = loadFolded();
  var selected = null;  // the selected a.cell
  var timer = null;
  var swapping = false;

  function table() { return document.getElementById("grid"); }
  function say(text) { if (statusLine) { statusLine.textContent = text; } }
  function q(value) { return CSS.escape(value); }

  // --- folding task groups ----------------------------------------------------------
  function loadFolded() {
    try { return JSON.parse(window.localStorage.getItem(foldKey) || "[]"); } catch (e) { return []; }
  }
  function saveFolded() {
    try { window.localStorage.setItem(foldKey, JSON.stringify(folded)); } catch (e) { /* private mode */ }
  }
  function applyFolds() {
    var t = table();
    if (!t) { return; }
    var closed = {};
    folded.forEach(function (g) { closed[g] = true; });
    Array.prototype.forEach.call(t.tBodies[0].rows, function (tr) {
      var groups = tr.dataset.groups ? tr.dataset.groups.split(" ") : [];
      var hide = groups.some(function (g) { return closed[g]; });
      if (tr.hidden !== hide) { tr.hidden = hide; }
      var button = tr.querySelector("button.fold");
      if (button) {
        var open = !closed[button.dataset.group];
        button.setAttribute("aria-expanded", open ? "true" : "false");
        button.textContent = open ? "▾" : "▸";
      }
    });
  }
  function toggleGroup(groupId) {
    var at = folded.indexOf(groupId);
    if (at < 0) { folded.push(groupId); } else { folded.splice(at, 1); }
    saveFolded();
    applyFolds();
  }

  // --- selection and keyboard ---------------------------------------------------------
  function rovingTabIndex() {
    var t = table();
    if (!t) { return; }
    var cells = t.querySelectorAll("a.cell");
    for (var i = 0; i < cells.length; i++) { cells[i].tabIndex = -1; }
    var first = selected && selected.isConnected ? selected : cells[0];
    if (first) { first.tabIndex = 0; }
  }
  function select(cell, focus) {
    if (selected && selected.isConnected) {
      selected.classList.remove("selected");
      selected.removeAttribute("aria-current");
      selected.tabIndex = -1;
    }
    selected = cell;
    cell.classList.add("selected");
    cell.setAttribute("aria-current", "true");
    cell.tabIndex = 0;
    if (focus) { cell.focus(); }
  }
  function visibleTaskRows() {
    var t = table();
    return Array.prototype.filter.call(t.tBodies[0].rows, function (tr) {
      return !tr.hidden && tr.dataset.taskId !== undefined;
    });
  }
  function cellAt(tr, column) {
    var td = tr.cells[column];
    return td ? td.querySelector("a.cell") : null;
  }
  function move(cell, key) {
    var tr = cell.closest("tr");
    var column = cell.closest("td").cellIndex;
    var rows = visibleTaskRows();
    var row = rows.indexOf(tr);
    var found = null;
    var c;
    if (key === "ArrowLeft" || key === "ArrowRight") {
      var step = key === "ArrowLeft" ? -1 : 1;
      for (c = column + step; c > 0 && c < tr.cells.length && !found; c += step) { found = cellAt(tr, c); }
    } else if (key === "Home" || key === "End") {
      var cells = tr.querySelectorAll("a.cell");
      found = cells.length ? cells[key === "Home" ? 0 : cells.length - 1] : null;
    } else {
      var dir = key === "ArrowUp" ? -1 : 1;
      for (var r = row + dir; r >= 0 && r < rows.length && !found; r += dir) { found = cellAt(rows[r], column); }
    }
    return found;
  }
  var follow = null;
  document.addEventListener("keydown", function (event) {
    var cell = event.target.closest ? event.target.closest("#grid a.cell") : null;
    if (event.key === "Escape" && panel && !panel.hidden) {
      closePanel();
      event.preventDefault();
      return;
    }
    if (!cell || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
    if (keys.indexOf(event.key) < 0) { return; }
    event.preventDefault();
    var next = move(cell, event.key);
    if (!next) { return; }
    select(next, true);
    if (panel && !panel.hidden) {  // the open panel follows the selection
      window.clearTimeout(follow);
      follow = window.setTimeout(function () { openPanel(panelUrl(next), false); }, 200);
    }
  });

  // --- the side panel -----------------------------------------------------------------
  function panelUrl(cell) { return cell.getAttribute("href") + "/panel"; }
  function openPanel(url, focus) {
    if (!panel) { window.location.assign(url.replace(/\/panel(\?|$)/, "$1")); return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (html) {
        panel.innerHTML = html;
        panel.hidden = false;
        wrap.parentNode.classList.add("with-panel");
        followLog();
        if (focus) { panel.focus(); }
      })
      .catch(function (err) { say("Could not open the task instance: " + err.message); });
  }
  function refreshPanel() {
    var body = panel && !panel.hidden ? panel.querySelector(".panel-body") : null;
    if (body && !panel.querySelector(".panel-confirm:not([hidden])")) { openPanel(body.dataset.panelUrl, false); }
  }
  function closePanel() {
    panel.hidden = true;
    panel.innerHTML = "";
    wrap.parentNode.classList.remove("with-panel");
    if (selected && selected.isConnected) { selected.focus(); }
  }
  function followLog() {
    var pre = document.getElementById("panel-log");
    if (!pre || pre.dataset.live !== "true") { return; }
    window.setTimeout(function poll() {
      if (!pre.isConnected || pre.dataset.live !== "true") { return; }
      var url = pre.dataset.url + (pre.dataset.url.indexOf("?") < 0 ? "?" : "&") +
                "offset=" + encodeURIComponent(pre.dataset.offset);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (data.text) { pre.appendChild(document.createTextNode(data.text)); }
          pre.dataset.offset = String(data.next_offset);
          pre.dataset.live = data.live ? "true" : "false";
        })
        .catch(function () { /* the next poll tries again */ })
        .finally(function () { if (pre.isConnected && pre.dataset.live === "true") { window.setTimeout(poll, LOG_MS); } });
    }, LOG_MS);
  }

  // actions: clear (previewed by a dry run) and mark, confirmed inside the panel
  function formQuery(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) { if (name !== "csrf_token") { params.append(name, value); } });
    return params.toString();
  }
  function failure(r) {
    return r.json().then(function (body) { throw new Error(body.detail || ("HTTP " + r.status)); },
                         function () { throw new Error("HTTP " + r.status); });
  }
  function confirmAction(form) {
    var box = panel.querySelector(".panel-confirm");
    var text = box.querySelector("p");
    var list = box.querySelector("ul");
    var ask = form.dataset.kind === "clear"
      ? fetch(form.action + "?" + formQuery(form), { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.ok ? r.json() : failure(r); })
          .then(function (data) {
            var n = data.task_instances.length;
            text.textContent = n ? "These " + n + " task instances will be cleared and run again:" : "Nothing to clear with these options.";
            return data.task_instances;
          })
      : Promise.resolve((function () {
          text.textContent = "Mark this task instance " + form.querySelector("input[name=state]").value + "?";
          return [];
        })());
    ask.then(function (items) {
      list.textContent = "";
      items.forEach(function (item) { var li = document.createElement("li"); li.textContent = item; list.appendChild(li); });
      box.hidden = false;
      box.querySelector(".panel-confirm-yes").onclick = function () { act(form, box); };
      box.querySelector(".panel-confirm-no").onclick = function () { box.hidden = true; };
      box.querySelector(".panel-confirm-yes").focus();
    }).catch(function (err) { say(err.message); });
  }
  function act(form, box) {
    fetch(form.action, { method: "POST", credentials: "same-origin", body: new FormData(form),
                         headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : failure(r); })
      .then(function (data) {
        box.hidden = true;
        say(data.marked ? "Marked " + data.marked + "." : "Cleared " + data.task_instances.length + " task instances.");
        wrap.dataset.active = "true";
        refreshPanel();
        pollNow();
      })
      .catch(function (err) { box.hidden = true; say(err.message); });
  }

  // --- clicks -------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    var target = event.target;
    var fold = target.closest("button.fold");
    if (fold) { toggleGroup(fold.dataset.group); return; }
    var cell = target.closest("#grid a.cell");
    if (cell) {
      event.preventDefault();
      select(cell, false);
      openPanel(panelUrl(cell), false);
      return;
    }
    if (!panel || !panel.contains(target)) { return; }
    if (target.closest(".panel-close")) { closePanel(); return; }
    var link = target.closest("a.panel-link");
    if (link) { event.preventDefault(); openPanel(link.getAttribute("href"), false); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest ? event.target.closest("form.panel-action") : null;
    if (form && panel && panel.contains(form)) { event.preventDefault(); confirmAction(form); }
  });

  // --- live updates -------------------------------------------------------------------
  function setClass(el, state) {
    var now = el.getAttribute("class") || "";
    var next = /\bstate-\S+/.test(now) ? now.replace(/\bstate-\S+/, "state-" + state) : now + " state-" + state;
    if (next === now) { return false; }
    el.setAttribute("class", next);
    return true;
  }
  function setLabel(el, label) {
    if (el.getAttribute("title") !== label) { el.setAttribute("title", label); }
    if (el.hasAttribute("aria-label") && el.getAttribute("aria-label") !== label) { el.setAttribute("aria-label", label); }
  }
  function setMark(el, state) {
    var mark = el.querySelector(".mark");
    var text = marks[state] !== undefined ? marks[state] : "?";
    if (mark && mark.textContent !== text) { mark.textContent = text; }
  }
  function mappedText(counts) {
    var total = 0;
    var parts = Object.keys(counts).sort().map(function (s) { total += counts[s]; return counts[s] + " " + s; });
    return { total: total, text: total + " mapped: " + parts.join(", ") };
  }
  function updateRuns(t, runs) {
    var height = 0;
    runs.forEach(function (run) {
      var head = t.querySelector('a.run-head[data-run-id="' + q(run.run_id) + '"]');
      if (!head) { return; }
      setClass(head, run.state);
      var rect = head.querySelector("rect");
      if (rect) {
        height = height || Number(head.querySelector("svg").getAttribute("height"));
        var h = Math.max(Math.round(run.bar * height), 2);
        setClass(rect, run.state);
        if (rect.getAttribute("height") !== String(h)) { rect.setAttribute("height", h); rect.setAttribute("y", height - h); }
      }
      if (run.label) { setLabel(head, run.label); }
    });
  }
  function updateCells(t, data) {
    // the table's columns are data.runs in order (apply checked), so cell i+1 is run i
    var missing = false;
    var runIds = data.runs.map(function (r) { return r.run_id; });
    var seen = {};
    Array.prototype.forEach.call(t.tBodies[0].rows, function (tr) {
      var taskId = tr.dataset.taskId;
      var groupId = tr.dataset.groupId;
      var states = taskId !== undefined ? data.states[taskId] : (data.groups || {})[groupId];
      if (taskId !== undefined) { seen[taskId] = true; }
      if (!states) { return; }
      var mapped = taskId !== undefined ? (data.mapped || {})[taskId] : null;
      for (var i = 0; i < states.length; i++) {
        var state = states[i];
        if (state === null) { continue; }
        var td = tr.cells[i + 1];
        var cell = td ? td.firstElementChild : null;
        if (!cell) { missing = true; continue; }
        var changed = setClass(cell, state);
        if (changed) { setMark(cell, state); }
        var prefix = (taskId !== undefined ? taskId : "group " + groupId) + " · " + runIds[i] + ": ";
        var counts = mapped ? mapped[i] : null;
        if (counts) {
          var m = mappedText(counts);
          var count = cell.querySelector(".count");
          if (count && count.textContent !== String(m.total)) { count.textContent = String(m.total); }
          setLabel(cell, prefix + m.text);
        } else if (changed) {
          setLabel(cell, prefix + state);
        }
        if (changed && cell === selected) { refreshPanel(); }
      }
    });
    Object.keys(data.states).forEach(function (taskId) {  // a task the table lacks
      if (!seen[taskId] && data.states[taskId].some(function (s) { return s !== null; })) { missing = true; }
    });
    return missing;
  }
  function apply(data) {
    finishPoll(data.active);
    var t = table();
    var runIds = data.runs.map(function (r) { return r.run_id; }).join(" ");
    if (!t ? data.runs.length > 0 : t.dataset.runs !== runIds) { return swapTable(); }
    if (t) {
      updateRuns(t, data.runs);
      if (updateCells(t, data)) { return swapTable(); }
    }
    return Promise.resolve();
  }
  function finishPoll(active) {
    var was = wrap.dataset.active === "true";
    wrap.dataset.active = active ? "true" : "false";
    if (active && !was) { say("A run is active: the grid updates itself."); }
    if (!active && was) { say("No run is active."); }
  }
  function swapTable() {
    // runs or tasks came or went: swap in the server's table in one DOM operation
    if (swapping) { return Promise.resolve(); }
    swapping = true;
    var keep = selected ? { task: selected.dataset.taskId, run: selected.dataset.runId } : null;
    return fetch(wrap.dataset.tableUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.querySelector("table");
        var old = table() || document.getElementById("grid-empty");
        if (!fresh || !old) { return; }
        old.replaceWith(fresh);
        applyFolds();
        selected = null;
        if (keep) {
          var cell = fresh.querySelector('a.cell[data-task-id="' + q(keep.task) + '"][data-run-id="' + q(keep.run) + '"]');
          if (cell) { select(cell, false); }
        }
        rovingTabIndex();
      })
      .finally(function () { swapping = false; });
  }
  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(pollNow, wrap.dataset.active === "true" ? ACTIVE_MS : IDLE_MS);
  }
  function pollNow() {
    window.clearTimeout(timer);
    if (document.hidden) { schedule(); return; }
    fetch(wrap.dataset.jsonUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(apply)
      .catch(function () { /* the next poll tries again */ })
      .finally(schedule);
  }

  applyFolds();
  rovingTabIndex();
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { pollNow(); } });
  schedule();
})();
