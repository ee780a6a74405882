// monosemantic web: the prompt inspector and the steering playground talk to /api.
"use strict";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function tokText(t) { return t ? t.replace(/\n/g, "↵").replace(/\t/g, "⇥") : "∅"; }

async function errorText(resp) {
  try {
    const body = await resp.json();
    if (typeof body.detail === "string") return body.detail;
    return body.detail.map(d => (d.loc || []).slice(1).join(".") + ": " + d.msg).join("; ");
  } catch (e) { return resp.status + " " + resp.statusText; }
}

// Tokens whose text is "" continue the previous token's character (the server decodes
// by bytes): shown joined, as one span over all their positions.
function segments(tokens) {
  const out = [];
  tokens.forEach((t, i) => {
    if (t.token === "" && out.length) out[out.length - 1].idx.push(i);
    else out.push({text: t.token, idx: [i]});
  });
  return out;
}

function featureItem(f, onShow) {
  const li = el("li");
  const a = el("a", {href: "/features/" + f.id, class: "feature-link"}, "#" + f.id);
  li.append(a, " ", el("span", {class: "muted"}, f.activation.toFixed(3)));
  if (onShow) {
    const b = el("button", {type: "button", class: "show-feature light", "data-feature": f.id, title: "colour the prompt by this feature"}, "show");
    b.addEventListener("click", () => onShow(f.id));
    li.append(" ", b);
  }
  if (f.explanation) li.append(" " + f.explanation);
  return li;
}

// --- prompt inspector ---------------------------------------------------------------
function setupInspector() {
  const form = document.getElementById("inspect-form");
  if (!form) return;
  const status = document.getElementById("inspect-status");
  const tokensBox = document.getElementById("inspect-tokens");
  const tokenList = document.getElementById("token-features");
  const title = document.getElementById("token-features-title");
  const promptList = document.getElementById("prompt-features");
  const banner = document.getElementById("selected-feature");
  const featureBox = document.getElementById("inspect-feature");
  const promptBox = document.getElementById("inspect-prompt");
  let data = null;

  function keepInUrl() {
    const q = new URLSearchParams();
    q.set("prompt", promptBox.value);
    if (data && data.feature) q.set("feature", data.feature.id);
    history.replaceState(null, "", "/inspect?" + q.toString());
  }

  function selectSegment(span, seg) {
    tokensBox.querySelectorAll(".tok.selected").forEach(s => s.classList.remove("selected"));
    span.classList.add("selected");
    const last = data.tokens[seg.idx[seg.idx.length - 1]];
    const first = data.tokens[seg.idx[0]];
    const where = seg.idx.length > 1 ? "tokens " + first.position + "–" + last.position : "token " + first.position;
    title.textContent = "Features of " + where + " “" + tokText(seg.text) + "”";
    tokenList.replaceChildren(...last.features.map(f => featureItem(f, show)));
    if (!last.features.length) tokenList.append(el("li", {class: "muted"}, "no feature fires here"));
  }

  function draw() {
    const sel = data.feature;
    const value = i => sel ? sel.acts[i] : (data.tokens[i].features.length ? data.tokens[i].features[0].activation : 0);
    const peak = Math.max(1e-9, ...data.tokens.map((_, i) => value(i)));
    const colour = sel ? "255,120,0" : "59,110,165";
    tokensBox.replaceChildren();
    tokensBox.classList.toggle("by-feature", !!sel);
    segments(data.tokens).forEach(seg => {
      const a = Math.max(...seg.idx.map(value));
      const tip = sel ? "feature #" + sel.id + ": " + seg.idx.map(i => sel.acts[i].toFixed(3)).join(" / ")
                      : (a > 0 ? "top feature #" + data.tokens[seg.idx[seg.idx.length - 1]].features[0].id + ": " + a.toFixed(3) : "no feature");
      const span = el("span", {class: "tok", "data-position": data.tokens[seg.idx[0]].position, "data-act": a.toFixed(4), title: tip}, tokText(seg.text));
      span.style.background = "rgba(" + colour + "," + (a > 0 ? (0.08 + 0.7 * a / peak).toFixed(2) : "0") + ")";
      span.addEventListener("click", () => selectSegment(span, seg));
      tokensBox.append(span);
    });
    if (sel) {
      const at = sel.acts.indexOf(Math.max(...sel.acts));
      banner.hidden = false;
      banner.replaceChildren(el("strong", {}, "Feature "), el("a", {href: "/features/" + sel.id, id: "selected-link"}, "#" + sel.id),
        " " + (sel.explanation || "") + " · max on this prompt " + sel.max.toFixed(3) +
        (sel.max > 0 ? " at “" + tokText(data.tokens[at].token) + "”" : " (it does not fire here)") +
        (sel.max_act ? " · max over the dataset " + sel.max_act.toFixed(3) : ""), " ");
      const clear = el("button", {type: "button", class: "light", id: "clear-feature"}, "clear");
      clear.addEventListener("click", () => { featureBox.value = ""; run(null); });
      banner.append(clear);
    } else { banner.hidden = true; }
  }

  async function run(feature) {
    const button = document.getElementById("inspect-run");
    button.disabled = true; status.className = "status"; status.textContent = "running…";
    const t0 = performance.now();
    try {
      const body = {prompt: promptBox.value};
      if (feature !== null && feature !== undefined && feature !== "") body.feature = Number(feature);
      const resp = await fetch("/api/inspect", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      if (!resp.ok) throw new Error(await errorText(resp));
      data = await resp.json();
      featureBox.value = data.feature ? data.feature.id : "";
      draw();
      promptList.replaceChildren(...data.top.map(f => {
        const li = featureItem(f, show);
        li.append(el("span", {class: "muted"}, " at token " + f.position));
        return li;
      }));
      const first = tokensBox.querySelector(".tok");
      if (first) selectSegment(first, segments(data.tokens)[0]);
      keepInUrl();
      status.textContent = data.tokens.length + " tokens in " + ((performance.now() - t0) / 1000).toFixed(2) + " s";
      form.dataset.done = String(Number(form.dataset.done || 0) + 1);
    } catch (e) {
      status.className = "status error"; status.textContent = e.message;
    } finally { button.disabled = false; }
  }
  function show(id) { featureBox.value = id; run(id); }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(featureBox.value); });
  document.getElementById("inspect-show").addEventListener("click", () => run(featureBox.value));
  if (form.dataset.autorun) run(form.dataset.feature);
}

