// Behaviour every page shares, as event listeners rather than inline handlers so that the
// Content-Security-Policy can refuse inline scripts and eval (htmx's hx-on needs both).
(function () {
  "use strict";

  // htmx leaves 4xx/5xx responses unswapped; requests from inside a data-swap-errors element (or swapping
  // into one) show ours, which carry a message.
  function inSwapErrors(el) { return Boolean(el && el.closest && el.closest("[data-swap-errors]")); }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var requester = event.detail.requestConfig && event.detail.requestConfig.elt;  // detail.elt is the target here
    if ((inSwapErrors(requester) || inSwapErrors(event.target)) && event.detail.xhr.status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // In a data-pressed-group, the button whose request just finished is the one shown pressed.
  document.addEventListener("htmx:afterRequest", function (event) {
    var button = event.detail.elt;
    var group = button && button.closest && button.closest("[data-pressed-group]");
    if (!group || !button.matches(group.getAttribute("data-pressed-group"))) return;
    group.querySelectorAll("[aria-pressed=true]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    button.setAttribute("aria-pressed", "true");
  });
})();
