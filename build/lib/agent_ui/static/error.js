"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("message").textContent = UI.t(UI.boot.status === 404 ? "ui.error.404" : "ui.error.403");
});
