// Likeness web page: plain JavaScript over the /api/v1 endpoints, no libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "likeness.key";

// ---- the key: entered once, kept in sessionStorage (this tab only, gone when it closes) ----
let bodyLimit = 10 * 1024 * 1024;

function key() { return sessionStorage.getItem(KEY) || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ "x-api-key": key() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.message || message;
    } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function checkKey() {
  const status = $("key-status");
  if (!key()) { status.textContent = "No key yet: paste a gallery key (kept for this browser tab only)."; return; }
  try {
    const me = await (await api("/api/v1/me")).json();
    status.textContent = me.admin
      ? "Admin key: it manages galleries and keys; use a gallery key here."
      : `Gallery “${me.key.gallery}”, may: ${me.key.scopes.join(", ")}.`;
  } catch (e) {
    status.textContent = `Key refused: ${e.message}`;
  }
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  checkKey();
});
$("key-forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); checkKey(); });

// ---- tabs (arrow keys move between them, as in the ARIA tabs pattern) ----
const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", on ? "true" : "false");
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (tab.id === "tab-gallery") loadGallery();
}
for (const t of tabs) {
  t.addEventListener("click", () => select(t));
  t.addEventListener("keydown", (ev) => {
    const i = tabs.indexOf(t);
    let next = null;
    if (ev.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
    if (ev.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
    if (ev.key === "Home") next = tabs[0];
    if (ev.key === "End") next = tabs[tabs.length - 1];
    if (next) { ev.preventDefault(); select(next); next.focus(); }
  });
}

function say(id, text, error = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", error);
}

// ---- images ----
// Photos are sent as they are: the service answers on the original pixels, so the answer is
// the one the API would give. Only a file larger than the service's body limit (which the
// service would refuse) is scaled down, to the largest JPEG that fits: there the choice is
// between an answer on fewer pixels and no answer at all.
async function prepare(file) {
  if (file.size <= bodyLimit) return file;
  const bitmap = await createImageBitmap(file);
  let scale = Math.sqrt(bodyLimit / file.size);
  for (let attempt = 0; attempt < 6; attempt++, scale *= 0.8) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.92));
    if (blob && blob.size <= bodyLimit) return new File([blob], "scaled.jpg", { type: "image/jpeg" });
  }
  return file;
}

async function drawPhoto(canvas, file) {
  const bitmap = await createImageBitmap(file);
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  return bitmap;
}

function drawBox(canvas, bbox, label, colour) {
  const ctx = canvas.getContext("2d");
  const [x0, y0, x1, y1] = bbox;
  const w = Math.max(2, Math.round(canvas.width / 300));
  ctx.lineWidth = w;
  ctx.strokeStyle = colour;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  if (!label) return;
  const size = Math.max(12, Math.round(canvas.width / 45));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  const tw = ctx.measureText(label).width + size * 0.6;
  const ty = y0 > size * 1.5 ? y0 - size * 1.4 : y1;
  ctx.fillStyle = colour;
  ctx.fillRect(x0 - w / 2, ty, tw, size * 1.4);
  ctx.fillStyle = "#fff";
  ctx.fillText(label, x0 + size * 0.3 - w / 2, ty + size * 1.05);
}

