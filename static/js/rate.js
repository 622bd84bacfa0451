// The blinded rating page: one photo at a time, keys or buttons 1–7, undo, pause; every rating is sent
// with a submission id and retried with the same id until the server answers, so it is stored once.
(function () {
  "use strict";
  const root = document.getElementById("rater");
  if (!root) return;
  const photo = document.getElementById("photo");
  const loading = document.getElementById("loading");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const message = document.getElementById("message");
  const paused = document.getElementById("paused");
  const finished = document.getElementById("finished");
  const buttons = Array.from(root.querySelectorAll(".scale-button"));
  const imageUrl = (token) => root.dataset.imageUrl + encodeURIComponent(token);
  let state = null;
  let shownAt = null;
  let busy = false;
  let isPaused = false;

  function submissionId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function setEnabled(enabled) {
    buttons.forEach((button) => { button.disabled = !enabled; });
  }

  function render(next) {
    state = next;
    progress.max = state.total;
    progress.value = state.done;
    progressText.textContent = `${state.done} of ${state.total} rated`;
    document.getElementById("undo").disabled = !state.can_undo || !state.open;
    root.dataset.done = String(state.done);
    if (!state.open && state.current) {
      say("This survey is closed; no more ratings are taken.");
    }
    if (!state.current) {
      photo.hidden = true;
      loading.hidden = true;
      setEnabled(false);
      finished.hidden = false;
      root.dataset.finished = "1";
      return;
    }
    finished.hidden = true;
    root.dataset.finished = "";
    if (photo.dataset.token !== state.current) {
      setEnabled(false);
      shownAt = null;
      photo.hidden = true;
      loading.hidden = false;
      photo.dataset.token = state.current;
      photo.src = imageUrl(state.current);
    } else {
      setEnabled(state.open);
    }
    if (state.next) new Image().src = imageUrl(state.next);
  }

  photo.addEventListener("load", () => {
    photo.hidden = false;
    loading.hidden = true;
    shownAt = performance.now();
    setEnabled(state && state.open);
    root.dataset.ready = photo.dataset.token;
  });
  photo.addEventListener("error", () => say("The photo could not be loaded; reload the page."));

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data };
  }

  async function submit(value) {
    if (busy || isPaused || !state || !state.current || shownAt === null || !state.open) return;
    busy = true;
    setEnabled(false);
    const body = {
      token: state.current,
      rating: value,
      submission_id: submissionId(),
      elapsed_ms: Math.round(performance.now() - shownAt),
    };
    let delay = 500;
    for (;;) {
      try {
        const { status, data } = await post(root.dataset.submitUrl, body);
        if (status >= 500) throw new Error(`server answered ${status}`);
        say(data.ok ? "" : data.error || "The rating was not stored.");
        if (data.state) render(data.state);
        else setEnabled(true);
        break;
      } catch (error) {
        // Network failure or server error: try again with the same submission id (stored once).
        say("Connection problem: retrying…");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 8000);
      }
    }
    busy = false;
  }

  async function undo() {
    if (busy || isPaused || !state || !state.can_undo) return;
    busy = true;
    try {
      const { data } = await post(root.dataset.undoUrl);
      say(data.ok ? "" : data.error || "Nothing to undo.");
      if (data.state) render(data.state);
    } catch (error) {
      say("Connection problem: the last rating was not undone; try again.");
    }
    busy = false;
  }

  function setPaused(value) {
    isPaused = value;
    paused.hidden = !value;
    document.getElementById("stage").hidden = value;
    document.getElementById("scale").hidden = value;
    if (!value) shownAt = performance.now();
  }

  buttons.forEach((button) => button.addEventListener("click", () => submit(Number(button.dataset.value))));
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("pause").addEventListener("click", () => setPaused(true));
  document.getElementById("resume").addEventListener("click", () => setPaused(false));
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target instanceof HTMLInputElement) return;
    const value = Number(event.key);
    if (buttons.some((button) => Number(button.dataset.value) === value)) {
      event.preventDefault();
      submit(value);
    } else if (event.key === "Backspace") {
      event.preventDefault();
      undo();
    }
  });

  fetch(root.dataset.stateUrl, { credentials: "same-origin" })
    .then((response) => response.json())
    .then(render)
    .catch(() => say("Could not load the survey; reload the page."));
})();
