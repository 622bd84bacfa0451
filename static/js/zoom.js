// Zoom and pan for a photo with its overlays (photo page, landmark review). Every figure marked
// data-zoom-viewer gets its children wrapped in one stage that is scaled and moved as a whole, so
// overlays stay on their pixels. Wheel or the +/− buttons zoom at the pointer or the centre, a drag
// pans (a drag that starts on an editable landmark still moves the landmark), keys + − 0 work when the
// figure has focus, and "Fit" resets.

const MIN_ZOOM = 1;
const MAX_ZOOM = 16;
const STEP = 1.5;

function setUp(figure) {
  const stage = document.createElement("div");
  stage.className = "zoom-stage";
  stage.append(...figure.childNodes);
  figure.append(stage);
  figure.tabIndex = 0;
  const toolbar = document.querySelector(`[data-zoom-for="${figure.id}"]`);
  const level = toolbar?.querySelector("[data-zoom-level]");
  const view = { zoom: 1, x: 0, y: 0 };

  function apply() {
    const width = figure.clientWidth;
    const height = figure.clientHeight;
    view.x = Math.min(0, Math.max((1 - view.zoom) * width, view.x));
    view.y = Math.min(0, Math.max((1 - view.zoom) * height, view.y));
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
    figure.dataset.zoom = view.zoom.toFixed(3);
    figure.classList.toggle("zoomed", view.zoom > 1);
    if (level) level.textContent = `${Math.round(view.zoom * 100)}%`;
  }

  function zoomAt(factor, clientX, clientY) {
    const rect = figure.getBoundingClientRect();
    const px = clientX === undefined ? rect.width / 2 : clientX - rect.left;
    const py = clientY === undefined ? rect.height / 2 : clientY - rect.top;
    const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom * factor));
    view.x = px - ((px - view.x) * zoom) / view.zoom;
    view.y = py - ((py - view.y) * zoom) / view.zoom;
    view.zoom = zoom;
    apply();
  }

  function reset() {
    Object.assign(view, { zoom: 1, x: 0, y: 0 });
    apply();
  }

  figure.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  }, { passive: false });

  figure.addEventListener("pointerdown", (event) => {
    if (view.zoom <= 1 || event.target.closest(".review-point")) return;
    figure.setPointerCapture(event.pointerId);
    const start = { x: event.clientX, y: event.clientY, viewX: view.x, viewY: view.y };
    figure.classList.add("panning");
    const move = (moveEvent) => {
      view.x = start.viewX + moveEvent.clientX - start.x;
      view.y = start.viewY + moveEvent.clientY - start.y;
      apply();
    };
    const end = () => {
      figure.classList.remove("panning");
      figure.removeEventListener("pointermove", move);
      figure.removeEventListener("pointerup", end);
      figure.removeEventListener("pointercancel", end);
    };
    figure.addEventListener("pointermove", move);
    figure.addEventListener("pointerup", end);
    figure.addEventListener("pointercancel", end);
  });

  figure.addEventListener("keydown", (event) => {
    if (event.key === "+" || event.key === "=") zoomAt(STEP);
    else if (event.key === "-") zoomAt(1 / STEP);
    else if (event.key === "0") reset();
    else return;
    event.preventDefault();
  });

  for (const button of toolbar?.querySelectorAll("[data-zoom]") ?? []) {
    button.addEventListener("click", () => {
      if (button.dataset.zoom === "in") zoomAt(STEP);
      else if (button.dataset.zoom === "out") zoomAt(1 / STEP);
      else reset();
    });
  }

  new ResizeObserver(apply).observe(figure);
  apply();
}

for (const figure of document.querySelectorAll("[data-zoom-viewer]")) setUp(figure);
