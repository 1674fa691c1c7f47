// Bring the passage a result came from to the middle of the screen, once the
// browser has made its own jump to #chosen, and give it focus so a keyboard or
// screen-reader user starts there.
(function () {
  "use strict";
  const chosen = document.getElementById("chosen");
  if (!chosen) return;
  chosen.focus({ preventScroll: true });
  window.addEventListener("load", () => chosen.scrollIntoView({ block: "center" }));
})();
