// homecam web app: live wall, events, timeline with export, charts, health.
// Plain JavaScript, no build step and no library: the charts and the timeline are a few
// SVG rectangles, which is less code than wiring a chart library, and nothing to vendor.
// Text from the server is only ever set with textContent (never as HTML).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts });
  if (r.status === 401 && document.body.dataset.page === "app") {
    location.href = "/login" + location.hash;
    throw new Error("not logged in");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const pad = (n) => String(n).padStart(2, "0");
function clock(t) {
  const d = new Date(t * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function when(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(t)}`;
}
function duration(s) {
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// ---- Login page --------------------------------------------------------------------

function loginPage() {
  const form = $("#login");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    $("#login-error").textContent = "";
    try {
      await api("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: f.get("user"), password: f.get("password") }),
      });
      location.href = "/" + location.hash;
    } catch (e) {
      $("#login-error").textContent = e.message;
    }
  });
}

// ---- The app -------------------------------------------------------------------------

const state = { cameras: [], me: {}, view: null, next: null };

async function loadCameras() {
  const r = await api("/api/cameras");
  state.cameras = r.cameras;
  for (const sel of document.querySelectorAll("select[name=camera]")) {
    const keep = sel.value;
    const any = sel.closest("#event-filter") ? [el("option", { value: "", text: "all" })] : [];
    sel.replaceChildren(...any, ...state.cameras.map((c) => el("option", { value: c.name, text: c.name })));
    if (keep) sel.value = keep;
  }
}

// Live view in MP4: the camera's own H.264 and its audio (AAC) through Media Source
// Extensions, a fragment per frame, kept close to the newest frame. MJPEG (no audio)
// where MSE, the codec or the stream fails.
function mp4Type(init) {
  const find = (s) => {
    outer: for (let i = 0; i + s.length <= init.length; i++) {
      for (let j = 0; j < s.length; j++) if (init[i + j] !== s.charCodeAt(j)) continue outer;
      return i;
    }
    return -1;
  };
  // avcC: version, profile, compatibility, level just after the box type.
  const a = find("avcC");
  if (a < 0 || a + 8 > init.length) return null;
  const hex = (b) => b.toString(16).padStart(2, "0");
  const codecs = [`avc1.${hex(init[a + 5])}${hex(init[a + 6])}${hex(init[a + 7])}`];
  if (find("mp4a") >= 0) codecs.push("mp4a.40.2");
  return `video/mp4; codecs="${codecs.join(", ")}"`;
}

// The length of the ftyp and moov boxes at the start of `d`, once both are complete.
function initLength(d) {
  let i = 0;
  while (i + 8 <= d.length) {
    const n = ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
    const type = String.fromCharCode(d[i + 4], d[i + 5], d[i + 6], d[i + 7]);
    if (n < 8 || i + n > d.length) return 0;
    i += n;
    if (type === "moov") return i;
  }
  return 0;
}

function concat(a, b) {
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

// Plays `url` into `video`; resolves when the stream ends, rejects if it cannot play.
async function playMp4(video, url, stop) {
  if (!window.MediaSource) throw new Error("no Media Source Extensions");
  const resp = await fetch(url, { credentials: "same-origin", signal: stop });
  if (!resp.ok || !resp.body) throw new Error(`live.mp4: HTTP ${resp.status}`);
  const reader = resp.body.getReader();
  let head = new Uint8Array(0);
  let n = 0;
  while (!(n = initLength(head))) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stream ended before its header");
    head = concat(head, value);
    if (head.length > 1 << 20) throw new Error("no MP4 header");
  }
  const type = mp4Type(head.subarray(0, n));
  if (!type || !MediaSource.isTypeSupported(type)) throw new Error(`cannot play ${type}`);
  const ms = new MediaSource();
  const objectUrl = URL.createObjectURL(ms);
  video.src = objectUrl;
  await new Promise((ok) => ms.addEventListener("sourceopen", ok, { once: true }));
  // Attached: the URL is not needed any more (each reconnection made one that stayed).
  URL.revokeObjectURL(objectUrl);
  const sb = ms.addSourceBuffer(type);
  const pending = [head];
  let cleaned = 0;
  const pump = () => {
    if (sb.updating || ms.readyState !== "open") return;
    const b = video.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      // Keep about 100 ms behind the newest frame: jump when far behind; muted, play a
      // little faster when behind (with sound, a changed rate makes the browser stretch
      // the audio, which starves its output and stalls the picture).
      const lag = end - video.currentTime;
      const far = video.muted ? 1 : 0.25;
      if (lag > far || video.currentTime < b.start(0)) video.currentTime = Math.max(b.start(0), end - 0.1);
      video.playbackRate = !video.muted ? 1.0 : lag > 0.4 ? 1.25 : lag > 0.15 ? 1.1 : 1.0;
      if (video.paused) video.play().catch(() => {});
      // Bound what the page holds: the last 10 s.
      if (video.currentTime - b.start(0) > 20 && video.currentTime - cleaned > 10) {
        cleaned = video.currentTime;
        sb.remove(0, video.currentTime - 10);
        return;
      }
    }
    if (pending.length) {
      const all = pending.length === 1 ? pending[0] : pending.reduce(concat);
      pending.length = 0;
      sb.appendBuffer(all);
    }
  };
  sb.addEventListener("updateend", pump);
  pump();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending.push(value);
    pump();
  }
}

// The live picture of camera `c`: MP4 with sound when it plays, else MJPEG.
function livePicture(c) {
  const box = el("div", { class: "picture" });
  const mjpeg = () => {
    if (box.dataset.stopped) return;
    box.dataset.live = "mjpeg";
    box.replaceChildren(el("img", { alt: c.name, src: c.live.mjpeg }));
  };
  if (!c.live.mp4 || !window.MediaSource) {
    mjpeg();
    return box;
  }
  const video = el("video", { muted: "", playsinline: "", "aria-label": c.name });
  video.muted = true;
  // Muted, the tile takes the video alone: a browser playing audio keeps the picture in
  // step with its audio output, about 200 ms further behind the camera. The sound
  // button reconnects with the audio (or without it).
  let restart = () => {};
  const sound = el("button", { class: "sound", type: "button", title: "sound on/off", text: "🔇" });
  sound.addEventListener("click", () => {
    video.muted = !video.muted;
    sound.textContent = video.muted ? "🔇" : "🔊";
    restart();
  });
  box.dataset.live = "mp4";
  box.replaceChildren(video, sound);
  (async () => {
    // Back after a cut (the camera, the network, a slow page); MJPEG if it never played.
    for (let tries = 0; tries < 5; tries++) {
      const stop = new AbortController();
      let restarted = false;
      box._stop = () => {
        stop.abort();
        video.removeAttribute("src");
        video.load();
      };
      restart = () => {
        restarted = true;
        stop.abort();
      };
      const url = video.muted ? `${c.live.mp4}?audio=0` : c.live.mp4;
      try {
        await playMp4(video, url, stop.signal);
        if (video.currentTime > 0) tries = 0;
      } catch (e) {
        if (box.dataset.stopped) return;
        if (!restarted) console.warn(`${c.name}: MP4 live view: ${e.message}`);
        if (video.currentTime === 0 && !restarted) break;
      }
      stop.abort();
      if (box.dataset.stopped) return;
      if (restarted) {
        tries = 0;
        continue;
      }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
    mjpeg();
  })();
  return box;
}

// Ends a live picture's stream (MP4 or MJPEG).
function stopPicture(box) {
  box.dataset.stopped = "1";
  if (box._stop) box._stop();
  for (const i of box.querySelectorAll("img")) i.removeAttribute("src");
}

// Live wall: each camera's live view with its status badge and frame rate; the streams
// run only while the wall is shown.
function renderWall() {
  const wall = $("#wall");
  if (state.view !== "live") {
    for (const p of wall.querySelectorAll(".picture")) stopPicture(p);
    wall.replaceChildren();
    return;
  }
  for (const c of state.cameras) {
    let card = wall.querySelector(`[data-camera="${CSS.escape(c.name)}"]`);
    if (!card) {
      // A dashboard has no live view of its own: it links to the daemon with the camera.
      const picture = c.live
        ? livePicture(c)
        : el("div", { class: "nolive" }, c.origin
          ? el("a", { href: `${c.origin.replace(/\/$/, "")}/#live`, target: "_blank", rel: "noopener", text: "live view on its daemon" })
          : el("span", { text: "no live view here" }));
      card = el("div", { class: "cam", "data-camera": c.name },
        picture,
        el("div", { class: "bar" },
          el("span", { class: "name", text: c.location ? `${c.name} · ${c.location}` : c.name }),
          el("span", { class: "fps" }),
          el("span", { class: "badge" })));
      wall.append(card);
    }
    const badge = $(".badge", card);
    badge.textContent = c.status;
    badge.className = `badge ${c.status}`;
    $(".fps", card).textContent = c.status === "online" ? `${(c.fps || 0).toFixed(1)} fps` : "";
  }
}

