// Errors where the user is looking: after a failed form (post/redirect/get back to the form's
// anchor), focus its error summary, so it is in view and a screen reader reads it out.
// On "load", not "DOMContentLoaded": scrolling to the URL's #anchor resets the focus in between.
window.addEventListener("load", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
});
