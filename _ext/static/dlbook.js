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
    if (link.hasAttribute("data-dl-query")) {  // the search pages: keep the query
      link.setAttribute("href", base.split("?")[0] + window.location.search);
      return;
    }
    var i = currentSection(own);
    link.setAttribute("href", i > 0 && twin[i] ? base + "#" + twin[i] : base);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("a.dl-lang-switch[data-dl-twin], a.dl-lang-switch[data-dl-query]").forEach(function (link) {
      ["mousedown", "focus", "touchstart"].forEach(function (ev) {
        link.addEventListener(ev, function () { update(link); });
      });
      window.addEventListener("scroll", function () { update(link); }, { passive: true });
      update(link);
    });
  });
})();

// Search results in the page's language first: on search-zh.html (lang zh-CN)
// the pages under chapters/zh/, on search.html those under chapters/en/, then
// the bilingual landing page, then the other language. Scorer is searchtools.js's
// global; its score hook runs on every result before they are sorted.
(function () {
  "use strict";
  var folder = (document.documentElement.lang || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  if (typeof Scorer === "undefined") { return; }
  function group(docname) {  // 2: this language, 1: the landing page, 0: the other language
    if (docname.indexOf("chapters/" + folder + "/") === 0) { return 2; }
    return docname.indexOf("chapters/") !== 0 ? 1 : 0;
  }
  Scorer.score = function (result) {
    return result[4] + 50000 * group(result[0]);
  };
  // searchtools shows the index entries that are not main ones (an API module's
  // entry) after all other results; keep them inside their language's group.
  // The list is shown from its end, and Array.sort is stable.
  if (typeof Search !== "undefined" && Search._performSearch) {
    var perform = Search._performSearch;
    Search._performSearch = function () {
      var results = perform.apply(this, arguments);
      return results.sort(function (a, b) { return group(a[0]) - group(b[0]); });
    };
  }
})();

// Words that scripts write in the browser, on Chinese pages (the rest of the
// theme's words are translated when the page is built, in _ext/dlbook_site.py).
(function () {
  "use strict";
  if (document.documentElement.lang !== "zh-CN") { return; }
  var labels = { "Toggle hidden content": "显示或隐藏内容" };  // sphinx-togglebutton
  // sphinx-copybutton's own zh-CN table says "复制成功!" with a half-width "!"
  if (typeof messages !== "undefined" && messages["zh-CN"]) {
    messages["zh-CN"].copy_success = "复制成功！";
  }
  document.addEventListener("DOMContentLoaded", function () {
    ["aria-label", "title"].forEach(function (name) {
      document.querySelectorAll("[" + name + "]").forEach(function (el) {
        var words = labels[el.getAttribute(name)];
        if (words) { el.setAttribute(name, words); }
      });
    });
  });
})();
