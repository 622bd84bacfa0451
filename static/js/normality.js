// Heatmap opacity sliders of the normality results (photo page and comparison page): each slider
// sets the opacity of the heatmaps in its own result block. Delegated, so it survives the analysis
// section being refreshed by runs.js.

document.addEventListener("input", (event) => {
  const slider = event.target;
  if (!slider.matches("[data-heatmap-opacity]")) return;
  const block = slider.closest(".card, .compare-result") || document;
  for (const heatmap of block.querySelectorAll("img.heatmap")) heatmap.style.opacity = String(slider.value / 100);
});
