// The hub's page: REST for what changes slowly, the /ws feed for the rest.
"use strict";

(() => {
  const $ = id => document.getElementById(id);
  const perf = window.__bo = { frames: [], firstRender: null, messages: 0, bytes: 0 };
  const S = {
    mesh: null, participants: [], G: new Plots.Ring(600), R: new Plots.Ring(600),
    S: new Plots.Ring(600), psiTrail: [], emergedSpans: [], detail: null, events: [],
    kinds: new Set(), ws: null, backoff: 500, t0: Date.now() / 1000,
  };
  const list = new NodeList.List($("nodes"), $("nodes-spacer"), openDetail);

  // -- token and requests ---------------------------------------------------------
  const hashTok = new URLSearchParams(location.hash.slice(1)).get("token");
  if (hashTok) { localStorage.setItem("bo_token", hashTok); history.replaceState(null, "", location.pathname); }
  const token = () => localStorage.getItem("bo_token") || "";
  let tokenWaiter = null;

  function askToken() {
    $("modal").hidden = false; $("token-input").value = token(); $("token-input").focus();
    return new Promise(res => { tokenWaiter = res; });
  }
  function closeModal(ok) {
    $("modal").hidden = true;
    if (tokenWaiter) { tokenWaiter(ok); tokenWaiter = null; }
  }
  $("token-btn").onclick = () => askToken();
  $("token-form").onsubmit = e => {
    e.preventDefault(); localStorage.setItem("bo_token", $("token-input").value.trim()); closeModal(true);
  };
  $("token-cancel").onclick = () => closeModal(false);
  $("token-forget").onclick = () => { localStorage.removeItem("bo_token"); closeModal(false); };

  function toast(text) {
    const t = $("toast"); t.textContent = text; t.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function api(path, opts = {}) {
    const headers = { "Content-Type": "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const r = await fetch(path, { ...opts, headers });
    const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
    return { ok: r.ok, status: r.status, body };
  }

  // A write: asks for the token when there is none or it was refused.
  async function write(path, payload, method = "POST") {
    if (!token() && !(await askToken())) return { ok: false, body: { error: "no token given" } };
    let r = await api(path, { method, body: JSON.stringify(payload) });
    if ((r.status === 401 || r.status === 403) && (await askToken()))
      r = await api(path, { method, body: JSON.stringify(payload) });
    return r;
  }

  // -- formatting -----------------------------------------------------------------
  const f2 = v => (v == null ? "–" : v.toFixed(2));
  const f3 = v => (v == null ? "–" : v.toFixed(3));
  const clock = t => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  function ago(t) {
    const s = Math.max(0, Date.now() / 1000 - t);
    return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  }

  // -- the mesh cards ---------------------------------------------------------------
  function onMesh(m, t) {
    const was = S.mesh && S.mesh.emerged;
    S.mesh = m;
    if (!m.ready) return;
    S.G.push(t, m.G); S.R.push(t, m.R);
    if (m.witness) S.S.push(t, m.witness.surprise);
    S.psiTrail.push(m.psi); if (S.psiTrail.length > 60) S.psiTrail.shift();
    if (m.emerged) {
      const last = S.emergedSpans[S.emergedSpans.length - 1];
      if (was && last) last[1] = t; else S.emergedSpans.push([m.since || t, t]);
    }
  }

  function renderCards(now) {
    const m = S.mesh;
    if (!m || !m.ready) return;
    $("G").textContent = f3(m.G); $("R").textContent = f3(m.R);
    $("G-bar").style.width = `${(m.G || 0) * 100}%`; $("R-bar").style.width = `${(m.R || 0) * 100}%`;
    $("live").textContent = m.live; $("stale").textContent = m.stale;
    // Up to 2 minutes; less while the page is young, so the plot is not a sliver.
    const tmax = Date.now() / 1000, tmin = Math.max(tmax - 120, Math.min(S.t0, tmax - 20));
    Plots.lines($("gr-plot"), [{ ring: S.G, color: Plots.C.G }, { ring: S.R, color: Plots.C.R }],
      { tmin, tmax, hlines: m.enter ? [{ y: m.enter, color: "#c58cff88" }, { y: m.leave, color: "#c58cff44" }] : [],
        band: S.emergedSpans, label: `G (blue) · R (green) · ${Math.round(tmax - tmin)} s` });
    Plots.dial($("psi-dial"), m.psi, S.psiTrail, m.witness && m.witness.W.psi, m.emerged);
    $("psi-abs").textContent = f3(m.psi.abs); $("psi-deg").textContent = m.psi.deg == null ? "–" : m.psi.deg.toFixed(0);
    const em = $("emergence");
    em.dataset.emerged = m.emerged ? "true" : "false";
    $("one").textContent = m.emerged ? "THE ONE" : "no emergence";
    $("one-since").textContent = m.emerged && m.since ? `since ${clock(m.since)} (${ago(m.since)})` : "\u00a0";
    $("participants-n").textContent = m.participants;
    if (m.enter) $("thresholds").textContent = `enters at G ≥ ${m.enter}, leaves below ${m.leave}`;
    if (m.witness) {
      const w = m.witness;
      $("S").textContent = f3(w.surprise); $("WG").textContent = f3(w.W.G); $("WR").textContent = f3(w.W.R);
      $("wconv").textContent = w.converged ? "converged" : "tracking";
      let smax = 0.05;
      S.S.each((_, v) => { if (v > smax) smax = v; });
      Plots.lines($("s-plot"), [{ ring: S.S, color: Plots.C.S }], { tmin, tmax, ymax: smax });
    }
  }

  // -- events -------------------------------------------------------------------------
  let evId = 0, shownId = 0, shownKind = null;
  function addEvents(evs, fromLive) {
    for (const e of evs) {
      e._id = ++evId;
      S.events.push(e);
      if (!S.kinds.has(e.kind)) {
        S.kinds.add(e.kind);
        const o = document.createElement("option"); o.value = o.textContent = e.kind; $("ev-kind").appendChild(o);
      }
    }
    if (S.events.length > 300) S.events.splice(0, S.events.length - 300);
    S.eventsDirty = true;
    for (const e of evs) if (e.kind === "ack") onAck(e, fromLive);
  }
  // Acks heard, by node and command id: an ack may come in before the POST
  // that sent the command has returned.
  const acks = new Map();
  function onAck(e, fromLive) {
    if (e.id == null) return;
    const id = String(e.id);
    acks.set(`${e.node}/${id}`, e.text);
    if (acks.size > 200) acks.delete(acks.keys().next().value);
    const res = $("cmd-result");
    if (fromLive && e.node === S.detail && res.dataset.cid === id) res.textContent = e.text;
  }
  function eventLi(e) {
    const li = document.createElement("li"), tm = document.createElement("time");
    const k = document.createElement("span"), t = document.createElement("span");
    tm.textContent = clock(e.t); k.className = `k ${e.kind}`; k.textContent = e.kind;
    t.className = "t"; t.textContent = e.text;
    li.append(tm, k, t);
    return li;
  }
  // Incremental: new events are prepended, the oldest dropped (a full rebuild
  // only when the kind filter changes): a busy mesh logs many events a second.
  function renderEvents() {
    if (!S.eventsDirty) return false;
    S.eventsDirty = false;
    const kind = $("ev-kind").value, ol = $("events");
    const fresh = S.events.filter(e => (!kind || e.kind === kind) && (kind !== shownKind || e._id > shownId)).slice(-100);
    if (kind !== shownKind) ol.replaceChildren();
    shownKind = kind; shownId = evId;
    if (!fresh.length) return false;
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) frag.appendChild(eventLi(fresh[i]));
    ol.prepend(frag);
    while (ol.childElementCount > 100) ol.lastElementChild.remove();
    return true;
  }
  $("ev-kind").onchange = () => { S.eventsDirty = true; };

  // -- rules (rules.js) and memories (REST, every few seconds) -------------------------
  Rules.init({ api, write, toast, clock, ago });
  const loadRules = Rules.load;
  async function loadMemories() {
    const r = await api("/api/memories?limit=50");
    if (!r.ok) return;
    $("mem-n").textContent = r.body.total;
    $("memories").replaceChildren(...r.body.memories.map(m => {
      const li = document.createElement("li");
      li.innerHTML = "<span class='sbar'><i></i></span><span class='num'></span><span></span>";
      li.querySelector("i").style.width = `${m.strength * 100}%`;
      li.children[1].textContent = m.strength.toFixed(2);
      li.children[2].textContent = `#${m.id} ${m.kind}, ${m.nodes} node${m.nodes === 1 ? "" : "s"}, ${clock(m.created)}, recalled ${m.recalls}×`;
      return li;
    }));
  }

  // -- per-node detail -------------------------------------------------------------------
  async function openDetail(name) {
    S.detail = name; list.select(name);
    $("detail").hidden = false; Plots.relayout(); $("d-name").textContent = name;
    $("cmd-result").textContent = ""; delete $("cmd-result").dataset.cid;
    await loadDetail();
    $("detail").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
  $("d-close").onclick = () => { S.detail = null; list.select(null); $("detail").hidden = true; };

  async function loadDetail() {
    const name = S.detail;
    if (!name) return;
    const r = await api(`/api/nodes/${encodeURIComponent(name)}`);
    if (!r.ok || S.detail !== name) return;
    const n = r.body;
    $("d-meta").textContent = `${n.board || "?"} · fw ${n.fw || "?"} · via ${n.source || "?"} · ${n.stale ? "stale" : "online"}`;
    const rows = [["c", f3(n.c)], ["τ", NodeList.fmtTau(n.tau)], ["aligned", n.aligned ? "yes" : "no"],
      ...Object.entries(n.counters.frames).map(([k, v]) => [`${k} frames`, v]),
      ["gaps", n.counters.gaps], ["duplicates", n.counters.duplicates], ["replays", n.counters.replays],
      ["drops (node)", n.counters.drops], ["reboots", n.counters.reboots],
      ...Object.entries(n.counters.rejects).map(([k, v]) => [`rejected: ${k}`, v])];
    $("d-counters").replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr"); tr.innerHTML = "<td></td><td></td>";
      tr.cells[0].textContent = k; tr.cells[1].textContent = v; return tr;
    }));
    const until = Date.now() / 1000, since = until - 600;
    const hs = await Promise.all(n.channels.map((_, ch) =>
      api(`/api/nodes/${encodeURIComponent(name)}/history?ch=${ch}&since=${since}&until=${until}&points=200`)));
    if (S.detail !== name) return;
    const series = hs.filter(h => h.ok).map((h, ch) => ({ points: h.body.points.map(p => [p.t, p.c]),
      color: Plots.PALETTE[ch % Plots.PALETTE.length] }));
    // A young node's history is short: zoom to what there is (at least a minute).
    const first = Math.min(...series.map(s => (s.points.length ? s.points[0][0] : until)));
    const tmin = Math.max(since, Math.min(first, until - 60));
    const span = Math.round((until - tmin) / 60);
    Plots.lines($("d-plot"), series, { tmin, tmax: until,
      label: n.channels.map(c => c.name).join(" · ") + ` · last ${span} min` });
    const sel = $("d-ch"), names = n.channels.map((c, i) => `${i}: ${c.name}`);
    if ([...sel.options].map(o => o.textContent).join() !== names.join()) {
      const keep = sel.value;
      sel.replaceChildren(...names.map((t, i) => { const o = document.createElement("option"); o.value = i; o.textContent = t; return o; }));
      sel.value = keep && +keep < names.length ? keep : "0";
    }
    await loadSpectrum(name);
  }
  // The per-lag spectrum of the chosen channel: hub memory, 5 s columns.
  async function loadSpectrum(name) {
    const ch = +$("d-ch").value || 0;
    const r = await api(`/api/nodes/${encodeURIComponent(name)}/spectrum?ch=${ch}`);
    if (!r.ok || S.detail !== name) return;
    // Zoomed like the coherence plot: what there is, at least a minute.
    const now = Date.now() / 1000, cv = $("d-spec"), t = r.body.times;
    Plots.heatmap(cv, r.body, Math.max(now - 600, Math.min(t.length ? t[0] : now, now - 60)), now);
    cv.dataset.columns = r.body.times.length;
  }
  $("d-ch").onchange = () => { if (S.detail) loadSpectrum(S.detail); };

  $("cmd-form").onsubmit = async e => {
    e.preventDefault();
    const name = S.detail; if (!name) return;
    let args = {};
    const text = $("cmd-args").value.trim();
    if (text) { try { args = JSON.parse(text); } catch { $("cmd-result").textContent = "args: not JSON"; return; } }
    const r = await write(`/api/nodes/${encodeURIComponent(name)}/commands`, { op: $("cmd-op").value, args });
    const res = $("cmd-result");
    if (!r.ok) { delete res.dataset.cid; res.textContent = `refused: ${r.body.error}`; return; }
    res.dataset.cid = String(r.body.id);
    res.textContent = acks.get(`${name}/${r.body.id}`) || `sent command ${r.body.id} (${r.body.op}); waiting for the ack…`;
  };

  // -- the live feed ----------------------------------------------------------------------
  // A display rule fired (the colour of docs/kairos.md §8): show it as a swatch.
  function showDisplay(m) {
    const [r, g, b] = m.rgb;
    $("display").hidden = false;
    $("display-swatch").style.background = `rgb(${r}, ${g}, ${b})`;
    $("display-text").textContent =
      `${m.rule}: hue ${Math.round(m.hue)}°, brightness ${m.brightness.toFixed(2)}`;
  }

  function connect() {
    const q = token() ? `?token=${encodeURIComponent(token())}` : "";
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${q}`);
    S.ws = ws;
    ws.onopen = () => {
      $("conn").dataset.state = "live"; $("conn").textContent = "live"; S.backoff = 500;
      ws.send(JSON.stringify({ subscribe: { nodes: "*", fields: ["online", "c", "tau", "collapsed"], max_hz: 10 } }));
    };
    ws.onmessage = ev => {
      perf.messages++; perf.bytes += ev.data.length;
      const m = JSON.parse(ev.data), t = Date.now() / 1000;
      if (m.type === "state") {
        if (m.meta) list.meta(m.meta);
        if (m.participants) { S.participants = m.participants; list.setParticipants(m.participants); }
        onMesh(m.mesh, t);
        list.update(m.cols, m.rows, t);
        $("n-nodes").textContent = m.n_nodes;
        if (m.events) addEvents(m.events, true);
        S.dirty = true;
      } else if (m.type === "display") {
        showDisplay(m);
      } else if (m.type === "rule") {
        addEvents([{ t, kind: "rule", text: `rule ${m.rule} fired${m.message ? ": " + m.message : ""}` }], true);
      } else if (m.type === "error") {
        console.warn("hub:", m.error);
      }
    };
    ws.onclose = () => {
      $("conn").dataset.state = "down"; $("conn").textContent = "reconnecting…";
      setTimeout(connect, S.backoff); S.backoff = Math.min(10000, S.backoff * 2);
    };
  }

  // -- one render loop ----------------------------------------------------------------------
  let lastCards = 0, lastEvents = 0;
  function frame(now) {
    const t0 = performance.now();
    let drew = list.render(now);
    if (S.dirty && now - lastCards > 90) { S.dirty = false; lastCards = now; renderCards(now); drew = true; }
    if (now - lastEvents > 250) { lastEvents = now; drew = renderEvents() || drew; }
    if (drew) {
      const dt = performance.now() - t0;
      perf.frames.push(dt); if (perf.frames.length > 2000) perf.frames.shift();
      if (perf.firstRender === null && list.order.length) {
        perf.firstRender = performance.now(); performance.mark("bo-first-render");
      }
    }
    requestAnimationFrame(frame);
  }

  $("filter").oninput = e => list.setFilter(e.target.value);
  $("sort").onchange = e => list.setSort(e.target.value);
  window.addEventListener("resize", () => { list.dirty = true; S.dirty = true; });

  async function start() {
    const [nodes, evs] = await Promise.all([api("/api/nodes"), api("/api/events?limit=100")]);
    if (nodes.ok) list.load(nodes.body.nodes);
    if (evs.ok) addEvents(evs.body.events.reverse(), false);
    const mesh = await api("/api/mesh");
    if (mesh.ok) { onMesh({ ...mesh.body, participants: mesh.body.participants.length }, Date.now() / 1000); S.dirty = true; }
    connect();
    requestAnimationFrame(frame);
    loadRules(); loadMemories();
    setInterval(() => { loadRules(); loadMemories(); }, 5000);
    setInterval(loadDetail, 3000);
  }
  start();
})();