// ---- camera ----
const cameras = {};
async function openCamera(target) {
  const box = $(`${target}-camera`);
  const video = box.querySelector("video");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    cameras[target] = stream;
    video.srcObject = stream;
    box.hidden = false;
    box.querySelector(".camera-shot").focus();
  } catch (e) {
    say(`${target}-status`, `No camera: ${e.message}`, true);
  }
}
function closeCamera(target) {
  const stream = cameras[target];
  if (stream) stream.getTracks().forEach((t) => t.stop());
  delete cameras[target];
  $(`${target}-camera`).hidden = true;
}
async function snapshot(target) {
  const video = $(`${target}-camera`).querySelector("video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.95));
  return new File([blob], "camera.jpg", { type: "image/jpeg" });
}
for (const b of document.querySelectorAll(".camera-open")) {
  b.addEventListener("click", () => openCamera(b.dataset.target));
}
for (const box of document.querySelectorAll(".camera")) {
  const target = box.id.replace("-camera", "");
  box.querySelector(".camera-close").addEventListener("click", () => closeCamera(target));
  box.querySelector(".camera-shot").addEventListener("click", async () => {
    const file = await snapshot(target);
    // a camera shot is someone at the camera: ask the service whether it is a live face
    if (target === "identify") identify(file, { liveness: true });
    else enrol([file]);
  });
}

// ---- the head-turn check: the page films, the service judges ----
// Frames are taken every CHALLENGE_EVERY_MS for CHALLENGE_FRAMES frames (4 s: time for a slow
// turn each way) and sent as they are; the service finds the face in each and decides.
const CHALLENGE_FRAMES = 20;
const CHALLENGE_EVERY_MS = 200;
async function headTurnCheck() {
  const status = $("challenge-status");
  const button = $("identify-camera").querySelector(".camera-challenge");
  delete status.dataset.passed;
  button.disabled = true;
  try {
    const challenge = await (await api("/api/v1/liveness/challenge", { method: "POST" })).json();
    say("challenge-status", `Now ${challenge.instruction}…`);
    const frames = [];
    for (let i = 0; i < Math.min(CHALLENGE_FRAMES, challenge.max_frames); i++) {
      frames.push(await snapshot("identify"));
      await new Promise((ok) => setTimeout(ok, CHALLENGE_EVERY_MS));
    }
    say("challenge-status", "Checking…");
    const form = new FormData();
    for (const f of frames) form.append("frames", f);
    const verdict = await (await api(`/api/v1/liveness/challenge/${encodeURIComponent(challenge.id)}/frames`,
      { method: "POST", body: form })).json();
    say("challenge-status", verdict.passed
      ? `Head-turn check passed (${verdict.frames} frames).`
      : `Head-turn check failed: ${verdict.reason} (${verdict.frames} frames with a face).`, !verdict.passed);
    status.dataset.passed = String(verdict.passed);
    status.dataset.failure = verdict.failure || "";
    status.dataset.frames = String(verdict.frames);
    status.dataset.swing = String(verdict.swing);
    status.dataset.residual = String(verdict.planar_residual);
  } catch (e) {
    say("challenge-status", `Head-turn check: ${e.message}`, true);
    status.dataset.passed = "error";
  } finally {
    button.disabled = false;
  }
}
$("identify-camera").querySelector(".camera-challenge").addEventListener("click", headTurnCheck);

// ---- identify ----
async function identify(file, { liveness = false } = {}) {
  const canvas = $("identify-canvas");
  const list = $("identify-list");
  list.replaceChildren();
  say("identify-status", "Looking…");
  const started = performance.now();
  try {
    const photo = drawPhoto(canvas, file);
    const form = new FormData();
    form.append("file", await prepare(file));
    const tolerance = $("identify-tolerance").value;
    const plugins = liveness ? "&face_plugins=liveness" : "";
    const answer = await (await api(`/api/v1/recognition/recognize?prediction_count=1&tolerance=${encodeURIComponent(tolerance)}${plugins}`,
      { method: "POST", body: form })).json();
    await photo;
    requestAnimationFrame(() => {
      answer.result.forEach((r, i) => {
        const best = r.subjects[0];
        const check = r.face.liveness;
        const spoof = check && check.verdict === "spoof";
        const known = !spoof && r.subject !== "unknown";
        const label = spoof ? "spoof" : known ? `${r.subject} ${best.distance.toFixed(2)}` : "unknown";
        drawBox(canvas, r.face.box, label, known ? "#1f6f5c" : "#a4262c");
        const li = document.createElement("li");
        const [x0, y0, x1, y1] = r.face.box.map(Math.round);
        const where = `(box ${x0},${y0}–${x1},${y1})`;
        li.textContent = spoof
          ? `spoof: this looks like a picture of a face, not a live person; not named (liveness ${check.score.toFixed(2)}) ${where}`
          : known
          ? `${r.subject}: distance ${best.distance.toFixed(3)} ${where}`
          : `unknown${best ? ` (nearest ${best.name}, distance ${best.distance.toFixed(3)})` : ""} ${where}`;
        if (check && !spoof) li.textContent += ` — live (liveness ${check.score.toFixed(2)})`;
        if (check) li.dataset.liveness = check.verdict;
        li.dataset.subject = r.subject;
        li.dataset.box = [x0, y0, x1, y1].join(",");
        list.append(li);
      });
      const ms = Math.round(performance.now() - started);
      say("identify-status", answer.result.length
        ? `${answer.result.length} face${answer.result.length > 1 ? "s" : ""} in ${ms} ms.`
        : "No face found.");
    });
  } catch (e) {
    say("identify-status", e.message, true);
  }
}
$("identify-file").addEventListener("change", (ev) => {
  if (ev.target.files[0]) identify(ev.target.files[0]);
});

// ---- enrol ----
async function enrol(files) {
  const name = $("enrol-name").value.trim();
  if (!name) { say("enrol-status", "Type the person's name first.", true); $("enrol-name").focus(); return; }
  const list = $("enrol-list");
  let done = 0;
  for (const file of files) {
    say("enrol-status", `Enrolling ${file.name}…`);
    const form = new FormData();
    form.append("subject", name);
    form.append("insist", $("enrol-insist").checked ? "true" : "false");
    form.append("file", await prepare(file));
    const li = document.createElement("li");
    try {
      const added = await (await api("/api/v1/recognition/faces", { method: "POST", body: form })).json();
      const e = added.enrolment;
      li.textContent = `${file.name}: ${e.created ? "new person" : "added to"} ${e.name} (#${e.id}), ${e.samples} face${e.samples > 1 ? "s" : ""} now.`;
      done++;
    } catch (err) {
      li.textContent = `${file.name}: ${err.message}`;
      li.classList.add("error");
    }
    list.prepend(li);
  }
  say("enrol-status", `${done} of ${files.length} enrolled for ${name}.`, done < files.length);
}
$("enrol-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const files = Array.from($("enrol-file").files);
  if (!files.length) { say("enrol-status", "Choose one or more photos (or use the camera).", true); return; }
  $("enrol-file").value = "";
  enrol(files);
});

