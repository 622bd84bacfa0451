// Wrinkle labeling canvas (Kim et al., "Facial wrinkle segmentation using weighted deep supervision
// and semi-automatic labeling", Artif Intell Med 145, 2023, Sec. 3.1).
//
// The annotator brushes a rough mask M; the ground truth preview is computed here, live, with the
// same formulas as ml/wrinkles/labeling.py: texture map T = (1 − I / (1 + I_G)) · 255 (Eq. 1, 21×21
// Gaussian, σ = 5, reflect-101 border, floating point, clipped to [0, 255]), T' = T inside M, and
// Bradley–Roth thresholding with an integral image (a pixel is wrinkle when T'·100 > mean·(100 + p)
// and T' > 0). The OpenCV Gaussian method is approximated (OpenCV blurs 8-bit images in fixed point).
// On save the server recomputes the ground truth with ml.wrinkles.labeling.label_wrinkles; that is
// the stored, authoritative label.

export const GAUSSIAN_KERNEL_SIZE = 21;
export const GAUSSIAN_SIGMA = 5;
const UNDO_LIMIT = 30;
const ZOOM_MIN = 0.25;
const ZOOM_MAX = 16;

// ---------------------------------------------------------------------------------------------------
// Pure functions (exported so tests can compare them with the Python implementation).

export function gaussianKernel(size, sigma) {
  // As OpenCV's getGaussianKernel for sigma > 0: exp(−x² / 2σ²), normalised to sum 1.
  const kernel = new Float64Array(size);
  const centre = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i += 1) {
    const x = i - centre;
    kernel[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
    sum += kernel[i];
  }
  for (let i = 0; i < size; i += 1) kernel[i] /= sum;
  return kernel;
}

function reflect101(index, length) {
  if (length === 1) return 0;
  let i = index;
  while (i < 0 || i >= length) i = i < 0 ? -i : 2 * length - 2 - i;
  return i;
}

function replicate(index, length) {
  return Math.min(Math.max(index, 0), length - 1);
}

export function separableBlur(values, width, height, kernel, border = reflect101) {
  const half = (kernel.length - 1) / 2;
  const rows = new Float64Array(width * height);
  const result = new Float64Array(width * height);
  const columnIndex = new Int32Array(width + 2 * half);
  for (let x = -half; x < width + half; x += 1) columnIndex[x + half] = border(x, width);
  for (let y = 0; y < height; y += 1) {
    const offset = y * width;
    for (let x = 0; x < width; x += 1) {
      let sum = 0;
      for (let k = 0; k < kernel.length; k += 1) sum += kernel[k] * values[offset + columnIndex[x + k]];
      rows[offset + x] = sum;
    }
  }
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      let sum = 0;
      for (let k = 0; k < kernel.length; k += 1) sum += kernel[k] * rows[border(y + k - half, height) * width + x];
      result[y * width + x] = sum;
    }
  }
  return result;
}

export function grayscale(rgba, width, height) {
  // ITU-R BT.601 weights, as ml.wrinkles.labeling.grayscale; never rounded.
  const grey = new Float64Array(width * height);
  for (let i = 0; i < width * height; i += 1) {
    grey[i] = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
  }
  return grey;
}

export function textureMap(rgba, width, height) {
  // Eq. 1: T = (1 − I / (1 + I_G(σ))) · 255, clipped to [0, 255].
  const grey = grayscale(rgba, width, height);
  const blurred = separableBlur(grey, width, height, gaussianKernel(GAUSSIAN_KERNEL_SIZE, GAUSSIAN_SIGMA));
  const texture = new Float64Array(width * height);
  for (let i = 0; i < texture.length; i += 1) {
    const value = (1 - grey[i] / (1 + blurred[i])) * 255;
    texture[i] = value < 0 ? 0 : value > 255 ? 255 : value;
  }
  return texture;
}

