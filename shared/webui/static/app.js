// regflow web view: small enhancements only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Show each time in the viewer's own zone on hover, next to the UTC the server wrote.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.title = d.toLocaleString() + " (your time) · " + (t.title || t.getAttribute("datetime")); }
  });
  // "/" jumps to the repository filter, as in many code hosts.
  var filter = document.getElementById("repo");
  if (filter) {
    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      if (e.key === "/" && tag !== "INPUT" && tag !== "TEXTAREA" && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        filter.focus();
        filter.select();
      }
    });
  }
});
