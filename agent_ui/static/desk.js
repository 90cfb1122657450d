// The agent desk's few client-side touches; everything shown is rendered by the server.
//  - a canned reply fills the reply box; Ctrl+Enter sends;
//  - the conversation on screen is marked in "My conversations", and conversations with
//    a new message from the citizen are marked unread until opened;
//  - the media server's state (media.changed, and /api/health after a reconnect): while
//    no node answers the desk says so, and says when it is back.
"use strict";

(() => {
  const unread = new Set();

  function current() {
    const body = document.getElementById("conversation-body");
    return body ? body.dataset.id : null;
  }

  function mark() {
    const open = current();
    if (open) unread.delete(open);
    document.querySelectorAll("#mine .conversation").forEach((button) => {
      button.classList.toggle("on", button.dataset.id === open);
      button.classList.toggle("unread", unread.has(button.dataset.id));
    });
  }

  document.addEventListener("change", (event) => {
    if (event.target.id !== "canned") return;
    const option = event.target.selectedOptions[0];
    const reply = document.getElementById("reply");
    if (option && option.dataset.text && reply) {
      reply.value = option.dataset.text;
      reply.dispatchEvent(new Event("input", { bubbles: true }));
      reply.focus();
    }
    event.target.value = "";
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.id === "reply" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  let mediaBackTimer = null;
  function showMedia(up) {
    const note = document.getElementById("media-status");
    if (!note || note.dataset.state === (up ? "up" : "down")) return;
    note.dataset.state = up ? "up" : "down";
    note.textContent = up ? note.dataset.up : note.dataset.down;
    note.classList.toggle("error", !up);
    note.classList.toggle("ok", up);
    note.hidden = false;
    clearTimeout(mediaBackTimer);
    if (up) mediaBackTimer = setTimeout(() => { note.hidden = true; }, 10000);
  }

  async function checkMedia() {
    if (!document.getElementById("media-status")) return;
    try {
      const response = await fetch("/api/health", { credentials: "same-origin" });
      const health = await response.json();
      if (health.media && health.media.up !== null) showMedia(health.media.up);
    } catch (_) { /* the live indicator already says the server is unreachable */ }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.body.addEventListener("live-refetch", checkMedia);
    document.body.addEventListener("live-event", (event) => {
      if (event.detail.event === "media.changed") {
        showMedia(event.detail.data.healthy);
        return;
      }
      if (event.detail.event !== "message.created") return;
      const d = event.detail.data;
      if (d.direction === "in" && String(d.conversation_id) !== current()) {
        unread.add(String(d.conversation_id));
        mark();
      }
    });
    mark();
  });
  document.addEventListener("htmx:afterSettle", mark);
})();
