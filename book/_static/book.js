/* The book's own script, loaded with `defer` on every page.

   Tap (or click) to enlarge: a figure or slider frame opens in a full-screen view at the size it was drawn for, where a phone
   reader can pan across it (and pinch to zoom further); a tap, Escape or the close button ends the view. The view is a
   native <dialog> (focus moves into it and returns to the picture's slider or figure when it closes). Nothing is
   loaded: the view shows the very image of the page (a 2x figure at its full resolution). */
(function () {
  "use strict";
  var ENLARGEABLE = "article figure img, article .cell_output img, article img.su-live-frame";
  var dialog = null, picture = null, returnFocus = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "su-lightbox";
    dialog.setAttribute("aria-label", "Enlarged figure");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "su-lightbox-close";
    close.textContent = "Close";
    picture = document.createElement("img");
    picture.className = "su-lightbox-image";
    picture.alt = "";
    dialog.appendChild(close);
    dialog.appendChild(picture);
    document.body.appendChild(dialog);
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) {
      if (event.target !== close && !dialog.classList.contains("su-lightbox-panned")) dialog.close();
      dialog.classList.remove("su-lightbox-panned");
    });
    // a drag that pans the enlarged picture is not a tap that closes it
    var start = null;
    dialog.addEventListener("pointerdown", function (event) { start = [event.clientX, event.clientY]; });
    dialog.addEventListener("pointerup", function (event) {
      if (start && Math.abs(event.clientX - start[0]) + Math.abs(event.clientY - start[1]) > 10) {
        dialog.classList.add("su-lightbox-panned");
      }
      start = null;
    });
    dialog.addEventListener("close", function () {
      picture.removeAttribute("src");
      if (returnFocus) returnFocus.focus({preventScroll: true});
    });
  }

  function enlarge(image, link) {
    if (!dialog) build();
    var width = image.naturalWidth, declared = Number(image.getAttribute("width")) || width;
    picture.src = image.currentSrc || image.src;
    picture.alt = image.alt;
    // at the size the figure was drawn for (a 2x image declares its 1x width and stays sharp), or across the screen
    // where that is wider and the image has the pixels
    picture.style.width = Math.max(declared, Math.min(window.innerWidth, width)) + "px";
    returnFocus = link || (image.closest(".su-slider") ? image.closest(".su-slider").querySelector("input") : null);
    dialog.showModal();
    dialog.scrollTo(0, 0);
  }

  function narrowed(image) {  // shown smaller than its own width: worth enlarging
    return image.naturalWidth > image.getBoundingClientRect().width + 1;
  }

  // Sphinx wraps a figure in a link to its PNG: a click (or Enter on the focused link) opens the view instead of
  // leaving the page; without this script the link still shows the full-size PNG.
  document.addEventListener("click", function (event) {
    var image = event.target.closest && event.target.closest(ENLARGEABLE);
    if (!image || image.tagName !== "IMG") {
      var link = event.target.closest && event.target.closest("a.image-reference");
      image = link && link.querySelector("img");
    }
    if (!image) return;
    var link = image.closest("a");
    if (link && !link.classList.contains("image-reference")) return;
    if (!link && !narrowed(image)) return;
    event.preventDefault();
    enlarge(image, link);
  });

  function markEnlargeable() {
    document.querySelectorAll(ENLARGEABLE).forEach(function (image) {
      image.classList.toggle("su-enlargeable", narrowed(image));
    });
  }
  window.addEventListener("load", markEnlargeable);

  // A display equation wider than the column scrolls in its own box (book.css); a keyboard reader reaches it with
  // Tab and scrolls it with the arrow keys, so such a box is focusable and named by its formula (WCAG 2.1.1).
  function focusableScrollers() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "group");
        box.setAttribute("aria-label", "Equation, scrolls sideways");
      } else if (!scrolls && box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  function afterTypesetting(callback) {  // MathJax loads when the first formula nears the view (tools/page_pass.py)
    if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
      window.MathJax.startup.promise.then(callback);
    } else {
      document.addEventListener("su-math-loaded", function () { window.MathJax.startup.promise.then(callback); });
    }
  }
  if (document.querySelector(".math")) afterTypesetting(focusableScrollers);
  window.addEventListener("resize", focusableScrollers);
  window.addEventListener("resize", markEnlargeable);
  document.addEventListener("load", function (event) {  // lazy images, slider frames
    if (event.target.tagName === "IMG") markEnlargeable();
  }, true);
})();
