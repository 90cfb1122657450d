// A VideoRoom client on janus.js: publish the camera and microphone, receive every other
// publisher in one multistream subscription, and report feeds as MediaStreams.
// Used by the mediation room page and by the media tests; reusable by any page that
// needs a room (docs/media.md). No globals but HotlineVideoRoom; no inline code.
/* global Janus, adapter */
(function () {
  "use strict";

  const PLUGIN = "janus.plugin.videoroom";

  function initJanus() {
    return new Promise(function (resolve) {
      Janus.init({
        debug: false,
        dependencies: Janus.useDefaultDependencies({ adapter: adapter }),
        callback: resolve,
      });
    });
  }

  // options: server (ws URL), token, room, pin, display, feed (id, optional), audio, video,
  // onFeed(feedId, display, stream), onFeedGone(feedId), onLocal(stream),
  // onJoined(myId), onEvent(name, data) for kicked / destroyed / moderated / lost / error
  function VideoRoom(options) {
    this.o = options;
    this.janus = null;
    this.pub = null;
    this.sub = null;
    this.myId = null;
    this.privateId = null;
    this.feeds = {};        // feedId -> {display, stream}
    this.midFeed = {};      // subscriber mid -> feedId
    this.subscribed = {};   // feedId -> true
    this.subscribing = false;
    this.pending = [];
    this.localStream = new MediaStream();
    this.closed = false;
  }

  VideoRoom.prototype.event = function (name, data) {
    if (this.closed) return;  // a room the page stopped tells it nothing more
    if (this.o.onEvent) this.o.onEvent(name, data || {});
  };

  VideoRoom.prototype.start = async function () {
    await initJanus();
    const self = this;
    await new Promise(function (resolve, reject) {
      self.janus = new Janus({
        server: self.o.server,
        token: self.o.token,
        withCredentials: false,
        success: resolve,
        error: function (err) {
          if (self.janus && self.myId !== null) self.event("lost", { error: String(err) });
          reject(new Error(String(err)));
        },
        destroyed: function () { self.event("closed"); },
      });
    });
    await this.attachPublisher();
  };

  VideoRoom.prototype.attachPublisher = function () {
    const self = this;
    return new Promise(function (resolve, reject) {
      self.janus.attach({
        plugin: PLUGIN,
        success: function (handle) {
          self.pub = handle;
          const join = {
            request: "join", ptype: "publisher", room: self.o.room, pin: self.o.pin,
            display: self.o.display, token: self.o.token,
          };
          if (self.o.feed) join.id = self.o.feed;  // the id the hotline gave this participant
          handle.send({ message: join });
          resolve();
        },
        error: reject,
        onmessage: function (msg, jsep) { self.onPublisherMessage(msg, jsep); },
        onlocaltrack: function (track, on) {
          if (on) self.localStream.addTrack(track); else self.localStream.removeTrack(track);
          if (self.o.onLocal) self.o.onLocal(self.localStream);
        },
        onremotetrack: function () {},
        webrtcState: function (on) { self.event(on ? "published" : "unpublished"); },
        iceState: function (state) {
          if (state === "failed" || state === "disconnected") self.event("lost", { ice: state });
        },
      });
    });
  };

  VideoRoom.prototype.onPublisherMessage = function (msg, jsep) {
    const kind = msg.videoroom;
    if (msg.error) { this.event("error", { code: msg.error_code, error: msg.error }); return; }
    if (kind === "joined") {
      this.myId = msg.id;
      this.privateId = msg.private_id;
      this.publish();
      if (this.o.onJoined) this.o.onJoined(msg.id);
      this.addPublishers(msg.publishers || []);
    } else if (kind === "event") {
      if (msg.publishers) this.addPublishers(msg.publishers);
      const gone = msg.leaving || msg.unpublished;
      if (gone === "ok") {
        this.event("left");
      } else if (gone) {
        this.dropFeed(gone);
      }
      if (msg.kicked !== undefined) {
        if (msg.kicked === this.myId) this.event("kicked"); else this.dropFeed(msg.kicked);
      }
      if (msg.moderation) {
        this.event("moderated", { id: msg.id, mid: msg.mid, muted: msg.moderation === "muted" });
      }
    } else if (kind === "destroyed") {
      this.event("destroyed");
    } else if (kind === "talking" || kind === "stopped-talking") {
      this.event("talking", { id: msg.id, talking: kind === "talking" });
    }
    if (jsep) this.pub.handleRemoteJsep({ jsep: jsep });
  };

  VideoRoom.prototype.publish = function () {
    const self = this;
    const tracks = [];
    if (this.o.audio !== false) tracks.push({ type: "audio", capture: true, recv: false });
    if (this.o.video !== false) {
      tracks.push({ type: "video", capture: { width: 640, height: 480 }, recv: false });
    }
    this.pub.createOffer({
      tracks: tracks,
      success: function (jsep) {
        self.pub.send({ message: { request: "configure", audio: true, video: true }, jsep: jsep });
      },
      error: function (err) { self.event("device", { error: String(err && err.message || err) }); },
    });
  };

  VideoRoom.prototype.addPublishers = function (list) {
    const wanted = [];
    for (const p of list) {
      if (p.id === this.myId || this.subscribed[p.id] || p.dummy) continue;
      this.feeds[p.id] = this.feeds[p.id] || { display: p.display, stream: new MediaStream() };
      this.subscribed[p.id] = true;
      wanted.push({ feed: p.id });
    }
    if (wanted.length) this.subscribe(wanted);
  };

  VideoRoom.prototype.subscribe = function (streams) {
    const self = this;
    if (this.subscribing) { this.pending.push.apply(this.pending, streams); return; }
    if (this.sub) {
      this.sub.send({ message: { request: "subscribe", streams: streams } });
      return;
    }
    this.subscribing = true;
    this.janus.attach({
      plugin: PLUGIN,
      success: function (handle) {
        self.sub = handle;
        handle.send({ message: {
          request: "join", ptype: "subscriber", room: self.o.room, pin: self.o.pin,
          private_id: self.privateId, streams: streams, token: self.o.token,
        } });
      },
      error: function (err) { self.event("error", { error: String(err) }); },
      onmessage: function (msg, jsep) {
        if (msg.error) { self.event("error", { code: msg.error_code, error: msg.error }); return; }
        if (msg.streams) {
          for (const s of msg.streams) {
            if (s.feed_id !== undefined) self.midFeed[s.mid] = s.feed_id;
          }
        }
        if (msg.videoroom === "attached" || msg.videoroom === "updated") {
          self.subscribing = false;
          if (self.pending.length) {
            const more = self.pending.splice(0);
            self.sub.send({ message: { request: "subscribe", streams: more } });
          }
        }
        if (jsep) {
          self.sub.createAnswer({
            jsep: jsep,
            tracks: [{ type: "data" }],
            success: function (answer) {
              self.sub.send({ message: { request: "start", room: self.o.room }, jsep: answer });
              self.reconcile();
            },
            error: function (err) { self.event("error", { error: String(err) }); },
          });
        }
      },
      onremotetrack: function (track, mid, on) {
        if (on) self.place(mid, track);
      },
      oncleanup: function () { self.sub = null; },
    });
  };

  // A received track goes into the stream of the feed its m-line now carries.
  VideoRoom.prototype.place = function (mid, track) {
    const feedId = this.midFeed[mid];
    const feed = feedId !== undefined && this.feeds[feedId];
    if (!feed) return;
    for (const t of feed.stream.getTracks()) {
      if (t.kind === track.kind && t.id !== track.id) feed.stream.removeTrack(t);
    }
    if (!feed.stream.getTrackById(track.id)) {
      feed.stream.addTrack(track);
      if (this.o.onFeed) this.o.onFeed(feedId, feed.display, feed.stream);
    }
  };

  // Janus reuses the m-line of a feed that left for the next one; the browser then fires no
  // new track event (and janus.js hides a quick unmute), so after every renegotiation each
  // live m-line's track is put where it now belongs.
  VideoRoom.prototype.reconcile = function () {
    const pc = this.sub && this.sub.webrtcStuff && this.sub.webrtcStuff.pc;
    if (!pc) return;
    for (const t of pc.getTransceivers()) {
      if (t.mid === null || !t.receiver || !t.receiver.track) continue;
      if (t.currentDirection === "inactive" || t.currentDirection === "stopped") continue;
      this.place(t.mid, t.receiver.track);
    }
  };

  VideoRoom.prototype.dropFeed = function (feedId) {
    if (!this.feeds[feedId]) return;
    delete this.feeds[feedId];
    delete this.subscribed[feedId];
    if (this.sub) this.sub.send({ message: { request: "unsubscribe", streams: [{ feed: feedId }] } });
    if (this.o.onFeedGone) this.o.onFeedGone(feedId);
  };

  VideoRoom.prototype.setAudio = function (on) {
    if (!this.pub) return;
    if (on) this.pub.unmuteAudio(); else this.pub.muteAudio();
  };

  VideoRoom.prototype.setVideo = function (on) {
    if (!this.pub) return;
    if (on) this.pub.unmuteVideo(); else this.pub.muteVideo();
  };

  VideoRoom.prototype.stop = function () {
    this.closed = true;
    if (this.janus) this.janus.destroy({ cleanupHandles: true });
    for (const t of this.localStream.getTracks()) t.stop();
  };

  window.HotlineVideoRoom = VideoRoom;
})();
