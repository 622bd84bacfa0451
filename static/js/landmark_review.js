// Review of suggested landmarks: draws the 68 points and the face box over the photo, lets the
// reviewer drag points, and puts the corrected points into the review form when it is submitted.

const SVG_NS = "http://www.w3.org/2000/svg";
// iBUG-68 contours: [first, last, closed]
const CONTOURS = [
  [0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
  [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true],
];
const NUDGE_PX = 1;

function svgPoint(svg, event) {
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  return point.matrixTransform(svg.getScreenCTM().inverse());
}

function setUp() {
  const svg = document.getElementById("review-overlay");
  const source = document.getElementById("review-points");
  if (!svg || !source) return;
  const data = JSON.parse(source.textContent);
  const original = data.keypoints.map(([x, y]) => [x, y]);
  const points = data.keypoints.map(([x, y]) => [x, y]);
  const editable = svg.dataset.editable === "true";
  const radius = Math.max(2, Math.min(data.width, data.height) / 180);
  const movedCount = document.getElementById("moved-count");

  const [x0, y0, x1, y1] = data.box;
  const box = document.createElementNS(SVG_NS, "rect");
  box.setAttribute("class", "review-box");
  box.setAttribute("x", x0);
  box.setAttribute("y", y0);
  box.setAttribute("width", x1 - x0);
  box.setAttribute("height", y1 - y0);
  svg.appendChild(box);

  const lines = CONTOURS.map(([first, last, closed]) => {
    const line = document.createElementNS(SVG_NS, closed ? "polygon" : "polyline");
    line.setAttribute("class", "review-contour");
    line.dataset.first = String(first);
    line.dataset.last = String(last);
    svg.appendChild(line);
    return line;
  });

  const circles = points.map(([x, y], index) => {
    const circle = document.createElementNS(SVG_NS, "circle");
    circle.setAttribute("class", "review-point");
    circle.setAttribute("r", radius);
    circle.setAttribute("cx", x);
    circle.setAttribute("cy", y);
    circle.dataset.index = String(index);
    if (editable) {
      circle.setAttribute("tabindex", "0");
      circle.setAttribute("aria-label", `Point ${index + 1}: arrow keys move it`);
    }
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `Point ${index + 1}`;
    circle.appendChild(title);
    svg.appendChild(circle);
    return circle;
  });

  function refresh() {
    lines.forEach((line) => {
      const first = Number(line.dataset.first);
      const last = Number(line.dataset.last);
      line.setAttribute("points", points.slice(first, last + 1).map(([x, y]) => `${x},${y}`).join(" "));
    });
    let moved = 0;
    circles.forEach((circle, index) => {
      circle.setAttribute("cx", points[index][0]);
      circle.setAttribute("cy", points[index][1]);
      const isMoved = Math.hypot(points[index][0] - original[index][0], points[index][1] - original[index][1]) > 0.5;
      circle.classList.toggle("moved", isMoved);
      if (isMoved) moved += 1;
    });
    if (movedCount) movedCount.textContent = String(moved);
  }

  if (editable) {
    let dragged = null;
    svg.addEventListener("pointerdown", (event) => {
      const target = event.target.closest("circle.review-point");
      if (!target) return;
      dragged = Number(target.dataset.index);
      target.classList.add("dragging");
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", (event) => {
      if (dragged === null) return;
      const at = svgPoint(svg, event);
      points[dragged] = [Math.round(at.x * 1000) / 1000, Math.round(at.y * 1000) / 1000];
      refresh();
    });
    const stop = (event) => {
      if (dragged === null) return;
      circles[dragged].classList.remove("dragging");
      dragged = null;
      if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    };
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
    svg.addEventListener("keydown", (event) => {
      const target = event.target.closest("circle.review-point");
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
      if (!target || !step) return;
      const index = Number(target.dataset.index);
      const scale = event.shiftKey ? 10 : 1;
      points[index] = [points[index][0] + step[0] * NUDGE_PX * scale, points[index][1] + step[1] * NUDGE_PX * scale];
      refresh();
      event.preventDefault();
    });
  }

  const form = document.getElementById("review-form");
  if (form) {
    form.addEventListener("submit", () => {
      document.getElementById("review-keypoints").value = JSON.stringify(points);
    });
  }
  const reset = document.getElementById("review-reset");
  if (reset) {
    reset.addEventListener("click", () => {
      original.forEach(([x, y], index) => { points[index] = [x, y]; });
      refresh();
    });
  }
  refresh();
}

setUp();
