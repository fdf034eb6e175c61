// A page read in dark mode prints in the light colours: ink on paper, not light
// text on a white sheet. The theme's colours follow <html data-theme>; it is
// set to "light" just before the browser lays out the print, and put back after.
// Added by _ext/dlbook_publish.py (with dlbook-print.css).
(() => {
  let before = null;
  window.addEventListener("beforeprint", () => {
    const html = document.documentElement;
    if (html.dataset.theme === "dark") {
      before = "dark";
      html.dataset.theme = "light";
    }
  });
  window.addEventListener("afterprint", () => {
    if (before !== null) {
      document.documentElement.dataset.theme = before;
      before = null;
    }
  });
})();