// ---- verify ----
for (const side of ["a", "b"]) {
  $(`verify-${side}`).addEventListener("change", (ev) => {
    if (ev.target.files[0]) drawPhoto($(`verify-canvas-${side}`), ev.target.files[0]);
  });
}
$("verify-go").addEventListener("click", async () => {
  const a = $("verify-a").files[0], b = $("verify-b").files[0];
  const out = $("verify-status");
  out.className = "verdict";
  if (!a || !b) { say("verify-status", "Choose two photos.", true); return; }
  out.textContent = "Comparing…";
  try {
    const form = new FormData();
    form.append("source_image", await prepare(a));
    form.append("target_image", await prepare(b));
    const v = await (await api("/api/v1/verification/verify", { method: "POST", body: form })).json();
    await drawPhoto($("verify-canvas-a"), a);
    await drawPhoto($("verify-canvas-b"), b);
    const colour = v.same ? "#1f6f3a" : "#a4262c";
    drawBox($("verify-canvas-a"), v.source_face.box, "", colour);
    drawBox($("verify-canvas-b"), v.target_face.box, "", colour);
    out.classList.add(v.same ? "same" : "different");
    out.textContent = `${v.same ? "Same person" : "Different people"}: distance ${v.distance.toFixed(3)} ${v.same ? "≤" : ">"} tolerance ${v.tolerance}.`;
  } catch (e) {
    say("verify-status", e.message, true);
  }
});

// ---- gallery ----
const chipUrls = [];
async function chip(imageId) {
  const img = document.createElement("img");
  img.alt = `face ${imageId}`;
  api(`/api/v1/recognition/faces/${imageId}/img`).then((r) => r.blob()).then((b) => {
    const url = URL.createObjectURL(b);
    chipUrls.push(url);
    img.src = url;
  }).catch(() => { img.alt = "thumbnail unavailable"; });
  return img;
}

