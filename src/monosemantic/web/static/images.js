// monosemantic web: the image inspector (upload -> /api/image) and the image examples
// of a feature page (/api/features/ID/images). A heat map is a grid of cells over the
// picture the model saw, one cell per image token, its opacity the activation.
"use strict";

function imgEl(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// values: [rows][cols]; peak: {row, col} to outline, or null. scale: the activation drawn opaque.
function heatMap(src, values, scale, title, peak) {
  const rows = values.length, cols = values[0].length;
  const box = imgEl("figure", {class: "heat-view"});
  const stage = imgEl("div", {class: "heat-stage"});
  stage.append(imgEl("img", {src: src, alt: title, class: "heat-image"}));
  const grid = imgEl("div", {class: "heat-grid", "data-rows": rows, "data-cols": cols,
                             style: `grid-template-columns: repeat(${cols}, 1fr); grid-template-rows: repeat(${rows}, 1fr)`});
  values.forEach((row, r) => row.forEach((v, c) => {
    const alpha = scale > 0 && v > 0 ? Math.min(v / scale, 1) * 0.75 : 0;
    const cell = imgEl("div", {class: "heat-cell", "data-row": r, "data-col": c, "data-act": v.toFixed(4),
                               title: `row ${r}, col ${c}: ${v.toFixed(3)}`, style: `background: rgba(255, 60, 0, ${alpha.toFixed(3)})`});
    if (peak && peak.row === r && peak.col === c) cell.classList.add("peak");
    grid.append(cell);
  }));
  stage.append(grid);
  box.append(stage, imgEl("figcaption", {}, title));
  return box;
}

// app.js's featureItem, with where the feature peaks after its activation
function imageFeatureItem(f, where, onShow) {
  const li = featureItem(f, onShow);
  if (where) li.querySelector(".muted").textContent += " · " + where;
  return li;
}

function setupImageInspector() {
  const form = document.getElementById("image-form");
  if (!form) return;
  const file = document.getElementById("image-file"), prompt = document.getElementById("image-prompt");
  const featureBox = document.getElementById("image-feature"), status = document.getElementById("image-status");
  const views = document.getElementById("image-views"), banner = document.getElementById("image-selected");
  const topImage = document.getElementById("image-top"), topText = document.getElementById("image-text-top");

  async function run(feature) {
    if (!file.files.length) { status.textContent = "choose an image file first"; return; }
    const q = new URLSearchParams({prompt: prompt.value});
    if (feature !== undefined && feature !== "") q.set("feature", feature);
    status.textContent = "running…";
    let resp;
    try {
      resp = await fetch("/api/image?" + q.toString(), {method: "POST", body: file.files[0],
                                                         headers: {"Content-Type": file.files[0].type || "application/octet-stream"}});
    } catch (e) { status.textContent = "request failed: " + e; return; }
    if (!resp.ok) {
      status.textContent = "error: " + await errorText(resp);
      status.classList.add("error");
      return;
    }
    status.classList.remove("error");
    const data = await resp.json();
    const sel = data.feature;
    featureBox.value = sel.id;
    banner.hidden = false;
    banner.textContent = `feature #${sel.id}${sel.explanation ? " (" + sel.explanation + ")" : ""}: max ${sel.max.toFixed(3)} on the image tokens`;
    views.replaceChildren(...data.views.map(v => heatMap(v.png, v.values, sel.max, `${v.name}: ${v.rows} × ${v.cols} image tokens`, null)));
    topImage.replaceChildren(...data.top_image.map(f => imageFeatureItem(f, f.patch ? `${f.patch.view} row ${f.patch.row} col ${f.patch.col}` : "", run)));
    if (!data.top_image.length) topImage.append(imgEl("li", {class: "muted"}, "no feature fires on the image"));
    topText.replaceChildren(...data.top_text.map(f => imageFeatureItem(f, "“" + f.token + "”", null)));
    if (!data.top_text.length) topText.append(imgEl("li", {class: "muted"}, prompt.value ? "no feature fires on the text" : "no text given"));
    status.textContent = `${data.image.width} × ${data.image.height} pixels, ${data.image.tokens} image tokens`;
  }

  form.addEventListener("submit", e => { e.preventDefault(); run(featureBox.value); });
}

async function setupImageExamples() {
  const section = document.getElementById("image-examples");
  if (!section) return;
  const resp = await fetch(`/api/features/${section.dataset.feature}/images`);
  if (!resp.ok) return;
  const examples = await resp.json();
  if (!examples.length) return;
  const scale = Math.max(...examples.map(e => e.activation));
  section.querySelector(".heat-views").replaceChildren(...examples.map(e =>
    heatMap(e.src, e.grid, scale, `${e.name}: max ${e.activation.toFixed(3)}`, e.peak)));
  section.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => { setupImageInspector(); setupImageExamples(); });
