// Kept out of index.html so the page needs no inline script.
// validatorUrl: null keeps the page from sending the document to an outside validator.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null });
