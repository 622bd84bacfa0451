// The one progress widget of every kind of run (analysis jobs, trainings, campaigns): each element
// with data-run-status-url polls its run's status while it is queued or running and shows status,
// progress, message, error, a warning when the run is stuck, and the cancel / retry buttons. When a run
// finishes, data-reload says what to refresh: "page", or the id of a section fetched again from the
// server (the photo page's analysis section). Pages listen for "facet:run-finished" if they need more.

const POLL_MS = 1500;
const ACTIVE = new Set(["queued", "running"]);

// The newest reload asked of each section: when two runs finish close together, the older page may
// arrive last and must not replace the newer one.
const newestReload = new Map();

async function reloadSection(id) {
  const request = (newestReload.get(id) || 0) + 1;
  newestReload.set(id, request);
  let html;
  try {
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    // A refused page (the photo was deleted, access withdrawn) is not asked again; a server error is.
    if (response.status >= 500) throw new Error(`HTTP ${response.status}`);
    if (!response.ok) return;
    html = await response.text();
  } catch {
    // Nothing else would refresh the section once its runs have finished: try again.
    window.setTimeout(() => reloadSection(id), POLL_MS * 2);
    return;
  }
  if (newestReload.get(id) !== request) return;
  const page = new DOMParser().parseFromString(html, "text/html");
  const fresh = page.getElementById(id);
  const current = document.getElementById(id);
  if (fresh && current) {
    current.replaceWith(fresh);
    document.dispatchEvent(new CustomEvent("facet:section-updated", { detail: { id } }));
    watchRuns(fresh);
  }
}

function show(element, visible) {
  if (element) element.hidden = !visible;
}

function render(item, run) {
  item.dataset.status = run.status;
  const badge = item.querySelector("[data-role=status]");
  badge.className = `badge badge-${run.badge || run.status}`;
  badge.textContent = run.status_label;
  item.querySelector("[data-role=progress]").value = run.progress;
  item.querySelector("[data-role=message]").textContent = run.message || "";
  const error = item.querySelector("[data-role=error]");
  error.textContent = run.error || "";
  show(error, Boolean(run.error));
  const warning = item.querySelector("[data-role=warning]");
  warning.textContent = run.warning || "";
  show(warning, Boolean(run.warning));
  show(item.querySelector("[data-role=cancel]"), run.can_cancel);
  show(item.querySelector("[data-role=retry]"), run.can_retry);
}

async function finished(item, run) {
  item.dispatchEvent(new CustomEvent("facet:run-finished", { bubbles: true, detail: run }));
  const reload = item.dataset.reload;
  if (reload === "page") window.location.reload();
  else if (reload) await reloadSection(reload);
}

function watch(item) {
  const url = item.dataset.runStatusUrl;
  const poll = async () => {
    // A refreshed section replaces this element; its replacement has its own watcher.
    if (!item.isConnected) return;
    let run;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      run = await response.json();
    } catch {
      item.querySelector("[data-role=message]").textContent = "Could not reach the server; retrying…";
      window.setTimeout(poll, POLL_MS * 2);
      return;
    }
    render(item, run);
    if (ACTIVE.has(run.status)) window.setTimeout(poll, POLL_MS);
    else await finished(item, run);
  };
  poll();
}

export function watchRuns(root = document) {
  for (const item of root.querySelectorAll("[data-run-status-url]")) {
    if (ACTIVE.has(item.dataset.status) && !item.dataset.watched) {
      item.dataset.watched = "1";
      watch(item);
    }
  }
}

watchRuns();
