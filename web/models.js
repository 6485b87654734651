// The Models view: search the Hub, look at a repository's files, download with
// progress, and manage the models on this computer. Everything a server or a
// model file names is untrusted: it only ever reaches the page as text
// (textContent, attribute values), never as markup.
"use strict";

(() => {
  const ui = {
    view: $("models-view"), error: $("models-error"), notice: $("models-notice"),
    paneBrowse: $("pane-browse"), paneInstalled: $("pane-installed"), count: $("installed-count"),
    browse: $("browse"), installed: $("installed"), query: $("models-query"), sort: $("models-sort"),
    results: $("results"), repo: $("repo"), localList: $("local-list"), foundList: $("found-list"),
    scan: $("scan"), downloads: $("downloads"), downloadList: $("download-list"),
    confirm: $("confirm"), confirmText: $("confirm-text"), confirmOk: $("confirm-ok"),
    confirmCancel: $("confirm-cancel"),
  };
  const state = {
    pane: "browse", opened: false, discovered: false, searching: false, lastQuery: null,
    results: [], repo: null, local: [], found: null, downloads: [], onConfirm: null,
    // The settings form: which model, and what the page waits for ("open", "save", "reset" or null).
    settings: null, expanded: new Set(),
  };
  const ACTIVE = ["queued", "downloading", "verifying"];
  const FIT_LABEL = { fits: "fits", tight: "tight", "too big": "too big" };
  const FIT_HINT = {
    fits: "Fits in this computer's free memory with room to spare",
    tight: "Loads, but uses most of the free memory: other apps may slow down",
    "too big": "Needs more memory than this computer has free",
  };

  // -- small helpers -------------------------------------------------------------

  // Build an element. Attribute names come from this file only; values may be
  // a server's text and go through setAttribute / textContent, never markup.
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "data") Object.assign(e.dataset, v);
      else if (k === "on") for (const [type, fn] of Object.entries(v)) e.addEventListener(type, fn);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  window.rmm.el = el;  // the Servers pane (servers.js) builds with it too

  function size(n) {
    let v = Number(n) || 0;
    for (const unit of ["B", "KB", "MB", "GB"]) {
      if (Math.abs(v) < 1000) return unit === "B" || unit === "KB" ? `${Math.round(v)} ${unit}` : `${v.toFixed(1)} ${unit}`;
      v /= 1000;
    }
    return `${v.toFixed(1)} TB`;
  }

  function count(n) {
    const v = Number(n) || 0;
    if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
    return String(v);
  }

  function eta(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const two = (x) => String(x).padStart(2, "0");
    return s >= 3600 ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`
      : `${Math.floor(s / 60)}:${two(s % 60)}`;
  }

  function baseName(name) { return String(name).split("/").pop(); }

  function chip(text, cls, title) { return el("span", { class: `chip ${cls || ""}`, title }, text); }

  function fitBadge(fit) {
    if (!fit) return null;
    return el("span", { class: `fit fit-${fit.replace(" ", "-")}`, title: FIT_HINT[fit] || "" }, FIT_LABEL[fit] || fit);
  }

  function placeholder(text) { return el("div", { class: "placeholder" }, text); }

  function showError(message) {
    ui.error.textContent = message || "";
    ui.error.hidden = !message;
  }

  let noticeTimer = null;
  function showNotice(message) {
    ui.notice.textContent = message;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, 3500);
  }

  // -- panes -----------------------------------------------------------------------

  // The panes in tab order: #pane-NAME shows the pane #NAME (servers.js fills "servers").
  const PANES = ["browse", "installed", "servers"];

  function setPane(name) {
    if (state.pane !== name) showError("");  // a line about the pane left behind
    state.pane = name;
    for (const pane of PANES) {
      $(pane).hidden = name !== pane;
      const tab = $(`pane-${pane}`);
      tab.setAttribute("aria-selected", String(name === pane));
      // Roving focus: Tab reaches the selected pane's tab; Left and Right move between them.
      tab.tabIndex = name === pane ? 0 : -1;
    }
    if (name === "servers") rmm.call("models_servers");
    if (name === "installed") {
      rmm.call("models_local");
      if (!state.discovered) { state.discovered = true; rmm.call("models_discover"); renderFound(); }
    }
  }

  function focusView() {
    if (settingsOpen()) {
      ui.settings.querySelector("input").focus();
    } else if (state.pane === "installed") {
      const first = ui.localList.querySelector(".nav");
      (first || ui.paneInstalled).focus();
    } else if (state.pane === "servers") {
      ($("server-list").querySelector(".nav") || $("add-server")).focus();
    } else if (!ui.repo.hidden) {
      const best = ui.repo.querySelector('.file[data-recommended="1"] button[data-action]')
        || ui.repo.querySelector(".file button[data-action]") || ui.repo.querySelector(".back");
      if (best) best.focus();
    } else {
      ui.query.focus();
    }
  }

  // -- search and results ------------------------------------------------------------

  function search() {
    const query = ui.query.value.trim();
    state.searching = true;
    state.lastQuery = query;
    closeRepo(false);
    showError("");
    renderResults();
    rmm.call("models_search", query, ui.sort.value);
  }

  function renderResults() {
    const title = state.lastQuery ? `Results for “${state.lastQuery}”` : "Popular GGUF models";
    const kids = [el("h2", {}, title)];
    if (state.searching) kids.push(placeholder("Searching…"));
    else if (!state.results.length) kids.push(placeholder(state.lastQuery ? `No GGUF models match “${state.lastQuery}”.` : "Nothing found."));
    for (const r of state.searching ? [] : state.results) {
      const slash = r.id.indexOf("/");
      kids.push(el("button", {
        class: "result nav", data: { repo: r.id, action: "open" }, title: r.id,
        on: { click: () => openRepo(r.id) },
      },
      el("span", { class: "result-name" },
        el("span", { class: "owner" }, slash >= 0 ? r.id.slice(0, slash + 1) : ""),
        el("span", { class: "repo-name" }, slash >= 0 ? r.id.slice(slash + 1) : r.id)),
      el("span", { class: "result-meta" },
        el("span", { title: "Downloads" }, `↓ ${count(r.downloads)}`),
        el("span", { title: "Likes" }, `♥ ${count(r.likes)}`),
        r.last_modified ? el("span", {}, `updated ${r.last_modified.slice(0, 10)}`) : null,
        r.gated ? chip("gated", "warn", "Accept the terms on the Hub and set a token first") : null)));
    }
    ui.results.replaceChildren(...kids);
  }

  // -- one repository -------------------------------------------------------------------

  function openRepo(id) {
    state.repo = { id, loading: true };
    showError("");
    ui.results.hidden = true;
    ui.repo.hidden = false;
    ui.repo.replaceChildren(backButton(), el("h2", { class: "repo-title" }, id), placeholder("Reading the repository…"));
    ui.repo.querySelector(".back").focus();
    rmm.call("models_repo", id);
  }

  function backButton() {
    return el("button", { class: "back small", on: { click: () => closeRepo(true) } }, "← Results");
  }

  function closeRepo(focus) {
    const id = state.repo && state.repo.id;
    state.repo = null;
    ui.repo.hidden = true;
    ui.results.hidden = false;
    if (focus) {
      const row = id && ui.results.querySelector(`.result[data-repo="${CSS.escape(id)}"]`);
      (row || ui.query).focus();
    }
  }

  function renderRepo(repo) {
    const files = repo.files || [];
    const chips = [];
    if (repo.license) chips.push(chip(`licence: ${repo.license}`, "license"));
    if (repo.gated) chips.push(chip("gated: needs a token", "warn"));
    const list = el("div", { class: "list files", data: { nav: "" } },
      files.length ? files.map(fileRow) : placeholder("This repository has no GGUF model files."));
    ui.repo.replaceChildren(...[
      backButton(),
      el("h2", { class: "repo-title" }, repo.id),
      chips.length ? el("div", { class: "chips" }, chips) : null,
      repo.summary ? el("p", { class: "summary", title: repo.summary }, repo.summary) : null,
      el("h3", {}, `Files (${files.length})`),
      list,
      files.length ? el("p", { class: "hint" }, "Fit is estimated from the file's size and this computer's free memory.") : null,
    ].filter(Boolean));
    updateFiles();
  }

  // A split model is named by its first part; the list shows it without the "-00001-of-00008".
  function fileLabel(name) { return baseName(name).replace(/-0*1-of-\d+(\.gguf)$/i, "$1"); }

  function fileRow(f) {
    return el("div", {
      class: `file${f.recommended ? " recommended" : ""}`,
      data: { file: f.name, local: f.local_name, fit: f.fit || "", recommended: f.recommended ? "1" : "0" },
    },
    el("div", { class: "file-main" },
      el("div", { class: "file-name", title: f.name }, fileLabel(f.name)),
      el("div", { class: "file-meta" },
        f.quantization ? chip(f.quantization, "quant") : null,
        el("span", { class: "size" }, size(f.size) + (f.parts > 1 ? ` in ${f.parts} parts` : "")),
        fitBadge(f.fit),
        f.recommended ? el("span", { class: "rec", title: "The best quality that fits this computer" }, "★ recommended") : null,
        el("span", { class: "file-progress" }))),
    el("button", { class: "nav", data: { action: "", file: f.name }, on: { click: fileAction } }, "Download"));
  }

  function downloadFor(repoId, name) {
    return state.downloads.find((d) => d.repo === repoId && d.name === name && ACTIVE.includes(d.state));
  }

  // Relabel the files' buttons in place (keeping keyboard focus where it is):
  // Download → Cancel while it runs → Use once the model is on this computer.
  function updateFiles() {
    if (!state.repo || state.repo.loading) return;
    const local = new Set(state.local.map((m) => m.name));
    const inUse = new Set(state.local.filter((m) => m.loaded).map((m) => m.name));
    for (const row of ui.repo.querySelectorAll(".file")) {
      const button = row.querySelector("button[data-action]");
      const job = downloadFor(state.repo.id, row.dataset.file);
      let action = "pull", label = "Download", progress = "";
      if (job) {
        action = "cancel"; label = "Cancel";
        progress = job.state === "downloading" && job.size ? `${Math.floor(100 * job.done / job.size)} %`
          : job.state === "verifying" ? "verifying…" : "queued";
      } else if (inUse.has(row.dataset.local)) {
        action = "inuse"; label = "In use";
      } else if (local.has(row.dataset.local)) {
        action = "use"; label = "Use";
      }
      if (button.dataset.action !== action) {
        button.dataset.action = action;
        button.textContent = label;
        const recommended = row.dataset.recommended === "1";
        button.className = `nav ${action === "use" ? "good" : action === "pull" && recommended ? "primary" : ""}`;
      }
      button.disabled = action === "inuse";
      if (job) button.dataset.job = job.id; else delete button.dataset.job;
      row.querySelector(".file-progress").textContent = progress;
    }
  }

  function fileAction(e) {
    const b = e.currentTarget;
    const row = b.closest(".file");
    if (b.dataset.action === "cancel") rmm.call("models_cancel", b.dataset.job);
    else if (b.dataset.action === "use") rmm.call("models_use", row.dataset.local);
    else rmm.call("models_pull", state.repo.id, row.dataset.file);
  }

  // -- downloads ------------------------------------------------------------------------

  function downloadText(d) {
    switch (d.state) {
      case "queued": return `Queued · ${size(d.size)}`;
      case "downloading": {
        const pct = d.size ? Math.floor(100 * d.done / d.size) : 0;
        const bits = [`${pct} %`, `${size(d.done)} of ${size(d.size)}`];
        if (d.rate) bits.push(`${size(d.rate)}/s`);
        if (d.eta_s !== null && d.eta_s !== undefined) bits.push(`${eta(d.eta_s)} left`);
        return bits.join(" · ");
      }
      case "verifying": return `Checking sha256 · ${size(d.size)}`;
      case "done": return `Done · ${size(d.size)} · verified`;
      case "cancelled": return "Cancelled";
      default: return d.error || "Failed";
    }
  }

  function downloadRow(d) {
    const row = el("div", { class: "download", data: { id: d.id } },
      el("div", { class: "download-head" },
        el("span", { class: "download-name" }),
        el("span", { class: "download-buttons" })),
      el("progress", { max: "100", value: "0" }),
      el("div", { class: "download-meta" }));
    return row;
  }

  function downloadButtons(d) {
    const b = (label, cls, fn) => el("button", { class: `small ${cls}`, on: { click: fn } }, label);
    if (ACTIVE.includes(d.state)) return [b("Cancel", "", () => rmm.call("models_cancel", d.id))];
    const out = [];
    if (d.state === "done" && d.model) out.push(b("Use", "good", () => rmm.call("models_use", d.model)));
    if (d.state === "failed" || d.state === "cancelled") out.push(b("Retry", "", () => rmm.call("models_pull", d.repo, d.name)));
    out.push(b("✕", "ghost", () => rmm.call("models_dismiss", d.id)));
    out[out.length - 1].setAttribute("aria-label", "Dismiss");
    out[out.length - 1].title = "Dismiss";
    return out;
  }

  function renderDownloads() {
    const seen = new Set();
    for (const d of state.downloads) {
      seen.add(d.id);
      let row = ui.downloadList.querySelector(`.download[data-id="${CSS.escape(d.id)}"]`);
      if (!row) { row = downloadRow(d); ui.downloadList.appendChild(row); }
      const changed = row.dataset.state !== d.state;
      row.dataset.state = d.state;
      row.dataset.name = d.name;
      const name = row.querySelector(".download-name");
      name.textContent = baseName(d.name);
      name.title = `${d.repo}/${d.name}`;
      const bar = row.querySelector("progress");
      bar.value = d.size ? Math.min(100, (100 * d.done) / d.size) : 0;
      if (d.state === "done") bar.value = 100;
      row.querySelector(".download-meta").textContent = downloadText(d);
      // Buttons are rebuilt only when the state changes, so a focused Cancel stays focused.
      if (changed) row.querySelector(".download-buttons").replaceChildren(...downloadButtons(d));
    }
    for (const row of ui.downloadList.querySelectorAll(".download")) {
      if (!seen.has(row.dataset.id)) row.remove();
    }
    ui.downloads.hidden = state.downloads.length === 0;
  }

  // -- models on this computer ----------------------------------------------------------

  function localMeta(m) {
    const bits = [m.architecture, m.parameters, m.quantization, size(m.size)];
    if (m.context) bits.push(`${Math.round(m.context / 1024)}k context`);
    return bits.filter(Boolean).join(" · ");
  }

  function localRow(m) {
    const open = state.expanded.has(m.name);
    const details = el("dl", { class: "details", hidden: !open },
      el("dt", {}, "File"), el("dd", {}, m.path),
      el("dt", {}, "Architecture"), el("dd", {}, m.architecture || "unknown"),
      el("dt", {}, "Parameters"), el("dd", {}, m.parameters || "unknown"),
      el("dt", {}, "Quantization"), el("dd", {}, m.quantization || "unknown"),
      el("dt", {}, "Trained context"), el("dd", {}, m.context ? `${m.context} tokens` : "unknown"),
      el("dt", {}, "Size"), el("dd", {}, `${size(m.size)}${m.parts > 1 ? ` in ${m.parts} parts` : ""}`),
      el("dt", {}, "Stored as"), el("dd", {}, m.linked ? "a link to a file elsewhere" : "a file in models/"),
      m.fit ? [el("dt", {}, "Fit"), el("dd", {}, FIT_HINT[m.fit] || m.fit)] : null);
    const b = (label, cls, fn, extra) => el("button", { class: `small ${cls}`, on: { click: fn }, ...(extra || {}) }, label);
    const info = b("Details", "ghost", (e) => {
      details.hidden = !details.hidden;
      if (details.hidden) state.expanded.delete(m.name); else state.expanded.add(m.name);
      e.currentTarget.setAttribute("aria-expanded", String(!details.hidden));
    }, { "aria-expanded": String(open) });
    return el("div", { class: `local${m.loaded ? " loaded" : ""}`,
      data: { name: m.name, loaded: m.loaded ? "1" : "0", default: m.default ? "1" : "0" } },
    el("div", { class: "local-main" },
      el("div", { class: "local-name", title: m.name }, m.name),
      el("div", { class: "local-meta" },
        m.loaded ? chip("in use", "good") : null,
        m.default ? chip("default", "accent", "Loaded on first use") : null,
        m.linked ? chip("linked", "", "A link to a file kept elsewhere: deleting removes only the link") : null,
        m.fit && m.fit !== "fits" ? fitBadge(m.fit) : null,
        el("span", {}, localMeta(m))),
      m.error ? el("div", { class: "local-error" }, m.error) : null,
      details),
    el("div", { class: "local-actions" },
      // Not offered on the model in use: "Use" would only reload it ("in use" says so).
      m.loaded ? null : b("Use", "nav good", () => rmm.call("models_use", m.name), m.error ? { disabled: true } : null),
      b("Set default", "", () => rmm.call("models_set_default", m.name), m.default ? { disabled: true } : null),
      b("Settings", "", () => openSettings(m.name), { data: { action: "settings" }, "aria-haspopup": "dialog" }),
      info,
      b("Delete", "ghost danger-text", () => askDelete(m))));
  }

  function localButton(name, label) {
    const row = ui.localList.querySelector(`.local[data-name="${CSS.escape(name)}"]`);
    return row && Array.from(row.querySelectorAll("button")).find((b) => b.textContent === label && !b.disabled);
  }

  function renderLocal() {
    // The list is rebuilt on every change (a save, a default): keep the focused button focused.
    const a = document.activeElement;
    const row = a && ui.localList.contains(a) ? a.closest(".local") : null;
    const keep = row && { name: row.dataset.name, label: a.textContent };
    ui.count.textContent = state.local.length ? `(${state.local.length})` : "";
    ui.localList.replaceChildren(...(state.local.length ? state.local.map(localRow)
      : [placeholder("No models yet: download one from the Hub, or import one found below.")]));
    const again = keep && localButton(keep.name, keep.label);
    if (again) again.focus();
  }

  function renderFound() {
    if (!state.found) { ui.foundList.replaceChildren(placeholder("Looking…")); return; }
    const rows = state.found.map((c) => el("div", { class: "found", data: { name: c.name } },
      el("div", { class: "local-main" },
        el("div", { class: "local-name", title: c.name }, baseName(c.name)),
        el("div", { class: "local-meta" }, `${c.label || c.source} · ${size(c.size)}`),
        el("div", { class: "path", title: c.path }, c.path)),
      c.imported ? chip("imported", "good")
        : el("button", { class: "small nav", on: { click: (e) => { e.currentTarget.disabled = true; rmm.call("models_import", c.name); } } }, "Import")));
    ui.foundList.replaceChildren(...(rows.length ? rows : [placeholder("No GGUF files in other apps' folders.")]));
  }

  // -- confirmation ------------------------------------------------------------------------

  function askDelete(m) {
    ask(m.linked
      ? `Remove ${m.name} from your models? Only the link goes; the file it points to stays.`
      : `Delete ${m.name} (${size(m.size)})? The file is removed from this computer.`,
    m.linked ? "Remove" : "Delete", () => rmm.call("models_delete", m.name));
  }

  // The one question dialog of the view (servers.js asks before removing a server too).
  function ask(text, ok, onConfirm) {
    ui.confirmText.textContent = text;
    ui.confirmOk.textContent = ok;
    state.onConfirm = onConfirm;
    ui.confirm.hidden = false;
    ui.confirmCancel.focus();
  }
  rmm.askConfirm = ask;

  function closeConfirm() {
    ui.confirm.hidden = true;
    state.onConfirm = null;
    focusView();
  }

  ui.confirmCancel.addEventListener("click", closeConfirm);
  ui.confirmOk.addEventListener("click", () => { const go = state.onConfirm; closeConfirm(); if (go) go(); });
  ui.confirm.addEventListener("click", (e) => { if (e.target === ui.confirm) closeConfirm(); });

  // -- a model's own settings ----------------------------------------------------------------

  // The form's fields, in Tab order; "load" ones are read when the model loads.
  const FIELDS = [
    { key: "context_length", label: "Context length", group: "load" },
    { key: "gpu_layers", label: "GPU layers", group: "load" },
    { key: "chat_template", label: "Chat template", group: "load" },
    { key: "temperature", label: "Temperature" },
    { key: "top_p", label: "Top P" },
    { key: "top_k", label: "Top K" },
    { key: "min_p", label: "Min P" },
    { key: "repeat_penalty", label: "Repeat penalty" },
    { key: "max_tokens", label: "Max tokens" },
  ];

  // Built once, inside the view: it hides with the view, and is never rebuilt
  // by the model list's updates while a person types in it.
  function buildSettings() {
    const field = (f) => el("label", { class: "field", title: `${f.key} in config.toml` },
      el("span", { class: "field-label" }, f.label),
      el("input", { id: `set-${f.key}`, type: "text", autocomplete: "off", spellcheck: "false",
        data: { key: f.key }, list: f.key === "chat_template" ? "template-names" : null }),
      f.key === "context_length" ? el("span", { class: "trained" }) : null);
    const button = (label, cls, fn) => el("button", { class: cls, on: { click: fn } }, label);
    const dialog = el("div", { class: "dialog settings-dialog", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "settings-title" },
    el("h2", { id: "settings-title" }, "Model settings"),
    el("div", { class: "settings-name" }),
    el("h3", {}, "Loading", el("span", { class: "group-hint" }, " · the model reloads to apply these")),
    el("div", { class: "fields" }, FIELDS.filter((f) => f.group === "load").map(field)),
    el("h3", {}, "Replies"),
    el("div", { class: "fields" }, FIELDS.filter((f) => f.group !== "load").map(field)),
    el("datalist", { id: "template-names" }),
    el("p", { class: "hint" }, "Empty fields follow the defaults, shown in grey."),
    el("div", { class: "form-error", role: "alert", hidden: true }),
    el("div", { class: "dialog-buttons" },
      button("Reset to defaults", "ghost reset", resetSettings),
      button("Cancel", "cancel", closeSettings),
      button("Save", "primary", saveSettings)));
    const overlay = el("div", { id: "model-settings", class: "overlay", hidden: true }, dialog);
    overlay.addEventListener("click", (e) => { if (e.target === overlay) closeSettings(); });
    overlay.addEventListener("keydown", settingsKeys);
    overlay.querySelector("#set-context_length").addEventListener("input", showTrained);
    ui.view.append(overlay);
    return overlay;
  }
  ui.settings = buildSettings();

  function settingsOpen() { return !ui.settings.hidden; }
  function settingsInputs() { return Array.from(ui.settings.querySelectorAll("input[data-key]")); }

  function formError(message) {
    const box = ui.settings.querySelector(".form-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function setBusy(busy) {
    // Cancel stays: a person may leave while a save is on its way.
    for (const b of ui.settings.querySelectorAll(".dialog-buttons button:not(.cancel)")) b.disabled = busy;
  }

  function openSettings(name) {
    state.settings = { name, pending: "open", trained: null, effective: {} };
    showError("");
    rmm.call("models_settings", name);
  }

  function shown(key, value) {
    if (key === "chat_template") return value || "the model's own";
    if (key === "gpu_layers") return value < 0 ? `${value} (all)` : value === 0 ? "0 (CPU only)" : String(value);
    return String(value);
  }

  // Own values in the fields; the effective value as each field's placeholder.
  function fillSettings(ev) {
    const s = state.settings;
    s.trained = ev.trained_context;
    s.effective = ev.effective || {};
    ui.settings.dataset.name = ev.name;
    const title = ui.settings.querySelector(".settings-name");
    title.textContent = baseName(ev.name);
    title.title = ev.name;
    for (const input of settingsInputs()) {
      const key = input.dataset.key;
      const own = (ev.settings || {})[key];
      input.value = own === undefined ? "" : String(own);
      input.placeholder = shown(key, s.effective[key]);
    }
    ui.settings.querySelector("datalist").replaceChildren(...(ev.templates || []).map((t) => el("option", { value: t })));
    showTrained();
  }

  // Under the context: what the model was trained for, and when the context asked for is cut to it.
  function showTrained() {
    const s = state.settings;
    const line = ui.settings.querySelector(".trained");
    const trained = s && s.trained;
    const wanted = Number(ui.settings.querySelector("#set-context_length").value.trim() || (s && s.effective.context_length));
    line.textContent = !trained ? "" : wanted > trained ? `trained for ${trained}: loads with ${trained}` : `trained for ${trained}`;
    line.classList.toggle("warn", Boolean(trained && wanted > trained));
  }

  function saveSettings() {
    const s = state.settings;
    if (!s || s.pending) return;
    const values = {}, unset = [];
    for (const input of settingsInputs()) {
      const text = input.value.trim();
      if (text) values[input.dataset.key] = text; else unset.push(input.dataset.key);
    }
    s.pending = "save";
    formError("");
    setBusy(true);
    rmm.call("models_save_settings", s.name, values, unset);
  }

  function resetSettings() {
    const s = state.settings;
    if (!s || s.pending) return;
    s.pending = "reset";
    formError("");
    setBusy(true);
    rmm.call("models_reset_settings", s.name);
  }

  function closeSettings() {
    const name = state.settings && state.settings.name;
    state.settings = null;
    ui.settings.hidden = true;
    formError("");
    setBusy(false);
    const back = name && localButton(name, "Settings");
    if (back) back.focus(); else focusView();
  }

  function settingsKeys(e) {
    if (e.key === "Enter" && !e.isComposing && e.target.tagName === "INPUT") {
      e.preventDefault();
      saveSettings();
    } else if (e.key === "Tab") {
      // Keep Tab inside the form while it is open, as in the delete question.
      const stops = Array.from(ui.settings.querySelectorAll("input, button")).filter((x) => !x.disabled);
      const i = stops.indexOf(document.activeElement);
      const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
      e.preventDefault();
      stops[next].focus();
    }
  }

  rmm.on("models.settings", (ev) => {
    const s = state.settings;
    if (!s || s.name !== ev.name) return;  // closed meanwhile, or another model's
    const was = s.pending;
    s.pending = null;
    setBusy(false);
    if (was === "save") { closeSettings(); return; }
    fillSettings(ev);
    if (was === "open") {
      ui.settings.hidden = false;
      settingsInputs()[0].focus();
    } else if (was === "reset") {
      settingsInputs()[0].focus();
    }
  });

  // -- events from the core -------------------------------------------------------------------

  rmm.openRepo = openRepo;  // welcome.js: a suggested model opens here
  rmm.on("models.results", (ev) => {
    if (ev.query !== state.lastQuery && state.lastQuery !== null) return;
    state.searching = false;
    state.results = ev.items || [];
    renderResults();
  });
  rmm.on("models.repo", (ev) => {
    if (!state.repo || state.repo.id !== ev.id) return;  // the person went back meanwhile
    state.repo = ev;
    renderRepo(ev);
    focusView();
  });
  rmm.on("models.local", (ev) => { state.local = ev.items || []; renderLocal(); updateFiles(); });
  rmm.on("models.found", (ev) => { state.found = ev.items || []; renderFound(); });
  rmm.on("downloads", (ev) => { state.downloads = ev.items || []; renderDownloads(); updateFiles(); });
  rmm.on("models.notice", (ev) => showNotice(ev.message));
  rmm.on("models.error", (ev) => {
    const s = state.settings;
    if (s && s.pending === "open") state.settings = null;  // the form never opened
    else if (s && s.pending) { s.pending = null; setBusy(false); formError(ev.message); return; }
    showError(ev.message);
    if (state.searching) { state.searching = false; renderResults(); }
    if (state.repo && state.repo.loading) ui.repo.querySelector(".placeholder").textContent = "Could not read this repository.";
    if (state.found === null) { state.found = []; renderFound(); }
    for (const b of ui.foundList.querySelectorAll("button:disabled")) b.disabled = false;
  });

  // -- the view and its keys ----------------------------------------------------------------------

  rmm.view("models", {
    show() {
      rmm.call("models_local");
      if (state.pane === "servers") rmm.call("models_servers");  // a server may have come or gone
      if (!state.opened) {
        state.opened = true;
        state.lastQuery = "";
        state.searching = true;
        renderResults();
        rmm.call("models_search", "", ui.sort.value);
        rmm.call("models_downloads");
      }
    },
    focus: focusView,
    escape() {
      if (!ui.confirm.hidden) { closeConfirm(); return true; }
      if (settingsOpen()) { closeSettings(); return true; }
      return false;
    },
  });

  // Left and Right move between the panes, as in any tab list.
  PANES.forEach((pane, i) => {
    const tab = $(`pane-${pane}`);
    tab.addEventListener("click", () => { setPane(pane); focusView(); });
    tab.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      e.preventDefault();
      const next = PANES[(i + (e.key === "ArrowRight" ? 1 : PANES.length - 1)) % PANES.length];
      setPane(next);
      $(`pane-${next}`).focus();
    });
  });
  ui.scan.addEventListener("click", () => { state.found = null; renderFound(); rmm.call("models_discover"); });
  ui.sort.addEventListener("change", search);
  ui.query.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); search(); }
    else if (e.key === "ArrowDown") {
      const first = ui.results.querySelector(".nav");
      if (first) { e.preventDefault(); first.focus(); }
    }
  });
  // Up and Down move between the rows of a list; Up from the first result goes back to the search box.
  ui.view.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const here = e.target;  // not activeElement: the search box's own handler may have moved it
    const list = here && here.closest("[data-nav]");
    if (!list || !here.classList.contains("nav")) return;
    const items = Array.from(list.querySelectorAll(".nav")).filter((b) => !b.disabled);
    const i = items.indexOf(here) + (e.key === "ArrowDown" ? 1 : -1);
    e.preventDefault();
    if (i >= 0 && i < items.length) items[i].focus();
    else if (i < 0 && list === ui.results) ui.query.focus();
  });
  ui.confirm.addEventListener("keydown", (e) => {
    // Keep Tab inside the dialog while it is open.
    if (e.key !== "Tab") return;
    e.preventDefault();
    (document.activeElement === ui.confirmCancel ? ui.confirmOk : ui.confirmCancel).focus();
  });
  setPane("browse");
  renderResults();
  renderFound();
})();
