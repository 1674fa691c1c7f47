// Bring the passage a result came from to the middle of the screen, and give it
// focus so a keyboard or screen-reader user starts there.
(function () {
  "use strict";
  const chosen = document.getElementById("chosen");
  if (!chosen) return;
  chosen.scrollIntoView({ block: "center" });
  chosen.focus({ preventScroll: true });
})();
