// MCP Orchestrator dashboard: live updates, actions with feedback, copy buttons.
// Served as a file (the Content-Security-Policy forbids inline script). The page works
// without it: forms post normally and the page shows the result after a redirect.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var TOAST_MS = 8000;
  var MAX_TOASTS = 5;

  var body = document.body;
  var live = document.getElementById("live");
  var offline = document.getElementById("offline");
  var feedback = document.getElementById("feedback");
  var etag = null;
  var inFlight = false;
  var clockOffset = 0; // server clock minus browser clock, in seconds

  function loginUrl() {
    return body.getAttribute("data-login") + "?next=" +
      encodeURIComponent(location.pathname + location.search);
  }

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + r + "s";
    return r + "s";
  }

  function tickUptimes() {
    if (!live) return;
    var now = Date.now() / 1000 + clockOffset;
    var items = live.querySelectorAll("[data-since]");
    for (var i = 0; i < items.length; i++) {
      var since = parseFloat(items[i].getAttribute("data-since"));
      if (!isNaN(since)) items[i].textContent = duration(now - since);
    }
  }

  function setOffline(down) {
    if (offline) offline.hidden = !down;
  }

  function openDetails() {
    var open = {};
    var items = live.querySelectorAll("details[id]");
    for (var i = 0; i < items.length; i++) open[items[i].id] = items[i].open;
    return open;
  }

  function replaceLive(html) {
    var open = openDetails();
    live.innerHTML = html; // markup rendered and escaped by the server
    for (var id in open) {
      var el = document.getElementById(id);
      if (el && open[id]) el.open = true;
    }
    tickUptimes();
  }

  function noteClock(resp) {
    var date = Date.parse(resp.headers.get("Date") || "");
    if (!isNaN(date)) clockOffset = (date - Date.now()) / 1000;
  }

  function poll() {
    if (!live || inFlight || document.hidden) return;
    inFlight = true;
    var headers = { "X-Requested-With": "fetch" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(live.getAttribute("data-live"), {
      credentials: "same-origin", cache: "no-store", headers: headers, redirect: "manual"
    }).then(function (resp) {
      if (resp.type === "opaqueredirect" || resp.status === 401) {
        location.href = loginUrl(); // the session ended (logout, expiry, dashboard restart)
        return null;
      }
      if (resp.status === 304) { setOffline(false); noteClock(resp); return null; }
      if (!resp.ok) { setOffline(true); return null; }
      setOffline(false);
      noteClock(resp);
      etag = resp.headers.get("ETag");
      return resp.text().then(replaceLive);
    }).catch(function () {
      setOffline(true);
    }).then(function () {
      inFlight = false;
    });
  }

  function notify(level, text) {
    if (!feedback) return null;
    var toast = document.createElement("div");
    toast.className = "toast " + level;
    toast.textContent = text;
    feedback.insertBefore(toast, feedback.firstChild);
    while (feedback.children.length > MAX_TOASTS) feedback.removeChild(feedback.lastChild);
    setTimeout(function () {
      if (toast.parentNode) toast.parentNode.removeChild(toast);
    }, TOAST_MS);
    return toast;
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("js-action")) return;
    ev.preventDefault();
    var button = ev.submitter || null;
    var data = new URLSearchParams(new FormData(form));
    if (button && button.name) data.set(button.name, button.value);
    var what = (data.get("action") || "action") +
      (data.get("server_id") ? " " + data.get("server_id") : "");
    if (button) button.disabled = true;
    var pending = notify("pending", what + ": sending…");
    // getAttribute: form.action would be the buttons named "action" (DOM named access).
    fetch(form.getAttribute("action"), {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": body.getAttribute("data-csrf") || ""
      },
      body: data.toString()
    }).then(function (resp) {
      if (resp.type === "opaqueredirect" || resp.status === 401) {
        location.href = loginUrl();
        return null;
      }
      return resp.json().then(function (result) {
        var text = result.message || result.title || ("HTTP " + resp.status);
        notify(result.ok ? "ok" : "error", what + ": " + text);
      });
    }).catch(function () {
      notify("error", what + ": the dashboard did not answer; nothing was sent.");
    }).then(function () {
      if (pending && pending.parentNode) pending.parentNode.removeChild(pending);
      if (button) button.disabled = false;
      etag = null;
      poll();
    });
  });

  function copyText(text, button) {
    function done(ok) {
      var label = button.textContent;
      button.textContent = ok ? "Copied" : "Select and copy";
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); },
        function () { done(false); });
      return;
    }
    var area = document.createElement("textarea"); // plain http: the older way
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button.copy") : null;
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (target) copyText(target.textContent, button);
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { etag = null; poll(); }
  });

  if (live) {
    setInterval(poll, POLL_MS);
    setInterval(tickUptimes, 1000);
  }
})();
