// Time slider of the body map: fetch the map for the chosen day (an HTML fragment drawn by
// the server, the same template as the first page load) and swap it in.  Keyboard: the
// range input's own keys (arrows, Page Up/Down, Home, End).  Without this script the
// "Show this day" button submits the same choice as a form.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  const root = document.getElementById("patient");
  const slider = document.getElementById("day-slider");
  if (!root || !slider) return;
  const output = document.getElementById("day-output");
  const container = document.getElementById("map-container");
  const status = document.getElementById("map-status");
  const play = document.getElementById("play");
  const end = parseFloat(root.dataset.endTime);
  const frames = parseInt(root.dataset.frames, 10);
  const base = root.dataset.mapUrl;
  let timer = null;
  let controller = null;
  let playing = null;

  function dayOf(frame) { return frame >= frames ? end : end * frame / frames; }
  function words(day) {
    return "day " + Math.round(day).toLocaleString("en") + " (" + (day / 365.25).toFixed(1) + " years)";
  }
  function label(day) {
    output.textContent = words(day);
    slider.setAttribute("aria-valuetext", words(day));
  }

  async function show(day) {
    if (controller) controller.abort();
    controller = new AbortController();
    container.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(base + "&day=" + encodeURIComponent(day), { signal: controller.signal });
      const html = await response.text();
      container.innerHTML = html;
      const figure = container.querySelector("figure");
      if (figure && status) status.textContent = figure.dataset.description || "";
      root.dataset.shownDay = String(day);
    } catch (error) {
      if (error.name !== "AbortError") {
        container.insertAdjacentHTML("afterbegin", '<p class="error" role="alert">The map could not be updated: ' + String(error.message).replace(/[<>&]/g, "") + "</p>");
      }
    } finally {
      container.removeAttribute("aria-busy");
    }
  }

  slider.addEventListener("input", function () {
    const day = dayOf(parseInt(slider.value, 10));
    label(day);
    clearTimeout(timer);
    timer = setTimeout(function () { show(day); }, 40);
  });

  document.querySelectorAll("button[data-day]").forEach(function (button) {
    button.addEventListener("click", function () {
      const day = Math.min(parseFloat(button.dataset.day), end);
      slider.value = String(Math.round(frames * day / end));
      label(day);
      show(day);
      document.getElementById("map-title").scrollIntoView({ behavior: "smooth", block: "start" });
    });
  });

  if (play) {
    play.hidden = false;
    play.addEventListener("click", function () {
      if (playing) {
        clearInterval(playing);
        playing = null;
        play.textContent = "Play";
        play.setAttribute("aria-pressed", "false");
        return;
      }
      if (parseInt(slider.value, 10) >= frames) slider.value = "0";
      play.textContent = "Pause";
      play.setAttribute("aria-pressed", "true");
      playing = setInterval(function () {
        const next = parseInt(slider.value, 10) + 1;
        if (next > frames) { play.click(); return; }
        slider.value = String(next);
        slider.dispatchEvent(new Event("input"));
      }, 120);
    });
  }
})();
