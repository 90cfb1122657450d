// A bare room page for the media tests and the benchmark's baseline: joins the room named
// in the query string with HotlineVideoRoom and shows every remote feed.
(function () {
  "use strict";
  const q = new URLSearchParams(location.search);
  const state = document.getElementById("state");
  const room = new window.HotlineVideoRoom({
    server: q.get("server"), token: q.get("token"), room: Number(q.get("room")),
    pin: q.get("pin"), display: q.get("display") || "guest",
    onLocal: function (s) { document.getElementById("local").srcObject = s; },
    onJoined: function (id) { state.textContent = "joined " + id; },
    onFeed: function (id, display, stream) {
      let v = document.querySelector('video[data-feed="' + id + '"]');
      if (!v) {
        v = document.createElement("video");
        v.autoplay = true; v.playsInline = true; v.muted = true;
        v.dataset.feed = String(id); v.dataset.label = display || "";
        document.getElementById("feeds").appendChild(v);
      }
      if (v.srcObject !== stream) v.srcObject = stream;
      v.play().catch(function () {});
    },
    onFeedGone: function (id) {
      const v = document.querySelector('video[data-feed="' + id + '"]');
      if (v) v.remove();
    },
    onEvent: function (name, data) { state.dataset.last = name; state.dataset.detail = JSON.stringify(data); },
  });
  window.__room = room;
  room.start().catch(function (e) { state.textContent = "error " + e.message; });
})();
