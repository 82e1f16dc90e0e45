// The admin pages' script (written here; no build step). Every page works without it:
// it only makes waiting and correcting pleasanter.
"use strict";

// A new upload's thumbnail is made by the worker a moment later. Ask the public API for
// the product until it names the thumbnail, then show it in place of the placeholder
// (without JavaScript, the "Refresh" link next to the placeholder does the same). Its
// words come with the placeholder, in the reader's language.
function waitForThumbnail(figure) {
  const placeholder = figure.querySelector("[data-testid=thumbnail-pending]");
  if (!placeholder) return;
  const caption = figure.querySelector("figcaption");
  const started = Date.now();
  let delay = 800;

  async function check() {
    try {
      const answer = await fetch(figure.dataset.productUrl, { headers: { Accept: "application/json" } });
      if (answer.ok) {
        const product = await answer.json();
        if (product.thumbnail_url) {
          const image = new Image();
          image.className = "thumb-large";
          image.alt = placeholder.dataset.textAlt || product.name;
          image.dataset.testid = "thumbnail";
          image.src = product.thumbnail_url;
          await image.decode().catch(() => {});
          placeholder.replaceWith(image);
          if (caption) caption.textContent = placeholder.dataset.textMade || "";
          return;
        }
      }
    } catch (error) {
      // The network blinked: try again below, like when the thumbnail is not there yet.
    }
    if (Date.now() - started > 120000) {
      if (caption) caption.textContent = placeholder.dataset.textSlow || "";
      return;
    }
    delay = Math.min(delay * 1.5, 5000);
    setTimeout(check, delay);
  }
  setTimeout(check, delay);
}

// Show the chosen picture before it is uploaded (a blob: URL, never sent anywhere).
function previewChosenPicture(input) {
  let preview = null;
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (preview) { URL.revokeObjectURL(preview.src); preview.remove(); preview = null; }
    if (!file || !file.type.startsWith("image/")) return;
    preview = new Image();
    preview.className = "thumb-large";
    preview.alt = input.dataset.previewAlt || "";
    preview.src = URL.createObjectURL(file);
    input.insertAdjacentElement("afterend", preview);
  });
}

// After a form came back with mistakes, move focus to their list, so the keyboard and
// screen reader start where the work is.
function focusMistakes() {
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
}

document.querySelectorAll("[data-thumbnail]").forEach(waitForThumbnail);
document.querySelectorAll(".admin input[type=file]").forEach(previewChosenPicture);
focusMistakes();
