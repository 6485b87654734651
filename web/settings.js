// The Settings view (tray "Settings…", Ctrl+,). The core lays out the form and
// owns every rule (desktop/settings_controller.py, the checks `rmm-tray config set`
// uses): this page shows the fields, asks the core about each value as it is
// typed, and saves a field when it is changed. A refused value stays in its field.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const view = $("settings-view");
  const form = $("settings-form");
  const notice = $("settings-notice");
  const errorBox = $("settings-error");
  let openOn = "last";
  let recording = null;  // the hotkey field while it listens for keys
  const timers = {};

  // -- theme and what the popup opens on -----------------------------------------
  const dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let theme = "system";
  function applyTheme() {
    const resolved = theme === "system" ? (dark && dark.matches ? "dark" : "light") : theme;
    document.documentElement.dataset.theme = resolved;
  }
  if (dark && dark.addEventListener) dark.addEventListener("change", applyTheme);
  applyTheme();

  // -- the form -----------------------------------------------------------------
  function fieldId(name) { return "set-" + name.replace(/[^a-z0-9]+/gi, "-"); }

  function message(name, text, kind) {
    const box = $(fieldId(name) + "-msg");
    const input = $(fieldId(name));
    if (!box) return;
    box.textContent = text || "";
    box.className = "field-msg" + (kind ? " " + kind : "");
    box.hidden = !text;
    if (input) {
      input.classList.toggle("invalid", kind === "bad");
      if (kind === "bad") input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
  }

  function valueOf(input) {
    if (input.type === "checkbox") return input.checked;
    if (input.dataset.kind === "hotkey") return input.dataset.combo || "";
    return input.value;
  }

  function save(name, value) {
    clearTimeout(timers[name]);  // the save answers for the value; a later check would hide its note
    rmm.call("settings_save", { [name]: value });
  }

  function check(name, value) {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(() => rmm.call("settings_check", { [name]: value }), 120);
  }

  function buildField(f) {
    const row = document.createElement("div");
    row.className = "field";
    row.dataset.name = f.name;
    const id = fieldId(f.name);
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = f.label;
    let input;
    if (f.kind === "bool") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !!f.value;
      input.addEventListener("change", () => save(f.name, input.checked));
      row.classList.add("check");
    } else if (f.kind === "choice") {
      input = document.createElement("select");
      for (const [value, text] of f.choices || []) {
        const o = document.createElement("option");
        o.value = value;
        o.textContent = text;
        o.title = value;
        input.append(o);
      }
      input.value = f.value;
      input.addEventListener("change", () => save(f.name, input.value));
    } else if (f.kind === "hotkey") {
      input = document.createElement("input");
      input.readOnly = true;
      input.dataset.combo = f.value;
      input.value = f.shown || f.value;  // the core names keys as the tray does
      input.title = f.value;
    } else {
      input = document.createElement("input");
      input.type = f.kind === "secret" ? "password" : "text";
      input.inputMode = f.kind === "int" ? "numeric" : f.kind === "number" ? "decimal" : "text";
      input.autocomplete = "off";
      input.spellcheck = false;
      input.value = f.value;
      input.addEventListener("input", () => check(f.name, input.value));
      input.addEventListener("change", () => save(f.name, input.value));
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); save(f.name, input.value); } });
    }
    input.id = id;
    input.dataset.name = f.name;
    input.dataset.kind = f.kind;
    const msg = document.createElement("p");
    msg.id = id + "-msg";
    msg.className = "field-msg";
    msg.setAttribute("aria-live", "polite");
    msg.hidden = true;
    input.setAttribute("aria-describedby", msg.id);
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = (f.hint || "") + (f.restart ? (f.hint ? " · " : "") + "applies after a restart" : "");
    hint.hidden = !hint.textContent;
    if (f.kind === "bool") {
      row.append(input, label, hint, msg);
    } else if (f.kind === "hotkey") {
      const line = document.createElement("div");
      line.className = "hotkey-line";
      const rec = document.createElement("button");
      rec.type = "button";
      rec.id = id + "-record";
      rec.className = "small";
      rec.textContent = "Record";
      rec.addEventListener("click", () => startRecording(input, rec));
      line.append(input, rec);
      row.append(label, line, hint, msg);
    } else {
      row.append(label, input, hint, msg);
    }
    return row;
  }

  function buildPlugins(plugins) {
    const box = document.createElement("div");
    box.id = "settings-plugins";
    for (const p of plugins) {
      const row = document.createElement("div");
      row.className = "plugin" + (p.error ? " failed" : "");
      row.dataset.name = p.name;
      const name = document.createElement("span");
      name.className = "plugin-name";
      name.textContent = p.name + (p.version ? " " + p.version : "");
      name.title = p.source;
      const status = document.createElement("span");
      status.className = "plugin-status";
      status.textContent = p.error ? "Failed: " + p.error : p.enabled ? (p.source === "first-party" ? "Built in" : "On") : "Off";
      row.append(name, status);
      if (p.switchable) {
        const t = document.createElement("input");
        t.type = "checkbox";
        t.checked = p.enabled;
        t.setAttribute("aria-label", (p.enabled ? "Turn off " : "Turn on ") + p.name);
        t.addEventListener("change", () => rmm.call("settings_plugin", p.name, t.checked ? "1" : "0"));
        row.append(t);
      }
      box.append(row);
    }
    if (!plugins.length) box.textContent = "No plugins.";
    return box;
  }

  function section(title, ...children) {
    const s = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = title;
    s.append(legend, ...children);
    return s;
  }

  function render(ev) {
    const parts = ev.sections.map((s) => section(s.title, ...s.fields.map(buildField)));
    const plugins = section("Plugins", buildPlugins(ev.plugins || []));
    plugins.id = "settings-plugins-section";
    const folder = document.createElement("div");
    folder.className = "folder-line";
    const path = document.createElement("code");
    path.id = "settings-home";
    path.textContent = ev.home;
    path.title = ev.home;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "small";
    open.id = "settings-open-folder";
    open.textContent = "Open";
    open.addEventListener("click", () => rmm.call("settings_open_folder"));
    folder.append(path, open);
    form.replaceChildren(...parts, plugins, section("Data folder", folder));
    if (ev.hotkey_problem) message("ui.hotkey", "The hotkey is off: " + ev.hotkey_problem, "bad");
    if (currentView() === "settings" && !form.contains(document.activeElement)) focusFirst();
  }

  function focusFirst() {
    const first = $(fieldId("ui.hotkey") + "-record") || form.querySelector("input,select,button");
    if (first) first.focus();
  }

  function currentView() { return document.body.dataset.view; }

  // -- the hotkey recorder --------------------------------------------------------
  const CODES = { Space: "<space>", Enter: "<enter>", Tab: "<tab>", Backspace: "<backspace>", Delete: "<delete>",
    Insert: "<insert>", Home: "<home>", End: "<end>", PageUp: "<page_up>", PageDown: "<page_down>",
    ArrowUp: "<up>", ArrowDown: "<down>", ArrowLeft: "<left>", ArrowRight: "<right>", Escape: "<esc>",
    Comma: ",", Period: ".", Slash: "/", Semicolon: ";", Quote: "'", BracketLeft: "[", BracketRight: "]",
    Backslash: "\\", Minus: "-", Equal: "=", Backquote: "`" };
  const MODIFIER_KEYS = ["Control", "Alt", "Shift", "Meta", "Super", "OS", "AltGraph", "Hyper"];

  function comboFrom(e) {
    let key = null;
    if (/^Key[A-Z]$/.test(e.code)) key = e.code.slice(3).toLowerCase();
    else if (/^Digit[0-9]$/.test(e.code)) key = e.code.slice(5);
    else if (/^F([1-9]|1[0-9]|20)$/.test(e.code)) key = `<${e.code.toLowerCase()}>`;
    else if (CODES[e.code]) key = CODES[e.code];
    else if (e.key && e.key.length === 1) key = e.key.toLowerCase();
    if (!key) return null;
    const mods = [];
    if (e.ctrlKey) mods.push("<ctrl>");
    if (e.altKey) mods.push("<alt>");
    if (e.shiftKey) mods.push("<shift>");
    if (e.metaKey) mods.push("<cmd>");
    return [...mods, key].join("+");
  }

  function startRecording(input, button) {
    recording = { input, button, before: input.dataset.combo, shown: input.value };
    rmm.call("hold_hotkeys", "1");  // the keys pressed now are recorded, not acted on
    input.value = "Press the keys…";
    input.classList.add("recording");
    button.textContent = "Cancel";
    message("ui.hotkey", "");
  }

  function stopRecording(combo) {
    const r = recording;
    recording = null;
    if (!r) return;
    rmm.call("hold_hotkeys", "0");
    r.input.classList.remove("recording");
    r.button.textContent = "Record";
    const value = combo || r.before;
    r.input.dataset.combo = value;
    r.input.value = value === r.before ? r.shown : value;
    r.input.title = value;
    if (combo) save("ui.hotkey", combo);
    r.button.focus();
  }

  // Capture phase, before the page's own shortcuts: while recording, every key is the hotkey's.
  window.addEventListener("keydown", (e) => {
    if (!recording) return;
    if (MODIFIER_KEYS.includes(e.key)) { e.preventDefault(); e.stopPropagation(); return; }
    e.preventDefault();
    e.stopPropagation();
    if (e.key === "Escape" && !e.ctrlKey && !e.altKey && !e.metaKey) { stopRecording(null); return; }
    const combo = comboFrom(e);
    if (combo) stopRecording(combo);
  }, true);

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && (e.key === "," || e.code === "Comma")) {
      e.preventDefault();
      rmm.setView("settings");
    }
  });

  // -- events from the core -------------------------------------------------------
  rmm.on("settings.form", (ev) => {
    if (form.childElementCount && ev.refresh === "plugins") {
      const old = $("settings-plugins");
      if (old) old.replaceWith(buildPlugins(ev.plugins || []));
      return;
    }
    render(ev);
  });
  rmm.on("settings.check", (ev) => {
    const input = $(fieldId(ev.name));
    // An answer about a value no longer in the field (typing went on) is stale.
    if (input && input.dataset.kind !== "hotkey" && input.type !== "checkbox" && input.type !== "select-one"
        && String(input.value) !== String(ev.value) && ev.message) return;
    message(ev.name, ev.message, ev.message ? "bad" : "");
  });
  rmm.on("settings.saved", (ev) => {
    const input = $(fieldId(ev.name));
    if (input && input.dataset.kind === "hotkey") {
      input.dataset.combo = ev.value;
      input.value = ev.shown || ev.value;
    } else if (input && (input.type === "text" || input.type === "password") && document.activeElement !== input) {
      input.value = ev.value;
    }
    if (ev.name === "plugins.disabled") { notice.textContent = ev.message; notice.hidden = false; return; }
    message(ev.name, ev.message, ev.message.includes("off:") ? "bad" : "good");
  });
  rmm.on("settings.applied", (ev) => {
    theme = ev.theme || "system";
    openOn = ev.open_on || "last";
    applyTheme();
  });
  rmm.on("settings.error", (ev) => {
    errorBox.textContent = ev.message;
    errorBox.hidden = !ev.message;
  });
  rmm.on("hidden", () => {
    if (recording) stopRecording(null);
    if (openOn === "chat" && currentView() !== "chat") rmm.setView("chat");
  });

  rmm.view("settings", {
    show() {
      notice.hidden = true;
      errorBox.hidden = true;
      rmm.call("settings_open");
    },
    focus() { focusFirst(); },
    escape() {
      if (recording) { stopRecording(null); return true; }
      return false;
    },
  });
  $("tab-settings").addEventListener("click", () => rmm.setView("settings"));
})();
