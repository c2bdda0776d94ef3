// Loaded first in <body>: tells GOV.UK Frontend's CSS that its JavaScript will run (a file,
// not an inline script, so the Content-Security-Policy needs no exception).
document.body.className +=
  " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