async function loadGallery() {
  const list = $("gallery-list");
  say("gallery-status", "Loading…");
  try {
    const { subjects } = await (await api("/api/v1/recognition/subjects")).json();
    chipUrls.splice(0).forEach(URL.revokeObjectURL);
    list.replaceChildren();
    for (const p of subjects) {
      const li = document.createElement("li");
      li.dataset.subject = p.name;
      const h = document.createElement("h3");
      h.textContent = `${p.name} (#${p.id})`;
      const chips = document.createElement("ul");
      chips.className = "chips";
      for (const id of p.samples) {
        const c = document.createElement("li");
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = "Remove";
        del.setAttribute("aria-label", `Remove face ${id} of ${p.name}`);
        del.addEventListener("click", async () => {
          try { await api(`/api/v1/recognition/faces/${id}`, { method: "DELETE" }); loadGallery(); }
          catch (e) { say("gallery-status", e.message, true); }
        });
        c.append(await chip(id), del);
        chips.append(c);
      }
      const actions = document.createElement("form");
      actions.className = "person-actions";
      const input = document.createElement("input");
      input.value = p.name;
      input.setAttribute("aria-label", `New name for ${p.name}`);
      const rename = document.createElement("button");
      rename.type = "submit";
      rename.textContent = "Rename";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove person";
      remove.setAttribute("aria-label", `Remove ${p.name}`);
      actions.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          await api(`/api/v1/recognition/subjects/${encodeURIComponent("#" + p.id)}`, {
            method: "PUT", headers: { "content-type": "application/json" },
            body: JSON.stringify({ subject: input.value }),
          });
          say("gallery-status", `Renamed ${p.name} to ${input.value.trim()}.`);
          loadGallery();
        } catch (e) { say("gallery-status", e.message, true); }
      });
      remove.addEventListener("click", async () => {
        if (!confirm(`Remove ${p.name} and their ${p.samples.length} face(s)?`)) return;
        try {
          await api(`/api/v1/recognition/subjects/${encodeURIComponent("#" + p.id)}`, { method: "DELETE" });
          say("gallery-status", `Removed ${p.name}.`);
          loadGallery();
        } catch (e) { say("gallery-status", e.message, true); }
      });
      actions.append(input, rename, remove);
      li.append(h, chips, actions);
      list.append(li);
    }
    if (!subjects.length) say("gallery-status", "Nobody enrolled yet: use Enrol.");
    else if (!$("gallery-status").textContent.startsWith("Renamed") && !$("gallery-status").textContent.startsWith("Removed")) {
      say("gallery-status", `${subjects.length} ${subjects.length > 1 ? "people" : "person"}.`);
    }
  } catch (e) {
    say("gallery-status", e.message, true);
  }
}
$("gallery-refresh").addEventListener("click", () => { say("gallery-status", ""); loadGallery(); });

// ---- style ----
let job = null;
let jobAbort = null;

async function follow(id) {
  jobAbort = new AbortController();
  const response = await api(`/api/v1/style/${id}/events`, { signal: jobAbort.signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onStyleEvent(event, data.join("\n"));
    }
  }
}

function onStyleEvent(event, data) {
  if (event === "preview") {
    $("style-preview").src = data;
    return;
  }
  if (event !== "status") return;
  const s = JSON.parse(data);
  const p = $("style-progress");
  p.max = Math.max(1, s.iterations);
  p.value = s.iteration;
  const loss = s.loss != null ? `, J ${s.loss.toExponential(3)}` : "";
  if (s.state === "done") {
    say("style-status", `Done: ${s.iteration} steps in ${s.elapsed_s.toFixed(1)} s${loss}.`);
    finishStyle(s.id);
  } else if (s.state === "failed") {
    say("style-status", `Failed: ${s.error}`, true);
    $("style-cancel").disabled = true;
  } else if (s.state === "cancelled") {
    say("style-status", "Cancelled.");
    $("style-cancel").disabled = true;
  } else {
    say("style-status", `${s.state === "queued" ? "Waiting for a free slot" : "Painting"}: step ${s.iteration} of ${s.iterations}${loss}.`);
  }
}

async function finishStyle(id) {
  $("style-cancel").disabled = true;
  try {
    const blob = await (await api(`/api/v1/style/${id}/result`)).blob();
    const url = URL.createObjectURL(blob);
    $("style-preview").src = url;
    const a = $("style-download");
    a.href = url;
    a.hidden = false;
  } catch (e) { say("style-status", e.message, true); }
}

$("style-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const content = $("style-content").files[0], style = $("style-style").files[0];
  if (!content || !style) { say("style-status", "Choose a content and a style image.", true); return; }
  $("style-download").hidden = true;
  $("style-preview").removeAttribute("src");
  const form = new FormData();
  form.append("content", await prepare(content));
  form.append("style", await prepare(style));
  form.append("size", $("style-size").value);
  form.append("iterations", $("style-iterations").value);
  form.append("preview_every", $("style-every").value);
  try {
    job = await (await api("/api/v1/style", { method: "POST", body: form })).json();
    $("style-cancel").disabled = false;
    say("style-status", "Queued.");
    follow(job.id).catch((e) => { if (e.name !== "AbortError") say("style-status", e.message, true); });
  } catch (e) {
    say("style-status", e.message, true);
  }
});
$("style-cancel").addEventListener("click", async () => {
  if (!job) return;
  try { await api(`/api/v1/style/${job.id}`, { method: "DELETE" }); }
  catch (e) { say("style-status", e.message, true); }
});

// ---- start ----
fetch("/healthz").then((r) => r.json()).then((h) => { if (h.body_limit) bodyLimit = h.body_limit; }).catch(() => {});
checkKey();
