/* session-monitor dashboard page.
 *
 * Receives a snapshot and then live batches of page messages over Server-Sent Events
 * (/events), keeps bounded state, and redraws at most every 50 ms. Session time `t`
 * (seconds) is the x axis; staleness is measured on the wall clock: with no signal
 * for STALE_S seconds the indicator greys out and says so, and never shows an old
 * value as current.
 */
"use strict";

(function () {
  const STALE_S = 2.0;
  const WATCH_AT = 0.4;
  const WINDOW_S = 300;
  const MIN_STEP_S = 0.1;
  const TRANSCRIPT_LINES = 6;
  const MAX_MARKS = 400;
  const MAX_BANDS = 2500;
  const LABELS = { rupture: "rupture", false_alarm: "false alarm" };
  const SVGNS = "http://www.w3.org/2000/svg";

  const token = new URLSearchParams(location.search).get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const $ = (id) => document.getElementById(id);

  let S = emptyState();
  let connected = false;
  let renderPending = false;

  function emptyState() {
    return {
      session: null, ended: null, nowT: 0,
      points: [],          // [t, likelihood, withdrawal, confrontation]
      latest: null,        // the latest signal message (with evidence)
      lastSignalWall: null, // performance.now() at which it arrived (ms)
      bands: [],           // {kind, start, end|null}
      markers: [], annotations: [],
      transcript: [], interim: {},
      health: null, input: {}, levels: {}, timeline: null, figures: null,
    };
  }

  /* ---------- formatting ---------- */
  function clock(t) {
    if (t == null || !isFinite(t)) return "--:--";
    t = Math.max(0, Math.floor(t));
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(s).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }
  function pct(v) { return v == null ? "—" : Math.round(v * 100) + "%"; }
  function fixed(v) { return v == null ? "—" : v.toFixed(2); }

  /* ---------- state updates ---------- */
  function addPoint(p) {
    const pts = S.points;
    if (pts.length && p[0] - pts[pts.length - 1][0] < MIN_STEP_S) pts[pts.length - 1] = p;
    else pts.push(p);
    const from = p[0] - WINDOW_S;
    let drop = 0;
    while (drop < pts.length && pts[drop][0] < from) drop++;
    if (drop) pts.splice(0, drop);
  }

  function applyAlert(m) {
    let open = null;
    for (let i = S.bands.length - 1; i >= 0; i--) {
      const b = S.bands[i];
      if (b.kind === m.kind && b.end == null) { open = b; break; }
    }
    if (m.state === "on" && !open) {
      S.bands.push({ kind: m.kind, start: m.t, end: null });
      if (S.bands.length > MAX_BANDS) S.bands.shift();
      return true;
    }
    if (m.state === "off" && open) open.end = m.t;
    return false;
  }

  function activeAlerts() {
    return S.bands.filter((b) => b.end == null).map((b) => b.kind);
  }

  function applySnapshot(s) {
    S = emptyState();
    S.session = s.session; S.ended = s.ended; S.nowT = s.now_t || 0;
    S.points = s.signals || [];
    S.latest = s.latest;
    S.lastSignalWall = s.latest ? performance.now() - (s.latest_age_s || 0) * 1000 : null;
    S.bands = s.bands || [];
    S.markers = s.markers || [];
    S.annotations = s.annotations || [];
    for (const line of s.transcript || []) {
      if (line.final) S.transcript.push(line); else S.interim[line.speaker] = line;
    }
    S.health = s.health;
    for (const p of s.input || []) S.input[p.problem + ":" + p.channel] = p;
    for (const lv of s.levels || []) S.levels[lv.speaker] = lv;
    S.timeline = s.timeline;
    S.figures = s.figures || null;
    if (s.title) $("title").textContent = s.title;
  }

  function apply(m) {
    if (typeof m.t === "number" && m.t > S.nowT) S.nowT = m.t;
    switch (m.type) {
      case "signal":
        if (!("evidence" in m)) m.evidence = S.latest ? S.latest.evidence : [];  // unchanged
        addPoint([m.t, m.likelihood, m.withdrawal, m.confrontation]);
        S.latest = m;
        S.lastSignalWall = performance.now();
        break;
      case "alert":
        if (applyAlert(m)) chime();
        break;
      case "marker":
        S.markers.push(m);
        while (S.markers.length > MAX_MARKS || (S.markers.length && S.markers[0].t < S.nowT - WINDOW_S)) S.markers.shift();
        break;
      case "transcript":
        if (m.final) {
          delete S.interim[m.speaker];
          S.transcript.push(m);
          while (S.transcript.length > TRANSCRIPT_LINES) S.transcript.shift();
        } else S.interim[m.speaker] = m;
        break;
      case "health":
        if (m.problem) {  // an input problem: kept until it clears
          if (m.cleared) delete S.input[m.problem + ":" + m.channel]; else S.input[m.problem + ":" + m.channel] = m;
        } else S.health = m;
        break;
      case "mi_figures": S.figures = m; break;
      case "level": S.levels[m.speaker] = m; break;
      case "annotation":
        S.annotations.push(m);
        if (S.annotations.length > MAX_BANDS) S.annotations.shift();
        break;
      case "session":
        if (m.state === "started") { S = emptyState(); S.session = m; S.nowT = m.t; }
        else if (m.state === "ended") S.ended = m;
        break;
      case "timeline": S.timeline = m; break;
    }
  }

  /* ---------- the indicator ---------- */
  function indicatorState() {
    if (S.ended) return "ended";
    if (!S.latest) return "waiting";
    const ageS = (performance.now() - S.lastSignalWall) / 1000;
    if (!connected || ageS > STALE_S) return "stale";
    if (activeAlerts().length) return "rupture";
    if (S.latest.likelihood != null && S.latest.likelihood >= WATCH_AT) return "watch";
    return "calm";
  }

  function renderIndicator() {
    const state = indicatorState();
    const el = $("indicator");
    const audioLost = S.health && S.health.audio_ok === false;
    let word = state, note = "", number = "—";
    const L = S.latest;
    if (state === "waiting") note = connected ? "waiting for the first signal" : "connecting to the program…";
    else if (state === "ended") note = "session ended at " + clock(S.ended.t) + " — whole-session timeline below";
    else if (state === "stale") {
      const ageS = (performance.now() - S.lastSignalWall) / 1000;
      word = audioLost ? "no audio" : "stale";
      note = !connected ? "lost contact with the program — reconnecting"
        : "signal stale: no update for " + Math.max(2, Math.round(ageS)) + " s";
      if (audioLost && connected) note = "audio lost — " + note;
    } else {
      number = pct(L.likelihood);
      if (state === "rupture") {
        const kinds = activeAlerts().filter((k) => k && k !== "rupture");
        note = (kinds.length ? kinds.join(" + ") + " " : "") + "alert on";
      } else if (state === "watch") {
        note = (L.withdrawal || 0) >= (L.confrontation || 0) ? "leaning withdrawal" : "leaning confrontation";
      } else note = "no sign of rupture";
      if (audioLost) note = "audio lost — signal unreliable";
    }
    el.dataset.state = state;
    $("ind-word").textContent = word;
    $("likelihood").textContent = number;
    $("ind-note").textContent = note;
    const live = state === "calm" || state === "watch" || state === "rupture";
    document.querySelector(".side").classList.toggle("stale", !live);
    $("spark").classList.toggle("stale", !live);
    renderBars(live ? L : null);
    renderEvidence(live);
    document.title = (live ? word + " " + number : word) + " · session-monitor";
  }

  function renderBars(L) {
    for (const kind of ["withdrawal", "confrontation"]) {
      const row = $("bar-" + kind);
      const v = L ? L[kind] : null;
      row.querySelector(".bar-fill").style.width = v == null ? "0%" : Math.round(Math.min(1, Math.max(0, v)) * 100) + "%";
      row.querySelector(".bar-value").textContent = fixed(v);
      row.querySelector(".bar").setAttribute("aria-valuenow", v == null ? "0" : String(v));
    }
  }

  function renderEvidence(live) {
    const ul = $("evidence");
    const items = (live && S.latest && S.latest.evidence) || [];
    const key = live + JSON.stringify(items);
    if (ul.dataset.key === key) return;
    ul.dataset.key = key;
    ul.replaceChildren();
    if (!items.length) {
      const li = document.createElement("li"); li.className = "muted";
      li.textContent = live ? "no evidence right now" : "no current evidence";
      ul.append(li); return;
    }
    for (const ev of items.slice(0, 3)) {
      const li = document.createElement("li");
      li.dataset.kind = ev.kind;
      li.textContent = ev.explanation || ev.marker.replace(/_/g, " ");
      const k = document.createElement("span"); k.className = "ev-kind";
      k.textContent = ev.kind + (ev.marker ? " · " + ev.marker.replace(/_/g, " ") : "");
      li.append(k);
      ul.append(li);
    }
  }

  /* ---------- charts ---------- */
  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVGNS, name);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text != null) el.textContent = text;
    return el;
  }

  function linePath(points, idx, x, y) {
    let d = "";
    for (const p of points) {
      if (p[idx] == null) continue;
      d += (d ? "L" : "M") + x(p[0]).toFixed(1) + "," + y(p[idx]).toFixed(1);
    }
    return d;
  }

  function drawChart(svg, o) {
    const W = Math.max(200, svg.clientWidth || 800), H = Math.max(80, svg.clientHeight || 160);
    const padL = 34, padR = 8, padT = 8, padB = 20;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const t0 = o.t0, t1 = Math.max(o.t1, o.t0 + 1);
    const x = (t) => padL + ((t - t0) / (t1 - t0)) * (W - padL - padR);
    const y = (v) => padT + (1 - Math.min(1, Math.max(0, v))) * (H - padT - padB);
    const g = [];
    for (const v of [0, 0.5, 1]) {
      g.push(svgEl("line", { class: "grid", x1: padL, x2: W - padR, y1: y(v), y2: y(v) }));
      g.push(svgEl("text", { x: padL - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(1)));
    }
    for (const b of o.bands) {
      const s = Math.max(t0, b.start), e = Math.min(t1, b.end == null ? o.now : b.end);
      if (e <= t0 || s >= t1 || e < s) continue;
      const xs = x(s), xe = Math.max(x(e), xs + 2);
      g.push(svgEl("rect", { class: "band", x: xs, y: padT, width: xe - xs, height: H - padT - padB }));
      g.push(svgEl("line", { class: "band-edge", x1: xs, x2: xs, y1: padT, y2: H - padB }));
      if (xe - xs > 44) g.push(svgEl("text", { x: xs + 4, y: padT + 14 }, "alert"));
      else g.push(svgEl("text", { x: xs - 4, y: padT + 14, "text-anchor": "end" }, "alert"));
    }
    g.push(svgEl("line", { class: "watch-line", x1: padL, x2: W - padR, y1: y(WATCH_AT), y2: y(WATCH_AT) }));
    for (const tick of o.ticks(t0, t1)) {
      g.push(svgEl("text", { x: x(tick.t), y: H - 4, "text-anchor": tick.anchor || "middle" }, tick.label));
    }
    for (const mk of o.markers || []) {
      if (mk.t < t0 || mk.t > t1) continue;
      g.push(svgEl("rect", { class: "mark-" + mk.kind, x: x(mk.t) - 2, y: H - padB - 8, width: 4, height: 8 },
                   null));
    }
    for (const a of o.annotations) {
      if (a.t < t0 || a.t > t1) continue;
      const label = a.label === "rupture" ? "R" : a.label === "false_alarm" ? "F" : "•";
      const line = svgEl("line", { class: "annot", x1: x(a.t), x2: x(a.t), y1: padT, y2: H - padB });
      line.append(svgEl("title", {}, (LABELS[a.label] || a.label) + " at " + clock(a.t)));
      g.push(line, svgEl("text", { class: "annot-label", x: x(a.t) + 3, y: H - padB - 12 }, label));
    }
    const lik = linePath(o.points, 1, x, y);
    if (o.area && lik) {
      const first = o.points.find((p) => p[1] != null), last = [...o.points].reverse().find((p) => p[1] != null);
      g.push(svgEl("path", { class: "lik-area",
        d: lik + "L" + x(last[0]).toFixed(1) + "," + y(0) + "L" + x(first[0]).toFixed(1) + "," + y(0) + "Z" }));
    }
    if (o.subscores) {
      g.push(svgEl("path", { class: "wd-line", d: linePath(o.points, 2, x, y) }));
      g.push(svgEl("path", { class: "cf-line", d: linePath(o.points, 3, x, y) }));
    }
    g.push(svgEl("path", { class: "lik-line", id: svg.id + "-line", d: lik }));
    svg.replaceChildren(...g);
    svg.dataset.points = String(o.points.length);
  }

  function renderSpark() {
    const now = S.points.length ? S.points[S.points.length - 1][0] : S.nowT;
    drawChart($("spark"), {
      t0: now - WINDOW_S, t1: now, now: now, points: S.points, bands: S.bands, area: true,
      markers: S.markers, annotations: S.annotations,
      ticks: (t0, t1) => [
        { t: t0, label: "−5 min", anchor: "start" }, { t: t0 + 60, label: "−4" }, { t: t0 + 120, label: "−3" },
        { t: t0 + 180, label: "−2" }, { t: t0 + 240, label: "−1" }, { t: t1, label: "now", anchor: "end" },
      ],
    });
  }

  function renderTimeline() {
    const box = $("timeline-box");
    const show = !!(S.ended && S.timeline);
    box.hidden = !show;
    $("spark-box").hidden = show;
    if (!show) return;
    const pts = S.timeline.points || [];
    const end = Math.max(S.ended.t, pts.length ? pts[pts.length - 1][0] : 0, 1);
    drawChart($("timeline"), {
      t0: 0, t1: end, now: end, points: pts, bands: S.bands, subscores: true, annotations: S.annotations,
      ticks: (t0, t1) => {
        const out = [];
        const steps = [30, 60, 120, 300, 600, 900, 1800];
        const step = steps.find((s) => (t1 - t0) / s <= 8) || 3600;
        for (let t = 0; t <= t1 - step * 0.4; t += step) out.push({ t: t, label: clock(t), anchor: t ? "middle" : "start" });
        out.push({ t: t1, label: clock(t1), anchor: "end" });
        return out;
      },
    });
  }

  function renderTranscript() {
    const ul = $("transcript");
    const lines = [...S.transcript, ...Object.values(S.interim)];
    ul.replaceChildren();
    if (!lines.length) {
      const li = document.createElement("li"); li.className = "muted"; li.textContent = "no transcript yet";
      ul.append(li); return;
    }
    // newest first: the latest words sit at the top of the box, in view at a glance
    for (const line of lines.slice(-TRANSCRIPT_LINES).reverse()) {
      const li = document.createElement("li");
      if (!line.final) li.className = "interim";
      if (!line.text) li.classList.add("muted");  // a session that keeps no words: its timing only
      const spk = document.createElement("span"); spk.className = "spk"; spk.textContent = line.speaker;
      li.append(spk, document.createTextNode(line.text || "(words not kept)"));
      ul.append(li);
    }
  }

  function renderHealth() {
    const levels = $("levels");
    levels.replaceChildren();
    for (const speaker of Object.keys(S.levels).sort()) {
      const lv = S.levels[speaker];
      const span = document.createElement("span");
      span.className = "level" + (lv.speaking ? " speaking" : "");
      const meter = document.createElement("span"); meter.className = "meter";
      const fill = document.createElement("span"); fill.className = "meter-fill";
      const db = lv.intensity_db == null ? -90 : lv.intensity_db;
      fill.style.width = Math.round(Math.min(1, Math.max(0, (db + 70) / 60)) * 100) + "%";
      meter.append(fill);
      span.append(document.createTextNode(speaker + " "), meter,
                  document.createTextNode(lv.intensity_db == null ? "" : " " + Math.round(db) + " dB"));
      span.title = speaker + (lv.speaking ? " speaking" : " silent");
      levels.append(span);
    }
    const hints = $("input-hints");
    hints.replaceChildren();
    for (const p of Object.values(S.input)) {
      const li = document.createElement("span");
      li.className = "input-hint" + (p.problem === "dual_mono" ? "" : " warn");
      li.dataset.problem = p.problem;
      li.textContent = (p.problem === "dual_mono" ? "ℹ " : "⚠ ") + p.hint;
      hints.append(li);
    }
    const h = S.health;
    const audio = $("audio");
    if (!h) { audio.dataset.ok = "unknown"; audio.textContent = "audio —"; return; }
    audio.dataset.ok = String(h.audio_ok);
    audio.textContent = h.audio_ok ? "audio ok" : "⚠ AUDIO LOST";
    const dropped = $("dropped");
    dropped.textContent = "dropped " + h.overflows + (h.asr_skipped ? " · ASR skipped " + h.asr_skipped : "");
    dropped.classList.toggle("warn", h.overflows > 0 || h.asr_skipped > 0);
    const asr = $("asr");
    asr.textContent = "ASR lag " + (h.asr_lag_s == null ? "—" : h.asr_lag_s.toFixed(1) + " s") +
      " · queue " + h.asr_queue + (h.asr_errors ? " · errors " + h.asr_errors : "");
    asr.classList.toggle("warn", (h.asr_lag_s || 0) > 5 || h.asr_errors > 0);
    $("health-msg").textContent = h.message || "";
  }

  function renderFigures() {
    const f = S.figures, box = $("figures");
    if (!box) return;
    if (!f) { box.textContent = "MI figures: waiting for the first classified turn"; return; }
    const pct = (v) => (v == null ? "—" : Math.round(100 * v) + "%");
    box.textContent = "reflections : questions " + (f.reflection_to_question == null ? "—" : f.reflection_to_question.toFixed(1)) +
      " · complex reflections " + pct(f.complex_reflection_share) +
      " · open questions " + pct(f.open_question_share) +
      " · client change talk " + f.change_talk + " vs sustain " + f.sustain_talk +
      " · advice or information in " + pct(f.input_share) + " of your turns";
  }

  function render() {
    renderPending = false;
    renderFigures();
    $("clock").textContent = clock(S.nowT);
    renderIndicator();
    if (!$("spark-box").hidden || !S.ended) renderSpark();
    renderTimeline();
    renderTranscript();
    renderHealth();
  }

  function schedule() {
    if (!renderPending) { renderPending = true; setTimeout(render, 50); }
  }

  /* ---------- sound (opt-in) ---------- */
  let audioCtx = null;
  function soundOn() { return $("tog-sound").checked; }
  function ensureAudio() {
    if (!audioCtx && window.AudioContext) audioCtx = new AudioContext();
    if (audioCtx && audioCtx.state === "suspended") audioCtx.resume();
  }
  function chime() {
    if (!soundOn()) return;
    try {
      ensureAudio();
      if (!audioCtx) return;
      const t = audioCtx.currentTime, osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
      osc.type = "sine";
      osc.frequency.setValueAtTime(523, t);
      osc.frequency.exponentialRampToValueAtTime(392, t + 0.6);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.06, t + 0.05);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.9);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(t); osc.stop(t + 1);
    } catch (e) { /* sound is a nicety */ }
  }

  /* ---------- annotation buttons ---------- */
  let confirmTimer = null;
  function showConfirmation(text, isError) {
    const el = $("confirm");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => { el.textContent = ""; }, isError ? 8000 : 4000);
  }
  async function annotate(label, button) {
    button.disabled = true;
    const at = S.nowT;
    try {
      const headers = { "Content-Type": "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      const r = await fetch("annotate", { method: "POST", headers, body: JSON.stringify({ label, note: "" }) });
      if (r.status === 204) showConfirmation("✓ marked " + LABELS[label] + " at " + clock(at));
      else {
        let msg = "HTTP " + r.status;
        try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
        showConfirmation("not saved: " + msg, true);
      }
    } catch (e) {
      showConfirmation("not saved: no connection to the program", true);
    } finally {
      setTimeout(() => { button.disabled = false; }, 800);
    }
  }

  /* ---------- toggles (remembered) ---------- */
  function store(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function stored(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  function setup() {
    const tTog = $("tog-transcript"), sTog = $("tog-sound");
    tTog.checked = stored("session-monitor.transcript") !== "hidden";
    $("transcript-box").hidden = !tTog.checked;
    tTog.addEventListener("change", () => {
      $("transcript-box").hidden = !tTog.checked;
      store("session-monitor.transcript", tTog.checked ? "shown" : "hidden");
    });
    sTog.checked = stored("session-monitor.sound") === "on";
    sTog.addEventListener("change", () => {
      store("session-monitor.sound", sTog.checked ? "on" : "off");
      if (sTog.checked) ensureAudio();
    });
    if (sTog.checked) document.addEventListener("pointerdown", ensureAudio, { once: true });
    $("btn-rupture").addEventListener("click", (e) => annotate("rupture", e.currentTarget));
    $("btn-false").addEventListener("click", (e) => annotate("false_alarm", e.currentTarget));
    window.addEventListener("resize", schedule);
    setInterval(renderIndicator, 250);  // staleness shows even when nothing arrives
    connect();
    render();
  }

  function setConn(state, text) {
    connected = state === "live";
    const el = $("conn");
    el.dataset.state = state;
    el.textContent = text;
  }

  function connect() {
    const es = new EventSource("events" + query);
    es.addEventListener("open", () => setConn("live", "live"));
    es.addEventListener("error", () => { setConn("lost", "reconnecting…"); schedule(); });
    es.addEventListener("snapshot", (e) => {
      setConn("live", "live");
      applySnapshot(JSON.parse(e.data));
      schedule();
    });
    es.addEventListener("message", (e) => {
      for (const m of JSON.parse(e.data)) apply(m);
      schedule();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
