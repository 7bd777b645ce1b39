// The console's phone (templates/_phone.html, docs/console.md "The phone"): one call from this
// browser over SIP on Asterisk's websocket (JsSIP, vendor/jssip.min.js) with WebRTC media, on a
// short-lived account the console issues for each call. Keys go as RFC 4733 telephone events.
(function () {
  'use strict';
  const panel = document.getElementById('phone');
  const callButton = document.getElementById('phone-call');
  if (!panel || !callButton) return;
  const $ = (id) => document.getElementById(id);
  const stateText = $('phone-state');
  const timer = $('phone-timer');
  const hangup = $('phone-hangup');
  const mute = $('phone-mute');
  const meter = $('phone-level');
  const remote = $('phone-audio');
  const keys = Array.from(panel.querySelectorAll('[data-key]'));
  let ua = null;
  let session = null;
  let microphone = null;
  let audio = null;
  let ticking = 0;
  let answeredAt = 0;

  function show(state, text) {
    panel.dataset.state = state;
    stateText.textContent = text || state;
  }

  function controls(inCall) {
    callButton.disabled = inCall !== 'idle';
    hangup.disabled = inCall === 'idle';
    mute.disabled = inCall !== 'talking';
    keys.forEach((k) => { k.disabled = inCall !== 'talking'; });
  }

  // The microphone's level, 0..1 (RMS), for the meter; the highest one seen in data-peak.
  function levels(stream) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = new Context();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    let peak = 0;
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      meter.value = level;
      meter.textContent = level.toFixed(2);
      peak = Math.max(peak, level);
      meter.dataset.peak = peak.toFixed(3);
    };
    ticking = window.setInterval(() => {
      tick();
      if (answeredAt) {
        const s = Math.floor((Date.now() - answeredAt) / 1000);
        timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
      }
    }, 100);
  }

  function finish(state, text) {
    show(state, text);
    controls('idle');
    window.clearInterval(ticking);
    ticking = 0;
    answeredAt = 0;
    meter.value = 0;
    mute.setAttribute('aria-pressed', 'false');
    mute.textContent = 'Mute';
    if (microphone) microphone.getTracks().forEach((t) => t.stop());
    microphone = null;
    if (audio) audio.close();
    audio = null;
    remote.srcObject = null;
    session = null;
    if (ua) {
      const done = ua;
      ua = null;
      window.setTimeout(() => done.stop(), 500); // let the BYE's answer arrive first
    }
  }

  async function account() {
    const resp = await fetch(panel.dataset.accountUrl, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'X-CSRF-Token': document.body.dataset.csrf, Accept: 'application/json' },
    });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok || !body) {
      throw new Error((body && body.message) || `the console answered ${resp.status}`);
    }
    return body;
  }

  async function call() {
    const number = $('phone-number').value;
    controls('calling');
    hangup.disabled = true;
    show('connecting', 'asking for the microphone…');
    try {
      microphone = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (e) {
      finish('failed', `no microphone: ${e.message}`);
      return;
    }
    levels(microphone);
    show('connecting', 'connecting…');
    let acc;
    try {
      acc = await account();
    } catch (e) {
      finish('failed', `failed: ${e.message}`);
      return;
    }
    const socket = new JsSIP.WebSocketInterface(acc.ws_url);
    ua = new JsSIP.UA({
      sockets: [socket], uri: acc.uri, password: acc.password, register: false,
      session_timers: false, user_agent: 'ivr console phone',
    });
    let reached = false;
    ua.on('connected', () => { reached = true; });
    ua.on('disconnected', () => {
      if (!reached && ua) finish('failed', `failed: cannot reach Asterisk at ${acc.ws_url}`);
    });
    ua.start();
    hangup.disabled = false;
    session = ua.call(`sip:${number}@${acc.domain}`, {
      mediaStream: microphone,
      pcConfig: { iceServers: acc.ice_servers },
      eventHandlers: {
        peerconnection: (e) => {
          e.peerconnection.addEventListener('track', (t) => {
            if (t.streams[0]) remote.srcObject = t.streams[0];
          });
        },
        progress: () => show('ringing', 'ringing…'),
        confirmed: () => {
          answeredAt = Date.now();
          show('talking', 'in call');
          controls('talking');
        },
        ended: (e) => finish('ended', `ended: ${e.originator === 'local' ? 'you hung up' : e.cause}`),
        failed: (e) => finish('failed', `failed: ${e.cause}`),
      },
    });
  }

  function press(key) {
    if (!session || panel.dataset.state !== 'talking') return;
    session.sendDTMF(key, { transportType: 'RFC2833', duration: 160, interToneGap: 100 });
    // Counted, never shown: the keys are often a PIN.
    panel.dataset.keysSent = String(Number(panel.dataset.keysSent || 0) + 1);
  }

  callButton.addEventListener('click', () => { call(); });
  hangup.addEventListener('click', () => {
    if (session) session.terminate();
    else finish('ended', 'ended: you hung up');
  });
  mute.addEventListener('click', () => {
    if (!session) return;
    const muted = mute.getAttribute('aria-pressed') !== 'true';
    if (muted) session.mute({ audio: true }); else session.unmute({ audio: true });
    mute.setAttribute('aria-pressed', String(muted));
    mute.textContent = muted ? 'Unmute' : 'Mute';
    show('talking', muted ? 'in call (muted)' : 'in call');
  });
  keys.forEach((k) => k.addEventListener('click', () => press(k.dataset.key)));
  panel.addEventListener('keydown', (e) => {
    if (/^[0-9*#]$/.test(e.key) && e.target.tagName !== 'SELECT') {
      e.preventDefault();
      press(e.key);
    }
  });
  window.addEventListener('pagehide', () => { if (session) session.terminate(); });
}());
