// Starts Swagger UI on /docs (webapp/templates/swagger_ui.html) from the container's data
// attributes, instead of the inline script flask-smorest's template has.
(function () {
  "use strict";
  const container = document.getElementById("swagger-ui-container");
  const config = Object.assign(
    { url: container.dataset.specUrl, dom_id: "#swagger-ui-container" },
    JSON.parse(container.dataset.config || "{}")
  );
  window.addEventListener("load", function () {
    window.ui = window.SwaggerUIBundle(config);
  });
})();
