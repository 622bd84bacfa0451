// Facial-zone overlay on the photo page: each zone's outlines (from the zones result, in the photo's
// pixel frame) drawn as an SVG path with its name on hover; the legend toggles zones one by one.
// Also shows the wrinkle-mask overlay. Redrawn when runs.js refreshes the analysis section.

const SVG = "http://www.w3.org/2000/svg";

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function pathData(outlines) {
  return outlines
    .map((flat) => {
      const points = [];
      for (let i = 0; i < flat.length; i += 2) points.push(`${flat[i] + 0.5},${flat[i + 1] + 0.5}`);
      return `M${points.join("L")}Z`;
    })
    .join("");
}

function visibleZones() {
  const shown = new Set();
  for (const box of document.querySelectorAll("[data-zone-toggle]")) if (box.checked) shown.add(box.dataset.zoneToggle);
  return shown;
}

function applyZoneVisibility() {
  const svg = document.getElementById("zone-overlay");
  if (!svg) return;
  const master = document.getElementById("toggle-zones");
  svg.style.display = master && !master.checked ? "none" : "";
  const shown = visibleZones();
  for (const path of svg.querySelectorAll("path[data-zone]")) {
    path.style.display = shown.has(path.dataset.zone) ? "" : "none";
  }
}

function drawZones() {
  const svg = document.getElementById("zone-overlay");
  if (!svg) return;
  svg.replaceChildren();
  const data = readJson("zones-data");
  const master = document.getElementById("toggle-zones");
  if (master) master.disabled = !data;
  if (!data) return;
  const unit = Math.max(data.image.width || 1, data.image.height || 1) / 600;
  // Zones of interest last, so they sit on top where zones overlap.
  const ordered = [...data.zones].sort((a, b) => Number(a.interest) - Number(b.interest) || a.number - b.number);
  for (const zone of ordered) {
    if (!zone.outlines.length) continue;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", pathData(zone.outlines));
    path.setAttribute("fill-rule", "evenodd");
    path.setAttribute("class", "zone-shape");
    path.setAttribute("stroke-width", 1.2 * unit);
    path.dataset.zone = zone.abbreviation;
    path.style.setProperty("--zone-colour", zone.colour);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${zone.number} · ${zone.abbreviation} · ${zone.name}`;
    path.append(title);
    svg.append(path);
  }
  applyZoneVisibility();
}

function drawWrinkles() {
  const img = document.getElementById("wrinkle-overlay-img");
  if (!img) return;
  const urls = readJson("wrinkle-data") || {};
  const toggle = document.getElementById("toggle-wrinkles");
  const url = urls["wrinkle-overlay"];
  if (toggle) toggle.disabled = !url;
  if (!url) {
    img.hidden = true;
    img.removeAttribute("src");
    return;
  }
  if (img.getAttribute("src") !== url) img.src = url;
  img.hidden = toggle ? !toggle.checked : false;
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("[data-zone-toggle]") || target.id === "toggle-zones") applyZoneVisibility();
  if (target.id === "toggle-wrinkles") drawWrinkles();
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-zone-show]");
  if (!button) return;
  const mode = button.dataset.zoneShow;
  for (const box of document.querySelectorAll("[data-zone-toggle]")) {
    box.checked = mode === "all" || (mode === "interest" && box.dataset.interest === "1");
  }
  applyZoneVisibility();
});

// Hovering a legend entry highlights its zone on the photo.
document.addEventListener("pointerover", (event) => {
  const label = event.target.closest?.("#zone-legend li");
  for (const path of document.querySelectorAll("#zone-overlay path.highlight")) path.classList.remove("highlight");
  if (!label) return;
  const zone = label.querySelector("[data-zone-toggle]")?.dataset.zoneToggle;
  document.querySelector(`#zone-overlay path[data-zone="${zone}"]`)?.classList.add("highlight");
});

function drawAll() {
  drawZones();
  drawWrinkles();
}

document.addEventListener("facet:section-updated", drawAll);
drawAll();
