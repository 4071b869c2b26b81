// Example rows on the feature page (and the shaded text of "test this feature"):
// - hover or focus a token: a tooltip shows its text, exact activation (data-v) and share of the feature's max;
// - one tab stop for all examples (a roving tabindex): Left/Right/Home/End move along an example, Up/Down to the
//   peak of the previous/next example, and Tab leaves the examples;
// - copying text from examples gives the original characters (a newline shown as ↵ copies as a newline).
(function () {
  "use strict";
  var tip = null;
  var GLYPHS = { "\u21b5": "\n", "\u23ce": "\r", "\u21e5": "\t" };

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
    var holder = span.closest("[data-max]");
    var max = holder ? parseFloat(holder.getAttribute("data-max")) : 0;
    if (max > 0) {
      var share = document.createElement("span");
      share.className = "tip-share";
      share.textContent = " \u00b7 " + Math.round(100 * parseFloat(value) / max) + " % of max";
      t.appendChild(share);
    }
    var r = span.getBoundingClientRect();
    t.hidden = false;
    t.style.left = Math.max(4, Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - 220)) + "px";
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

  // Moves the one tab stop of the examples to `next`.
  function moveTo(from, next) {
    var region = from.closest("#examples") || document;
    region.querySelectorAll(".ex > span[tabindex='0']").forEach(function (s) { s.setAttribute("tabindex", "-1"); });
    next.setAttribute("tabindex", "0");
    next.focus();
  }

  function otherExample(s, step) {
    var rows = Array.prototype.slice.call((s.closest("#examples") || document).querySelectorAll(".ex"));
    var row = rows[rows.indexOf(s.parentNode) + step];
    return row ? (row.querySelector(".pk") || row.firstElementChild) : null;
  }

  document.addEventListener("keydown", function (e) {
    var s = tokenOf(e.target);
    if (!s) return;
    var spans = Array.prototype.slice.call(s.parentNode.children);
    var i = spans.indexOf(s), next = null;
    if (e.key === "ArrowRight") next = spans[i + 1];
    else if (e.key === "ArrowLeft") next = spans[i - 1];
    else if (e.key === "Home") next = spans[0];
    else if (e.key === "End") next = spans[spans.length - 1];
    else if (e.key === "ArrowDown") next = otherExample(s, 1);
    else if (e.key === "ArrowUp") next = otherExample(s, -1);
    else if (e.key === "Escape") { hide(s); return; }
    if (!next) return;
    e.preventDefault();
    moveTo(s, next);
  });

  // A swapped-in examples block (context toggle) keeps one tab stop: its first peak.
  document.addEventListener("htmx:afterSwap", function (e) {
    var region = e.target && e.target.id === "examples" ? e.target : null;
    if (region && !region.querySelector(".ex > span[tabindex='0']")) {
      var first = region.querySelector(".ex > span.pk");
      if (first) first.setAttribute("tabindex", "0");
    }
  });

  function original(text) {
    return text.replace(/[\u21b5\u23ce\u21e5]/g, function (g) { return GLYPHS[g]; });
  }

  // The selected text of the examples: a .ctl token's glyphs become their characters again; one example per
  // line when the selection spans several; the peak values beside the rows are left out.
  document.addEventListener("copy", function (e) {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return;
    var range = sel.getRangeAt(0);
    var start = range.startContainer.nodeType === 1 ? range.startContainer : range.startContainer.parentNode;
    var end = range.endContainer.nodeType === 1 ? range.endContainer : range.endContainer.parentNode;
    if (!(start.closest && (start.closest(".ex") || start.closest(".examples"))) &&
        !(end.closest && end.closest(".ex"))) return;
    var lines = [];
    var rows = range.commonAncestorContainer.nodeType === 1 && !range.commonAncestorContainer.closest(".ex")
      ? range.commonAncestorContainer.querySelectorAll(".ex") : [start.closest(".ex") || end.closest(".ex")];
    Array.prototype.forEach.call(rows, function (row) {
      if (!row || !range.intersectsNode(row)) return;
      var text = "";
      Array.prototype.forEach.call(row.childNodes, function (span) {
        if (!range.intersectsNode(span)) return;
        var whole = span.textContent, from = 0, to = whole.length;
        var node = span.firstChild || span;
        if (range.startContainer === node || range.startContainer === span) from = range.startOffset;
        if (range.endContainer === node || range.endContainer === span) to = range.endOffset;
        var piece = whole.slice(from, to);
        text += span.classList && span.classList.contains("ctl") ? original(piece) : piece;
      });
      lines.push(text);
    });
    if (!lines.length) return;
    e.clipboardData.setData("text/plain", lines.join("\n"));
    e.preventDefault();
  });
})();
