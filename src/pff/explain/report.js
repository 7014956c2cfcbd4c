// Pixel inspector of a pff explain report: plain JavaScript, no external files.
// Data layout: see pff.explain.report.inspector_data.
"use strict";
(function () {
  const images = JSON.parse(document.getElementById("pff-data").textContent);

  async function unpack(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function drawImage(canvas, pixels, w, h, c) {
    const ctx = canvas.getContext("2d");
    const out = ctx.createImageData(w, h);
    for (let p = 0; p < w * h; p++) {
      for (let ch = 0; ch < 3; ch++) out.data[4 * p + ch] = pixels[c * p + (c === 3 ? ch : 0)];
      out.data[4 * p + 3] = 255;
    }
    ctx.putImageData(out, 0, 0);
  }

  // Sequential (viridis-like) colours for non-negative filters, blue-white-red around 0 otherwise.
  const SEQ = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function sequential(t) {
    const x = Math.min(Math.max(t, 0), 1) * (SEQ.length - 1);
    const i = Math.min(Math.floor(x), SEQ.length - 2), f = x - i;
    return SEQ[i].map((v, ch) => Math.round(v + f * (SEQ[i + 1][ch] - v)));
  }
  function diverging(t) {  // t in [-1, 1]
    const a = Math.min(Math.abs(t), 1);
    return t < 0 ? [Math.round(255 * (1 - a)), Math.round(255 * (1 - a)), 255]
                 : [255, Math.round(255 * (1 - a)), Math.round(255 * (1 - a))];
  }

  function drawFilter(canvas, values, k) {
    const ctx = canvas.getContext("2d");
    const out = ctx.createImageData(k, k);
    let lo = Infinity, peak = 0;
    for (const v of values) { lo = Math.min(lo, v); peak = Math.max(peak, Math.abs(v)); }
    peak = peak || 1;
    for (let i = 0; i < k * k; i++) {
      const rgb = lo < 0 ? diverging(values[i] / peak) : sequential(values[i] / peak);
      out.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    ctx.putImageData(out, 0, 0);
  }

  function fmt(v, digits) { return (v >= 0 ? " " : "") + v.toFixed(digits); }

  class Inspector {
    constructor(root, meta, arrays) {
      Object.assign(this, meta, arrays);
      this.root = root;
      this.pinned = false;
      this.last = null;
      this.filterCanvas = root.querySelector("canvas.filter");
      this.readout = root.querySelector(".readout");
      drawImage(root.querySelector("canvas.before"), this.before, this.width, this.height, this.channels);
      drawImage(root.querySelector("canvas.after"), this.after, this.width, this.height, this.channels);
      for (const canvas of root.querySelectorAll(".stage canvas")) {
        canvas.addEventListener("mousemove", (e) => { if (!this.pinned) this.point(canvas, e); });
        canvas.addEventListener("click", (e) => { this.pinned = !this.pinned; this.point(canvas, e); });
      }
    }

    point(canvas, event) {
      const r = canvas.getBoundingClientRect();
      const x = Math.min(this.width - 1, Math.max(0, Math.floor((event.clientX - r.left) / r.width * this.width)));
      const y = Math.min(this.height - 1, Math.max(0, Math.floor((event.clientY - r.top) / r.height * this.height)));
      this.show(x, y);
    }

    show(x, y) {
      const s = this.stride, k = this.kernel, kk = k * k;
      const row = Math.min(Math.floor(y / s), this.grid[0] - 1), col = Math.min(Math.floor(x / s), this.grid[1] - 1);
      const cell = row * this.grid[1] + col;
      const fx = Math.min(col * s + Math.floor(s / 2), this.width - 1);
      const fy = Math.min(row * s + Math.floor(s / 2), this.height - 1);
      const filter = new Array(kk);
      let sum = 0, lo = Infinity, hi = -Infinity;
      for (let t = 0; t < kk; t++) {
        const v = this.low[cell] + this.codes[cell * kk + t] * this.step[cell];
        filter[t] = v; sum += v; lo = Math.min(lo, v); hi = Math.max(hi, v);
      }
      const c = this.channels, p = y * this.width + x;
      const before = Array.from(this.before.slice(c * p, c * p + c));
      const after = Array.from(this.after.slice(c * p, c * p + c));
      const flow = [this.flow[2 * cell], this.flow[2 * cell + 1]];
      drawFilter(this.filterCanvas, filter, k);
      const at = (fx === x && fy === y) ? "" : "  (filter of pixel " + fx + ", " + fy + ")";
      this.readout.textContent =
        "pixel   x=" + x + " y=" + y + at + (this.pinned ? "  [pinned]" : "") + "\n" +
        "flow    dx=" + fmt(flow[0], 3) + " dy=" + fmt(flow[1], 3) + " px\n" +
        "before  " + before.join(", ") + "\n" +
        "after   " + after.join(", ") + "\n" +
        "filter  " + k + "x" + k + "  sum=" + fmt(sum, 4) + "  min=" + fmt(lo, 4) + "  max=" + fmt(hi, 4);
      for (const mark of this.root.querySelectorAll(".mark")) {
        const canvas = mark.previousElementSibling;
        mark.style.display = "block";
        mark.style.left = ((x + 0.5) / this.width * canvas.clientWidth) + "px";
        mark.style.top = ((y + 0.5) / this.height * canvas.clientHeight) + "px";
      }
      this.last = { x: x, y: y, filterX: fx, filterY: fy, filter: filter, flow: flow, before: before, after: after };
      return this.last;
    }
  }

  async function load(meta, index) {
    const arrays = {};
    for (const key of ["before", "after", "codes"]) arrays[key] = await unpack(meta[key]);
    for (const key of ["low", "step", "flow"]) arrays[key] = new Float32Array((await unpack(meta[key])).buffer);
    const root = document.querySelector('.inspector[data-index="' + index + '"]');
    const plain = Object.assign({}, meta);
    for (const key of Object.keys(arrays)) delete plain[key];
    return new Inspector(root, plain, arrays);
  }

  window.pffInspectors = [];
  Promise.all(images.map(load)).then((list) => {
    window.pffInspectors = list;
    document.body.dataset.ready = "1";
  }).catch((err) => {
    document.body.dataset.ready = "error";
    document.body.insertAdjacentHTML("afterbegin", "<p style='color:red'>inspector failed: " + err + "</p>");
  });
})();
