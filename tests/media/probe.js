// Injected into every page of a media test (Playwright add_init_script) before the page's
// own scripts: it keeps every RTCPeerConnection the page makes, and measures what the page
// received BY CONTENT: the dominant audio frequency of a stream (Web Audio FFT) and the
// mean colour of a video element's picture, beside getStats' decoded frames and energy.
(function () {
  "use strict";
  const pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (config, constraints) {
    const pc = new Native(config, constraints);
    pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);

  async function inbound() {
    const out = [];
    for (const pc of pcs) {
      if (pc.connectionState === "closed") continue;
      const report = await pc.getStats();
      report.forEach(function (s) {
        if (s.type !== "inbound-rtp") return;
        out.push({
          kind: s.kind, mid: s.mid, trackIdentifier: s.trackIdentifier,
          framesDecoded: s.framesDecoded || 0, framesPerSecond: s.framesPerSecond || 0,
          frameWidth: s.frameWidth || 0, totalAudioEnergy: s.totalAudioEnergy || 0,
          audioLevel: s.audioLevel || 0, packetsReceived: s.packetsReceived || 0,
          bytesReceived: s.bytesReceived || 0,
        });
      });
    }
    return out;
  }

  let ctx = null;
  async function tone(stream, ms) {
    ctx = ctx || new AudioContext();
    if (ctx.state !== "running") await ctx.resume();
    const only = new MediaStream(stream.getAudioTracks());
    const source = ctx.createMediaStreamSource(only);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const sum = new Float32Array(analyser.frequencyBinCount);
    const steps = Math.max(1, Math.round((ms || 1000) / 100));
    for (let i = 0; i < steps; i++) {
      await new Promise(function (r) { setTimeout(r, 100); });
      analyser.getFloatFrequencyData(bins);
      for (let j = 0; j < bins.length; j++) sum[j] += Math.pow(10, bins[j] / 10);
    }
    source.disconnect();
    let best = 1, total = 0;
    for (let j = 1; j < sum.length; j++) { total += sum[j]; if (sum[j] > sum[best]) best = j; }
    return {
      hz: best * ctx.sampleRate / analyser.fftSize,
      share: total > 0 ? sum[best] / total : 0,   // how much of the power is that one tone
      power: total / steps,
    };
  }

  function colour(video) {
    if (!video.videoWidth) return null;
    const c = document.createElement("canvas");
    c.width = 32; c.height = 24;
    const g = c.getContext("2d");
    g.drawImage(video, 0, 0, 32, 24);
    const d = g.getImageData(0, 0, 32, 24).data;
    let r = 0, gr = 0, b = 0;
    for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
    const n = d.length / 4;
    return [Math.round(r / n), Math.round(gr / n), Math.round(b / n)];
  }

  // every <video> that shows a remote stream: its label, colour, tone
  async function remotes(ms) {
    const out = [];
    for (const v of document.querySelectorAll("video[data-feed]")) {
      const stream = v.srcObject;
      out.push({
        feed: v.dataset.feed, label: v.dataset.label || "",
        colour: colour(v),
        tone: stream && stream.getAudioTracks().length ? await tone(stream, ms) : null,
        width: v.videoWidth,
      });
    }
    return out;
  }

  window.__mediaProbe = { pcs: pcs, inbound: inbound, tone: tone, colour: colour, remotes: remotes };
})();
