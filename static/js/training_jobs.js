// Live progress of the training jobs: polls each active job's JSON status every 2 s.
const ACTIVE = new Set(["queued", "running"]);
async function poll() {
  let active = false;
  for (const row of document.querySelectorAll("[data-training-job]")) {
    if (!ACTIVE.has(row.dataset.status)) continue;
    const response = await fetch(row.dataset.url, { credentials: "same-origin" });
    if (!response.ok) continue;
    const job = await response.json();
    row.dataset.status = job.status;
    const badge = row.querySelector("[data-role=status]");
    badge.className = `badge badge-${job.status}`;
    badge.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    row.querySelector("[data-role=progress]").value = job.progress;
    row.querySelector("[data-role=message]").textContent = job.message || "";
    const error = row.querySelector("[data-role=error]");
    error.textContent = job.error || "";
    error.hidden = !job.error;
    row.querySelector("[data-role=model]").textContent = job.model_version || "";
    if (ACTIVE.has(job.status)) active = true; else window.location.reload();
  }
  if (active) setTimeout(poll, 2000);
}
poll();
