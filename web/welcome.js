// The first run (desktop/welcome.py): a short welcome in the empty chat, and the
// curated instruct models with this machine's fit, shown in the Models view.
// Names and texts from the core only ever reach the page as text.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const empty = $("empty");
  const curated = $("curated");

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else if (k === "data") Object.assign(e.dataset, v);
      else e.setAttribute(k, v);
    }
    e.append(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  }

  function getModel() {
    rmm.setView("models");
    const browse = $("pane-browse");
    if (browse) browse.click();
    curated.hidden = false;
    curated.replaceChildren(el("p", { class: "placeholder" }, "Reading this machine's memory…"));
    rmm.call("welcome_models");
  }

  rmm.on("welcome", (ev) => {
    const old = $("welcome");
    if (old) old.remove();
    const keys = ev.hotkey
      ? el("p", {}, "Press ", el("kbd", {}, ev.hotkey), " anywhere to open or hide this chat.")
      : el("p", {}, "Open this chat from the tray icon, or bind rmm-tray toggle as a desktop shortcut.");
    const starter = ev.starter
      ? el("p", {}, "The model here, Gemma 3 270M, is a tiny base model for trying the app: it continues "
        + "text rather than following instructions. An instruct model answers what you ask.")
      : null;
    const card = el("div", { id: "welcome", class: "welcome", role: "note" },
      el("h2", {}, "Welcome"), keys, starter,
      el("div", { class: "welcome-buttons" },
        el("button", { id: "welcome-get", class: "primary", type: "button", on: { click: getModel } },
          "Get an instruct model"),
        el("button", { id: "welcome-close", type: "button", on: { click: () => card.remove() } }, "Not now")));
    empty.append(card);
  });

  const FIT_TEXT = { fits: "fits", tight: "tight", "too big": "too big" };
  rmm.on("welcome.models", (ev) => {
    const items = (ev.items || []).map((m) => {
      const slash = m.repo.indexOf("/");
      const fitClass = m.fit === "fits" ? "good" : m.fit === "tight" ? "warn" : "bad";
      return el("button", {
        class: "result suggestion", type: "button", title: `${m.repo} · ${m.file}`,
        data: { repo: m.repo, fit: m.fit },
        on: { click: () => { curated.hidden = true; rmm.openRepo(m.repo); } },
      },
      el("span", { class: "result-name" },
        el("span", { class: "owner" }, slash >= 0 ? m.repo.slice(0, slash + 1) : ""),
        el("span", { class: "repo-name" }, slash >= 0 ? m.repo.slice(slash + 1) : m.repo)),
      el("span", { class: "suggestion-about" }, m.about),
      el("span", { class: "result-meta" },
        el("span", {}, `${m.size_text} · ${m.quantization}`),
        el("span", { class: `chip ${fitClass}`, title: "An estimate for this machine's free memory" },
          FIT_TEXT[m.fit] || m.fit)));
    });
    curated.replaceChildren(
      el("h2", { class: "with-action" }, "Small instruct models",
        el("button", { class: "small", type: "button", id: "curated-close", on: { click: () => { curated.hidden = true; } } },
          "Hide")),
      el("p", { class: "hint" }, "Chat-tuned models that follow what you ask; the fit is worked out for this machine. "
        + "Open one to see its files and download."),
      el("div", { class: "list" }, ...items));
    const first = curated.querySelector(".suggestion");
    if (first) first.focus();
  });
})();
