// The console's few behaviours: confirmations, drag-and-drop reordering, waveforms, and the
// live session view. No framework, no build step.
"use strict";

const csrf = () => document.body.dataset.csrf || "";

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
}

// --- drag and drop: a row is dragged by its handle with pointer events (mouse, pen, touch);
// on release the new position is saved as the recording's sequence (SetRecording with
// keep_consecutive), and the table takes the order the server answers with.
function sortable(table) {
  const body = table.tBodies[0];
  let dragged = null;
  let startIndex = -1;

  const rows = () => Array.from(body.rows);

  function onMove(e) {
    if (!dragged) return;
    e.preventDefault();
    for (const row of rows()) {
      if (row === dragged) continue;
      const box = row.getBoundingClientRect();
      if (e.clientY > box.top && e.clientY < box.bottom) {
        const after = e.clientY > box.top + box.height / 2;
        body.insertBefore(dragged, after ? row.nextSibling : row);
        break;
      }
    }
  }

  async function onUp() {
    if (!dragged) return;
    const row = dragged;
    dragged = null;
    row.classList.remove("dragging");
    document.removeEventListener("pointermove", onMove);
    document.removeEventListener("pointerup", onUp);
    const index = rows().indexOf(row);
    if (index === startIndex) return;
    const data = new URLSearchParams({ sequence: String(index + 1), csrf_token: csrf() });
    const resp = await fetch(`${table.dataset.base}/recordings/${row.dataset.key}/sequence`, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf() },
    });
    const answer = await resp.json();
    if (!resp.ok) {
      table.dataset.error = answer.message || "reorder failed";
      window.location.reload();
      return;
    }
    const byKey = new Map(rows().map((r) => [r.dataset.key, r]));
    answer.order.forEach((key, i) => {
      const r = byKey.get(key);
      if (!r) return;
      body.appendChild(r);
      r.querySelector(".seq").textContent = String(i + 1);
    });
    table.dataset.saved = answer.order.join(",");
  }

  for (const handle of table.querySelectorAll(".handle")) {
    handle.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      dragged = handle.closest("tr");
      startIndex = rows().indexOf(dragged);
      dragged.classList.add("dragging");
      document.addEventListener("pointermove", onMove);
      document.addEventListener("pointerup", onUp);
    });
  }
}

// --- waveforms: the WAV is fetched and decoded, and each column of the canvas shows the
// loudest sample in its slice; clicking the canvas seeks the player next to it.
async function waveform(canvas) {
  const ctx = canvas.getContext("2d");
  try {
    const resp = await fetch(canvas.dataset.src, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const decoder = new OfflineAudioContext(1, 1, 8000);
    const audio = await decoder.decodeAudioData(await resp.arrayBuffer());
    const samples = audio.getChannelData(0);
    const w = canvas.width, h = canvas.height, step = Math.max(1, Math.floor(samples.length / w));
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#2563eb";
    for (let x = 0; x < w; x++) {
      let peak = 0;
      for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i++) {
        peak = Math.max(peak, Math.abs(samples[i]));
      }
      const bar = Math.max(1, peak * h);
      ctx.fillRect(x, (h - bar) / 2, 1, bar);
    }
    canvas.dataset.drawn = String(audio.duration);
  } catch (err) {
    canvas.dataset.drawn = "error";
    canvas.title = `no waveform: ${err.message}`;
  }
  const player = canvas.parentElement.querySelector("audio");
  canvas.addEventListener("click", (e) => {
    if (!player || !player.duration) return;
    const box = canvas.getBoundingClientRect();
    player.currentTime = ((e.clientX - box.left) / box.width) * player.duration;
    player.play();
  });
}

