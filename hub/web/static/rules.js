// The output rules panel: the list (when each last fired, a fire button) and
// a form to change a rule now (PATCH /api/rules/{name}; the hub checks it with
// the config's parser and says what is wrong). Used by app.js.
"use strict";

window.Rules = (() => {
  const $ = id => document.getElementById(id);
  let ctx = null, editing = null;

  function init(c) {
    ctx = c;
    $("rf-cancel").onclick = close;
    $("rule-form").onsubmit = e => { e.preventDefault(); save(); };
  }

  async function load() {
    const r = await ctx.api("/api/rules");
    if (!r.ok) return;
    const rules = r.body.rules, tb = $("rules").querySelector("tbody");
    $("rules-empty").hidden = rules.length > 0;
    $("rules").hidden = rules.length === 0;
    tb.replaceChildren(...rules.map(row));
  }

  function row(rule) {
    const tr = document.createElement("tr");
    tr.dataset.rule = rule.name;
    tr.classList.toggle("off", !rule.enabled);
    tr.innerHTML = "<td></td><td><code></code></td><td></td><td class='num'></td><td></td>" +
      "<td class='acts'><button type='button' class='ghost edit'>edit</button>" +
      "<button type='button' class='ghost fire'>fire</button></td>";
    tr.cells[0].textContent = rule.name;
    if (!rule.enabled) {
      const b = document.createElement("span"); b.className = "badge off"; b.textContent = "off";
      tr.cells[0].append(" ", b);
    }
    tr.cells[1].firstChild.textContent = rule.when;
    tr.cells[1].title = `for ${rule.for} s · min interval ${rule.min_interval} s · ${rule.edge ? "edge" : "every tick"}`;
    tr.cells[2].textContent = rule.action; tr.cells[3].textContent = rule.fired;
    tr.cells[4].textContent = rule.last_fired ? `${ctx.clock(rule.last_fired)} (${ctx.ago(rule.last_fired)} ago)` : "never";
    tr.querySelector(".edit").onclick = () => open(rule);
    tr.querySelector(".fire").onclick = async () => {
      const res = await ctx.write(`/api/rules/${encodeURIComponent(rule.name)}/fire`, {});
      ctx.toast(res.ok ? `fired ${rule.name}` : `fire ${rule.name}: ${res.body.error}`);
    };
    return tr;
  }

  // -- the form ---------------------------------------------------------------------
  function open(rule) {
    editing = rule;
    $("rf-name").textContent = rule.name; $("rf-action").textContent = rule.action;
    $("rf-enabled").checked = rule.enabled; $("rf-when").value = rule.when;
    $("rf-for").value = rule.for; $("rf-interval").value = rule.min_interval;
    $("rf-edge").checked = rule.edge;
    $("rf-with").value = JSON.stringify(rule.with || {}, null, 1);
    $("rf-error").textContent = "";
    $("rule-modal").hidden = false; $("rf-when").focus();
  }
  function close() { $("rule-modal").hidden = true; editing = null; }

  // Only what changed goes to the hub; a number field left empty is an error.
  function changes(rule) {
    const out = {}, err = [];
    const num = (id, key) => {
      const text = $(id).value.trim(), v = Number(text);
      if (text === "" || !Number.isFinite(v)) err.push(`${key}: a number of seconds`);
      else if (v !== rule[key]) out[key] = v;
    };
    if ($("rf-enabled").checked !== rule.enabled) out.enabled = $("rf-enabled").checked;
    if ($("rf-when").value.trim() !== rule.when) out.when = $("rf-when").value.trim();
    num("rf-for", "for"); num("rf-interval", "min_interval");
    if ($("rf-edge").checked !== rule.edge) out.edge = $("rf-edge").checked;
    let params = {};
    const text = $("rf-with").value.trim();
    try { params = text ? JSON.parse(text) : {}; } catch { err.push("with: not JSON"); }
    if (!err.length && JSON.stringify(params) !== JSON.stringify(rule.with || {})) out.with = params;
    return [out, err];
  }

  async function save() {
    const rule = editing;
    if (!rule) return;
    const [body, err] = changes(rule);
    if (err.length) { $("rf-error").textContent = err.join("; "); return; }
    if (!Object.keys(body).length) { close(); ctx.toast(`${rule.name}: nothing changed`); return; }
    const r = await ctx.write(`/api/rules/${encodeURIComponent(rule.name)}`, body, "PATCH");
    if (editing !== rule) return;
    if (!r.ok) { $("rf-error").textContent = r.body.error; return; }
    close();
    ctx.toast(`changed ${rule.name} (until the hub restarts)`);
    load();
  }

  return { init, load };
})();
