// Draw the cohort page's figures with the locally served plotly.js.  The figure data is
// embedded in the page as JSON (built on the server), and every figure has a table beside
// it with the same numbers.
(function () {
  "use strict";
  const source = document.getElementById("figures-data");
  if (!source || typeof Plotly === "undefined") return;
  const figures = JSON.parse(source.textContent);
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };
  document.querySelectorAll("[data-figure]").forEach(function (element) {
    const figure = figures[parseInt(element.dataset.figure, 10)];
    Plotly.newPlot(element, figure.data, figure.layout, config).then(function () {
      element.dataset.rendered = "true";
    });
  });
})();
