// Annotator page: leases one triplet task at a time from the REST API, shows it, and posts
// the answer.
//
// Flow per task: GET the next task, preload and decode its three images off-screen, then
// swap the preloaded <img> elements into the page in one step. So the images of the next
// task are fetched before they are displayed, and the swap itself never waits on the network.
// The API leases at most one task per annotator and dataset, so the next task can only be
// requested once the current answer is stored. The answer POST and the next GET therefore
// run back to back, and the answered task stays on screen, disabled, until the next is ready.
//
// Answers are never dropped: a network error or a 5xx/429 response is retried with the
// same client_token, which the API uses to store one judgement however often it arrives.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("annotator-config").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

  const elements = {
    annotator: document.getElementById("annotator"),
    conditionName: document.getElementById("condition-name"),
    prompt: document.getElementById("prompt"),
    anchorFrame: document.getElementById("anchor-frame"),
    leftFrame: document.getElementById("left-frame"),
    rightFrame: document.getElementById("right-frame"),
    buttons: Array.from(document.querySelectorAll("#annotator .choice")),
    counter: document.getElementById("answer-count"),
    doneCount: document.getElementById("done-count"),
    mturkAnswerCount: document.getElementById("mturk-answer-count"),
    notice: document.getElementById("notice"),
    doneScreen: document.getElementById("done-screen"),
    blockedScreen: document.getElementById("blocked-screen"),
    blockedTitle: document.getElementById("blocked-title"),
    blockedDetail: document.getElementById("blocked-detail"),
    checkAgain: document.getElementById("check-again"),
  };

  // Keys are matched on KeyboardEvent.key, lower-cased for letters.
  const KEY_CHOICES = {
    arrowleft: "left",
    1: "left",
    arrowright: "right",
    2: "right",
    arrowdown: "tie",
    0: "tie",
    t: "tie",
    s: "skip",
    " ": "skip",
  };

  // Wait between retries of a failed request, in milliseconds. The last value repeats.
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  // Images at most this many pixels wide and high (glyphs, icons) are scaled up with hard
  // pixel edges; larger ones (photos) are scaled up smoothly.
  const PIXELATED_MAX_SIDE = 96;

  const state = {
    task: null,
    clientToken: null,
    shownAt: 0,
    busy: true,
    answerInFlight: false,
    answeredCount: Number(config.answeredCount) || 0,
  };

  function sleep(milliseconds) {
    return new Promise((resolve) => setTimeout(resolve, milliseconds));
  }

  function newClientToken() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // crypto.randomUUID needs a secure context (HTTPS or localhost), so build a v4 UUID otherwise.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (value) => value.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function showNotice(message) {
    elements.notice.textContent = message;
    elements.notice.hidden = false;
  }

  function clearNotice() {
    elements.notice.hidden = true;
    elements.notice.textContent = "";
  }

  function setBusy(busy) {
    state.busy = busy;
    elements.annotator.setAttribute("aria-busy", busy ? "true" : "false");
    for (const button of elements.buttons) {
      button.disabled = busy;
    }
  }

  function isRetryable(response) {
    return response === null || response.status >= 500 || response.status === 429 || response.status === 408;
  }

  // Send a request until it gets a response that retrying cannot change (any 2xx, or a 4xx
  // other than 408/429), waiting longer after each failure.
  async function fetchWithRetry(url, options, activity) {
    for (let attempt = 0; ; attempt += 1) {
      let response = null;
      try {
        response = await fetch(url, options);
      } catch (error) {
        console.warn(`request to ${url} failed: ${error}`);
      }
      if (!isRetryable(response)) {
        return response;
      }
      const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
      const reason = response === null ? "Connection problem" : `Server error ${response.status}`;
      showNotice(`${reason} while ${activity}. Retrying in ${Math.round(delay / 1000)} s; nothing is lost.`);
      await sleep(delay);
    }
  }

  // Read an API error body: {"detail": sentence, "code": machine-readable reason, FIELD: [...]}.
  async function readError(response) {
    try {
      const body = await response.json();
      return {
        detail: typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`,
        code: typeof body.code === "string" ? body.code : "",
      };
    } catch (error) {
      return { detail: `HTTP ${response.status}`, code: "" };
    }
  }

  // Show the end screen for a 401/403 that ends the session: a blocked account, or a login
  // that expired (DRF's "not authenticated" errors carry no code).
  function showAccessEnded(error) {
    clearNotice();
    if (error.code === "annotator_blocked") {
      elements.blockedTitle.textContent = "You cannot answer tasks now";
      elements.blockedDetail.textContent = "Your account is blocked from answering tasks.";
    } else {
      elements.blockedTitle.textContent = "Please log in again";
      elements.blockedDetail.textContent = `${error.detail} Reload the page to continue.`;
    }
    showEndScreen(elements.blockedScreen);
  }

  function endsAccess(response, error) {
    return response.status === 401 || (response.status === 403 && (error.code === "annotator_blocked" || error.code === ""));
  }

  // Load and decode one image off-screen. The promise resolves with the element even if
  // loading fails, so a broken image shows its alt text and the task can still be skipped.
  function preloadImage(url, altText) {
    const image = new Image();
    image.alt = altText;
    image.decoding = "async";
    image.draggable = false;
    image.src = url;
    return image
      .decode()
      .then(() => {
        const pixelated = image.naturalWidth <= PIXELATED_MAX_SIDE && image.naturalHeight <= PIXELATED_MAX_SIDE;
        image.classList.toggle("pixelated", pixelated);
        return image;
      })
      .catch(() => {
        console.warn(`image ${url} failed to load`);
        image.classList.add("broken");
        return image;
      });
  }

  function preloadTaskImages(task) {
    const [left, right] = task.candidates;
    return Promise.all([
      preloadImage(task.anchor.image_url, "Reference image"),
      preloadImage(left.image_url, "Left candidate"),
      preloadImage(right.image_url, "Right candidate"),
    ]);
  }

  function showTask(task, images) {
    const [anchorImage, leftImage, rightImage] = images;
    state.task = task;
    state.clientToken = newClientToken();

    elements.conditionName.textContent = task.condition.name;
    elements.prompt.textContent = task.condition.prompt || `Which is closer to the reference in ${task.condition.name}?`;
    elements.anchorFrame.replaceChildren(anchorImage);
    elements.leftFrame.replaceChildren(leftImage);
    elements.rightFrame.replaceChildren(rightImage);
    elements.annotator.dataset.taskId = String(task.id);
    elements.annotator.dataset.state = "task";
    document.getElementById("choose-left").dataset.itemId = String(task.candidates[0].id);
    document.getElementById("choose-right").dataset.itemId = String(task.candidates[1].id);

    // Time the answer from the first frame that paints the new images.
    requestAnimationFrame(() => {
      state.shownAt = performance.now();
      setBusy(false);
    });
  }

  function showEndScreen(screen) {
    elements.annotator.hidden = true;
    elements.annotator.dataset.state = screen === elements.doneScreen ? "done" : "blocked";
    elements.doneScreen.hidden = screen !== elements.doneScreen;
    elements.blockedScreen.hidden = screen !== elements.blockedScreen;
    state.task = null;
  }

  async function loadNextTask() {
    setBusy(true);
    const response = await fetchWithRetry(
      config.nextUrl,
      { credentials: "same-origin", headers: { Accept: "application/json" } },
      "loading the next task",
    );
    if (response.status === 204) {
      clearNotice();
      elements.doneCount.textContent = String(state.answeredCount);
      if (elements.mturkAnswerCount) {
        elements.mturkAnswerCount.value = String(state.answeredCount);
      }
      showEndScreen(elements.doneScreen);
      return;
    }
    if (!response.ok) {
      const error = await readError(response);
      if (endsAccess(response, error)) {
        showAccessEnded(error);
      } else {
        showNotice(`The next task could not be loaded: ${error.detail} Reload the page to try again.`);
      }
      return;
    }

    const task = await response.json();
    const images = await preloadTaskImages(task);
    clearNotice();
    elements.annotator.hidden = false;
    elements.doneScreen.hidden = true;
    showTask(task, images);
  }

  function answerValue(choice) {
    if (choice === "left") {
      return state.task.candidates[0].id;
    }
    if (choice === "right") {
      return state.task.candidates[1].id;
    }
    return choice;
  }

  async function submitAnswer(choice) {
    if (state.busy || state.task === null) {
      return;
    }
    setBusy(true);
    const task = state.task;
    const body = JSON.stringify({
      choice: answerValue(choice),
      client_token: state.clientToken,
      response_ms: Math.max(0, Math.round(performance.now() - state.shownAt)),
    });
    const url = config.answerUrlTemplate.replace("{id}", encodeURIComponent(task.id));
    state.answerInFlight = true;
    const response = await fetchWithRetry(
      url,
      {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body,
      },
      "saving your answer",
    );
    state.answerInFlight = false;

    if (response.status === 200 || response.status === 201) {
      // 200 means an earlier attempt with this client_token was stored but its response was lost.
      state.answeredCount += 1;
      elements.counter.textContent = String(state.answeredCount);
    } else {
      const error = await readError(response);
      if (endsAccess(response, error)) {
        showAccessEnded(error);
        return;
      }
      // A rejected answer (an expired lease taken over by someone else, a conflicting earlier
      // answer) cannot succeed on retry, so the page moves on to the next task.
      console.warn(`answer to task ${task.id} was rejected with ${response.status}: ${error.detail}`);
      showNotice(`That answer was not accepted: ${error.detail} Moving on to the next task.`);
    }
    await loadNextTask();
  }

  function onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
      return;
    }
    const choice = KEY_CHOICES[event.key.toLowerCase()];
    if (choice === undefined || elements.annotator.hidden) {
      return;
    }
    // Stop Space from scrolling or pressing a focused button, and arrows from scrolling.
    event.preventDefault();
    if (event.repeat) {
      return;
    }
    submitAnswer(choice);
  }

  for (const button of elements.buttons) {
    button.addEventListener("click", () => {
      button.blur();
      submitAnswer(button.dataset.choice);
    });
  }
  elements.checkAgain.addEventListener("click", () => {
    loadNextTask();
  });
  document.addEventListener("keydown", onKeyDown);
  // Leaving the page drops an answer that is still being sent or retried, so ask first.
  window.addEventListener("beforeunload", (event) => {
    if (state.answerInFlight) {
      event.preventDefault();
    }
  });

  loadNextTask();
})();
