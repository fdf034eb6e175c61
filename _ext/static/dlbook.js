// The language switch lands at the same section of the twin page: the twins'
// sections pair in order, and the switch carries both pages' anchors.
(function () {
  "use strict";
  function currentSection(own) {
    var found = -1;
    for (var i = 0; i < own.length; i++) {
      var el = document.getElementById(own[i]);
      // the last section that starts above the upper third of the window
      if (el && el.getBoundingClientRect().top <= window.innerHeight / 3) { found = i; }
    }
    return found;
  }
  function update(link) {
    var own = (link.dataset.dlOwn || "").split(" ");
    var twin = (link.dataset.dlTwin || "").split(" ");
    var base = link.getAttribute("href").split("#")[0];
    var i = currentSection(own);
    link.setAttribute("href", i > 0 && twin[i] ? base + "#" + twin[i] : base);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("a.dl-lang-switch[data-dl-twin]").forEach(function (link) {
      ["mousedown", "focus", "touchstart"].forEach(function (ev) {
        link.addEventListener(ev, function () { update(link); });
      });
      window.addEventListener("scroll", function () { update(link); }, { passive: true });
      update(link);
    });
  });
})();
