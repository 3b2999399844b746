// MathJax 3 for the math of pymdownx.arithmatex (generic mode): \( ... \) inline, \[ ... \] displayed, only inside
// the .arithmatex elements it writes. tex-chtml.js itself is served from this site (assets/mathjax/, copied
// from the django-static-mathjax wheel by scripts/mkdocs_hooks.py); nothing loads from a CDN.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
