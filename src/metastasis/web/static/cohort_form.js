// Keep the cohort form within the clinical course's patient limit.  The clinical course
// costs far more per patient than an untreated history, so the server allows fewer
// patients in all when it is ticked; without this, ticking it with the page's defaults
// (several cancer types, 200 patients each) would be refused.  Ticking it lowers the
// number of patients per type to what the limit allows and says so; unticking it restores
// the number that was there.  Without JavaScript the server's message says the same.
(function () {
  "use strict";
  const form = document.getElementById("cohort-form");
  if (!form) return;
  const limit = parseInt(form.dataset.maxClinical, 10);
  const clinical = document.getElementById("clinical");
  const patients = document.getElementById("patients");
  const note = document.getElementById("clinical-cap");
  if (!limit || !clinical || !patients || !note) return;
  let before = null;

  function types() {
    return Math.max(1, form.querySelectorAll("input[name='cancer']:checked").length);
  }

  function keepWithinLimit() {
    if (clinical.checked) {
      const most = Math.max(1, Math.floor(limit / types()));
      const asked = parseInt(patients.value, 10);
      if (!(asked <= most)) {
        if (before === null) before = patients.value;
        patients.value = String(most);
        note.textContent = "Set to " + most + " patients per cancer type: the clinical " +
          "course allows " + limit + " patients in all.";
      }
    } else if (before !== null) {
      patients.value = before;
      before = null;
      note.textContent = "";
    }
  }

  clinical.addEventListener("change", keepWithinLimit);
  form.querySelectorAll("input[name='cancer']").forEach(function (box) {
    box.addEventListener("change", keepWithinLimit);
  });
  patients.addEventListener("input", function () {
    before = null;  // the reader chose a number: it is theirs now
    note.textContent = "";
  });
  keepWithinLimit();
})();
