// Keyboard shortcuts of the labeling flow: a accepts the draft, r rejects it, e edits, s skips, n goes to the
// next feature, Esc leaves the text box.
// The page's data (next URL, …) is a JSON block with id "labeling-data".
(function () {
  "use strict";
  var state = JSON.parse(document.getElementById("labeling-data").textContent);
  document.addEventListener("keydown", function (ev) {
    var t = ev.target, typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
    if (ev.key === "Escape" && typing) { t.blur(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "a") { var f = document.getElementById("accept"); if (f) { ev.preventDefault(); f.submit(); } }
    else if (ev.key === "e") { var i = document.getElementById("label-text"); if (i) { ev.preventDefault(); i.focus(); i.select(); } }
    else if (ev.key === "r") { var r = document.getElementById("reject"); if (r) { ev.preventDefault(); r.submit(); } }
    else if (ev.key === "s" || ev.key === "n") { ev.preventDefault(); window.location.assign(state.next_url); }
  });
})();
