// The node list: a virtual list (only the visible rows exist in the DOM), so a
// mesh of 1,000 nodes costs what 20 rows cost.
"use strict";

const NodeList = (() => {
  const SPARK = 90;  // samples per sparkline

  function fmtTau(s) {
    if (s == null) return "–";
    return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
  }

  class List {
    constructor(el, spacer, onPick) {
      this.el = el; this.spacer = spacer; this.onPick = onPick;
      this.nodes = new Map();  // name -> row data
      this.order = []; this.filter = ""; this.sort = "name"; this.selected = null;
      this.participants = new Set();
      this.pool = []; this.dirty = true; this.orderDirty = true; this.lastSort = 0;
      this.rowH = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--row")) || 30;
      el.addEventListener("scroll", () => { this.dirty = true; }, { passive: true });
      el.addEventListener("click", e => {
        const row = e.target.closest(".nrow");
        if (row && row.dataset.node) this.onPick(row.dataset.node);
      });
    }

    node(name) {
      let n = this.nodes.get(name);
      if (!n) {
        n = { name, board: "", transport: "", online: true, stale: false, c: null, tau: null,
              collapsed: false, ring: new Plots.Ring(SPARK) };
        this.nodes.set(name, n); this.orderDirty = true;
      }
      return n;
    }

    // From GET /api/nodes rows.
    load(rows) {
      for (const r of rows) {
        const n = this.node(r.node);
        Object.assign(n, { board: r.board || "", transport: r.transport || "", online: r.online && !r.stale,
                           stale: r.stale, c: r.c, tau: r.tau, collapsed: r.collapsed });
        if (r.c != null && n.ring.n === 0) n.ring.push(Date.now() / 1000, r.c);
      }
      this.dirty = true;
    }

    meta(meta) {
      for (const [name, m] of Object.entries(meta)) {
        const n = this.node(name); n.board = m.board || ""; n.transport = m.transport || "";
      }
      this.orderDirty = true; this.dirty = true;
    }

    // From a WebSocket state message: cols + rows.
    update(cols, rows, t) {
      const ix = {}; cols.forEach((c, k) => { ix[c] = k; });
      for (const r of rows) {
        const n = this.node(r[0]);
        if ("online" in ix) { const on = r[ix.online]; if (on !== n.online) this.orderDirty = true; n.online = on; n.stale = !on; }
        if ("c" in ix) { n.c = r[ix.c]; if (n.c != null) n.ring.push(t, n.c); }
        if ("tau" in ix) n.tau = r[ix.tau];
        if ("collapsed" in ix) n.collapsed = r[ix.collapsed];
      }
      if (rows.length) this.dirty = true;
      if (this.sort === "c" && rows.length) this.orderDirty = true;
    }

    setParticipants(list) { this.participants = new Set(list); this.dirty = true; }
    setFilter(f) { this.filter = f.trim().toLowerCase(); this.orderDirty = true; this.el.scrollTop = 0; }
    setSort(s) { this.sort = s; this.orderDirty = true; this.lastSort = 0; }
    select(name) { this.selected = name; this.dirty = true; }

    reorder(now) {
      // Re-sorting by a live value at most once a second, or rows would never hold still.
      if (!this.orderDirty || (this.sort === "c" && now - this.lastSort < 1000 && this.order.length)) return;
      this.orderDirty = false; this.lastSort = now;
      const f = this.filter;
      let names = [...this.nodes.values()].filter(n => !f || n.name.toLowerCase().includes(f) ||
        n.board.toLowerCase().includes(f) || n.transport.toLowerCase().includes(f));
      const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      if (this.sort === "c") names.sort((a, b) => (b.c ?? -1) - (a.c ?? -1) || byName(a, b));
      else if (this.sort === "status") names.sort((a, b) => (a.online - b.online) || byName(a, b));
      else names.sort(byName);
      this.order = names.map(n => n.name);
      this.spacer.style.height = `${this.order.length * this.rowH}px`;
      this.dirty = true;
    }

    makeRow() {
      const row = document.createElement("div");
      row.className = "nrow";
      row.innerHTML = '<span class="name"></span><span class="hide-s board"></span><span class="hide-s via"></span>' +
        '<span class="st"><span class="badge"></span></span><span class="num cv"><span class="cbar"><i></i></span><b></b></span>' +
        '<span class="num tau"></span><span class="hide-s"><canvas width="100" height="22"></canvas></span>';
      const q = s => row.querySelector(s);
      row._f = { name: q(".name"), board: q(".board"), via: q(".via"), badge: q(".badge"),
                 cbar: q(".cbar i"), c: q(".cv b"), tau: q(".tau"), spark: q("canvas") };
      this.el.appendChild(row);
      return row;
    }

    render(now) {
      this.reorder(now);
      if (!this.dirty) return false;
      this.dirty = false;
      const h = this.el.clientHeight || 400, top = this.el.scrollTop;
      const first = Math.max(0, Math.floor(top / this.rowH) - 2);
      const last = Math.min(this.order.length, Math.ceil((top + h) / this.rowH) + 2);
      while (this.pool.length < last - first) this.pool.push(this.makeRow());
      this.pool.forEach((row, k) => {
        const i = first + k;
        if (i >= last) { row.style.display = "none"; row.dataset.node = ""; return; }
        const n = this.nodes.get(this.order[i]), f = row._f;
        row.style.display = ""; row.style.top = `${i * this.rowH}px`;
        if (row.dataset.node !== n.name) { row.dataset.node = n.name; f.name.textContent = n.name; f.name.title = n.name; }
        f.board.textContent = n.board; f.via.textContent = n.transport;
        const state = !n.online ? (n.stale ? "stale" : "off") : n.collapsed ? "coll" : "";
        f.badge.className = "badge " + state;
        f.badge.textContent = !n.online ? "stale" : n.collapsed ? "collapse" : "online";
        f.c.textContent = n.c == null ? "–" : n.c.toFixed(2);
        f.cbar.style.width = `${Math.round((n.c || 0) * 100)}%`;
        f.tau.textContent = fmtTau(n.tau);
        row.classList.toggle("sel", n.name === this.selected);
        row.classList.toggle("part", this.participants.has(n.name));
        Plots.spark(f.spark, n.ring, n.collapsed ? Plots.C.one : Plots.C.G);
      });
      return true;
    }
  }

  return { List, fmtTau };
})();
