// The console's one script, served from the binary: a change in a form
// marked data-autosave submits it at once (the Save button does the same
// without scripts).
document.addEventListener("change", function (event) {
  var form = event.target.form;
  if (form && form.hasAttribute("data-autosave")) {
    form.requestSubmit();
  }
});

// Buttons marked data-check="name" data-to="true|false" tick or untick
// every checkbox of that name (select all / none).
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-check]");
  if (!button) { return; }
  var to = button.getAttribute("data-to") === "true";
  document.querySelectorAll('input[type=checkbox][name="' + button.getAttribute("data-check") + '"]')
    .forEach(function (box) { box.checked = to; });
});

// A list marked data-stream="url" shows notifications as they come, from
// the server's live stream (server-sent events).
document.addEventListener("DOMContentLoaded", function () {
  var list = document.querySelector("[data-stream]");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource(list.getAttribute("data-stream"));
  source.addEventListener("notification", function (event) {
    var note = JSON.parse(event.data);
    var item = document.createElement("li");
    item.className = "new";
    item.textContent = "now — " + (note.type || "") + " " + (note.model || "") + " " +
      String(note.record_id || "").slice(0, 8);
    list.insertBefore(item, list.firstChild);
  });
});
