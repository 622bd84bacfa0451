// Multi-file drag-and-drop upload: one XMLHttpRequest per file, so each row shows its own progress
// and then either a link to the stored photo or the server's message for that file.

const panel = document.getElementById("upload-panel");

function csrfToken() {
  return panel.querySelector("input[name=csrfmiddlewaretoken]").value;
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function makeRow(file) {
  const row = document.createElement("li");
  row.className = "upload-row";
  row.dataset.state = "ready";
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name;
  name.title = file.name;
  const size = document.createElement("span");
  size.className = "muted small";
  size.textContent = formatBytes(file.size);
  const viewLabel = document.createElement("label");
  viewLabel.className = "upload-view";
  viewLabel.textContent = "View ";
  const view = document.createElement("select");
  view.append(document.getElementById("view-options").content.cloneNode(true));
  view.setAttribute("aria-label", `View of ${file.name}`);
  viewLabel.append(view);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "button-small";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${file.name}`);
  remove.addEventListener("click", () => {
    row.remove();
    updateStartButton();
  });
  const progress = document.createElement("progress");
  progress.max = 1;
  progress.value = 0;
  progress.setAttribute("aria-label", `Upload progress of ${file.name}`);
  const status = document.createElement("span");
  status.className = "upload-status small";
  status.textContent = "Ready";
  row.append(name, size, viewLabel, remove, progress, status);
  row.file = file;
  row.parts = { view, remove, progress, status };
  return row;
}

function addFiles(files) {
  const list = document.getElementById("upload-list");
  for (const file of files) list.append(makeRow(file));
  updateStartButton();
}

function pendingRows() {
  return [...document.querySelectorAll("#upload-list .upload-row[data-state=ready]")];
}

function updateStartButton() {
  document.getElementById("upload-start").disabled = pendingRows().length === 0;
}

function showResult(row, ok, message, photo, visitLabel) {
  const { status, progress } = row.parts;
  row.dataset.state = ok ? "done" : "error";
  status.textContent = "";
  if (ok) {
    progress.value = 1;
    const link = document.createElement("a");
    link.href = photo.url;
    link.textContent = `Uploaded to ${visitLabel} — open photo ${photo.id}`;
    status.append(link);
  } else {
    status.textContent = message;
    status.setAttribute("role", "alert");
  }
}

function uploadRow(row, url, visitLabel) {
  return new Promise((resolve) => {
    const { view, remove, progress, status } = row.parts;
    row.dataset.state = "uploading";
    view.disabled = true;
    remove.hidden = true;
    status.textContent = `Uploading to ${visitLabel}…`;
    const body = new FormData();
    body.append("file", row.file, row.file.name);
    body.append("view", view.value);
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        progress.value = event.loaded / event.total;
        status.textContent = `Uploading to ${visitLabel}… ${Math.round((100 * event.loaded) / event.total)}%`;
      }
    };
    request.upload.onload = () => {
      status.textContent = "Checking the photo…";
    };
    request.onload = () => {
      let payload = null;
      try {
        payload = JSON.parse(request.responseText);
      } catch {
        payload = null;
      }
      if (payload && payload.ok) {
        showResult(row, true, "", payload.photo, visitLabel);
      } else {
        const message = payload && payload.error ? payload.error : `The server refused the file (HTTP ${request.status}).`;
        showResult(row, false, message);
      }
      resolve();
    };
    request.onerror = () => {
      showResult(row, false, "The upload was interrupted: check the network connection and try again.");
      resolve();
    };
    request.send(body);
  });
}

async function startUploads() {
  const visitSelect = document.getElementById("upload-visit");
  const option = visitSelect.selectedOptions[0];
  const url = option.dataset.url;
  const visitLabel = option.dataset.label;
  const start = document.getElementById("upload-start");
  start.disabled = true;
  visitSelect.disabled = true;
  // One file at a time: parallel uploads compete for bandwidth and the server hashes each in full.
  for (const row of pendingRows()) await uploadRow(row, url, visitLabel);
  visitSelect.disabled = false;
  document.getElementById("upload-refresh").hidden = false;
  updateStartButton();
}

if (panel) {
  const dropzone = document.getElementById("dropzone");
  const input = document.getElementById("upload-input");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  dropzone.addEventListener("click", (event) => {
    if (event.target === dropzone) input.click();
  });
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  document.getElementById("upload-start").addEventListener("click", startUploads);
}
