// The one stream of a session, shared by its tabs (see live.js). Runs as a SharedWorker, or as a
// dedicated Worker for a single tab where SharedWorker is missing.
"use strict";

const ports = new Set();
let ended = null; // the logout message, once the session has ended
let source = null;
let retryIn = 1000;

function tell(message) {
  for (const port of ports) port.postMessage(message);
}

// `message` is the server's sentence for `reason` (the event, or the refused status check).
function end(reason, message) {
  ended = { type: "logout", reason, message };
  if (source) source.close();
  tell(ended);
}

function connect() {
  source = new EventSource("/events");
  source.addEventListener("open", () => { retryIn = 1000; });
  source.addEventListener("logout", (event) => {
    let data = {};
    try { data = JSON.parse(event.data); } catch (_) { /* keep the defaults */ }
    end(data.reason || "revoked", data.message);
  });
  // Asked to sign in again: the session is kept, every tab goes to do so (the stream stays).
  source.addEventListener("reauth", (event) => {
    let data = {};
    try { data = JSON.parse(event.data); } catch (_) { /* keep the defaults */ }
    tell({ type: "reauth", message: data.message });
  });
  // The user's sessions changed (a sign-in, or one ended elsewhere): every tab hears of it.
  source.addEventListener("sessions", (event) => {
    let data = {};
    try { data = JSON.parse(event.data); } catch (_) { return; }
    tell({ type: "sessions", data });
  });
  source.addEventListener("error", () => {
    // The browser retries network errors by itself; a refused stream (401, 5xx) is closed.
    if (source.readyState === EventSource.CLOSED && !ended) check();
  });
}

// The stream was refused: signed out, or the server is briefly unavailable?
async function check() {
  try {
    const response = await fetch("/events/status", { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}));
      return end("expired", body.error_description);
    }
  } catch (_) { /* offline: try again later */ }
  setTimeout(connect, retryIn);
  retryIn = Math.min(retryIn * 2, 30000);
}

function attach(port) {
  ports.add(port);
  if (ended) port.postMessage(ended);
  if (!source) connect();
}

if ("onconnect" in self) {
  self.onconnect = (event) => {
    const port = event.ports[0];
    port.start();
    attach(port);
  };
} else {
  attach(self);
}
