// Live results: while the survey is open, the figures are fetched again every 20 seconds.
(function () {
  "use strict";
  const container = document.getElementById("survey-results");
  if (!container || !container.dataset.live) return;
  const REFRESH_MS = 20000;
  async function refresh() {
    // Do not replace the tables while someone is typing an exclusion reason.
    if (container.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    try {
      const response = await fetch(container.dataset.refreshUrl, { credentials: "same-origin" });
      if (response.ok) container.innerHTML = await response.text();
    } catch (error) {
      // Offline for a moment: the next round tries again.
    }
  }
  setInterval(refresh, REFRESH_MS);
})();
