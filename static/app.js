// Optional enhancements only: every page works without this file (and without htmx).
"use strict";

// "Copy codes" exists only when JavaScript can do it; without JavaScript the textarea and download link remain.
function enhanceCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    if (button.dataset.ready) continue;
    button.dataset.ready = "1";
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.value);
      } catch {
        source.select();
        document.execCommand("copy");
      }
      const flash = document.getElementById("flash");
      if (flash) flash.textContent = "Recovery codes copied.";
    });
  }
}

// Count the resend cooldown down in place; the server still enforces it. Every button described by the same
// wait message ("Resend code" and "Call me instead") is aria-disabled until that one countdown ends.
function enhanceCountdowns(root) {
  const waits = new Map();
  for (const button of root.querySelectorAll("button[data-cooldown]")) {
    if (button.dataset.ticking) continue;
    button.dataset.ticking = "1";
    button.setAttribute("aria-disabled", "true");
    const id = button.getAttribute("aria-describedby");
    if (!waits.has(id)) waits.set(id, { left: parseInt(button.dataset.cooldown, 10), buttons: [] });
    waits.get(id).buttons.push(button);
  }
  for (const [id, wait] of waits) {
    const label = document.getElementById(id);
    const counter = label && label.querySelector(".countdown");
    const timer = setInterval(() => {
      if (!wait.buttons.some((b) => b.isConnected)) {
        clearInterval(timer); // swapped out: a new step brings its own countdown
        return;
      }
      wait.left -= 1;
      if (counter) counter.textContent = String(Math.max(wait.left, 0));
      if (wait.left <= 0) {
        clearInterval(timer);
        for (const button of wait.buttons) button.removeAttribute("aria-disabled");
        if (label) label.textContent = "You can ask for a new code now.";
      }
    }, 1000);
  }
}

function enhance(root) {
  enhanceCopyButtons(root);
  enhanceCountdowns(root);
}

document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:after:swap", () => enhance(document));