// --- the live session view: server-sent events carry the session's state whenever it
// changes; the page adds each state it sees to the history the server rendered.
function liveView(section) {
  const stateEl = document.getElementById("session-state");
  const history = document.getElementById("state-history");
  const status = document.getElementById("live-status");
  const tbody = document.querySelector("#session-recordings tbody");
  // The history the server read back from the session's rows; what this view sees follows.
  const known = history.querySelector("li:last-child");
  let lastState = known ? known.dataset.state : null;

  function note(text) {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = new Date().toISOString().slice(11, 19);
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = text;
    li.append(time, " ", what);
    history.appendChild(li);
  }

  function show(data) {
    const failure = document.getElementById("session-failure");
    if (failure && data.failure) {
      failure.hidden = false;
      failure.querySelector("span").textContent = data.failure;
    }
    if (data.state !== lastState) {
      stateEl.textContent = data.state;
      stateEl.className = `state ${data.state}`;
      note(data.state + (data.current_recording ? ` (${data.current_recording})` : ""));
      lastState = data.state;
      if (!["created", "called", "recording"].includes(data.state)) {
        const button = document.querySelector("#expire-session button");
        if (button) button.disabled = true;
      }
    }
    const seen = new Set();
    for (const r of data.recordings) {
      seen.add(r.key);
      let row = tbody.querySelector(`tr[data-key="${CSS.escape(r.key)}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.key = r.key;
        for (let i = 0; i < 5; i++) row.appendChild(document.createElement("td"));
        row.cells[1].className = "mono";
        row.cells[1].textContent = r.key;
        tbody.appendChild(row);
      }
      row.classList.toggle("current", r.key === data.current_recording);
      row.cells[0].textContent = String(r.sequence);
      row.cells[2].textContent = r.name;
      const state = row.cells[3];
      if (state.dataset.state !== r.state) {
        state.dataset.state = r.state;
        state.innerHTML = "";
        const badge = document.createElement("span");
        badge.className = `state ${r.state}`;
        badge.textContent = r.state + (r.length ? ` · ${r.length} s` : "");
        state.appendChild(badge);
      }
      const cell = row.cells[4];
      if (r.audio && cell.dataset.src !== r.audio) {
        cell.dataset.src = r.audio;
        cell.innerHTML = "";
        const player = document.createElement("audio");
        player.controls = true;
        player.preload = "auto";
        player.src = r.audio;
        cell.appendChild(player);
      }
    }
    for (const row of Array.from(tbody.rows)) {
      if (!seen.has(row.dataset.key)) row.remove();
    }
  }

  // Started by a form POST: the address becomes the session's own page, so reloading it
  // neither starts another session nor shows the PIN again.
  if (window.location.pathname !== section.dataset.url) {
    window.history.replaceState(null, "", section.dataset.url);
  }
  show(JSON.parse(section.dataset.initial));
  const events = new EventSource(section.dataset.events);
  events.addEventListener("open", () => { status.textContent = "live"; });
  events.addEventListener("state", (e) => show(JSON.parse(e.data)));
  events.addEventListener("done", () => {
    status.textContent = "session over";
    events.close();
  });
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED) status.textContent = "reconnecting…";
  });
}

// --- a dialer job's live progress: server-sent events carry the job's state, its counts by
// call state and outcome, and the calls on this page whenever anything changed; the page
// updates in place (no reload) and the stream ends when the job has finished.
function liveJob(section) {
  const status = document.getElementById("live-status");
  const stateEl = document.getElementById("job-state");
  const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "");

  function badge(cell, state) {
    if (cell.dataset.state === state) return;
    cell.dataset.state = state;
    cell.innerHTML = "";
    const span = document.createElement("span");
    span.className = `state ${state}`;
    span.textContent = state;
    cell.appendChild(span);
  }

  function outcomes(el, found) {
    el.innerHTML = "";
    Object.keys(found).sort().forEach((o, i) => {
      if (i) el.append(" ");
      const span = document.createElement("span");
      span.className = `outcome ${o}`;
      const n = document.createElement("b");
      n.textContent = String(found[o]);
      span.append(o.replaceAll("_", " ") + " ", n);
      el.appendChild(span);
    });
  }

  function show(d) {
    section.dataset.state = d.state;
    stateEl.textContent = d.state;
    stateEl.className = `state ${d.state}`;
    document.getElementById("job-progress").value = d.progress;
    document.getElementById("job-percent").textContent = `${Math.floor(d.progress * 100)}%`;
    document.getElementById("job-total").textContent = String(d.total);
    document.getElementById("job-settled").textContent =
      String(d.total - d.counts.queued - d.counts.dialing);
    for (const [s, n] of Object.entries(d.counts)) {
      const el = section.querySelector(`[data-count="${s}"]`);
      if (el) el.textContent = String(n);
    }
    outcomes(document.getElementById("job-outcomes"), d.outcomes);
    if (d.finished_at) document.getElementById("job-finished").textContent = when(d.finished_at);
    const buttons = { "pause-job": d.state === "active", "resume-job": d.state === "paused",
                      "cancel-job": d.state === "active" || d.state === "paused" };
    for (const [id, enabled] of Object.entries(buttons)) {
      const button = document.querySelector(`#${id} button`);
      if (button) button.disabled = !enabled;
    }
    for (const c of d.calls) {
      const row = document.querySelector(`#calls tr[data-message-id="${CSS.escape(c.message_id)}"]`);
      if (!row) continue;
      badge(row.querySelector(".c-state"), c.state);
      row.querySelector(".c-attempts").textContent = String(c.attempts);
      row.querySelector(".c-outcome").textContent = (c.outcome || "") + (c.amd ? ` (${c.amd})` : "");
      row.querySelector(".c-cause").textContent = c.cause_name ? `${c.cause_name} (${c.cause})` : "";
      row.querySelector(".c-keypress").textContent = c.keypress || "";
      row.querySelector(".c-ring_at").textContent = when(c.ring_at);
      row.querySelector(".c-answer_at").textContent = when(c.answer_at);
      row.querySelector(".c-hang_at").textContent =
        when(c.hang_at) + (c.duration ? ` ${c.duration} s` : "");
    }
    section.dataset.progress = String(d.progress);
    section.dataset.updates = String(Number(section.dataset.updates) + 1);
  }

  show(JSON.parse(section.dataset.initial));
  const events = new EventSource(section.dataset.events);
  events.addEventListener("open", () => { status.textContent = "live"; });
  events.addEventListener("state", (e) => show(JSON.parse(e.data)));
  events.addEventListener("done", () => {
    status.textContent = "finished";
    events.close();
  });
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED) status.textContent = "reconnecting…";
  });
}

