// The portal's few behaviours, wired by data attributes: pages carry no inline script, so
// the Content-Security-Policy can forbid it (script-src 'self').
(function () {
  "use strict";

  // <form data-confirm="Delete this?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // <input data-select-on-focus>: select the whole value (a key to copy).
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("input[data-select-on-focus]")) {
      event.target.select();
    }
  });

  // <button data-copy-from="input-id" data-copied="Copied">: copy that input's value.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy-from]");
    if (!button) {
      return;
    }
    const source = document.getElementById(button.dataset.copyFrom);
    navigator.clipboard.writeText(source.value).then(function () {
      button.textContent = button.dataset.copied;
    });
  });

  // <div data-status-poll="/url" data-poll-ms="3000">: reload once the order is no longer
  // pending (the payment pages).
  const poll = document.querySelector("[data-status-poll]");
  if (poll) {
    const url = poll.dataset.statusPoll;
    const every = parseInt(poll.dataset.pollMs, 10) || 3000;
    const check = async function () {
      try {
        const response = await fetch(url, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.ok) {
          const data = await response.json();
          if (data.status !== "pending") {
            window.location.reload();
            return;
          }
        }
      } catch (error) {
        // Offline for a moment: ask again later.
      }
      window.setTimeout(check, every);
    };
    window.setTimeout(check, every);
  }
})();
