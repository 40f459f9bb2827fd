// The console's one script, served from the binary: a change in a form
// marked data-autosave submits it at once (the Save button does the same
// without scripts).
document.addEventListener("change", function (event) {
  var form = event.target.form;
  if (form && form.hasAttribute("data-autosave")) {
    form.requestSubmit();
  }
});