// --- the call log: a list of calls and a page per call, both kept current by server-sent
// events (the server sends the whole page's data whenever it changed). Rows and entries are
// built with textContent only: numbers and reasons are the callers' and the flows' text.
const utc = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "");

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function follow(source, show, status, over) {
  const events = new EventSource(source);
  events.addEventListener("open", () => { status.textContent = "live"; });
  events.addEventListener("state", (e) => show(JSON.parse(e.data)));
  events.addEventListener("done", () => {
    status.textContent = over;
    events.close();
  });
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED) status.textContent = "reconnecting…";
  });
}

function liveCalls(table) {
  const tbody = table.tBodies[0];
  const none = document.getElementById("no-calls");

  function show(d) {
    tbody.replaceChildren(...d.calls.map((c) => {
      const row = el("tr", null, c.state);
      row.dataset.callId = String(c.id);
      const link = el("a", utc(c.started_at));
      link.href = c.url;
      const state = el("span", c.state_label, `state ${c.state}`);
      const cells = [link, el("span", c.caller_id || "withheld", "mono"),
                     el("span", c.dialed, "mono"), state,
                     el("span", c.seconds === null ? "" : `${c.seconds} s`),
                     el("span", c.of, "mono"), el("span", c.detail, "mono")];
      if (c.failure_code) {
        state.title = c.failure_reason || c.failure_code;
        cells[3] = el("span");
        cells[3].append(state, " ", el("small", c.failure_code, "mono failure-code"));
      }
      for (const content of cells) {
        const td = el("td");
        td.appendChild(content);
        row.appendChild(td);
      }
      row.cells[3].className = "c-state";
      return row;
    }));
    none.hidden = d.calls.length > 0;
    table.dataset.updates = String(Number(table.dataset.updates) + 1);
  }

  show(JSON.parse(table.dataset.initial));
  follow(table.dataset.events, show, document.getElementById("live-status"), "");
}

