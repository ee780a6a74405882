// The family decoder map (family_map.html): every member's decoder directions from
// /api/map drawn on one canvas. Hover: the nearest point's member, id and label;
// click: its feature page; wheel: zoom about the cursor; drag: pan; checkboxes:
// which members are drawn. Plain JS, no library (the UI works offline).
"use strict";
(function () {
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]; // analysis/geometry_plot.py
  const canvas = document.getElementById("family-map");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  const tip = document.getElementById("map-tip");
  const status = document.getElementById("map-status");
  const served = canvas.dataset.served;
  let data = null, shown = [], view = null, hover = -1, drag = null, moved = false;

  document.querySelectorAll(".swatch").forEach(s => { s.style.background = COLOURS[+s.dataset.member % COLOURS.length]; });

  function fit() {  // the view that shows every point with a margin
    const p = data.points;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < p.x.length; i++) {
      x0 = Math.min(x0, p.x[i]); x1 = Math.max(x1, p.x[i]); y0 = Math.min(y0, p.y[i]); y1 = Math.max(y1, p.y[i]);
    }
    const scale = 0.92 * Math.min(canvas.width / Math.max(x1 - x0, 1e-9), canvas.height / Math.max(y1 - y0, 1e-9));
    return { scale, cx: (x0 + x1) / 2, cy: (y0 + y1) / 2 };
  }
  const sx = x => canvas.width / 2 + (x - view.cx) * view.scale;
  const sy = y => canvas.height / 2 - (y - view.cy) * view.scale;

  function resize() {
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(200, Math.round(r.width));
    canvas.height = Math.max(200, Math.round(r.height));
  }

  function draw() {
    const p = data.points, n = p.x.length;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const radius = Math.max(1.2, Math.min(4, 2400 / Math.sqrt(n + 1) / 10));
    // largest member first, so the smaller ones stay visible on top
    const order = data.members.map((m, i) => i).sort((a, b) => data.members[b].alive - data.members[a].alive);
    for (const m of order) {
      if (!shown[m]) continue;
      ctx.fillStyle = COLOURS[m % COLOURS.length];
      ctx.globalAlpha = 0.6;
      for (let i = 0; i < n; i++) {
        if (p.member[i] !== m) continue;
        const x = sx(p.x[i]), y = sy(p.y[i]);
        if (x < -5 || y < -5 || x > canvas.width + 5 || y > canvas.height + 5) continue;
        ctx.fillRect(x - radius / 2, y - radius / 2, radius, radius);
      }
    }
    ctx.globalAlpha = 1;
    if (document.getElementById("map-show-clusters").checked) {
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      for (const c of data.clusters.slice(0, 25)) {
        if (!c.tokens.length) continue;
        const text = c.label.slice(0, 40), x = sx(c.x), y = sy(c.y), w = ctx.measureText(text).width;
        ctx.fillStyle = "rgba(255,255,255,0.8)";
        ctx.fillRect(x - w / 2 - 3, y - 11, w + 6, 15);
        ctx.fillStyle = "#1d2330";
        ctx.fillText(text, x, y);
      }
    }
    if (hover >= 0) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(sx(p.x[hover]), sy(p.y[hover]), 6, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  function nearest(cx, cy, within) {  // index of the shown point nearest to canvas (cx, cy), or -1
    const p = data.points;
    let best = -1, bestD = within * within;
    for (let i = 0; i < p.x.length; i++) {
      if (!shown[p.member[i]]) continue;
      const dx = sx(p.x[i]) - cx, dy = sy(p.y[i]) - cy, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }

  function canvasXY(ev) {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
  }

  function featureURL(i) {
    const p = data.points, member = data.members[p.member[i]].name;
    return member === served ? `/features/${p.id[i]}` : `/map/${encodeURIComponent(member)}/features/${p.id[i]}`;
  }

  function showTip(i, ev) {
    if (i < 0) { tip.hidden = true; return; }
    const p = data.points, wrap = canvas.parentElement.getBoundingClientRect();
    tip.textContent = `${data.members[p.member[i]].name} #${p.id[i]}: ${p.label[i]}`;
    tip.hidden = false;
    tip.style.left = (ev.clientX - wrap.left + 12) + "px";
    tip.style.top = (ev.clientY - wrap.top + 12) + "px";
  }

  canvas.addEventListener("mousemove", ev => {
    const [x, y] = canvasXY(ev);
    if (drag) {
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) moved = true;
      view.cx = drag.cx - (x - drag.x) / view.scale;
      view.cy = drag.cy + (y - drag.y) / view.scale;
      draw();
      return;
    }
    const i = nearest(x, y, 8);
    if (i !== hover) { hover = i; draw(); }
    showTip(i, ev);
  });
  canvas.addEventListener("mouseleave", () => { hover = -1; tip.hidden = true; drag = null; draw(); });
  canvas.addEventListener("mousedown", ev => {
    const [x, y] = canvasXY(ev);
    drag = { x, y, cx: view.cx, cy: view.cy }; moved = false;
  });
  canvas.addEventListener("mouseup", ev => {
    const wasDrag = moved; drag = null;
    if (wasDrag) return;
    const [x, y] = canvasXY(ev), i = nearest(x, y, 8);
    if (i >= 0) window.location.href = featureURL(i);
  });
  canvas.addEventListener("wheel", ev => {
    ev.preventDefault();
    const [x, y] = canvasXY(ev), factor = Math.exp(-ev.deltaY * 0.0015);
    const wx = view.cx + (x - canvas.width / 2) / view.scale, wy = view.cy - (y - canvas.height / 2) / view.scale;
    view.scale *= factor;  // keep the map point under the cursor where it is
    view.cx = wx - (x - canvas.width / 2) / view.scale;
    view.cy = wy + (y - canvas.height / 2) / view.scale;
    draw();
  }, { passive: false });
  document.querySelectorAll("#map-members input[data-member]").forEach(box => box.addEventListener("change", () => {
    shown[+box.dataset.member] = box.checked; hover = -1; draw();
  }));
  document.getElementById("map-show-clusters").addEventListener("change", draw);
  document.getElementById("map-reset").addEventListener("click", () => { view = fit(); draw(); });
  window.addEventListener("resize", () => { if (data) { resize(); draw(); } });

  fetch("/api/map").then(r => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.json(); }).then(d => {
    data = d;
    shown = d.members.map(() => true);
    resize();
    view = fit();
    draw();
    status.textContent = `${d.points.id.length.toLocaleString()} points, ${d.clusters.length} regions`;
    status.id = "map-status";
    canvas.dataset.ready = "1";
    // for tests and for linking: where a feature is drawn, in client (page) coordinates
    window.familyMap = {
      screenPoints() {  // [member name, id, x, y] of every shown point, in CSS pixels from the canvas's top left
        const p = d.points, r = canvas.getBoundingClientRect(), out = [];
        for (let i = 0; i < p.id.length; i++) {
          if (shown[p.member[i]]) out.push([d.members[p.member[i]].name, p.id[i], sx(p.x[i]) * r.width / canvas.width,
                                            sy(p.y[i]) * r.height / canvas.height]);
        }
        return out;
      },
      shownCount() { return d.points.member.filter(m => shown[m]).length; },
      view() { return { ...view }; },
    };
  }).catch(e => { status.textContent = `the map could not be loaded: ${e.message}`; });
})();
