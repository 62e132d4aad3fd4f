// tinyser's page: live microphone -> WebSocket /api/stream; dropped files -> POST /api/predict.
// Plain script, no build step, no network beyond this server.
"use strict";

const COLORS = ["#8d99ae", "#f4a259", "#3d7ab8", "#d1495b", "#8e5ea2", "#5b8e3e", "#e0c341", "#2a9d8f"];
const LIVE_PX_PER_S = 40;
const LIVE_KEEP_S = 600;        // the live timeline shows the last 10 minutes
const MAX_CANVAS = 32000;       // browsers refuse wider canvases
const $ = (id) => document.getElementById(id);

let labels = [];
let card = null;
const colorOf = (label) => COLORS[Math.max(0, labels.indexOf(label)) % COLORS.length];

// ---- model card -------------------------------------------------------------------------
async function loadCard() {
  try {
    const r = await fetch("/api/model");
    card = await r.json();
    labels = card.labels;
  } catch (e) {
    $("card-body").innerHTML = "<dt class='error'>the model card could not be loaded</dt>";
    return;
  }
  const pct = (x) => (x == null ? "–" : (100 * x).toFixed(1) + " %");
  const t = card.training, ev = card.evaluation;
  const rows = [
    ["model", `${card.name}: ${card.model} ${card.model_params || ""} (${card.quantization})`],
    ["labels", card.labels.join(", ")],
    ["window", `${card.window} s every ${card.hop} s at ${card.sample_rate} Hz (${card.frontend})`],
    ["size", `${card.size_bytes.toLocaleString()} bytes, ${(card.params || 0).toLocaleString()} parameters`],
    ["trained on", `${t.data.join(", ")} (${t.label_scheme}), protocol ${t.protocol}`],
  ];
  if (ev) rows.push(["evaluation", `UA ${pct(ev.ua)} ± ${pct(ev.ua_std)}, WA ${pct(ev.wa)}, F1 ${pct(ev.f1)}: ${ev.protocol}`]);
  rows.push(["tinyser", card.tinyser]);
  const dl = $("card-body");
  dl.textContent = "";
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  const legend = $("legend");
  legend.textContent = "";
  for (const l of labels) {
    const s = document.createElement("span"); s.textContent = l; s.style.setProperty("--c", colorOf(l));
    legend.append(s);
  }
  legend.insertAdjacentHTML("beforeend", "<span style='--c:repeating-linear-gradient(45deg,#bbb 0 3px,#eee 3px 6px)'>no speech</span>");
}

// ---- timelines --------------------------------------------------------------------------
// rows: [{start, end, voiced, probabilities}]; one column per row from its start for one hop
function drawTimeline(canvas, rows, pxPerS, hop, widthMin, t0 = 0) {
  const last = rows.length ? rows[rows.length - 1].end : 0;
  const width = Math.min(MAX_CANVAS, Math.max(widthMin, Math.ceil((last - t0) * pxPerS) + 2));
  if (canvas.width !== width) canvas.width = width;
  const g = canvas.getContext("2d"), h = canvas.height, axis = 16, top = h - axis;
  g.clearRect(0, 0, width, h);
  for (let i = 0; i < rows.length; i++) {  // a column from a window's start to the next one's (the last: its end)
    const r = rows[i], until = i + 1 < rows.length ? rows[i + 1].start : Math.max(r.end, r.start + hop);
    const x = Math.floor((r.start - t0) * pxPerS), w = Math.max(1, Math.ceil((until - r.start) * pxPerS));
    if (x + w < 0 || x > width) continue;
    let y = top;
    for (const l of labels) {
      const p = r.probabilities[l] || 0, ph = p * top;
      g.fillStyle = colorOf(l);
      g.globalAlpha = r.voiced ? 1 : 0.25;
      g.fillRect(x, y - ph, w, ph);
      y -= ph;
    }
    g.globalAlpha = 1;
    if (!r.voiced) {  // no speech: hatched grey
      g.strokeStyle = "rgba(90,90,90,.45)";
      g.beginPath();
      for (let k = -top; k < w; k += 6) { g.moveTo(x + k, top); g.lineTo(x + k + top, 0); }
      g.save(); g.rect(x, 0, w, top); g.clip(); g.stroke(); g.restore();
    }
  }
  // time axis
  g.fillStyle = "#555"; g.font = "11px system-ui, sans-serif";
  const step = niceStep(80 / pxPerS);
  for (let s = Math.ceil(t0 / step) * step; (s - t0) * pxPerS < width; s += step) {
    const x = (s - t0) * pxPerS;
    g.fillRect(x, top, 1, 4);
    g.fillText(fmtTime(s), x + 2, h - 3);
  }
}
const niceStep = (s) => [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800].find((v) => v >= s) || 3600;
const fmtTime = (s) => (s >= 60 ? `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}` : `${+s.toFixed(1)} s`);

