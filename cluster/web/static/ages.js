// Cluster page: heartbeat ages count on by themselves, from the age the server saw.
// Without this script the ages are those of when the page was drawn; reload for new beats.
(function () {
  "use strict";
  var cells = document.querySelectorAll("td.age[data-age]");
  if (!cells.length) { return; }
  var loaded = Date.now();

  function text(seconds) {
    if (seconds < 60) { return (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + "s"; }
    var s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
    var m = Math.floor(s / 60) % 60, parts = [];
    if (d) { parts.push(d + "d"); }
    if (h) { parts.push(h + "h"); }
    if (m) { parts.push(m + "m"); }
    if (s % 60) { parts.push((s % 60) + "s"); }
    return parts.join(" ");
  }

  function tick() {
    var elapsed = (Date.now() - loaded) / 1000;
    cells.forEach(function (cell) {
      var table = cell.closest("table");
      var stale = parseFloat(table.dataset.stale || "60");
      var age = parseFloat(cell.dataset.age) + elapsed;
      cell.textContent = text(age) + " ago" + (age > stale ? " (stale)" : "");
      cell.parentElement.classList.toggle("stale", age > stale);
    });
  }
  window.setInterval(tick, 1000);
}());