function liveCall(section) {
  const timeline = document.getElementById("call-timeline");
  const takes = document.querySelector("#call-takes tbody");

  function show(d) {
    const state = document.getElementById("call-state");
    state.textContent = d.state_label;
    state.className = `state ${d.state}`;
    section.dataset.state = d.state;
    document.getElementById("call-ended").textContent = utc(d.ended_at) || "—";
    document.getElementById("call-hangup").textContent = d.hangup || "—";
    const failure = document.getElementById("call-failure");
    failure.hidden = !d.failure;
    if (d.failure) {
      document.getElementById("failure-code").textContent = d.failure.code;
      document.getElementById("failure-help").href =
        `/console/errors/codes/${encodeURIComponent(d.failure.code)}`;
      document.getElementById("failure-reason").textContent = d.failure.reason;
    }
    timeline.replaceChildren(...d.timeline.map((e) => {
      const li = el("li", null, `entry ${e.kind}`);
      li.dataset.kind = e.kind;
      const time = el("time", utc(e.at).slice(11));
      time.dateTime = e.at;
      li.append(time, " ", el("span", e.text, "what"));
      if (e.state) li.append(" ", el("span", e.state, `state ${e.state}`));
      if (e.url) {
        const link = el("a", "requests and answers", "small inspect");
        link.href = e.url;
        li.append(" ", link);
      }
      if (e.detail) li.append(el("div", e.detail, "detail small"));
      return li;
    }));
    section.dataset.updates = String(Number(section.dataset.updates) + 1);
    if (!takes) return;  // a call-control or dialer call: no takes
    const players = new Map(Array.from(takes.querySelectorAll("audio"))
      .map((a) => [a.closest("tr").dataset.takeId, a]));
    takes.replaceChildren(...d.takes.map((t) => {
      const row = el("tr", null, `take ${t.status}`);
      row.dataset.takeId = String(t.id);
      const name = el("td", t.recording_key, "mono");
      if (t.recording_name) name.append(" ", el("span", t.recording_name, "muted"));
      const audio = el("td", null, "player");
      const kept = players.get(String(t.id));
      if (t.audio && kept && kept.dataset.src === t.audio) {
        audio.appendChild(kept);
      } else if (t.audio) {
        const player = el("audio");
        player.controls = true;
        player.preload = "metadata";
        player.src = t.audio;
        player.dataset.src = t.audio;
        player.setAttribute("aria-label", `take ${t.number} of ${t.recording_key}`);
        audio.appendChild(player);
      } else {
        audio.appendChild(el("span", t.no_audio, "muted small"));
      }
      row.append(name, el("td", `#${t.number}`),
                 el("td", t.status + (t.accepted ? " (the recording's audio)" : "")
                          + (t.kept_on_hangup ? " · kept on hang-up" : "")),
                 el("td", `${t.seconds} s`), audio);
      return row;
    }));
    document.getElementById("no-takes").hidden = d.takes.length > 0;
  }

  show(JSON.parse(section.dataset.initial));
  follow(section.dataset.events, show, document.getElementById("live-status"), "call over");
}

// A delivery's page while it is pending: loaded again whenever its state, attempts or what it
// waits behind change (the page is server-rendered; a reload is its update).
function followDelivery(section) {
  const seen = JSON.parse(section.dataset.version);
  follow(section.dataset.follow, (d) => {
    if (Object.keys(d).some((k) => String(d[k]) !== String(seen[k]))) window.location.reload();
  }, document.getElementById("live-status"), "settled");
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  for (const table of document.querySelectorAll("table[data-sortable]")) sortable(table);
  for (const canvas of document.querySelectorAll("canvas.waveform")) waveform(canvas);
  const live = document.getElementById("live");
  if (live) liveView(live);
  const job = document.getElementById("job-live");
  if (job) liveJob(job);
  const calls = document.querySelector("table#calls[data-events]");
  if (calls) liveCalls(calls);
  const call = document.getElementById("call-live");
  if (call) liveCall(call);
  const delivery = document.querySelector("#webhook[data-follow]:not([data-follow=''])");
  if (delivery) followDelivery(delivery);
});
