// A softphone leg on janus.js's SIP plugin: the browser's microphone and speaker, bridged
// by Janus to plain SIP/RTP (G.711), calling one SIP URI (the hotline's signed agent leg,
// docs/calls.md). Used by the agent desk and by the media tests. No globals but
// HotlineSipPhone; no inline code.
/* global Janus, adapter */
(function () {
  "use strict";

  const PLUGIN = "janus.plugin.sip";

  function initJanus() {
    return new Promise(function (resolve) {
      Janus.init({
        debug: false,
        dependencies: Janus.useDefaultDependencies({ adapter: adapter }),
        callback: resolve,
      });
    });
  }

  // options: server (ws URL), token, uri (whom to call), identity (our SIP URI),
  // onRemote(stream), onEvent(name, data): calling / connected / hangup / lost / error /
  // media (WebRTC up) / closed
  function SipPhone(options) {
    this.o = options;
    this.janus = null;
    this.sip = null;
    this.remote = null;
    this.muted = false;
    this.done = false;
  }

  SipPhone.prototype.event = function (name, data) {
    if (this.o.onEvent) this.o.onEvent(name, data || {});
  };

  SipPhone.prototype.start = async function () {
    await initJanus();
    const self = this;
    await new Promise(function (resolve, reject) {
      self.janus = new Janus({
        server: self.o.server,
        token: self.o.token,
        withCredentials: false,
        success: resolve,
        error: function (err) {
          if (!self.done) self.event("lost", { error: String(err) });
          reject(new Error(String(err)));
        },
        destroyed: function () { self.event("closed"); },
      });
    });
    await new Promise(function (resolve, reject) {
      self.janus.attach({
        plugin: PLUGIN,
        success: function (handle) {
          self.sip = handle;
          // a guest sends no REGISTER: it only calls out, from this identity
          handle.send({ message: { request: "register", type: "guest", username: self.o.identity } });
          resolve();
        },
        error: reject,
        onmessage: function (msg, jsep) { self.onMessage(msg, jsep); },
        onremotetrack: function (track, mid, on) {
          if (!on || track.kind !== "audio") return;
          self.remote = new MediaStream([track]);
          if (self.o.onRemote) self.o.onRemote(self.remote);
        },
        webrtcState: function (up) { self.event(up ? "media" : "media_lost"); },
        oncleanup: function () { if (!self.done) self.event("hangup", {}); },
      });
    });
  };

  SipPhone.prototype.onMessage = function (msg, jsep) {
    if (msg.error) { this.event("error", { error: msg.error, code: msg.error_code }); return; }
    const result = msg.result || {};
    const name = result.event;
    if (name === "registered") {
      this.call();
    } else if (name === "calling" || name === "ringing" || name === "proceeding") {
      this.event("calling");
    } else if (name === "progress" || name === "accepted") {
      if (jsep) this.sip.handleRemoteJsep({ jsep: jsep });
      if (name === "accepted") this.event("connected");
    } else if (name === "hangup") {
      this.event("hangup", { code: result.code, reason: result.reason });
      this.sip.hangup();
    }
  };

  SipPhone.prototype.call = function () {
    const self = this;
    this.sip.createOffer({
      tracks: [{ type: "audio", capture: true, recv: true }],
      success: function (jsep) {
        self.sip.send({ message: { request: "call", uri: self.o.uri }, jsep: jsep });
      },
      error: function (err) { self.event("error", { error: String(err) }); },
    });
  };

  SipPhone.prototype.setMuted = function (muted) {
    if (!this.sip) return;
    if (muted) this.sip.muteAudio(); else this.sip.unmuteAudio();
    this.muted = muted;
  };

  // keys the agent presses go to the caller's side as RFC 2833 events (the SIP plugin
  // passes RTP through; the hotline's SIP side reads them)
  SipPhone.prototype.dtmf = function (tones) {
    if (this.sip) this.sip.dtmf({ dtmf: { tones: tones, duration: 120, gap: 60 } });
  };

  SipPhone.prototype.stop = function () {
    this.done = true;
    if (this.sip) {
      try { this.sip.send({ message: { request: "hangup" } }); } catch (e) { /* gone */ }
      try { this.sip.hangup(); } catch (e) { /* gone */ }
    }
    if (this.janus) {
      try { this.janus.destroy({}); } catch (e) { /* gone */ }
    }
    this.sip = null;
    this.janus = null;
  };

  window.HotlineSipPhone = SipPhone;
})();
