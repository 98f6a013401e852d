// coi-agent screens: the little behaviour htmx does not give. No inline script anywhere (the
// Content-Security-Policy forbids it), no network but the daemon.
(function () {
  "use strict";

  // Order search at the print station: filters the rows already on the page, so no patient
  // name ever goes into a URL.
  function wireFilter(input) {
    var rows = document.querySelectorAll(input.getAttribute("data-filter"));
    var none = document.querySelector(input.getAttribute("data-none"));
    input.addEventListener("input", function () {
      // "Rivera, Alex" as shown finds RIVERA Alex: punctuation is not part of a word.
      var words = input.value.toLowerCase().replace(/[,;]/g, " ").trim().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row) {
        var text = row.getAttribute("data-search") || "";
        var coi = (row.getAttribute("data-coi") || "").toLowerCase();
        // A label scanned into the box carries the order's COI inside the read.
        var scanned = coi && input.value.toLowerCase().indexOf(coi) >= 0;
        var show = scanned || words.every(function (w) { return text.indexOf(w) >= 0; });
        row.hidden = !show;
        if (show) { shown += 1; }
      });
      if (none) { none.hidden = shown > 0; }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      event.preventDefault();
      var visible = Array.prototype.filter.call(rows, function (row) { return !row.hidden; });
      var link = visible.length === 1 ? visible[0].querySelector("a") : null;
      if (link) { link.click(); }
    });
  }

  // A preview that cannot be made says why instead of showing a broken picture.
  function explainPreview(img) {
    fetch(img.src, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.ok ? null : r.json();
    }).then(function (body) {
      if (!body) { return; }
      var p = document.createElement("p");
      p.className = "state bad";
      p.setAttribute("data-preview-error", "");
      var why = (body.error || "unknown reason").replace(/\.?$/, ".");
      p.textContent = "NO LABEL CAN BE MADE: " + why + " Ask site IT; do not label this bag by hand.";
      img.replaceWith(p);
    }).catch(function () { /* the daemon is restarting */ });
  }
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (img && img.tagName === "IMG" && img.classList.contains("preview")) { explainPreview(img); }
  }, true);

  // Half a read waits only so long for its other half: say when it has lapsed.
  function watchHalf(root) {
    var half = root && root.querySelector ? root.querySelector("[data-pair-window]") : null;
    if (!half) { return; }
    var seconds = parseInt(half.getAttribute("data-pair-window"), 10) || 15;
    setTimeout(function () {
      if (!half.isConnected) { return; }
      half.setAttribute("data-verdict", "lapsed");
      half.className = "verdict bad";
      var headline = half.querySelector(".headline");
      var message = half.querySelector(".message");
      if (headline) { headline.textContent = "HALF A SCAN LAPSED"; }
      if (message) { message.textContent = "The other barcode was not scanned within " + seconds + " s. Scan both barcodes of the bag again."; }
    }, seconds * 1000);
  }

  // What an action answered may be above or below the fold: bring it into view.
  function reveal(target) {
    var notice = target && target.querySelector ? target.querySelector(".notice, .verdict") : null;
    if (notice && notice.scrollIntoView) { notice.scrollIntoView({ block: "center" }); }
  }

  // A scanner is a keyboard: keep the scan box focused so a read lands in it, and clear it
  // once sent.
  function focusScanInput() {
    var input = document.querySelector("[data-scan-input]");
    var active = document.activeElement;
    var typing = active && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA");
    if (input && !typing) { input.focus(); }
  }

  // Sounds: one high tone for a match, three low ones for a mismatch, two for "scan the
  // other barcode". Browsers allow sound only after a person touched the page.
  var audio = null;
  function tone(freq, start, length) {
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.value = 0.15;
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(audio.currentTime + start);
    osc.stop(audio.currentTime + start + length);
  }
  function sound(verdict) {
    if (!audio) {
      try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { return; }
    }
    if (audio.state === "suspended") { audio.resume(); }
    if (verdict === "match" || verdict === "sample") {
      tone(1320, 0, 0.15);
    } else if (verdict === "incomplete") {
      tone(880, 0, 0.1); tone(880, 0.18, 0.1);
    } else if (verdict === "mismatch") {
      tone(220, 0, 0.25); tone(220, 0.35, 0.25); tone(220, 0.7, 0.25);
    }
    document.body.setAttribute("data-last-sound", verdict);
  }
  document.addEventListener("pointerdown", function () {
    if (!audio) { try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { /* none */ } }
  }, { once: true });

  // A PIN can be entered with a mouse or a touch screen alone: a keypad beside each PIN field.
  function addKeypad(input) {
    if (input.nextElementSibling && input.nextElementSibling.classList.contains("keypad")) { return; }
    var pad = document.createElement("div");
    pad.className = "keypad";
    pad.setAttribute("aria-label", "PIN keypad");
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "Clear"].forEach(function (key) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = key;
      button.setAttribute("data-key", key);
      // Never takes the focus: a scanner's read and its Enter go where they went before.
      button.tabIndex = -1;
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () {
        if (key === "⌫") { input.value = input.value.slice(0, -1); }
        else if (key === "Clear") { input.value = ""; }
        else if (input.value.length < 32) { input.value += key; }
      });
      pad.appendChild(button);
    });
    input.insertAdjacentElement("afterend", pad);
  }
  function addKeypads(root) {
    (root || document).querySelectorAll("input[type=password][inputmode=numeric]").forEach(addKeypad);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-filter]").forEach(wireFilter);
    addKeypads(document);
    focusScanInput();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var verdict = target && (target.matches("[data-verdict]") ? target : target.querySelector("[data-verdict]"));
    var station = target && (target.id === "verdict-area" || target.id === "verify-live");
    // #order-main is swapped by outerHTML: the new section is in the document by its id.
    if (target && target.id === "order-main") {
      var main = document.getElementById("order-main");
      verdict = main && main.querySelector("[data-verdict]");
      station = Boolean(verdict);
      reveal(main);
    }
    if (target && target.id === "admin-main") { reveal(document.getElementById("admin-main")); }
    addKeypads(document);
    dedupeVerify();
    if (verdict && station) {
      sound(verdict.getAttribute("data-verdict"));
      watchHalf(verdict.parentNode);
      if (target.id !== "order-main") { reveal(target); }
    }
    focusScanInput();
  });

  // A scan box is emptied once its own scan was sent, never by another swap (a printer state
  // or a bag card arriving while a scanner is still typing must not cut the read short).
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.tagName === "FORM") {
      var input = form.querySelector("[data-scan-input]");
      if (input) { input.value = ""; }
    }
    var box = document.querySelector("[data-scan-input]");
    if (box && box.value === "" && !box.matches(":focus")) { focusScanInput(); }
  });

  // The htmx SSE extension swaps server-sent fragments without an afterSwap on the target in
  // every version: listen to its own event too.
  document.addEventListener("htmx:sseMessage", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.id === "verdict-area" && event.detail.type === "verdict") {
      var v = elt.querySelector("[data-verdict]");
      if (v) { sound(v.getAttribute("data-verdict")); }
      watchHalf(elt);
    }
    if (elt && elt.id === "verify-live") { dedupeVerify(); }
  });

  // A verify typed into the page shows in the order's section; the same scan arriving on the
  // live stream is not shown a second time.
  function dedupeVerify() {
    var live = document.getElementById("verify-live");
    var main = document.getElementById("order-main");
    if (!live || !main) { return; }
    var shown = live.querySelector("[data-scan-id]");
    var id = shown && shown.getAttribute("data-scan-id");
    if (id && main.querySelector("[data-scan-id='" + id + "']")) { live.innerHTML = ""; }
  }

  // Whether the live updates are connected (shown to tests and to a curious admin).
  document.addEventListener("htmx:sseOpen", function () { document.body.setAttribute("data-sse", "open"); });
  document.addEventListener("htmx:sseError", function () { document.body.setAttribute("data-sse", "error"); });

  // Signed out after the idle time: go to the sign-in page rather than show a stale screen.
  setInterval(function () {
    if (location.pathname === "/login") { return; }
    fetch("/ui/session", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) { location.assign("/login"); }
    }).catch(function () { /* the daemon is restarting: the next try says */ });
  }, 15000);

  // htmx is told where to go when a session ended (HX-Redirect); a refused request shows why.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 401) { location.assign("/login"); }
  });
})();
