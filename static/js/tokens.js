// Token tooltips and keyboard movement for example rows on the feature page.
// Hover or focus a token: a small tooltip shows its text and exact activation (data-v).
// The peak token of each example is in the tab order; Left/Right/Home/End move between tokens.
(function () {
  "use strict";
  var tip = null;

  function tooltip() {
    if (!tip) {
      tip = document.createElement("div");
      tip.id = "tok-tip";
      tip.setAttribute("role", "tooltip");
      tip.hidden = true;
      document.body.appendChild(tip);
    }
    return tip;
  }

  function tokenOf(target) {
    return target && target.closest ? target.closest(".ex > span") : null;
  }

  function show(span) {
    var t = tooltip();
    var value = span.getAttribute("data-v") || "0";
    if (span.title) { span.setAttribute("data-title", span.title); span.removeAttribute("title"); }
    t.textContent = "";
    var tok = document.createElement("code");
    tok.textContent = span.textContent.replace(/ /g, "\u2423");
    var val = document.createElement("b");
    val.className = "tip-value";
    val.textContent = value;
    t.appendChild(tok);
    t.appendChild(document.createTextNode(" "));
    t.appendChild(val);
    var r = span.getBoundingClientRect();
    t.hidden = false;
    t.style.left = Math.max(4, window.scrollX + r.left) + "px";
    t.style.top = (window.scrollY + r.bottom + 4) + "px";
  }

  function hide(span) {
    if (span && span.hasAttribute("data-title")) { span.title = span.getAttribute("data-title"); span.removeAttribute("data-title"); }
    if (tip) tip.hidden = true;
  }

  document.addEventListener("mouseover", function (e) { var s = tokenOf(e.target); if (s) show(s); });
  document.addEventListener("mouseout", function (e) { var s = tokenOf(e.target); if (s) hide(s); });
  document.addEventListener("focusin", function (e) { var s = tokenOf(e.target); if (s) show(s); });
  document.addEventListener("focusout", function (e) { var s = tokenOf(e.target); if (s) hide(s); });

  document.addEventListener("keydown", function (e) {
    var s = tokenOf(e.target);
    if (!s) return;
    var spans = Array.prototype.slice.call(s.parentNode.children);
    var i = spans.indexOf(s), next = null;
    if (e.key === "ArrowRight") next = spans[i + 1];
    else if (e.key === "ArrowLeft") next = spans[i - 1];
    else if (e.key === "Home") next = spans[0];
    else if (e.key === "End") next = spans[spans.length - 1];
    else if (e.key === "Escape") { hide(s); return; }
    if (!next) return;
    e.preventDefault();
    if (!next.hasAttribute("tabindex")) next.setAttribute("tabindex", "-1");
    next.focus();
  });
})();
