// Trigger form: say at once whether the free-form conf is a JSON object.
// The server validates everything again; this only saves a round trip for typos.
(function () {
  "use strict";
  var area = document.querySelector("textarea[data-json]");
  if (!area) { return; }
  var status = area.parentElement.querySelector(".json-status");

  function check() {
    var text = area.value.trim();
    if (!text) { status.textContent = ""; area.setCustomValidity(""); return; }
    try {
      var value = JSON.parse(text);
      var ok = value !== null && typeof value === "object" && !Array.isArray(value);
      var message = ok ? "" : "conf must be a JSON object, like {\"rows\": 5}";
      area.setCustomValidity(message);
      status.textContent = ok ? "valid JSON" : message;
    } catch (e) {
      area.setCustomValidity("not valid JSON: " + e.message);
      status.textContent = "not valid JSON: " + e.message;
    }
  }

  area.addEventListener("input", check);
  check();
})();
