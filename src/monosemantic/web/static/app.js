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

function featureItem(f) {
  const li = el("li");
  const a = el("a", {href: "/features/" + f.id, class: "feature-link"}, "#" + f.id);
  li.append(a, " ", el("span", {class: "muted"}, f.activation.toFixed(3)));
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

  function select(span, token) {
    tokensBox.querySelectorAll(".tok.selected").forEach(s => s.classList.remove("selected"));
    span.classList.add("selected");
    title.textContent = "Features of token " + (token.position) + " “" + tokText(token.token) + "”";
    tokenList.replaceChildren(...token.features.map(featureItem));
    if (!token.features.length) tokenList.append(el("li", {class: "muted"}, "no feature fires here"));
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = document.getElementById("inspect-run");
    button.disabled = true; status.className = "status"; status.textContent = "running…";
    const t0 = performance.now();
    try {
      const resp = await fetch("/api/inspect", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({prompt: document.getElementById("inspect-prompt").value})});
      if (!resp.ok) throw new Error(await errorText(resp));
      const data = await resp.json();
      const peak = Math.max(1e-9, ...data.tokens.map(t => t.features.length ? t.features[0].activation : 0));
      tokensBox.replaceChildren();
      data.tokens.forEach(t => {
        const a = t.features.length ? t.features[0].activation : 0;
        const span = el("span", {class: "tok", "data-position": t.position,
          title: t.features.length ? "top feature #" + t.features[0].id + ": " + a.toFixed(3) : "no feature"}, tokText(t.token));
        span.style.background = "rgba(59,110,165," + (a > 0 ? (0.08 + 0.6 * a / peak).toFixed(2) : "0") + ")";
        span.addEventListener("click", () => select(span, t));
        tokensBox.append(span);
      });
      promptList.replaceChildren(...data.top.map(f => {
        const li = featureItem(f);
        li.append(el("span", {class: "muted"}, " at token " + f.position));
        return li;
      }));
      const first = tokensBox.querySelector(".tok");
      if (first) select(first, data.tokens[0]);
      status.textContent = data.tokens.length + " tokens in " + ((performance.now() - t0) / 1000).toFixed(2) + " s";
    } catch (e) {
      status.className = "status error"; status.textContent = e.message;
    } finally { button.disabled = false; }
  });
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
    mode.addEventListener("change", () => { if (mode.value !== "clamp") unit.value = "abs"; unit.disabled = mode.value !== "clamp"; });
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

document.addEventListener("DOMContentLoaded", () => { setupInspector(); setupSteering(); });
