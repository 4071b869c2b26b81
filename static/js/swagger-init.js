// Starts Swagger UI on /docs (FastAPI does this with an inline script, which the Content-Security-Policy refuses).
(function () {
  "use strict";
  window.addEventListener("load", function () {
    var el = document.getElementById("swagger-ui");
    window.ui = window.SwaggerUIBundle({
      url: el.getAttribute("data-openapi-url"), dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
      showExtensions: true, showCommonExtensions: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  });
})();
