"use strict";
// Shows that the app behind the proxy answers: the page itself may come from a cache.
fetch("/healthz")
  .then((response) => response.json())
  .then((body) => { document.getElementById("health").textContent = "/healthz says: " + body.status; })
  .catch(() => { document.getElementById("health").textContent = "/healthz did not answer"; });

// A WebSocket that opens again whenever the server closes it: a deploy or a restart closes each with
// 1001 (going away), and a stopping nginx cuts what it still holds. Again after about 0.5 s, doubling
// up to 30 s while it cannot, spread at random so that many pages do not all come back at once.
// https://developer.mozilla.org/en-US/docs/Web/API/CloseEvent/code
const live = document.getElementById("live");
if (live) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let delay = 500;
  let opens = 0;
  const open = () => {
    const socket = new WebSocket(scheme + location.host + live.dataset.path);
    socket.onopen = () => {
      delay = 500;
      opens += 1;
      live.dataset.opens = opens;
      live.textContent = "WebSocket open" + (opens > 1 ? " again (opened " + opens + " times)" : "");
    };
    socket.onclose = (event) => {
      live.dataset.lastClose = event.code;
      live.textContent = "WebSocket closed (" + event.code + "); opening it again";
      setTimeout(open, delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 30000);
    };
  };
  open();
}