export function windowMeans(values, width, height, window) {
  // Mean over the window² square centred on each pixel, cut at the border, via an integral image.
  const stride = width + 1;
  const integral = new Float64Array(stride * (height + 1));
  for (let y = 0; y < height; y += 1) {
    let rowSum = 0;
    for (let x = 0; x < width; x += 1) {
      rowSum += values[y * width + x];
      integral[(y + 1) * stride + x + 1] = integral[y * stride + x + 1] + rowSum;
    }
  }
  const half = (window - 1) / 2;
  const means = new Float64Array(width * height);
  for (let y = 0; y < height; y += 1) {
    const top = Math.max(y - half, 0);
    const bottom = Math.min(y + half + 1, height);
    for (let x = 0; x < width; x += 1) {
      const left = Math.max(x - half, 0);
      const right = Math.min(x + half + 1, width);
      const sum = integral[bottom * stride + right] - integral[top * stride + right]
        - integral[bottom * stride + left] + integral[top * stride + left];
      means[y * width + x] = sum / ((bottom - top) * (right - left));
    }
  }
  return means;
}

function maskedTexture(texture, mask) {
  const masked = new Float64Array(texture.length);
  for (let i = 0; i < texture.length; i += 1) masked[i] = mask[i] ? texture[i] : 0;
  return masked;
}

export function bradleyRoth(masked, width, height, window, percent) {
  const means = windowMeans(masked, width, height, window);
  const labels = new Uint8Array(masked.length);
  for (let i = 0; i < masked.length; i += 1) {
    labels[i] = masked[i] * 100 > means[i] * (100 + percent) && masked[i] > 0 ? 1 : 0;
  }
  return labels;
}

export function gaussianThresholdApproximation(masked, width, height, blockSize, c) {
  // cv2.adaptiveThreshold(GAUSSIAN_C, THRESH_BINARY): value > round(gaussian mean) − C; preview only.
  const rounded = new Float64Array(masked.length);
  for (let i = 0; i < masked.length; i += 1) rounded[i] = Math.min(255, Math.max(0, Math.round(masked[i])));
  const sigma = 0.3 * ((blockSize - 1) * 0.5 - 1) + 0.8;
  const means = separableBlur(rounded, width, height, gaussianKernel(blockSize, sigma), replicate);
  const labels = new Uint8Array(masked.length);
  for (let i = 0; i < masked.length; i += 1) {
    labels[i] = rounded[i] > Math.round(means[i]) - c && rounded[i] > 0 ? 1 : 0;
  }
  return labels;
}

export function labelWrinkles(texture, width, height, mask, params) {
  // Ground truth from a precomputed texture map and a rough mask (1 = inside), restricted to M.
  const masked = maskedTexture(texture, mask);
  const labels = params.method === "opencv-gaussian"
    ? gaussianThresholdApproximation(masked, width, height, params.block_size, params.c)
    : bradleyRoth(masked, width, height, params.window, params.percent);
  for (let i = 0; i < labels.length; i += 1) if (!mask[i]) labels[i] = 0;
  return labels;
}

// ---------------------------------------------------------------------------------------------------
// The labeling page.

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

