// Pre/post comparison: every pane of a group (side by side and the slider) shares one zoom and
// pan, applied as a CSS transform to each pane's stage, which is in the pre photo's pixel frame.

const MIN_ZOOM = 1;
// What each before/after mode shows (the after photo is registered onto the before photo in all).
const MODE_NOTES = {
  slider: "Drag the slider: before on the left of the line, after on the right.",
  onion: "Onion skin: the after photo over the before photo; the slider sets its opacity.",
  difference: "Difference: per-pixel |after − before|; black where the photos agree.",
  overlay: "Colour overlay: before in red, after in cyan; grey where they agree, red or cyan fringes where they differ.",
};
const MAX_ZOOM = 12;

function setUpGroup(group) {
  const width = Number(group.dataset.width);
  const panes = [...group.querySelectorAll("[data-pane]")];
  const level = group.querySelector("[data-zoom-level]");
  // Pan is in the pane's CSS pixels relative to a pane of unit width, so panes of any size stay in step.
  const view = { zoom: 1, panX: 0, panY: 0 };

  function clampPan() {
    const extent = view.zoom - 1;
    const aspect = Number(group.dataset.height) / width;
    view.panX = Math.min(0, Math.max(-extent, view.panX));
    view.panY = Math.min(0, Math.max(-extent * aspect, view.panY));
  }

  function apply() {
    clampPan();
    for (const pane of panes) {
      const paneWidth = pane.clientWidth;
      const fit = paneWidth / width;
      const stage = pane.querySelector(".stage");
      const scale = fit * view.zoom;
      stage.style.transform = `translate(${view.panX * paneWidth}px, ${view.panY * paneWidth}px) scale(${scale})`;
      stage.style.setProperty("--stage-scale", scale);
    }
    level.textContent = `${Math.round(view.zoom * 100)}%`;
  }

  function zoomAt(pane, factor, clientX, clientY) {
    const rect = pane.getBoundingClientRect();
    // Keep the point under the cursor fixed while zooming.
    const u = (clientX - rect.left) / rect.width;
    const v = (clientY - rect.top) / rect.width;
    const newZoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom * factor));
    const applied = newZoom / view.zoom;
    view.panX = u - (u - view.panX) * applied;
    view.panY = v - (v - view.panY) * applied;
    view.zoom = newZoom;
    apply();
  }

  for (const pane of panes) {
    pane.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoomAt(pane, Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
    }, { passive: false });
    pane.addEventListener("pointerdown", (event) => {
      pane.setPointerCapture(event.pointerId);
      const start = { x: event.clientX, y: event.clientY, panX: view.panX, panY: view.panY };
      pane.classList.add("panning");
      const move = (moveEvent) => {
        view.panX = start.panX + (moveEvent.clientX - start.x) / pane.clientWidth;
        view.panY = start.panY + (moveEvent.clientY - start.y) / pane.clientWidth;
        apply();
      };
      const end = () => {
        pane.classList.remove("panning");
        pane.removeEventListener("pointermove", move);
        pane.removeEventListener("pointerup", end);
        pane.removeEventListener("pointercancel", end);
      };
      pane.addEventListener("pointermove", move);
      pane.addEventListener("pointerup", end);
      pane.addEventListener("pointercancel", end);
    });
  }

  for (const button of group.querySelectorAll("[data-zoom]")) {
    button.addEventListener("click", () => {
      const pane = panes[0];
      const rect = pane.getBoundingClientRect();
      const centreX = rect.left + rect.width / 2;
      const centreY = rect.top + rect.height / 2;
      if (button.dataset.zoom === "in") zoomAt(pane, 1.5, centreX, centreY);
      else if (button.dataset.zoom === "out") zoomAt(pane, 1 / 1.5, centreX, centreY);
      else {
        Object.assign(view, { zoom: 1, panX: 0, panY: 0 });
        apply();
      }
    });
  }

  const wipe = group.querySelector("[data-wipe]");
  if (wipe) {
    const box = group.querySelector(".wipe");
    const top = group.querySelector("[data-wipe-top]");
    const line = group.querySelector("[data-wipe-line]");
    const control = group.querySelector("[data-wipe-control]");
    const note = group.querySelector("[data-mode-note]");
    const update = () => {
      const mode = group.querySelector("[data-mode-choice]:checked")?.value ?? "slider";
      box.dataset.mode = mode;
      const slider = mode === "slider";
      top.style.clipPath = slider ? `inset(0 0 0 ${wipe.value}%)` : "none";
      top.style.opacity = mode === "onion" ? String(wipe.value / 100) : "1";
      line.hidden = !slider;
      control.hidden = !(slider || mode === "onion");
      wipe.setAttribute("aria-label", mode === "onion" ? "Opacity of the after photo" : "Position of the before/after divide");
      line.style.left = `${wipe.value}%`;
      note.textContent = MODE_NOTES[mode];
    };
    wipe.addEventListener("input", update);
    for (const choice of group.querySelectorAll("[data-mode-choice]")) choice.addEventListener("change", update);
    update();
  }

  new ResizeObserver(apply).observe(panes[0]);
  apply();
}

for (const group of document.querySelectorAll("[data-compare]")) setUpGroup(group);