function renderHealth() {
  const body = $("#health tbody");
  body.replaceChildren(...state.cameras.map((c) => el("tr", {},
    el("td", { text: c.name }),
    el("td", {}, el("span", { class: `badge ${c.status}`, text: c.status })),
    el("td", { text: c.status === "online" && c.online_since ? duration(Date.now() / 1000 - c.online_since) : "–" }),
    el("td", { text: String(c.restarts ?? 0) }),
    el("td", { text: `${Math.round((c.bitrate || 0) / 1000)} kbit/s` }),
    el("td", { text: (c.fps || 0).toFixed(1) }),
    el("td", { class: "err", text: c.last_error || "" }))));
}

// Events.
function eventItem(e) {
  const verdict = e.verdict || "pending";
  const img = e.snapshot_url
    ? el("img", { src: e.snapshot_url, alt: e.label, loading: "lazy" })
    : el("div", { class: "noimg" });
  const li = el("li", { class: "event", "data-id": e.id, tabindex: "0" },
    img,
    el("div", {},
      el("div", { class: "label", text: `${e.label} ` },
        el("span", { class: `verdict-${verdict}`, text: verdict })),
      el("div", { class: "meta", text: `${e.camera} · ${when(e.start_time)}` }),
      el("div", { class: "meta", text: `score ${(e.top_score || e.score || 0).toFixed(2)}${e.zones && e.zones.length ? " · " + e.zones.join(", ") : ""}${e.clip_url ? " · clip" : ""}` })));
  li.addEventListener("click", () => playClip(e));
  li.addEventListener("keydown", (k) => { if (k.key === "Enter") playClip(e); });
  return li;
}