class Labeler {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    this.canvas = root.querySelector("#labeler-canvas");
    this.context = this.canvas.getContext("2d");
    this.status = root.querySelector("#labeler-status");
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.tool = "brush";
    this.undoStack = [];
    this.redoStack = [];
    this.pending = false;
    this.serverMask = null;
  }

  async start() {
    this.setStatus("Loading the image and computing its texture map…");
    const response = await fetch(this.config.imageUrl, { credentials: "same-origin" });
    if (!response.ok) {
      this.setStatus(`The labeling image could not be loaded (${response.status}).`, true);
      return;
    }
    const bitmap = await createImageBitmap(await response.blob());
    this.width = bitmap.width;
    this.height = bitmap.height;
    const scratch = document.createElement("canvas");
    scratch.width = this.width;
    scratch.height = this.height;
    const scratchContext = scratch.getContext("2d", { willReadFrequently: true });
    scratchContext.drawImage(bitmap, 0, 0);
    this.image = scratch;
    const pixels = scratchContext.getImageData(0, 0, this.width, this.height).data;
    this.texture = textureMap(pixels, this.width, this.height);
    this.mask = new Uint8Array(this.width * this.height);
    this.truth = new Uint8Array(this.width * this.height);
    this.roughLayer = this.makeLayer();
    this.truthLayer = this.makeLayer();
    this.serverLayer = this.makeLayer();
    this.bindControls();
    this.fit();
    this.root.dataset.ready = "true";
    this.setStatus("Brush over the wrinkle regions; the ground truth appears in yellow.");
  }

  makeLayer() {
    const layer = document.createElement("canvas");
    layer.width = this.width;
    layer.height = this.height;
    return layer;
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("labeler-error", isError);
  }

  parameters() {
    const value = (name) => this.root.querySelector(`[name=${name}]`).value;
    return {
      method: value("method"),
      window: parseInt(value("window"), 10),
      percent: parseFloat(value("percent")),
      block_size: parseInt(value("block_size"), 10),
      c: parseFloat(value("c")),
    };
  }

  bindControls() {
    const byId = (id) => this.root.querySelector(`#${id}`);
    for (const button of this.root.querySelectorAll("[data-tool]")) {
      button.addEventListener("click", () => this.setTool(button.dataset.tool));
    }
    byId("labeler-undo").addEventListener("click", () => this.undo());
    byId("labeler-redo").addEventListener("click", () => this.redo());
    byId("labeler-clear").addEventListener("click", () => this.clear());
    byId("labeler-zoom-in").addEventListener("click", () => this.zoomAt(1.25));
    byId("labeler-zoom-out").addEventListener("click", () => this.zoomAt(0.8));
    byId("labeler-fit").addEventListener("click", () => this.fit());
    byId("labeler-save").addEventListener("click", () => this.save());
    for (const name of ["method", "window", "percent", "block_size", "c"]) {
      this.root.querySelector(`[name=${name}]`).addEventListener("input", () => {
        this.syncMethodFields();
        this.scheduleTruth();
      });
    }
    for (const id of ["show-rough", "show-truth", "show-server"]) byId(id).addEventListener("change", () => this.render());
    byId("labeler-brush-size").addEventListener("input", (event) => {
      byId("labeler-brush-value").textContent = event.target.value;
    });
    for (const button of this.root.querySelectorAll("[data-load-label]")) {
      button.addEventListener("click", () => this.loadRough(button.dataset.loadLabel));
    }
    this.canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    this.canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    this.canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    this.canvas.addEventListener("pointercancel", (event) => this.pointerUp(event));
    this.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    this.canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = this.canvas.getBoundingClientRect();
      this.zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - rect.left, event.clientY - rect.top);
    }, { passive: false });
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, textarea, select")) return;
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
        event.preventDefault();
        if (event.shiftKey) this.redo(); else this.undo();
      } else if (event.key === "b") this.setTool("brush");
      else if (event.key === "e") this.setTool("eraser");
      else if (event.key === "h") this.setTool("pan");
    });
    new ResizeObserver(() => this.render()).observe(this.canvas);
    this.syncMethodFields();
  }

  syncMethodFields() {
    const method = this.root.querySelector("[name=method]").value;
    for (const group of this.root.querySelectorAll("[data-method]")) group.hidden = group.dataset.method !== method;
    this.root.querySelector("#labeler-approximate").hidden = method !== "opencv-gaussian";
  }

  setTool(tool) {
    this.tool = tool;
    for (const button of this.root.querySelectorAll("[data-tool]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
    this.canvas.dataset.tool = tool;
  }

  // View transform: screen = image · zoom + pan (CSS pixels of the canvas).
  toImage(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [(event.clientX - rect.left - this.panX) / this.zoom, (event.clientY - rect.top - this.panY) / this.zoom];
  }

  fit() {
    const rect = this.canvas.getBoundingClientRect();
    this.zoom = Math.min(rect.width / this.width, rect.height / this.height);
    this.panX = (rect.width - this.width * this.zoom) / 2;
    this.panY = (rect.height - this.height * this.zoom) / 2;
    this.render();
  }

  zoomAt(factor, screenX, screenY) {
    const rect = this.canvas.getBoundingClientRect();
    const x = screenX ?? rect.width / 2;
    const y = screenY ?? rect.height / 2;
    const zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.zoom * factor));
    this.panX = x - ((x - this.panX) * zoom) / this.zoom;
    this.panY = y - ((y - this.panY) * zoom) / this.zoom;
    this.zoom = zoom;
    this.render();
  }

  pointerDown(event) {
    this.canvas.setPointerCapture(event.pointerId);
    const panning = this.tool === "pan" || event.button === 1 || event.button === 2;
    this.drag = { panning, lastX: event.clientX, lastY: event.clientY, last: this.toImage(event) };
    if (panning) return;
    this.pushUndo();
    this.paint(this.drag.last, this.drag.last);
  }

  pointerMove(event) {
    if (!this.drag) return;
    if (this.drag.panning) {
      this.panX += event.clientX - this.drag.lastX;
      this.panY += event.clientY - this.drag.lastY;
      this.drag.lastX = event.clientX;
      this.drag.lastY = event.clientY;
      this.render();
      return;
    }
    const point = this.toImage(event);
    this.paint(this.drag.last, point);
    this.drag.last = point;
  }

  pointerUp() {
    if (this.drag && !this.drag.panning) this.scheduleTruth();
    this.drag = null;
  }

  paint([x0, y0], [x1, y1]) {
    // Stamps disks of the brush radius (in image pixels) along the segment.
    const radius = parseInt(this.root.querySelector("#labeler-brush-size").value, 10) / 2;
    const value = this.tool === "eraser" ? 0 : 1;
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(1, radius / 2)));
    const r2 = radius * radius;
    for (let s = 0; s <= steps; s += 1) {
      const cx = x0 + ((x1 - x0) * s) / steps;
      const cy = y0 + ((y1 - y0) * s) / steps;
      const top = Math.max(0, Math.floor(cy - radius));
      const bottom = Math.min(this.height - 1, Math.ceil(cy + radius));
      const left = Math.max(0, Math.floor(cx - radius));
      const right = Math.min(this.width - 1, Math.ceil(cx + radius));
      for (let y = top; y <= bottom; y += 1) {
        for (let x = left; x <= right; x += 1) {
          const dx = x + 0.5 - cx;
          const dy = y + 0.5 - cy;
          if (dx * dx + dy * dy <= r2) this.mask[y * this.width + x] = value;
        }
      }
    }
    this.paintLayer(this.roughLayer, this.mask, [64, 160, 255, 90]);
    this.scheduleTruth();
  }

  paintLayer(layer, values, [r, g, b, a]) {
    const context = layer.getContext("2d");
    const data = context.createImageData(this.width, this.height);
    for (let i = 0; i < values.length; i += 1) {
      if (!values[i]) continue;
      data.data[4 * i] = r;
      data.data[4 * i + 1] = g;
      data.data[4 * i + 2] = b;
      data.data[4 * i + 3] = a;
    }
    context.putImageData(data, 0, 0);
  }

  scheduleTruth() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.truth = labelWrinkles(this.texture, this.width, this.height, this.mask, this.parameters());
      this.paintLayer(this.truthLayer, this.truth, [255, 214, 0, 255]);
      let rough = 0;
      let wrinkles = 0;
      for (let i = 0; i < this.mask.length; i += 1) {
        rough += this.mask[i];
        wrinkles += this.truth[i];
      }
      this.root.dataset.roughPixels = String(rough);
      this.root.dataset.previewPixels = String(wrinkles);
      this.root.querySelector("#labeler-counts").textContent =
        `Rough mask: ${rough} px · ground truth preview: ${wrinkles} px`;
      this.render();
    });
  }

  render() {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(rect.width * ratio) || this.canvas.height !== Math.round(rect.height * ratio)) {
      this.canvas.width = Math.round(rect.width * ratio);
      this.canvas.height = Math.round(rect.height * ratio);
    }
    if (!this.image) return;
    const context = this.context;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.setTransform(this.zoom * ratio, 0, 0, this.zoom * ratio, this.panX * ratio, this.panY * ratio);
    context.imageSmoothingEnabled = this.zoom < 1;
    context.drawImage(this.image, 0, 0);
    const shown = (id) => this.root.querySelector(`#${id}`).checked;
    if (shown("show-rough")) context.drawImage(this.roughLayer, 0, 0);
    if (shown("show-truth")) context.drawImage(this.truthLayer, 0, 0);
    if (shown("show-server") && this.serverMask) context.drawImage(this.serverLayer, 0, 0);
    this.root.querySelector("#labeler-zoom-value").textContent = `${Math.round(this.zoom * 100)} %`;
  }

  pushUndo() {
    this.undoStack.push(this.mask.slice());
    if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
    this.redoStack = [];
  }

  restore(mask) {
    this.mask = mask;
    this.paintLayer(this.roughLayer, this.mask, [64, 160, 255, 90]);
    this.scheduleTruth();
  }

  undo() {
    if (!this.undoStack.length) return;
    this.redoStack.push(this.mask);
    this.restore(this.undoStack.pop());
  }

  redo() {
    if (!this.redoStack.length) return;
    this.undoStack.push(this.mask);
    this.restore(this.redoStack.pop());
  }

  clear() {
    this.pushUndo();
    this.restore(new Uint8Array(this.width * this.height));
  }

  async loadRough(labelId) {
    const label = this.config.labels.find((item) => String(item.id) === String(labelId));
    if (!label) return;
    if (label.region !== this.config.region) {
      this.setStatus(`Version ${label.version} was drawn on the ${label.region} region; switch to it first.`, true);
      return;
    }
    const values = await this.fetchMask(label.rough_url);
    if (!values) return;
    this.pushUndo();
    this.restore(values);
    this.setStatus(`Loaded the rough mask of version ${label.version} as a starting point.`);
  }

  async fetchMask(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) {
      this.setStatus(`Could not load ${url} (${response.status}).`, true);
      return null;
    }
    const bitmap = await createImageBitmap(await response.blob());
    const scratch = document.createElement("canvas");
    scratch.width = this.width;
    scratch.height = this.height;
    const context = scratch.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const data = context.getImageData(0, 0, this.width, this.height).data;
    const values = new Uint8Array(this.width * this.height);
    for (let i = 0; i < values.length; i += 1) values[i] = data[4 * i] > 127 ? 1 : 0;
    return values;
  }

  maskBlob() {
    const scratch = document.createElement("canvas");
    scratch.width = this.width;
    scratch.height = this.height;
    const context = scratch.getContext("2d");
    const data = context.createImageData(this.width, this.height);
    for (let i = 0; i < this.mask.length; i += 1) {
      const value = this.mask[i] ? 255 : 0;
      data.data[4 * i] = value;
      data.data[4 * i + 1] = value;
      data.data[4 * i + 2] = value;
      data.data[4 * i + 3] = 255;
    }
    context.putImageData(data, 0, 0);
    return new Promise((resolve) => scratch.toBlob(resolve, "image/png"));
  }

  async save() {
    if (!this.mask.some((value) => value)) {
      this.setStatus("The rough mask is empty: brush over the wrinkle regions first.", true);
      return;
    }
    const button = this.root.querySelector("#labeler-save");
    button.disabled = true;
    this.setStatus("Saving; the server recomputes the ground truth…");
    const body = new FormData();
    body.append("rough_mask", await this.maskBlob(), "rough.png");
    body.append("region", this.config.region);
    if (this.config.landmarksResult) body.append("landmarks_result", String(this.config.landmarksResult));
    const params = this.parameters();
    for (const name of ["method", "window", "percent", "block_size", "c"]) body.append(name, String(params[name]));
    body.append("note", this.root.querySelector("[name=note]").value);
    try {
      const response = await fetch(this.config.saveUrl, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      const answer = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
      if (!answer.ok) {
        this.setStatus(`Not saved: ${answer.error}`, true);
        return;
      }
      await this.showSaved(answer.label);
    } catch (error) {
      this.setStatus(`Not saved: ${error}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async showSaved(label) {
    this.config.labels.unshift(label);
    const server = await this.fetchMask(label.mask_url);
    let agree = 0;
    if (server) {
      this.serverMask = server;
      this.paintLayer(this.serverLayer, server, [255, 64, 64, 255]);
      for (let i = 0; i < server.length; i += 1) agree += server[i] === this.truth[i] ? 1 : 0;
    }
    const agreement = server ? ((100 * agree) / server.length).toFixed(2) : "?";
    const list = this.root.querySelector("#labeler-versions");
    const item = document.createElement("li");
    item.dataset.version = String(label.version);
    item.textContent = `Version ${label.version} · ${label.author} · just now · ${label.wrinkle_pixels} wrinkle px`;
    list.prepend(item);
    this.root.querySelector("#labeler-no-versions")?.remove();
    this.root.dataset.savedVersion = String(label.version);
    this.setStatus(`Saved as version ${label.version}: ${label.wrinkle_pixels} wrinkle pixels (server); `
      + `the preview agrees on ${agreement} % of pixels.`);
    this.render();
  }
}

// Guarded so the pure functions above can be imported outside a page (tests run them in Node).
const root = typeof document === "undefined" ? null : document.getElementById("labeler");
if (root) {
  const config = JSON.parse(document.getElementById("labeler-config").textContent);
  const labeler = new Labeler(root, config);
  labeler.start().catch((error) => labeler.setStatus(`The labeler failed to start: ${error}`, true));
}
