// Live job progress on the photo page: polls each active job's status every 1.5 s and, when one
// finishes, reloads the page's analysis section so the new result (and overlay) appears.

const POLL_MS = 1500;
const ACTIVE = new Set(["queued", "running"]);

async function reloadAnalysisSection() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("analysis-section");
  const current = document.getElementById("analysis-section");
  if (fresh && current) {
    current.replaceWith(fresh);
    document.dispatchEvent(new CustomEvent("facet:analysis-updated"));
    watchJobs();
  }
}

function render(item, job) {
  item.dataset.status = job.status;
  const badge = item.querySelector("[data-role=status]");
  badge.className = `badge badge-${job.status}`;
  badge.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
  item.querySelector("[data-role=progress]").value = job.progress;
  item.querySelector("[data-role=message]").textContent = job.message || "";
  const error = item.querySelector("[data-role=error]");
  error.textContent = job.error || "";
  error.hidden = !job.error;
}

function watch(item) {
  const url = item.dataset.statusUrl;
  const poll = async () => {
    // A reload of the section replaces this element; its replacement has its own watcher.
    if (!item.isConnected) return;
    let job;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      job = await response.json();
    } catch {
      item.querySelector("[data-role=message]").textContent = "Could not reach the server; retrying…";
      window.setTimeout(poll, POLL_MS * 2);
      return;
    }
    render(item, job);
    if (ACTIVE.has(job.status)) window.setTimeout(poll, POLL_MS);
    else await reloadAnalysisSection();
  };
  window.setTimeout(poll, POLL_MS);
}

function watchJobs() {
  for (const item of document.querySelectorAll("#analysis-section .job[data-status-url]")) {
    if (ACTIVE.has(item.dataset.status) && !item.dataset.watched) {
      item.dataset.watched = "1";
      watch(item);
    }
  }
}

watchJobs();