function playClip(e) {
  if (!e.clip_url && !e.snapshot_url) return;
  $("#modal-title").textContent = `${e.label} · ${e.camera} · ${when(e.start_time)}`;
  const v = $("#clip");
  // An event without a clip (yet) shows its snapshot.
  v.poster = e.snapshot_url || "";
  if (e.clip_url) v.src = e.clip_url; else v.removeAttribute("src");
  $("#modal").hidden = false;
  if (e.clip_url) v.play().catch(() => {});
}

// A link to one event (`#events/ID`, as alerts send it): the list, and the event open.
async function openEvent(id) {
  try {
    playClip(await api(`/api/events/${encodeURIComponent(id)}`));
  } catch (e) {
    console.error(e);
  }
}

function closeModal() {
  const v = $("#clip");
  v.pause();
  v.removeAttribute("src");
  v.removeAttribute("poster");
  v.load();
  $("#modal").hidden = true;
}

function eventQuery() {
  const f = new FormData($("#event-filter"));
  const q = new URLSearchParams();
  for (const k of ["camera", "label", "verdict"]) if (f.get(k)) q.set(k, f.get(k));
  q.set("limit", "40");
  return q;
}

async function loadEvents(more = false) {
  const q = eventQuery();
  if (more && state.next) q.set("before", state.next);
  const r = await api(`/api/events?${q}`);
  const list = $("#events");
  const items = r.events.map(eventItem);
  if (more) list.append(...items); else list.replaceChildren(...items);
  state.next = r.next;
  $("#more").hidden = !r.next;
  $("#no-events").hidden = list.children.length > 0;
}