// --- concept search -------------------------------------------------------------------
function setupConcepts() {
  const form = document.getElementById("concept-form");
  if (!form) return;
  const status = document.getElementById("concept-status");
  const table = document.getElementById("concept-results");
  const set = document.getElementById("concept-set");
  const lines = id => document.getElementById(id).value.split("\n").map(t => t.trim()).filter(t => t);

  async function run() {
    const button = document.getElementById("concept-run");
    const body = set.value ? {concept: set.value} : {positive: lines("concept-positive"), negative: lines("concept-negative")};
    button.disabled = true; status.className = "status"; status.textContent = "running the model on the concept texts…";
    const t0 = performance.now();
    try {
      const resp = await fetch("/api/concept", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      if (!resp.ok) throw new Error(await errorText(resp));
      const data = await resp.json();
      const tbody = table.querySelector("tbody");
      tbody.replaceChildren(...data.items.map(r => {
        const tr = el("tr");
        const link = el("a", {href: "/features/" + r.id, class: "feature-link"}, "#" + r.id);
        const actions = el("td");
        actions.append(el("a", {href: "/inspect?feature=" + r.id + "&prompt=" + encodeURIComponent(data.example), class: "inspect-link"}, "inspect"),
                       " ", el("a", {href: "/steer?feature=" + r.id}, "steer"));
        const cells = [el("td"), el("td", {}, r.score.toFixed(3)), el("td", {}, r.max_act === null ? "" : r.max_act.toFixed(2)),
                       el("td", {class: "muted"}, r.detail), el("td", {}, r.explanation || ""), actions];
        cells[0].append(link);
        tr.append(...cells);
        return tr;
      }));
      table.hidden = false;
      history.replaceState(null, "", "/concepts" + (set.value ? "?concept=" + encodeURIComponent(set.value) : ""));
      status.textContent = data.how + " · " + data.items.length + " features in " + ((performance.now() - t0) / 1000).toFixed(1) + " s";
      form.dataset.done = "1";
    } catch (e) {
      status.className = "status error"; status.textContent = e.message;
    } finally { button.disabled = false; }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  if (form.dataset.autorun) run();
}

// --- steering playground --------------------------------------------------------------
function setupSteering() {
  const form = document.getElementById("steer-form");
  if (!form) return;
  const status = document.getElementById("steer-status");
  const rows = document.querySelector("#interventions tbody");
  const template = rows.querySelector("tr.iv").cloneNode(true);
  const out = {unsteered: document.getElementById("out-unsteered"), steered: document.getElementById("out-steered")};

  function wire(tr) {
    tr.querySelector(".iv-remove").addEventListener("click", () => { if (rows.children.length > 1) tr.remove(); });
    const mode = tr.querySelector(".iv-mode"), unit = tr.querySelector(".iv-unit");
    mode.addEventListener("change", () => { if (mode.value === "multiply") unit.value = "abs"; unit.disabled = mode.value === "multiply"; });
  }
  rows.querySelectorAll("tr.iv").forEach(wire);
  document.getElementById("add-intervention").addEventListener("click", () => {
    if (rows.children.length >= Number(form.dataset.maxInterventions)) return;
    const tr = template.cloneNode(true);
    tr.querySelectorAll(".muted").forEach(m => m.remove());
    rows.append(tr); wire(tr);
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = document.getElementById("steer-run");
    const interventions = [...rows.querySelectorAll("tr.iv")].map(tr => ({
      feature: Number(tr.querySelector(".iv-feature").value), mode: tr.querySelector(".iv-mode").value,
      value: Number(tr.querySelector(".iv-value").value), unit: tr.querySelector(".iv-unit").value}));
    const body = {prompt: document.getElementById("steer-prompt").value, interventions,
      max_new_tokens: Number(document.getElementById("steer-tokens").value),
      temperature: Number(document.getElementById("steer-temperature").value),
      seed: Number(document.getElementById("steer-seed").value), chat: document.getElementById("steer-chat").checked};
    button.disabled = true; status.className = "status"; status.textContent = "generating…";
    out.unsteered.textContent = ""; out.steered.textContent = "";
    try {
      const resp = await fetch("/api/steer/stream", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      if (!resp.ok) throw new Error(await errorText(resp));
      const reader = resp.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          if (!chunk.startsWith("data: ")) continue;
          const msg = JSON.parse(chunk.slice(6));
          if (msg.type === "token") out[msg.row].textContent += msg.text;
          else if (msg.type === "replace") out[msg.row].textContent = msg.text;
          else if (msg.type === "start") status.textContent = "generating with " + msg.interventions.join(", ") + "…";
          else if (msg.type === "done") { status.textContent = "done"; form.dataset.done = "1"; }
          else if (msg.type === "error") throw new Error(msg.message);
        }
      }
    } catch (e) {
      status.className = "status error"; status.textContent = e.message;
    } finally { button.disabled = false; }
  });
}

document.addEventListener("DOMContentLoaded", () => { setupInspector(); setupConcepts(); setupSteering(); });
