// veil's web UI: small improvements only; every page works without this script.
"use strict";
(function () {
  // A running backup or restore: update the numbers in place instead of reloading.
  var job = document.getElementById("job");
  if (job && document.getElementById("state").textContent === "running") {
    var meta = document.querySelector("meta[http-equiv=refresh]");
    if (meta) { meta.remove(); }
    var poll = function () {
      fetch("/ui/api/jobs/" + encodeURIComponent(job.dataset.job), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (j.state !== "running") { window.location.reload(); return; }
          var bar = document.getElementById("bar");
          if (bar && j.percent !== null) { bar.value = j.percent; }
          document.getElementById("done").textContent =
            j.files + (j.kind === "repair" ? " files and folders checked so far" : " files so far");
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }
  // The passphrase meter on the recovery page: asks the node, which judges it.
  var pass = document.getElementById("passphrase");
  var meter = document.getElementById("meter");
  if (pass && meter) {
    var timer = null;
    pass.addEventListener("input", function () {
      clearTimeout(timer);
      if (pass.value === "") {
        meter.dataset.score = "";
        meter.textContent = "empty: the passphrase made for you will be used";
        return;
      }
      timer = setTimeout(function () {
        fetch("/ui/api/passphrase", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": pass.form.csrf.value },
          body: JSON.stringify({ passphrase: pass.value })
        }).then(function (r) { return r.json(); }).then(function (j) {
          meter.dataset.score = j.score;
          meter.textContent = j.verdict;
        });
      }, 250);
    });
  }
})();