function onLiveEvent(e) {
  if (state.view !== "events") return;
  const f = new FormData($("#event-filter"));
  if ((f.get("camera") && f.get("camera") !== e.camera) ||
      (f.get("verdict") && f.get("verdict") !== e.verdict) ||
      (f.get("label") && f.get("label") !== e.label && f.get("label") !== e.group)) return;
  // The stream carries file paths no more than the API does: ask the API for the event.
  api(`/api/events/${encodeURIComponent(e.id)}`).then((full) => {
    const list = $("#events");
    const old = list.querySelector(`[data-id="${CSS.escape(full.id)}"]`);
    const item = eventItem(full);
    if (old) old.replaceWith(item); else list.prepend(item);
    $("#no-events").hidden = true;
  }).catch(() => {});
}

// Timeline: a day of one camera, recorded spans, gaps and events; click to play, drag to
// select a range for download.
const tl = { start: 0, end: 0, camera: "", drag: null, sel: null };

function dayRange(value) {
  const [y, m, d] = value.split("-").map(Number);
  const start = new Date(y, m - 1, d).getTime() / 1000;
  return [start, new Date(y, m - 1, d + 1).getTime() / 1000];
}

async function loadTimeline() {
  const f = new FormData($("#timeline-form"));
  tl.camera = f.get("camera") || (state.cameras[0] && state.cameras[0].name) || "";
  const day = f.get("day");
  if (!tl.camera || !day) return;
  [tl.start, tl.end] = dayRange(day);
  const until = Math.min(tl.end, Date.now() / 1000 + 1);
  const box = $("#timeline");
  if (!state.me.recordings) {
    box.replaceChildren(el("p", { class: "empty", text: "Recordings are on the daemons that hold them." }));
    return;
  }
  if (until <= tl.start) {
    box.replaceChildren(el("p", { class: "empty", text: "That day has not begun." }));
    return;
  }
  const q = new URLSearchParams({ camera: tl.camera, start: tl.start, end: until });
  const [rec, ev] = await Promise.all([
    api(`/api/recordings?${q}`),
    api(`/api/events?${new URLSearchParams({ camera: tl.camera, since: tl.start, until: tl.end, limit: 500 })}`),
  ]);
  drawTimeline(rec, ev.events);
  $("#timeline-info").textContent =
    `${rec.spans.length} recorded span(s), ${rec.gaps.length} gap(s), ${ev.events.length} event(s), ${(rec.bytes / 1e6).toFixed(0)} MB`;
}

