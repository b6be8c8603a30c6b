// The sessions page keeps itself current: when a session of this user signs in or ends
// elsewhere (live.js relays the event), the lists are fetched again and swapped in, keeping
// whatever the person is typing. Without JavaScript, reloading the page does the same.
(() => {
  "use strict";
  let pending = null;

  async function refresh() {
    pending = null;
    try {
      const response = await fetch(location.pathname, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok || response.redirected) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const id of ["session-list", "session-count", "account-tokens"]) {
        const now = document.getElementById(id);
        const next = fresh.getElementById(id);
        if (now && next) now.replaceWith(document.adoptNode(next));
      }
    } catch (_) { /* offline: the next change, or a reload, catches up */ }
  }

  // Several changes at once (ending many sessions) refresh once.
  document.addEventListener("ual-todo:sessions", () => {
    if (!pending) pending = setTimeout(refresh, 150);
  });
})();
