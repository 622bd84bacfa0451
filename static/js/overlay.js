// Draws the 68-point landmark overlay (points and the iBUG-68 contours) and the face box as SVG
// over the photo, from the landmark result that the page embeds with json_script.

const SVG = "http://www.w3.org/2000/svg";

// iBUG-68 contours: [first index, last index, closed]
const CONTOURS = [
  ["jaw", 0, 16, false],
  ["brow", 17, 21, false],
  ["brow", 22, 26, false],
  ["nose", 27, 30, false],
  ["nose", 31, 35, false],
  ["eye", 36, 41, true],
  ["eye", 42, 47, true],
  ["lips", 48, 59, true],
  ["lips", 60, 67, true],
];

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function draw() {
  const svg = document.getElementById("landmark-overlay");
  const source = document.getElementById("landmark-data");
  const note = document.getElementById("overlay-note");
  if (!svg || !source) return;
  svg.replaceChildren();
  const data = JSON.parse(source.textContent);
  if (!data || !data.faces) {
    note.textContent = "No landmarks yet: the overlay appears when the landmark job has finished.";
    return;
  }
  if (data.faces.length === 0) {
    note.textContent = "No face was found, so there is no overlay.";
    return;
  }
  // Stroke widths in image pixels, scaled to the photo so the overlay reads the same at any size.
  const unit = Math.max(data.image.width, data.image.height) / 600;
  const boxes = element("g", { class: "overlay-box", "stroke-width": 2 * unit });
  const lines = element("g", { class: "overlay-landmarks", "stroke-width": 1.4 * unit });
  for (const face of data.faces) {
    const [x0, y0, x1, y1] = face.box;
    boxes.append(element("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
    const points = face.landmarks;
    for (const [part, first, last, closed] of CONTOURS) {
      const coordinates = points.slice(first, last + 1).map(([x, y]) => `${x},${y}`).join(" ");
      lines.append(element(closed ? "polygon" : "polyline", { class: `contour contour-${part}`, points: coordinates }));
    }
    for (const [x, y] of points) lines.append(element("circle", { cx: x, cy: y, r: 1.8 * unit }));
  }
  svg.append(boxes, lines);
  note.textContent = `${data.faces[0].landmarks.length} landmarks${data.faces.length > 1 ? ` on each of ${data.faces.length} faces` : ""}.`;
  applyToggles();
}

function applyToggles() {
  const svg = document.getElementById("landmark-overlay");
  const showLandmarks = document.getElementById("toggle-landmarks").checked;
  const showBox = document.getElementById("toggle-box").checked;
  for (const group of svg.querySelectorAll(".overlay-landmarks")) group.style.display = showLandmarks ? "" : "none";
  for (const group of svg.querySelectorAll(".overlay-box")) group.style.display = showBox ? "" : "none";
}

document.getElementById("toggle-landmarks")?.addEventListener("change", applyToggles);
document.getElementById("toggle-box")?.addEventListener("change", applyToggles);
document.addEventListener("facet:section-updated", draw);
draw();
