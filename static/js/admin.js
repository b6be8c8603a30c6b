// The admin dashboard, live: rows change the moment a user is signed out (by Universal Logout,
// an administrator, back-channel logout or themselves), suspended, reactivated or deleted (by an
// administrator, SCIM or the command line), new sign-ins appear, and the feed grows.
// Everything from the server is inserted as text, never as HTML.
(() => {
  "use strict";
  const status = document.getElementById("live-status");
  const feed = document.getElementById("feed");
  const sessionTotal = document.getElementById("session-count");

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function row(userId) {
    return document.querySelector(`tr[data-user-id="${CSS.escape(userId)}"]`);
  }

  // The org-wide count of live sessions (users on other pages included), moved by `delta`.
  function addToTotal(delta) {
    const total = Math.max(0, Number(sessionTotal.textContent) + delta);
    sessionTotal.textContent = String(total);
    sessionTotal.nextSibling.textContent = ` active session${total === 1 ? "" : "s"}`;
  }

  function recount(tr) {
    const count = tr.querySelectorAll(".sessions li").length;
    const badge = tr.querySelector(".session-count");
    badge.textContent = String(count);
    badge.setAttribute("aria-label", `${count} active session${count === 1 ? "" : "s"}`);
    return count;
  }

  function highlight(tr, className) {
    tr.classList.remove("just-revoked", "just-signed-in");
    void tr.offsetWidth; // restart the animation
    tr.classList.add(className);
  }

  // A user's state, in the server's words: the badge, the last change, and which of
  // Suspend / Reactivate is offered (a read-only row has neither).
  function showState(tr, state, badgeText, changed) {
    tr.dataset.state = state;
    const badge = tr.querySelector(".state-badge");
    badge.dataset.state = state;
    badge.textContent = badgeText;
    const line = tr.querySelector(".state-changed");
    line.textContent = changed;
    line.hidden = false;
    const suspend = tr.querySelector("form.suspend");
    const reactivate = tr.querySelector("form.reactivate");
    if (suspend) suspend.hidden = state !== "active";
    if (reactivate) reactivate.hidden = state !== "suspended";
  }

  function revoked(data) {
    const tr = row(data.user_id);
    const label = data.label || data.source; // the server's words for the source
    const ends = data.ends_sessions !== false; // older servers sent sign-outs only
    addToTotal(-data.sessions_ended);
    if (tr && data.state === "deleted") {
      tr.remove();
      const users = document.getElementById("user-count");
      users.textContent = String(Math.max(0, Number(users.textContent) - 1));
    } else if (tr) {
      if (ends) {
        const ended = data.session_ids || [];
        // No ids: every session of the user ended but the spared one (the admin's own, or the
        // session the user ended all the others from).
        const spared = data.spared_session_id;
        tr.querySelectorAll(".sessions li").forEach((li) => {
          const id = li.dataset.sessionId;
          if (ended.length === 0 ? id !== spared : ended.includes(id)) li.remove();
        });
        const left = recount(tr);
        tr.querySelector(".status").textContent =
          left === 0 ? `Signed out by ${label} just now` : `Session ended by ${label} just now`;
      }
      if (data.state) showState(tr, data.state, data.state_label, data.state_changed);
      // A user SCIM changed is managed by the IdP from now on: the server refuses these edits.
      if (data.source === "scim") {
        tr.querySelectorAll("form.suspend, form.reactivate, form.role").forEach((f) => f.remove());
      }
      highlight(tr, "just-revoked");
    }
    const item = document.createElement("li");
    item.className = "fresh";
    const time = document.createElement("time");
    time.textContent = data.at; // formatted by the server, like every time on the page
    const who = document.createElement("strong");
    who.textContent = tr ? tr.dataset.email : data.user_id;
    const detail = document.createElement("span");
    detail.className = "small muted";
    const n = data.sessions_ended;
    detail.textContent = ends ? `(${data.actor}; ${n} session${n === 1 ? "" : "s"} ended)` : `(${data.actor})`;
    item.append(time, " ", who, ` ${data.phrase || "signed out"} by ${label} `, detail);
    feed.prepend(item);
    document.getElementById("feed-empty").hidden = true;
  }

  function signedIn(data) {
    const tr = row(data.user_id);
    addToTotal(1);
    if (!tr) {
      // On another page, or not matching the search; with everyone shown, a new user.
      if (document.querySelector("table.users[data-complete]")) location.reload();
      return;
    }
    const li = document.createElement("li");
    li.dataset.sessionId = data.session_id;
    const what = document.createElement("span");
    what.textContent = `${data.device} · ${data.ip || ""}`;
    const when = document.createElement("span");
    when.className = "small muted";
    when.textContent = `signed in ${data.at}`;
    const form = document.createElement("form");
    form.method = "post";
    form.action = `/admin/sessions/${encodeURIComponent(data.session_id)}/logout`;
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "button-link danger";
    button.textContent = "End session";
    button.setAttribute("aria-label", `End the ${data.device} session of ${tr.dataset.email}`);
    form.append(button);
    li.append(what, " ", when, " ", form);
    tr.querySelector(".sessions").prepend(li);
    recount(tr);
    tr.querySelector(".status").textContent = "Signed in just now";
    highlight(tr, "just-signed-in");
  }

  let retryIn = 1000;
  function connect() {
    const source = new EventSource("/admin/events");
    source.addEventListener("open", () => {
      retryIn = 1000;
      setStatus("live", "Live updates: on");
    });
    source.addEventListener("revoked", (e) => revoked(JSON.parse(e.data)));
    source.addEventListener("signin", (e) => signedIn(JSON.parse(e.data)));
    source.addEventListener("stale", () => location.reload());
    // This user is no longer an administrator: the stream has ended, and so has this page.
    source.addEventListener("demoted", () => {
      source.close();
      location.replace("/todos");
    });
    source.addEventListener("logout", (e) => {
      source.close();
      let reason = "revoked";
      try { reason = JSON.parse(e.data).reason || reason; } catch (_) { /* keep the default */ }
      location.replace("/login?reason=" + encodeURIComponent(reason));
    });
    source.addEventListener("error", async () => {
      setStatus("offline", "Live updates: reconnecting…");
      if (source.readyState !== EventSource.CLOSED) return;
      try {
        const response = await fetch("/events/status", { credentials: "same-origin", cache: "no-store" });
        if (response.status === 401) return location.replace("/login?reason=expired");
      } catch (_) { /* offline */ }
      setTimeout(connect, retryIn);
      retryIn = Math.min(retryIn * 2, 30000);
    });
  }
  connect();

  // "Sign out everyone": while a run is going, its progress is polled (it is kept in the
  // database, so any instance answers); once done, the page reloads to show who is left.
  const run = document.getElementById("org-logout-progress");
  async function pollRun() {
    try {
      const response = await fetch("/admin/org-logout", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return setTimeout(pollRun, 2000);
      const data = await response.json();
      if (typeof data.users_done === "number") {
        const bar = document.getElementById("org-logout-bar");
        bar.max = data.users_total;
        bar.value = data.users_done;
        document.getElementById("org-logout-summary").textContent = data.summary;
        document.getElementById("org-logout-status").textContent = data.status;
      }
      if (data.running) setTimeout(pollRun, 500);
      else location.reload();
    } catch (_) {
      setTimeout(pollRun, 2000); // offline for a moment
    }
  }
  if (run && run.hasAttribute("data-running")) setTimeout(pollRun, 300);

  window.addEventListener("pageshow", (event) => {
    if (event.persisted) location.reload();
  });
})();
