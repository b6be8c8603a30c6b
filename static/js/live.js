// Live logout for every signed-in page. One stream per session, shared by all its tabs through a
// SharedWorker (a dedicated Worker where SharedWorker is missing), so open tabs never use up the
// browser's six connections per host. When the session ends, the page says why and moves to the
// sign-in page. Without JavaScript nothing breaks: the server refuses the ended session anyway.
(() => {
  "use strict";
  const session = document.body.dataset.session;
  if (!session) return;

  let left = false;
  // `message` is the server's sentence for `reason`; the sign-in page it leads to says it too.
  function signedOut(reason, message) {
    if (left) return;
    left = true;
    const key = /^[a-z_]+$/.test(reason || "") ? reason : "revoked";
    const main = document.querySelector("main");
    const notice = document.createElement("section");
    notice.className = "card narrow signed-out";
    notice.setAttribute("role", "alert");
    const heading = document.createElement("h1");
    heading.textContent = "Signed out";
    const text = document.createElement("p");
    text.textContent = message || "You were signed out.";
    const link = document.createElement("a");
    link.href = "/login?reason=" + key;
    link.className = "button primary";
    link.textContent = "Sign in again";
    notice.append(heading, text, link);
    main.replaceChildren(notice);
    document.title = "Signed out · ual-todo";
    document.querySelector(".account")?.remove();
    // Replace, not push: Back must not return to the private page.
    setTimeout(() => location.replace(link.href), 800);
  }

  // Asked to sign in again: say so, then go through it and come back to this very page.
  function signInAgain(message) {
    if (left) return;
    left = true;
    const here = location.pathname + location.search;
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.setAttribute("role", "alert");
    notice.textContent = message || "Your organisation asks you to sign in again to go on.";
    document.querySelector("main")?.prepend(notice);
    setTimeout(() => location.assign("/reauth?return=" + encodeURIComponent(here)), 800);
  }

  // A sign-in elsewhere, or a session ended elsewhere. From a new device, every other tab shows
  // a notice that does not get in the way, linking to the sessions page; the page refreshes.
  function sessionsChanged(data) {
    if (left || !data) return;
    if (data.kind === "signin" && data.new_device && data.session_id !== session && data.message) {
      const notice = document.createElement("p");
      notice.className = "notice new-sign-in";
      notice.setAttribute("role", "status");
      notice.append(data.message + ". ");
      const link = document.createElement("a");
      link.href = data.page || "/account/sessions";
      link.textContent = "Review your sessions";
      notice.append(link);
      document.querySelector("main")?.prepend(notice);
    }
    document.dispatchEvent(new CustomEvent("ual-todo:sessions", { detail: data }));
  }

  const url = "/static/js/live-worker.js";
  const worker = window.SharedWorker
    ? new SharedWorker(url, { name: "ual-todo-live-" + session })
    : new Worker(url);
  const port = worker.port || worker;
  port.onmessage = (event) => {
    if (event.data && event.data.type === "logout") signedOut(event.data.reason, event.data.message);
    if (event.data && event.data.type === "reauth") signInAgain(event.data.message);
    if (event.data && event.data.type === "sessions") sessionsChanged(event.data.data);
  };
  if (worker.port) worker.port.start();

  // This tab signing out is not news to itself: it is on its way to the sign-in page.
  document.addEventListener("submit", (event) => {
    if (event.target.matches('form[action="/logout"]')) left = true;
  });

  // A page restored from the back/forward cache must ask the server again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) location.reload();
  });
})();