function drawTimeline(rec, events) {
  const W = 1000, H = 90, top = 18, h = 44;
  const x = (t) => ((t - tl.start) / (tl.end - tl.start)) * W;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-spans": rec.spans.length, "data-gaps": rec.gaps.length });
  for (let hr = 0; hr <= 24; hr += 3) {
    const t = tl.start + hr * 3600;
    svg.append(el("svg:line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: top + h }));
    if (hr < 24) svg.append(el("svg:text", { class: "tick", x: x(t) + 2, y: 12, text: `${pad(hr)}:00` }));
  }
  for (const [a, b] of rec.spans) svg.append(el("svg:rect", { class: "span", x: x(a), y: top, width: Math.max(x(b) - x(a), 0.5), height: h }));
  for (const [a, b] of rec.gaps) svg.append(el("svg:rect", { class: "gap", x: x(a), y: top, width: Math.max(x(b) - x(a), 0.8), height: h }));
  for (const e of events) {
    const ex = x(e.start_time);
    svg.append(el("svg:line", { class: `ev ${e.verdict}`, x1: ex, x2: ex, y1: top + h + 2, y2: top + h + 14 },
      el("svg:title", { text: `${e.label} ${clock(e.start_time)}` })));
  }
  const sel = el("svg:rect", { class: "sel", x: 0, y: top, width: 0, height: h });
  svg.append(sel);
  const timeAt = (ev) => {
    const r = svg.getBoundingClientRect();
    return tl.start + ((ev.clientX - r.left) / r.width) * (tl.end - tl.start);
  };
  svg.addEventListener("pointerdown", (ev) => {
    svg.setPointerCapture(ev.pointerId);
    tl.drag = { from: timeAt(ev), px: ev.clientX };
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!tl.drag) return;
    const [a, b] = [tl.drag.from, timeAt(ev)].sort((p, q) => p - q);
    sel.setAttribute("x", x(a));
    sel.setAttribute("width", x(b) - x(a));
  });
  svg.addEventListener("pointerup", (ev) => {
    if (!tl.drag) return;
    const moved = Math.abs(ev.clientX - tl.drag.px) > 4;
    const [a, b] = [tl.drag.from, timeAt(ev)].sort((p, q) => p - q);
    tl.drag = null;
    if (moved && b - a >= 1) selectRange(a, b);
    else playFrom(a);
  });
  $("#timeline").replaceChildren(svg);
}

function exportUrl(a, b, download) {
  const q = new URLSearchParams({ camera: tl.camera, start: a.toFixed(3), end: b.toFixed(3) });
  if (download) q.set("download", "1");
  return `/api/export.mp4?${q}`;
}

function selectRange(a, b) {
  b = Math.min(b, a + 24 * 3600, Date.now() / 1000);
  tl.sel = [a, b];
  $("#selection").hidden = false;
  $("#selection-text").textContent = `${clock(a)} – ${clock(b)} (${duration(b - a)})`;
  $("#download").href = exportUrl(a, b, true);
}

function playFrom(t) {
  const end = Math.min(t + 600, Date.now() / 1000);
  if (end - t < 1) return;
  const v = $("#player");
  v.hidden = false;
  v.src = exportUrl(t, end, false);
  v.play().catch(() => {});
}

// Charts: stacked bars of events per bucket, one colour per series.
const COLOURS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#a5d6ff"];

function barChart(box, title, buckets, series, counts) {
  const W = 1000, H = 180, left = 30, bottom = 18, top = 8;
  const n = buckets.length;
  const totals = buckets.map((_, i) => series.reduce((s, k) => s + (counts[k][i] || 0), 0));
  const max = Math.max(1, ...totals);
  const bw = (W - left) / n;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-total": totals.reduce((a, b) => a + b, 0) });
  svg.append(el("svg:text", { class: "axis", x: 2, y: top + 8, text: String(max) }));
  svg.append(el("svg:text", { class: "axis", x: 2, y: H - bottom, text: "0" }));
  buckets.forEach((t, i) => {
    let acc = 0;
    series.forEach((k, si) => {
      const v = counts[k][i] || 0;
      if (!v) return;
      svg.append(el("svg:rect", { x: left + i * bw + 0.5, y: y(acc + v), width: Math.max(bw - 1, 0.5), height: y(acc) - y(acc + v), fill: COLOURS[si % COLOURS.length] },
        el("svg:title", { text: `${k}: ${v} at ${when(t)}` })));
      acc += v;
    });
    const every = Math.ceil(n / 12);
    if (i % every === 0) {
      const d = new Date(t * 1000);
      const lab = n > 30 ? `${d.getMonth() + 1}/${d.getDate()} ${pad(d.getHours())}h` : `${pad(d.getHours())}:00`;
      svg.append(el("svg:text", { class: "axis", x: left + i * bw, y: H - 4, text: lab }));
    }
  });
  // Colours set through the style object: the page's CSP refuses style attributes.
  const swatch = (si) => {
    const i = el("i");
    i.style.background = COLOURS[si % COLOURS.length];
    return i;
  };
  const legend = el("div", { class: "legend" }, el("strong", { text: title }),
    ...series.map((k, si) => el("span", {}, swatch(si), k)));
  box.replaceChildren(legend, svg);
}

async function loadCharts() {
  const now = Date.now() / 1000;
  for (const [days, id] of [[1, "day"], [7, "week"]]) {
    const since = Math.floor((now - days * 86400) / 3600) * 3600;
    const r = await api(`/api/stats?${new URLSearchParams({ bucket: "hour", since, until: now + 1 })}`);
    const buckets = [];
    for (let t = since; t < now; t += 3600) buckets.push(t);
    for (const by of ["camera", "label"]) {
      const counts = {};
      for (const row of r.rows) {
        const k = row[by];
        const i = Math.round((row.time - since) / 3600);
        if (i < 0 || i >= buckets.length) continue;
        (counts[k] ||= [])[i] = ((counts[k] || [])[i] || 0) + row.count;
      }
      const series = Object.keys(counts).sort();
      barChart($(`#chart-${id}-${by}`), `events per hour by ${by}`, buckets, series, counts);
    }
  }
  const ins = await api(`/api/insights?${new URLSearchParams({ since: now - 7 * 86400 })}`);
  const level = { low: 1, medium: 2, high: 3 };
  const pts = ins.insights.map((i) => [i.period_start, level[i.activity] || 0, i.total_events]);
  const box = $("#chart-activity");
  if (!pts.length) {
    box.replaceChildren(el("p", { class: "empty", text: "No insights yet." }));
    return;
  }
  const counts = { low: [], medium: [], high: [] };
  pts.forEach(([, l], i) => { counts[["", "low", "medium", "high"][l] || "low"][i] = l; });
  barChart(box, "activity level per period (1 low, 2 medium, 3 high)", pts.map((p) => p[0]), ["low", "medium", "high"], counts);
}

// Views and updates.
async function show(hash) {
  const [view, id] = hash.split("/");
  state.view = view;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("active", v.id === `view-${view}`);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  try {
    renderWall();
    if (view === "events") {
      await loadEvents();
      if (id) await openEvent(decodeURIComponent(id));
    }
    if (view === "timeline") await loadTimeline();
    if (view === "charts") await loadCharts();
    if (view === "health") renderHealth();
  } catch (e) {
    console.error(e);
  }
}

async function refreshCameras() {
  try {
    await loadCameras();
    renderWall();
    renderHealth();
  } catch (e) {
    console.error(e);
  }
}

async function appPage() {
  state.me = await api("/api/me");
  await loadCameras();
  $("#logout").hidden = state.me.auth === "none";
  $("#logout").addEventListener("click", async () => {
    await api("/api/logout", { method: "POST" }).catch(() => {});
    location.href = "/login";
  });
  $("#event-filter").addEventListener("change", () => loadEvents().catch(console.error));
  $("#more").addEventListener("click", () => loadEvents(true).catch(console.error));
  $("#modal-close").addEventListener("click", closeModal);
  $("#modal").addEventListener("click", (e) => { if (e.target.id === "modal") closeModal(); });
  const d = new Date();
  $("#timeline-form [name=day]").value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  $("#timeline-form").addEventListener("change", () => loadTimeline().catch(console.error));
  window.addEventListener("hashchange", () => show(location.hash.slice(1) || "live"));
  await show(location.hash.slice(1) || "live");
  // New events and status changes as they happen; the cameras' figures every 5 s.
  const es = new EventSource("/api/stream");
  es.addEventListener("event", (m) => onLiveEvent(JSON.parse(m.data)));
  es.addEventListener("status", () => refreshCameras());
  setInterval(refreshCameras, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "login") loginPage();
  else appPage().catch((e) => console.error(e));
});
