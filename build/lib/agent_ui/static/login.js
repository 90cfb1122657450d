"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-csrf").value = UI.boot.login_csrf || "";
  document.getElementById("login-next").value = UI.boot.next || "";
  if (UI.boot.error) {
    const box = document.getElementById("error");
    box.hidden = false;
    box.textContent = UI.boot.error;
  }
});
