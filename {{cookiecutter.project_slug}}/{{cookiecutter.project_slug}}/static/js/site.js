"use strict";
// Shows that the app behind the proxy answers: the page itself may come from a cache.
fetch("/healthz")
  .then((response) => response.json())
  .then((body) => { document.getElementById("health").textContent = "/healthz says: " + body.status; })
  .catch(() => { document.getElementById("health").textContent = "/healthz did not answer"; });