function drawWave(canvas, samples, pxPerS, sampleRate, widthMin) {
  const dur = samples.length / sampleRate;
  const width = Math.min(MAX_CANVAS, Math.max(widthMin, Math.ceil(dur * pxPerS) + 2));
  canvas.width = width;
  const g = canvas.getContext("2d"), h = canvas.height, mid = h / 2;
  g.clearRect(0, 0, width, h);
  g.fillStyle = "#444";
  const per = sampleRate / pxPerS;
  for (let x = 0; x < width; x++) {
    const a = Math.floor(x * per), b = Math.min(samples.length, Math.floor((x + 1) * per));
    if (a >= samples.length) break;
    let lo = 0, hi = 0;
    for (let i = a; i < b; i++) { const v = samples[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
    g.fillRect(x, mid - hi * mid, 1, Math.max(1, (hi - lo) * mid));
  }
}

// ---- live -------------------------------------------------------------------------------
const live = { ws: null, ctx: null, media: null, node: null, rows: [], hop: 1, on: false };

function micStatus(text, isError = false) {
  const s = $("mic-status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

function micError(e) {
  if (e && (e.name === "NotAllowedError" || e.name === "SecurityError" || e.name === "PermissionDeniedError"))
    return "Microphone access was refused. Allow it in the browser's site settings, then press Start again; or drop a file below.";
  if (e && (e.name === "NotFoundError" || e.name === "DevicesNotFoundError" || e.name === "OverconstrainedError"))
    return "No microphone was found on this computer. Connect one and press Start again; or drop a file below.";
  if (e && e.name === "NotReadableError")
    return "The microphone is in use by another program or could not be opened.";
  return `The microphone could not be started: ${e && (e.message || e.name) || e}`;
}

async function startMic() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    micStatus("This browser offers no microphone here (it needs http://localhost or https). Drop a file below instead.", true);
    return;
  }
  micStatus("Asking for the microphone…");
  try {
    live.media = await navigator.mediaDevices.getUserMedia(
      { audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (e) {
    micStatus(micError(e), true);
    return;
  }
  try {
    live.ctx = new AudioContext();
    await live.ctx.audioWorklet.addModule("/static/worklet.js");
  } catch (e) {
    stopMic();
    micStatus(`This browser cannot process audio here (AudioWorklet): ${e.message || e}`, true);
    return;
  }
  const rate = Math.round(live.ctx.sampleRate);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/stream?sample_rate=${rate}`);
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  live.rows = [];
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.error) { micStatus(m.error, true); return; }
    if (m.event === "ready") { live.hop = m.hop; micStatus(`Listening at ${rate} Hz: a new window every ${m.hop} s. Press Stop (or M) to end.`); return; }
    if (m.event === "warning") { micStatus(m.message, true); return; }
    if (m.event === "end" || m.event === "shutdown") return;
    addLiveRow(m);
  };
  ws.onclose = () => { if (live.on) { stopMic(); micStatus("The server closed the stream.", true); } };
  ws.onerror = () => micStatus("The connection to the server failed.", true);
  const src = live.ctx.createMediaStreamSource(live.media);
  live.node = new AudioWorkletNode(live.ctx, "pcm16-sender", { processorOptions: { chunk: Math.round(rate / 10) } });
  live.node.port.onmessage = (ev) => { if (ws.readyState === WebSocket.OPEN) ws.send(ev.data); };
  const mute = live.ctx.createGain();
  mute.gain.value = 0;
  src.connect(live.node).connect(mute).connect(live.ctx.destination);
  live.on = true;
  $("mic").textContent = "Stop microphone";
  $("mic").setAttribute("aria-pressed", "true");
}

function stopMic() {
  live.on = false;
  if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.send("end");  // the server sends the last window
  if (live.media) live.media.getTracks().forEach((t) => t.stop());
  if (live.ctx) live.ctx.close();
  live.media = live.ctx = live.node = null;
  $("mic").textContent = "Start microphone";
  $("mic").setAttribute("aria-pressed", "false");
  micStatus("Microphone off.");
}

function addLiveRow(row) {
  live.rows.push(row);
  const keepFrom = row.end - LIVE_KEEP_S;
  while (live.rows.length && live.rows[0].end < keepFrom) live.rows.shift();
  $("now-label").textContent = row.voiced ? row.label : "(no speech)";
  $("now-label").style.color = row.voiced ? colorOf(row.label) : "#777";
  $("now-conf").textContent = row.voiced ? `${(100 * row.confidence).toFixed(0)} % · ${row.start.toFixed(1)}–${row.end.toFixed(1)} s` : "";
  const li = document.createElement("li");
  li.textContent = `${row.start}–${row.end} s: ${row.voiced ? row.label + " " + row.confidence.toFixed(2) : "no speech"}`;
  li.dataset.label = row.label;
  li.dataset.voiced = row.voiced;
  const list = $("live-rows");
  list.append(li);
  while (list.children.length > 2000) list.firstChild.remove();
  const scroll = $("live-scroll");
  const t0 = live.rows.length ? Math.max(0, live.rows[0].start) : 0;
  drawTimeline($("live-canvas"), live.rows, LIVE_PX_PER_S, live.hop, scroll.clientWidth, t0);
  scroll.scrollLeft = scroll.scrollWidth;
}

// ---- files ------------------------------------------------------------------------------
async function predictFile(file) {
  const box = document.createElement("article");
  box.className = "result";
  box.setAttribute("aria-busy", "true");
  const h = document.createElement("h3");
  const name = document.createElement("span"); name.textContent = file.name;
  const verdict = document.createElement("span"); verdict.className = "verdict"; verdict.textContent = "predicting…";
  verdict.dataset.testid = "verdict";
  h.append(name, verdict);
  box.append(h);
  $("results").prepend(box);
  let doc;
  try {
    const r = await fetch(`/api/predict?name=${encodeURIComponent(file.name)}`,
      { method: "POST", body: file, headers: { "content-type": file.type || "application/octet-stream" } });
    doc = await r.json();
    if (!r.ok) throw new Error(doc.error || `HTTP ${r.status}`);
  } catch (e) {
    verdict.textContent = e.message;
    verdict.className = "verdict error";
    box.removeAttribute("aria-busy");
    return;
  }
  const res = doc.results[0];
  verdict.textContent = res.label == null ? `no label (${res.reason})`
    : `${res.label} ${(100 * res.confidence).toFixed(0)} %`;
  if (res.label != null) verdict.style.color = colorOf(res.label);
  verdict.dataset.label = res.label || "";
  const info = document.createElement("span");
  info.textContent = `${res.duration.toFixed(1)} s, ${res.voiced_windows}/${res.windows.length} windows with speech`
    + (res.warnings.length ? ` · ${res.warnings.join("; ")}` : "");
  info.className = "hint";
  h.append(info);
  const tools = document.createElement("span"); tools.className = "tools";
  const zin = document.createElement("button"); zin.type = "button"; zin.textContent = "+"; zin.setAttribute("aria-label", "zoom in");
  const zout = document.createElement("button"); zout.type = "button"; zout.textContent = "−"; zout.setAttribute("aria-label", "zoom out");
  const zfit = document.createElement("button"); zfit.type = "button"; zfit.textContent = "fit"; zfit.setAttribute("aria-label", "fit to width");
  tools.append(zout, zin, zfit);
  h.append(tools);
  const scroll = document.createElement("div");
  scroll.className = "scroll"; scroll.tabIndex = 0;
  scroll.setAttribute("aria-label", `${file.name}: waveform and timeline; + and - zoom, arrow keys scroll`);
  const wave = document.createElement("canvas"); wave.height = 60;
  const tl = document.createElement("canvas"); tl.height = 110; tl.dataset.testid = "file-timeline";
  scroll.append(wave, tl);
  box.append(scroll);
  box.removeAttribute("aria-busy");

  const hop = res.windows.length > 1 ? res.windows[1].start - res.windows[0].start : (card ? card.hop : 1);
  let samples = null, rate = 1;
  try {
    const ctx = new OfflineAudioContext(1, 1, 16000);
    const audio = await ctx.decodeAudioData(await file.arrayBuffer());
    samples = audio.getChannelData(0); rate = audio.sampleRate;
  } catch (e) { wave.height = 0; }  // a format the browser cannot decode: the timeline alone
  const fit = () => Math.max(1e-3, (scroll.clientWidth - 2) / Math.max(res.duration, 0.1));
  let px = fit();
  const draw = () => {
    px = Math.min(px, MAX_CANVAS / Math.max(res.duration, 0.1));
    if (samples) drawWave(wave, samples, px, rate, scroll.clientWidth - 2);
    drawTimeline(tl, res.windows, px, hop, scroll.clientWidth - 2);
    tl.dataset.pxPerS = px.toFixed(3);  // drawn (and at what zoom)
  };
  zin.onclick = () => { px *= 2; draw(); };
  zout.onclick = () => { px = Math.max(fit(), px / 2); draw(); };
  zfit.onclick = () => { px = fit(); draw(); };
  scroll.addEventListener("keydown", (e) => {
    if (e.key === "+" || e.key === "=") { zin.onclick(); e.preventDefault(); }
    if (e.key === "-") { zout.onclick(); e.preventDefault(); }
  });
  draw();
}

function handleFiles(files) { for (const f of files) predictFile(f); }

// ---- wiring -----------------------------------------------------------------------------
$("mic").addEventListener("click", () => (live.on ? stopMic() : startMic()));
document.addEventListener("keydown", (e) => {
  if ((e.key === "m" || e.key === "M") && !e.ctrlKey && !e.metaKey && !e.altKey
      && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
    live.on ? stopMic() : startMic();
  }
});
const drop = $("drop");
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { $("file-input").click(); e.preventDefault(); } });
$("file-input").addEventListener("change", (e) => { handleFiles(e.target.files); e.target.value = ""; });
for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); handleFiles(e.dataTransfer.files); });
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());
window.addEventListener("beforeunload", () => { if (live.on) stopMic(); });
loadCard();
