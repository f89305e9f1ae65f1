// Progressive enhancement only: every page works without this file.
// Times are rendered in UTC by the server; show them in the viewer's time zone instead, and keep
// the UTC time in the title so it appears on hover.
(function () {
  "use strict";
  var options = {year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                 timeZoneName: "short"};
  var minutes = new Intl.DateTimeFormat(undefined, options);
  options.second = "2-digit";
  var seconds = new Intl.DateTimeFormat(undefined, options);
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var when = new Date(times[i].getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      times[i].textContent = (times[i].hasAttribute("data-seconds") ? seconds : minutes).format(when);
    }
  }
})();
