// Live log: while the try runs, ask log.json for the bytes written after the last offset.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  if (!pre || pre.dataset.live !== "true") { return; }
  var INTERVAL_MS = 3000;

  function atBottom() { return pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20; }

  function poll() {
    var url = pre.dataset.url + (pre.dataset.url.indexOf("?") < 0 ? "?" : "&") +
              "offset=" + encodeURIComponent(pre.dataset.offset);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        var follow = atBottom();
        if (data.text) { pre.appendChild(document.createTextNode(data.text)); }
        pre.dataset.offset = String(data.next_offset);
        if (follow) { pre.scrollTop = pre.scrollHeight; }
        pre.dataset.live = data.live ? "true" : "false";
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () {
        if (pre.dataset.live === "true") { window.setTimeout(poll, INTERVAL_MS); }
      });
  }

  window.setTimeout(poll, INTERVAL_MS);
})();
