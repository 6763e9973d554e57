// Live character counts (progressive enhancement): the server renders each count as the page
// is sent; this keeps it current while typing. Nothing else of the console needs a script of
// its own (htmx does the rest).
(function () {
  "use strict";
  function update(field) {
    var out = document.getElementById(field.id + "-count");
    if (!out) return;
    var max = parseInt(field.getAttribute("data-max-length"), 10);
    var n = field.value.length;
    out.textContent = n + " / " + max;
    out.classList.toggle("over", n > max);
  }
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field && field.hasAttribute && field.hasAttribute("data-max-length")) update(field);
  });
  document.addEventListener("htmx:load", function (event) {
    event.detail.elt.querySelectorAll("[data-max-length]").forEach(update);
  });
})();
