// The Models view's Servers pane: the OpenAI-compatible servers in config.toml,
// each with its models or its one-line error, and the Add server form (name,
// base URL, an optional API key, Test connection, Add). The core tests and
// writes (models/remotes.py, as `rmm-tray remote add` does); this page only
// shows what came back. A server's text reaches the page as text only.
"use strict";

(() => {
  const ui = { pane: $("servers"), list: $("server-list"), add: $("add-server"), view: $("models-view") };
  // items: the list as last sent (null while asked); seq: the form's request number,
  // so the answer to an earlier test of other text is not shown as this one's.
  const state = { items: null, seq: 0, pending: null };

  const el = (...args) => window.rmm.el(...args);  // models.js's

  const KEY_SHOWN = { "config.toml": "key in config.toml", keyring: "key in the keyring", none: "" };

  // -- the list -----------------------------------------------------------------------

  function serverRow(s) {
    const key = s.key in KEY_SHOWN ? KEY_SHOWN[s.key] : `key from ${s.key}`;
    return el("div", { class: `server${s.error ? " failing" : ""}`, data: { name: s.name } },
      el("div", { class: "local-main" },
        el("div", { class: "local-name", title: s.name }, s.name),
        el("div", { class: "path", title: s.base_url }, s.base_url),
        s.error ? el("div", { class: "local-error" }, s.error)
          : el("div", { class: "local-meta server-models", title: s.summary }, s.summary),
        key ? el("div", { class: "local-meta" }, key) : null),
      el("button", { class: "small ghost danger-text nav", "aria-label": `Remove ${s.name}`,
        on: { click: () => askRemove(s.name) } }, "Remove"));
  }

  function render() {
    const a = document.activeElement;
    const kept = a && ui.list.contains(a) && a.closest(".server") ? a.closest(".server").dataset.name : null;
    if (state.items === null) ui.list.replaceChildren(el("div", { class: "placeholder" }, "Asking the servers…"));
    else if (!state.items.length) {
      ui.list.replaceChildren(el("div", { class: "placeholder" },
        "No servers yet. Add one to chat with a bigger machine's models from here."));
    } else ui.list.replaceChildren(...state.items.map(serverRow));
    const again = kept && ui.list.querySelector(`.server[data-name="${CSS.escape(kept)}"] button`);
    if (again) again.focus();
  }

  function askRemove(name) {
    rmm.askConfirm(`Remove the server ${name}? Its models leave the picker; its stored key is deleted.`,
      "Remove", () => rmm.call("models_remove_server", name));
  }

  // -- the Add server form ----------------------------------------------------------------

  function field(id, label, input, hint) {
    return el("label", { class: "server-field", for: id },
      el("span", { class: "server-label" }, label, hint ? el("span", { class: "optional" }, hint) : null),
      input);
  }

  function buildForm() {
    const input = (id, props) => el("input", { id, autocomplete: "off", spellcheck: "false", ...props });
    const dialog = el("div", { class: "dialog server-dialog", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "server-form-title" },
    el("h2", { id: "server-form-title" }, "Add a server"),
    el("p", { class: "hint" }, "Any server that speaks the OpenAI API. Its models are named NAME:MODEL."),
    el("div", { class: "server-fields" },
      field("server-name", "Name", input("server-name", { type: "text", placeholder: "gpu-box",
        "aria-describedby": "server-name-hint" }), el("span", { id: "server-name-hint" }, " · letters, digits, - _ .")),
      field("server-url", "Base URL", input("server-url", { type: "url", placeholder: "http://gpu-box:8080" })),
      field("server-key", "API key", input("server-key", { type: "password", placeholder: "none" }), " · optional")),
    el("div", { id: "server-result", class: "server-result", role: "status", "aria-live": "polite", hidden: true }),
    el("div", { class: "dialog-buttons" },
      el("button", { id: "server-test", class: "test", on: { click: () => submit("test") } }, "Test connection"),
      el("button", { id: "server-cancel", class: "cancel", on: { click: closeForm } }, "Cancel"),
      el("button", { id: "server-add", class: "primary", on: { click: () => submit("add") } }, "Add")));
    const overlay = el("div", { id: "server-form", class: "overlay", hidden: true }, dialog);
    overlay.addEventListener("click", (e) => { if (e.target === overlay) closeForm(); });
    overlay.addEventListener("keydown", formKeys);
    // What was tested is not what is typed any more: its result goes.
    overlay.addEventListener("input", () => { if (!state.pending) { state.seq++; result(null); } });
    ui.view.append(overlay);
    return overlay;
  }
  ui.form = buildForm();
  const inputs = () => ["server-name", "server-url", "server-key"].map($);

  function formOpen() { return !ui.form.hidden; }

  function result(message, ok) {
    const box = $("server-result");
    box.textContent = message || "";
    box.hidden = !message;
    box.className = `server-result ${ok === true ? "ok" : ok === false ? "bad" : "busy"}`;
  }

  function setBusy(busy) {
    // Cancel stays: a person may leave while a slow server is asked.
    for (const id of ["server-test", "server-add"]) $(id).disabled = busy;
  }

  function openForm() {
    for (const i of inputs()) i.value = "";
    state.pending = null;
    setBusy(false);
    result(null);
    ui.form.hidden = false;
    $("server-name").focus();
  }

  function closeForm() {
    if (!formOpen()) return;
    ui.form.hidden = true;
    state.pending = null;
    state.seq++;  // an answer still on its way is for a form that is gone
    ui.add.focus();
  }

  function submit(action) {
    if (state.pending) return;
    const [name, url, key] = inputs().map((i) => i.value.trim());
    if (!name) { result("Give the server a name, e.g. gpu-box", false); $("server-name").focus(); return; }
    if (!url) { result("Give its base URL, e.g. http://gpu-box:8080", false); $("server-url").focus(); return; }
    state.seq++;
    state.pending = action;
    setBusy(true);
    result(action === "add" ? "Testing, then adding…" : "Testing…");
    rmm.call(action === "add" ? "models_add_server" : "models_test_server", name, url, key, String(state.seq));
  }

  function formKeys(e) {
    if (e.key === "Enter" && !e.isComposing && e.target.tagName === "INPUT") {
      e.preventDefault();
      submit("add");
    } else if (e.key === "Tab") {
      // Tab stays inside the form while it is open, as in the other dialogs.
      const stops = Array.from(ui.form.querySelectorAll("input, button")).filter((x) => !x.disabled);
      const i = stops.indexOf(document.activeElement);
      const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
      e.preventDefault();
      stops[next].focus();
    }
  }

  // -- events and hooks ----------------------------------------------------------------------

  rmm.on("models.servers", (ev) => { state.items = ev.items || []; render(); });
  rmm.on("models.server_form", (ev) => {
    if (!formOpen() || ev.seq !== String(state.seq)) return;  // closed, or an older request
    state.pending = null;
    setBusy(false);
    if (ev.ok && ev.action === "add") { closeForm(); return; }
    result(ev.message, ev.ok);
    if (!ev.ok) {
      // Back to the field the line is most likely about; what was typed stays.
      const about = /API key/.test(ev.message) ? "server-key" : /name/.test(ev.message) ? "server-name" : "server-url";
      $(about).focus();
    }
  });

  // The Models view's hooks: Esc closes the form first (never the popup, never
  // touching the chat's draft); while it is open, focus stays in it.
  const hooks = rmm.hooks("models");
  const escape = hooks.escape, focus = hooks.focus;
  hooks.escape = () => { if (formOpen()) { closeForm(); return true; } return escape(); };
  hooks.focus = () => { if (formOpen()) $("server-name").focus(); else focus(); };

  ui.add.addEventListener("click", openForm);

  // Tests read the pane and the form as shown (popup_process.PROBES "servers").
  rmm.serversProbe = () => ({
    rows: Array.from(ui.list.querySelectorAll(".server")).map((r) => ({
      name: r.dataset.name, url: r.querySelector(".path").textContent,
      text: (r.querySelector(".server-models") || r.querySelector(".local-error")).textContent,
      error: Boolean(r.querySelector(".local-error")) })),
    pane: !ui.pane.hidden,
    draft: $("input").value,  // the chat's own input, which the form must leave alone
    focus: document.activeElement ? document.activeElement.id || document.activeElement.textContent : null,
    form: formOpen() ? {
      name: $("server-name").value, url: $("server-url").value, key_length: $("server-key").value.length,
      key_type: $("server-key").type,
      result: $("server-result").hidden ? null : $("server-result").textContent,
      kind: $("server-result").className.replace("server-result ", ""), busy: $("server-add").disabled,
      // Where a pointer would click, in the page's pixels.
      buttons: Object.fromEntries(["server-test", "server-add"].map((id) => {
        const r = $(id).getBoundingClientRect();
        return [id, [Math.round(r.left + r.width / 2), Math.round(r.top + r.height / 2)]];
      })),
    } : null,
  });
  render();
})();
