// Plain-canvas plots: time series, the phase dial, sparklines, the spectrum heatmap.
"use strict";

const Plots = (() => {
  const C = { grid: "#2a313a", text: "#8a94a3", G: "#5cc8ff", R: "#5be08a", S: "#ffb547",
              one: "#c58cff", W: "#ffffff55" };
  const PALETTE = ["#5cc8ff", "#5be08a", "#ffb547", "#ff6b6b", "#c58cff", "#f5e663", "#7de3d0", "#ff9ad5"];

  // Size the backing store to the element's CSS size (crisp on phones).  The
  // CSS size is read once per layout generation: reading it forces a layout,
  // and twenty sparklines a frame would force twenty.
  let generation = 0;
  window.addEventListener("resize", () => { generation++; });
  function fit(canvas) {
    const dpr = window.devicePixelRatio || 1;
    if (canvas._gen !== generation || !canvas._cw) {
      canvas._gen = generation; canvas._cw = canvas.clientWidth; canvas._ch = canvas.clientHeight;
    }
    const w = Math.max(1, Math.round(canvas._cw * dpr));
    const h = Math.max(1, Math.round(canvas._ch * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w: w / dpr, h: h / dpr };
  }

  // A fixed-size ring of (t, v) samples.
  class Ring {
    constructor(n) { this.t = new Float64Array(n); this.v = new Float32Array(n); this.n = 0; this.i = 0; }
    push(t, v) {
      this.t[this.i] = t; this.v[this.i] = v;
      this.i = (this.i + 1) % this.t.length; this.n = Math.min(this.n + 1, this.t.length);
    }
    each(fn) {
      const cap = this.t.length, start = (this.i - this.n + cap) % cap;
      for (let k = 0; k < this.n; k++) { const j = (start + k) % cap; fn(this.t[j], this.v[j], k); }
    }
    last() { return this.n ? this.v[(this.i - 1 + this.t.length) % this.t.length] : NaN; }
  }

  // series: [{ring | points:[[t,v]], color, width}]; opts: tmin, tmax, ymin, ymax, hlines, band
  function lines(canvas, series, opts) {
    const { ctx, w, h } = fit(canvas);
    const pad = { l: 26, r: 4, t: 4, b: 12 };
    const ymin = opts.ymin ?? 0, ymax = opts.ymax ?? 1;
    const tmin = opts.tmin, tmax = opts.tmax;
    const X = t => pad.l + (t - tmin) / Math.max(1e-9, tmax - tmin) * (w - pad.l - pad.r);
    const Y = v => h - pad.b - (v - ymin) / (ymax - ymin) * (h - pad.t - pad.b);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "10px system-ui"; ctx.fillStyle = C.text; ctx.strokeStyle = C.grid; ctx.lineWidth = 1;
    for (const y of [ymin, (ymin + ymax) / 2, ymax]) {
      ctx.beginPath(); ctx.moveTo(pad.l, Y(y)); ctx.lineTo(w - pad.r, Y(y)); ctx.stroke();
      ctx.fillText(y.toFixed(ymax < 1.01 ? 1 : 2), 2, Y(y) + 3);
    }
    for (const hl of opts.hlines || []) {
      ctx.setLineDash([4, 3]); ctx.strokeStyle = hl.color;
      ctx.beginPath(); ctx.moveTo(pad.l, Y(hl.y)); ctx.lineTo(w - pad.r, Y(hl.y)); ctx.stroke();
      ctx.setLineDash([]);
    }
    if (opts.band) {  // shaded spans (e.g. emergence) [[t0, t1], ...]
      ctx.fillStyle = "#c58cff22";
      for (const [a, b] of opts.band) ctx.fillRect(X(a), pad.t, Math.max(1, X(b) - X(a)), h - pad.t - pad.b);
    }
    if (opts.label) { ctx.fillStyle = C.text; ctx.fillText(opts.label, pad.l + 4, h - 2); }
    for (const s of series) {
      ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.5; ctx.beginPath();
      let first = true;
      const pt = (t, v) => {
        if (v == null || !isFinite(v) || t < tmin) { first = true; return; }
        const x = X(t), y = Y(Math.max(ymin, Math.min(ymax, v)));
        if (first) { ctx.moveTo(x, y); first = false; } else ctx.lineTo(x, y);
      };
      if (s.ring) s.ring.each(pt); else for (const p of s.points) pt(p[0], p[1]);
      ctx.stroke();
    }
  }

  // The phase dial: unit circle, Psi as a vector, its recent trail, the witness's W.
  function dial(canvas, psi, trail, wpsi, emerged) {
    const { ctx, w, h } = fit(canvas);
    const cx = w / 2, cy = h / 2, r = Math.min(w, h) / 2 - 10;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = C.grid; ctx.lineWidth = 1;
    for (const f of [1, 0.5]) { ctx.beginPath(); ctx.arc(cx, cy, r * f, 0, 2 * Math.PI); ctx.stroke(); }
    ctx.beginPath(); ctx.moveTo(cx - r, cy); ctx.lineTo(cx + r, cy); ctx.moveTo(cx, cy - r); ctx.lineTo(cx, cy + r); ctx.stroke();
    ctx.fillStyle = C.text; ctx.font = "10px system-ui";
    ctx.fillText("0°", cx + r - 14, cy - 3); ctx.fillText("90°", cx + 3, cy - r + 10);
    const P = z => [cx + z.re * r, cy - z.im * r];
    if (trail && trail.length) {
      ctx.strokeStyle = "#5cc8ff55"; ctx.beginPath();
      trail.forEach((z, k) => { const [x, y] = P(z); k ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.stroke();
    }
    if (wpsi) { const [x, y] = P(wpsi); ctx.strokeStyle = C.W; ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.stroke(); }
    if (psi) {
      const [x, y] = P(psi);
      ctx.strokeStyle = emerged ? C.one : C.G; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(x, y); ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle; ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill();
    }
  }

  // A sparkline of a ring's values (0..1) into a small canvas.
  function spark(canvas, ring, color) {
    if (canvas._gen === generation && canvas._cw === 0) return;  // hidden (phone layout)
    const { ctx, w, h } = fit(canvas);
    ctx.clearRect(0, 0, w, h);
    if (!ring || ring.n < 2) return;
    ctx.strokeStyle = color || C.G; ctx.lineWidth = 1.2; ctx.beginPath();
    const n = ring.n, step = w / (ring.t.length - 1), x0 = w - (n - 1) * step;
    ring.each((t, v, k) => {
      const x = x0 + k * step, y = h - 1 - Math.max(0, Math.min(1, v)) * (h - 2);
      k ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  }

  // Coherence 0..1 to a colour: dark blue through teal and green to yellow.
  const RAMP = [[13, 16, 40], [32, 74, 140], [25, 150, 160], [90, 200, 100], [250, 230, 70]];
  function heat(v) {
    const x = Math.max(0, Math.min(1, v)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
    const a = RAMP[i], b = RAMP[i + 1];
    return `rgb(${a.map((ai, j) => Math.round(ai + (b[j] - ai) * f)).join(",")})`;
  }

  // The per-lag spectrum over time: sp = /api/nodes/{node}/spectrum (times,
  // lags_ms, c per column and lag, bucket s); one row per lag (shortest at the
  // bottom), one cell per column, colour = c; a colour scale on the right.
  function heatmap(canvas, sp, tmin, tmax) {
    const { ctx, w, h } = fit(canvas);
    ctx.clearRect(0, 0, w, h);
    const pad = { l: 44, r: 30, t: 4, b: 14 }, K = sp.lags.length;
    ctx.font = "10px system-ui"; ctx.fillStyle = C.text;
    if (!K) { ctx.fillText("no spectrum yet", pad.l, h / 2); return; }
    const pw = w - pad.l - pad.r, rh = (h - pad.t - pad.b) / K;
    const X = t => pad.l + (t - tmin) / Math.max(1e-9, tmax - tmin) * pw;
    const lab = ms => ms == null ? "" : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
    sp.lags.forEach((lag, k) => {
      const y = h - pad.b - (k + 0.5) * rh + 3;
      ctx.fillText(sp.lags_ms.length ? lab(sp.lags_ms[k]) : `lag ${lag}`, 0, y);
    });
    sp.times.forEach((t, i) => {
      const x0 = Math.max(pad.l, X(t)), x1 = Math.min(pad.l + pw, X(t + sp.bucket));
      if (x1 <= x0) return;
      sp.c[i].forEach((v, k) => {
        ctx.fillStyle = heat(v);
        ctx.fillRect(x0, h - pad.b - (k + 1) * rh, x1 - x0 + 0.5, rh - 0.5);
      });
    });
    ctx.fillStyle = C.text;  // time axis: before now
    const span = tmax - tmin, step = [10, 15, 30, 60, 120, 300].find(v => span / v <= 6) || 600;
    for (let d = 0; d <= span; d += step) {
      const x = X(tmax - d), txt = !d ? "now" : d % 60 ? `-${d}s` : `-${d / 60}m`;
      ctx.fillText(txt, Math.max(pad.l, Math.min(x - 8, w - pad.r - 22)), h - 2);
    }
    const sx = w - pad.r + 8, sh = h - pad.t - pad.b;  // the colour scale
    for (let j = 0; j < sh; j++) { ctx.fillStyle = heat(1 - j / sh); ctx.fillRect(sx, pad.t + j, 8, 1.5); }
    ctx.fillStyle = C.text; ctx.fillText("1", sx + 10, pad.t + 8); ctx.fillText("0", sx + 10, h - pad.b);
  }

  const relayout = () => { generation++; };
  return { fit, relayout, Ring, lines, dial, spark, heatmap, heat, C, PALETTE };
})();
