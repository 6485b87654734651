// Prompts in the popup: a prompt's variable form above the chat input, the "/"
// picker, and the Prompts view (Ctrl+P), a builder with a live preview of what
// the model will see. The core fills, renders and counts (prompts_controller.py);
// this page only lays it out. Everything from a prompt is placed as text
// (textContent, input values), never as HTML, so nothing in a prompt can run.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, "");
      else if (v !== false && v != null) e.setAttribute(k, v);
    }
    e.append(...children.filter((c) => c != null));
    return e;
  };
  // A select the keyboard drives the same way in every web view: arrows step,
  // a letter jumps to the next option starting with it (WebKitGTK opens a
  // menu on some keys instead, which a keyboard user then has to dismiss).
  document.addEventListener("keydown", (e) => {
    const s = e.target;
    if (!(s instanceof HTMLSelectElement) || !s.closest(".prompts, .prompt-form") || e.altKey || e.ctrlKey || e.metaKey) return;
    const n = s.options.length;
    let i = s.selectedIndex;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") i = Math.min(n - 1, Math.max(0, i + (e.key === "ArrowDown" ? 1 : -1)));
    else if (e.key.length === 1 && /\S/.test(e.key)) {
      const k = e.key.toLowerCase();
      for (let step = 1; step <= n; step++) {
        const j = (i + step) % n;
        if (s.options[j].textContent.toLowerCase().startsWith(k)) { i = j; break; }
      }
    } else if (e.key === " ") return;
    else return;
    e.preventDefault();
    if (i !== s.selectedIndex) { s.selectedIndex = i; s.dispatchEvent(new Event("change", { bubbles: true })); }
  }, true);
  // replaceChildren, leaving out the parts a condition left null.
  const put = (node, ...kids) => node.replaceChildren(...kids.filter((k) => k != null));
  const input = $("input");
  const composer = document.querySelector("#chat-view .composer");
  let prompts = [];  // the list, as the core sent it
  let kinds = [];

  // -- fuzzy match (the picker and the list's search) ------------------------------
  // Every character of the query in order; earlier, adjacent and word-start hits
  // score higher. -1 when it does not match.
  function fuzzy(query, text) {
    query = query.toLowerCase();
    text = text.toLowerCase();
    if (!query) return 0;
    let score = 0, at = -1, run = 0;
    for (const ch of query) {
      const found = text.indexOf(ch, at + 1);
      if (found < 0) return -1;
      run = found === at + 1 ? run + 1 : 0;
      score += 10 - Math.min(found - at, 9) + run * 3 + (found === 0 || /[\s\-_]/.test(text[found - 1]) ? 5 : 0);
      at = found;
    }
    return score - text.length * 0.01;
  }
  function ranked(query) {
    return prompts
      .map((p) => ({ p, s: Math.max(fuzzy(query, p.name), fuzzy(query, p.description) - 8,
                                    fuzzy(query, (p.tags || []).join(" ")) - 8) }))
      .filter((x) => x.s >= 0).sort((a, b) => b.s - a.s).map((x) => x.p);
  }

  // -- the variable form (chat view) -------------------------------------------------
  const form = el("section", { id: "prompt-form", class: "prompt-form", hidden: true, "aria-label": "Prompt" });
  const banner = el("div", { id: "chat-system", class: "chat-system", hidden: true });
  composer.parentNode.insertBefore(form, composer);
  $("messages").parentNode.insertBefore(banner, $("messages"));
  let formPrompt = null;

  function field(spec, value) {
    const id = "pv-" + spec.name;
    let control;
    if (spec.type === "choice") {
      control = el("select", { id }, ...spec.options.map((o) => el("option", { value: o, text: o })));
      control.value = value || spec.default || spec.options[0];
    } else if (spec.type === "multiline") {
      control = el("textarea", { id, rows: "3" });
      control.value = value || spec.default || "";
    } else if (spec.type === "yesno") {
      control = el("select", { id }, el("option", { value: "yes", text: "Yes" }), el("option", { value: "no", text: "No" }));
      control.value = value || spec.default || "no";
    } else {
      const type = spec.type === "number" ? "number" : spec.type === "date" ? "date" : "text";
      control = el("input", { id, type, min: spec.min, max: spec.max, autocomplete: "off", spellcheck: "false" });
      control.value = value || spec.default || "";
    }
    control.dataset.var = spec.name;
    if (spec.required) control.setAttribute("aria-required", "true");
    return el("label", { class: "pf-field", for: id },
      el("span", { class: "pf-name", text: spec.name + (spec.required ? "" : " (optional)") }),
      control,
      spec.description ? el("span", { class: "pf-hint", text: spec.description }) : null);
  }

  function showForm(p, captured, notice) {
    formPrompt = p;
    const rows = p.fields.map((s) => field(s, ""));
    for (const name of p.builtins) {
      if (name !== "selection" && name !== "clipboard") continue;
      const spec = { name, type: "multiline", default: (captured || {})[name] || "", required: false,
                     description: name === "selection" ? "the text selected when the prompt was opened" : "the clipboard" };
      rows.push(field(spec, ""));
    }
    if (p.uses_input || !p.fields.length && !p.builtins.length) {
      rows.push(field({ name: "input", type: "multiline", default: input.value.startsWith("/") ? "" : input.value,
                        required: p.uses_input, description: "your text" }, ""));
    }
    put(form, 
      el("div", { class: "pf-head" },
        el("strong", { text: p.name }), el("span", { class: "pf-desc", text: p.description || "" })),
      notice ? el("div", { class: "pf-notice", role: "status", text: notice }) : null,
      el("div", { class: "pf-fields" }, ...rows),
      el("div", { id: "pf-error", class: "pf-error", role: "alert", hidden: true }),
      el("div", { class: "pf-buttons" },
        el("button", { id: "pf-back", type: "button", text: "Back", title: "Esc", onclick: closeForm }),
        el("button", { id: "pf-run", type: "button", class: "primary", text: "Run", title: "Enter", onclick: runForm })));
    form.hidden = false;
    closePicker();
    if (input.value.startsWith("/")) input.value = "";
    const first = form.querySelector("input, select, textarea");
    (first || $("pf-run")).focus();
  }

  // The popup shown again (a hotkey, the tray) focuses the chat view: the form,
  // while one is open, rather than the input under it.
  const chatHooks = rmm.hooks("chat");
  rmm.view("chat", { ...chatHooks,
    focus() {
      const first = form.hidden ? null : form.querySelector("input, select, textarea");
      if (first) first.focus(); else chatHooks.focus();
    },
    escape() {
      if (!form.hidden) { closeForm(); return true; }
      return chatHooks.escape();
    },
  });

  function closeForm() {
    form.hidden = true;
    formPrompt = null;
    input.focus();
  }

  function formValues() {
    const values = {};
    for (const c of form.querySelectorAll("[data-var]")) values[c.dataset.var] = c.value;
    return values;
  }

  function runForm() {
    if (!formPrompt) return;
    const missing = [...form.querySelectorAll("[aria-required=true]")].find((c) => !c.value.trim());
    if (missing) { formError(`${missing.dataset.var} is required`); missing.focus(); return; }
    rmm.call("prompts_run", formPrompt.name, formValues());
  }

  function formError(message) {
    const box = $("pf-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.target.id !== "pf-back") {
      e.preventDefault();
      runForm();
    }
  });

  // -- the "/" picker ------------------------------------------------------------------
  const picker = el("ul", { id: "slash-picker", class: "slash-picker", role: "listbox", hidden: true });
  composer.parentNode.insertBefore(picker, composer);
  let picked = 0, choices = [];

  function slashQuery() {
    const m = /^\/(\S*)$/.exec(input.value);
    return m ? m[1] : null;
  }
  function updatePicker() {
    const q = slashQuery();
    if (q === null) { closePicker(); return; }
    if (!prompts.length) rmm.call("prompts_list");
    choices = ranked(q).slice(0, 8);
    picked = Math.min(picked, Math.max(choices.length - 1, 0));
    picker.replaceChildren(...(choices.length ? choices.map((p, i) => el("li", {
      role: "option", "aria-selected": String(i === picked), class: i === picked ? "picked" : "",
      onmousedown: (e) => { e.preventDefault(); choose(i); },
    }, el("strong", { text: "/" + p.name }), el("span", { text: " " + (p.description || "") }))) :
      [el("li", { class: "none", text: "No prompt matches" })]));
    picker.hidden = false;
  }
  function closePicker() { picker.hidden = true; choices = []; picked = 0; }
  function choose(i) {
    const p = choices[i];
    if (!p) return;
    closePicker();
    input.value = "";
    rmm.call("prompts_form", p.name);
  }
  input.addEventListener("input", updatePicker);

  // Capture phase: these keys reach the form, the picker and the builder before
  // app.js's own handlers (Enter sends, Esc hides).
  document.addEventListener("keydown", (e) => {
    if (e.target === input && !picker.hidden) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        picked = (picked + (e.key === "ArrowDown" ? 1 : -1) + choices.length) % Math.max(choices.length, 1);
        updatePicker();
      } else if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey) {
        choose(picked);
      } else if (e.key === "Escape") {
        closePicker();
      } else return;
      e.preventDefault();
      e.stopImmediatePropagation();
      return;
    }
    if (e.key === "Escape" && !form.hidden && form.contains(e.target)) {
      e.preventDefault();
      e.stopImmediatePropagation();
      closeForm();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "p") {
      e.preventDefault();
      e.stopImmediatePropagation();
      rmm.setView(currentView() === "prompts" ? "chat" : "prompts");
      return;
    }
    if (currentView() === "prompts" && e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      const card = e.target.closest && e.target.closest(".pb-block");
      if (card) { e.preventDefault(); e.stopImmediatePropagation(); moveBlock(card, e.key === "ArrowUp" ? -1 : 1, e.target); }
    }
  }, true);
  for (const id of ["new-chat", "chat-list"]) {
    const node = $(id);
    if (node) node.addEventListener("click", () => { banner.hidden = true; }, true);
  }

  rmm.on("prompts.list", (ev) => {
    prompts = ev.items || [];
    kinds = ev.kinds || kinds;
    if (!picker.hidden) updatePicker();
    renderList();
  });
  rmm.on("prompts.form", (ev) => {
    if (currentView() !== "chat") rmm.setView("chat");
    showForm(ev.prompt, ev.captured, ev.notice);
  });
  rmm.on("prompts.form_error", (ev) => formError(ev.message));
  rmm.on("prompts.ran", () => { form.hidden = true; formPrompt = null; });
  rmm.on("prompts.system", (ev) => {
    put(banner, el("span", { class: "cs-label", text: `System · ${ev.prompt}` }),
                           el("span", { class: "cs-text", text: ev.text || "(none)" }),
                           ev.notice ? el("span", { class: "cs-notice", role: "status", text: ev.notice }) : null);
    banner.title = ev.text || "";
    banner.hidden = !ev.text && !ev.notice;
  });
  rmm.on("prompts.error", (ev) => {
    if (!form.hidden) formError(ev.message); else builderError(ev.message);
  });

  // -- the Prompts view: the builder -------------------------------------------------------
  const view = $("prompts-view");
  const listBox = $("pb-list");
  const search = $("pb-search");
  const editor = $("pb-editor");
  let draft = null;       // {name, original, editable, ...} as edited
  let seq = 0, inFlight = false, dirty = false, lastShown = 0;
  const stamps = {};      // seq -> when it was asked (bench/prompts.py reads the latency)
  const latencies = [];

  function renderList() {
    if (!listBox) return;
    const q = search.value.trim();
    const items = q ? ranked(q) : prompts;
    listBox.replaceChildren(...items.map((p) => el("button", {
      class: "pb-item" + (draft && draft.original === p.name ? " current" : ""), type: "button",
      "data-name": p.name, onclick: () => openDraft(p),
    }, el("strong", { text: p.name }),
       el("span", { class: "pb-src", text: p.editable ? "yours" : p.source }),
       el("span", { class: "pb-desc", text: p.description || "" }))));
    if (!items.length) listBox.append(el("p", { class: "hint", text: q ? "No prompt matches." : "No prompts yet." }));
  }

  function blankDraft() {
    return { name: "", original: "", editable: true, description: "", tags: [], hotkey: "",
             run_immediately: false, variables: {},
             blocks: [{ kind: "system", text: "" }, { kind: "user", text: "{{input}}" }] };
  }

  function openDraft(p) {
    draft = p ? JSON.parse(JSON.stringify({ ...p, original: p.name })) : blankDraft();
    if (p && !p.editable) { draft.editable = false; }
    view.classList.add("editing");
    renderEditor();
    askPreview();
    renderList();
  }

  function builderError(message) {
    const box = $("pb-error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }
  function builderNotice(message) {
    const box = $("pb-notice");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function blockCard(b, i) {
    const ro = !draft.editable;
    const text = el("textarea", { class: "pb-text", rows: "3", "aria-label": `Block ${i + 1} text`, readonly: ro });
    text.value = b.text || "";
    text.addEventListener("input", () => { b.text = text.value; askPreview(); });
    const reply = b.kind === "example" ? el("textarea", { class: "pb-reply", rows: "2", "aria-label": `Block ${i + 1} reply`, readonly: ro }) : null;
    if (reply) { reply.value = b.reply || ""; reply.addEventListener("input", () => { b.reply = reply.value; askPreview(); }); }
    const kind = el("select", { class: "pb-kind", "aria-label": `Block ${i + 1} kind`, disabled: ro },
      ...kinds.map((k) => el("option", { value: k.kind, text: k.title })));
    kind.value = b.kind;
    kind.addEventListener("change", () => {
      b.kind = kind.value;
      renderEditor();
      const again = editor.querySelector(`.pb-block[data-index="${i}"] .pb-kind`);
      if (again) again.focus();
      askPreview();
    });
    const card = el("div", { class: "pb-block" + (b.collapsed ? " collapsed" : ""), "data-index": String(i) },
      el("div", { class: "pb-block-head" },
        ro ? null : el("span", { class: "pb-grip", title: "Drag to move (or Alt+↑/↓)", "aria-hidden": "true", text: "⠿",
                                 onpointerdown: (e) => startDrag(e, i) }),
        kind,
        el("button", { type: "button", class: "small pb-fold", title: "Collapse", text: b.collapsed ? "▸" : "▾",
                       onclick: () => { b.collapsed = !b.collapsed; renderEditor(); } }),
        ro ? null : el("button", { type: "button", class: "small", title: "Move up (Alt+↑)", text: "↑", onclick: () => moveBlock(card, -1) }),
        ro ? null : el("button", { type: "button", class: "small", title: "Move down (Alt+↓)", text: "↓", onclick: () => moveBlock(card, 1) }),
        ro ? null : el("button", { type: "button", class: "small pb-remove", title: "Remove block", text: "✕",
                                   onclick: () => { draft.blocks.splice(i, 1); renderEditor(); askPreview(); } })),
      b.kind === "example" ? el("span", { class: "pb-sub", text: "User" }) : null,
      text,
      reply ? el("span", { class: "pb-sub", text: "Assistant" }) : null,
      reply,
      el("ul", { class: "pb-problems", "data-block": String(i) }));
    return card;
  }

  // Dragging a block by its grip: pointer events (a real mouse drag), the block
  // lands where the pointer is released, between the others.
  function startDrag(e, from) {
    e.preventDefault();
    const cards = [...editor.querySelectorAll(".pb-block")];
    cards[from].classList.add("dragging");
    const target = (y) => {
      let to = 0;
      for (const [j, c] of cards.entries()) {
        const r = c.getBoundingClientRect();
        if (y > r.top + r.height / 2) to = j + (j < from ? 1 : 0); else break;
      }
      return Math.min(to, cards.length - 1);
    };
    const move = (ev) => {
      const to = target(ev.clientY);
      for (const [j, c] of cards.entries()) c.classList.toggle("drop-here", j === to && to !== from);
    };
    const up = (ev) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      const to = target(ev.clientY);
      if (to !== from && draft) {
        const [b] = draft.blocks.splice(from, 1);
        draft.blocks.splice(to, 0, b);
        askPreview();
      }
      renderEditor();
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }

  function moveBlock(card, delta, focusEl) {
    if (!draft || !draft.editable) return;
    const i = Number(card.dataset.index), j = i + delta;
    if (j < 0 || j >= draft.blocks.length) return;
    const [b] = draft.blocks.splice(i, 1);
    draft.blocks.splice(j, 0, b);
    const cls = focusEl ? focusEl.className : "";
    renderEditor();
    const moved = editor.querySelector(`.pb-block[data-index="${j}"] ${cls ? "." + cls.split(" ")[0] : "textarea"}`);
    if (moved) moved.focus();
    askPreview();
  }

  // A field removed while focused fires no blur, and a hidden popup records nothing.
  let holding = false;
  function holdKeys(on) {
    if (holding === on) return;
    holding = on;
    rmm.call("hold_hotkeys", on ? "1" : "0");
  }
  rmm.on("hidden", () => holdKeys(false));

  function renderEditor() {
    holdKeys(false);
    const ro = !draft.editable;
    const name = el("input", { id: "pb-name", type: "text", placeholder: "name", "aria-label": "Name", value: draft.name, readonly: ro, autocomplete: "off", spellcheck: "false" });
    name.addEventListener("input", () => { draft.name = name.value; });
    const desc = el("input", { id: "pb-desc", type: "text", placeholder: "what it does", "aria-label": "Description", value: draft.description || "", readonly: ro });
    desc.addEventListener("input", () => { draft.description = desc.value; });
    const hotkey = el("input", { id: "pb-hotkey", type: "text", placeholder: "press keys", title: "Press the keys; Backspace clears", "aria-label": "Hotkey", value: draft.hotkey || "", readonly: ro, autocomplete: "off", spellcheck: "false" });
    hotkey.addEventListener("input", () => { draft.hotkey = hotkey.value.trim(); askPreview(); });
    // While the field has the focus, keys are recorded here, not acted on by the global hotkeys.
    if (!ro) {
      hotkey.addEventListener("focus", () => holdKeys(true));
      hotkey.addEventListener("blur", () => holdKeys(false));
    }
    hotkey.addEventListener("keydown", (e) => {
      if (ro || e.key === "Tab" || e.isComposing) return;
      e.preventDefault();
      e.stopPropagation();  // recorded, not acted on (Ctrl+M would switch views)
      if (!e.ctrlKey && !e.altKey && !e.metaKey && (e.key === "Backspace" || e.key === "Delete")) {
        hotkey.value = "";
      } else {
        const combo = recordCombo(e);
        if (!combo) return;  // a modifier alone: wait for the key
        hotkey.value = combo;
      }
      draft.hotkey = hotkey.value;
      askPreview();  // its answer says at once whether another use has these keys
    });
    const runNow = el("input", { id: "pb-run-now", type: "checkbox", disabled: ro });
    runNow.checked = !!draft.run_immediately;
    runNow.addEventListener("change", () => { draft.run_immediately = runNow.checked; });
    const add = el("select", { id: "pb-add-kind", "aria-label": "Block kind to add", disabled: ro }, ...kinds.map((k) => el("option", { value: k.kind, text: k.title })));
    add.value = "instructions";
    put(editor, 
      el("div", { class: "pb-top" },
        el("button", { type: "button", class: "small pb-back", text: "← Prompts", onclick: () => view.classList.remove("editing") }),
        ro ? el("span", { class: "pb-ro", text: `from ${draft.source}: read-only` }) : null),
      el("div", { class: "pb-meta" }, name, desc,
        el("label", { class: "pb-inline" }, el("span", { text: "Hotkey" }), hotkey),
        el("span", { id: "pb-hotkey-msg", class: "field-msg bad", role: "alert", hidden: true }),
        el("label", { class: "pb-inline" }, runNow, el("span", { text: "Run at once" }))),
      el("div", { id: "pb-blocks", class: "pb-blocks" }, ...draft.blocks.map(blockCard)),
      ro ? null : el("div", { class: "pb-add" }, add,
        el("button", { id: "pb-add", type: "button", text: "Add block", onclick: () => {
          draft.blocks.push(add.value === "example" ? { kind: "example", text: "", reply: "" } : { kind: add.value, text: "" });
          renderEditor();
          const cards = editor.querySelectorAll(".pb-block textarea.pb-text");
          if (cards.length) cards[cards.length - 1].focus();
          askPreview();
        } })),
      el("h3", { text: "Variables" }),
      el("div", { id: "pb-vars", class: "pb-vars" }),
      el("h3", { text: "Preview" }),
      el("div", { id: "pb-meter", class: "pb-meter" }),
      el("div", { id: "pb-messages", class: "pb-messages" }),
      el("details", { class: "pb-raw" }, el("summary", { text: "As the model sees it" }), el("pre", { id: "pb-rendered" })),
      el("div", { id: "pb-error", class: "error", role: "alert", hidden: true }),
      el("div", { id: "pb-notice", class: "notice", role: "status", hidden: true }),
      el("div", { id: "pb-confirm", class: "pb-confirm", hidden: true }),
      el("div", { class: "pb-actions" },
        ro ? el("button", { id: "pb-duplicate", type: "button", text: "Duplicate", onclick: duplicate })
           : el("button", { id: "pb-save", type: "button", class: "primary", text: "Save", title: "Ctrl+S", onclick: () => save("no") }),
        el("button", { id: "pb-use", type: "button", text: "Use", onclick: () => { if (draft.original) rmm.call("prompts_form", draft.original); } }),
        ro || !draft.original ? null : el("button", { id: "pb-versions", type: "button", text: "Versions", onclick: () => rmm.call("prompts_versions", draft.original) }),
        ro || !draft.original ? null : el("button", { id: "pb-delete", type: "button", class: "danger", text: "Delete", onclick: confirmDelete })),
      el("ul", { id: "pb-version-list", class: "pb-version-list", hidden: true }));
    renderVars(lastVariables);
  }

  // A key press in pynput's spelling ("<ctrl>+<alt>+t"), the form config.toml
  // and prompt files use; null for a modifier on its own.
  const NAMED = { " ": "space", Enter: "enter", Escape: "esc", ArrowUp: "up", ArrowDown: "down",
                  ArrowLeft: "left", ArrowRight: "right", Home: "home", End: "end", PageUp: "page_up",
                  PageDown: "page_down", Insert: "insert", Backspace: "backspace", Delete: "delete" };
  function recordCombo(e) {
    if (["Control", "Alt", "Shift", "Meta", "AltGraph", "OS"].includes(e.key)) return null;
    const mods = [e.ctrlKey && "<ctrl>", e.altKey && "<alt>", e.shiftKey && "<shift>", e.metaKey && "<cmd>"].filter(Boolean);
    let key;
    if (/^F\d{1,2}$/.test(e.key)) key = `<${e.key.toLowerCase()}>`;
    else if (NAMED[e.key]) key = `<${NAMED[e.key]}>`;
    else if (/^Key[A-Z]$/.test(e.code)) key = e.code.slice(3).toLowerCase();  // Alt and Shift change e.key
    else if (/^Digit\d$/.test(e.code)) key = e.code.slice(5);
    else key = e.key.length === 1 ? e.key.toLowerCase() : null;
    return key ? [...mods, key].join("+") : null;
  }

  let lastVariables = [];
  const TYPES = [["text", "Text"], ["multiline", "Multi-line"], ["choice", "Choice"], ["number", "Number"], ["yesno", "Yes/no"], ["date", "Date"]];
  const BUILTINS = ["selection", "clipboard", "date", "time", "model", "input"];

  function renderVars(names) {
    lastVariables = names || [];
    const box = $("pb-vars");
    if (!box) return;
    const ro = !draft.editable;
    const rows = lastVariables.map((n) => {
      if (BUILTINS.includes(n) && !draft.variables[n]) {
        return el("div", { class: "pb-var builtin", "data-var": n }, el("code", { text: `{{${n}}}` }), el("span", { class: "hint", text: "built-in, filled when used" }));
      }
      const spec = draft.variables[n] || (draft.variables[n] = { type: "text" });
      const type = el("select", { class: "pv-type", "aria-label": `${n} type`, disabled: ro }, ...TYPES.map(([v, t]) => el("option", { value: v, text: t })));
      type.value = spec.type || "text";
      type.addEventListener("change", () => {
        spec.type = type.value;
        renderVars(lastVariables);  // the fields a type has differ: the row is rebuilt
        const again = box.querySelector(`.pb-var[data-var="${CSS.escape(n)}"] .pv-type`);
        if (again) again.focus();
        askPreview();
      });
      const inputFor = (key, label, kind) => {
        const i = el("input", { class: `pv-${key}`, type: kind || "text", placeholder: label, "aria-label": `${n} ${label}`, readonly: ro });
        const v = spec[key];
        i.value = key === "options" ? (v || []).join(", ") : v == null ? "" : String(v);
        i.addEventListener("input", () => {
          if (key === "options") spec.options = i.value.split(",").map((s) => s.trim()).filter(Boolean);
          else if (key === "min" || key === "max") { if (i.value === "") delete spec[key]; else spec[key] = Number(i.value); }
          else spec[key] = i.value;
          askPreview();
        });
        return i;
      };
      const req = el("input", { class: "pv-required", type: "checkbox", "aria-label": `${n} required`, disabled: ro });
      req.checked = spec.required !== false;
      req.addEventListener("change", () => { spec.required = req.checked; askPreview(); });
      return el("div", { class: "pb-var", "data-var": n },
        el("code", { text: `{{${n}}}` }), type,
        spec.type === "choice" ? inputFor("options", "options, comma-separated") : null,
        spec.type === "number" ? inputFor("min", "min", "number") : null,
        spec.type === "number" ? inputFor("max", "max", "number") : null,
        inputFor("default", "default"), inputFor("description", "hint"),
        el("label", { class: "pb-inline" }, req, el("span", { text: "required" })));
    });
    box.replaceChildren(...(rows.length ? rows : [el("p", { class: "hint", text: "Type {{name}} in a block to add a variable." })]));
  }

  function draftPayload() {
    const used = new Set(lastVariables);
    const variables = {};
    for (const [n, s] of Object.entries(draft.variables || {})) {
      if (!used.has(n) && lastVariables.length) continue;
      const spec = { type: s.type || "text" };
      for (const k of ["default", "description"]) if (s[k]) spec[k] = String(s[k]);
      if (s.required === false) spec.required = false;
      if (spec.type === "choice") spec.options = s.options || [];
      if (spec.type === "number") { if (s.min != null && !Number.isNaN(s.min)) spec.min = s.min; if (s.max != null && !Number.isNaN(s.max)) spec.max = s.max; }
      if (spec.type === "text" && Object.keys(spec).length === 1) continue;
      variables[n] = spec;
    }
    return { name: draft.name, original: draft.original, description: draft.description || "",
             tags: draft.tags || [], hotkey: draft.hotkey || "", run_immediately: !!draft.run_immediately,
             blocks: draft.blocks.map((b) => (b.kind === "example" ? { kind: b.kind, text: b.text || "", reply: b.reply || "" } : { kind: b.kind, text: b.text || "" })),
             variables };
  }

  // One preview in flight; typing meanwhile asks again once it is back, so the
  // newest text is always previewed and no keystroke waits for the count.
  function askPreview() {
    if (!draft) return;
    if (inFlight) { dirty = true; return; }
    inFlight = true;
    dirty = false;
    seq += 1;
    stamps[seq] = performance.now();
    rmm.call("prompts_preview", draftPayload(), {}, String(seq));
  }

  rmm.on("prompts.preview", (ev) => {
    const n = Number(ev.seq);
    inFlight = false;
    if (stamps[n]) { latencies.push(performance.now() - stamps[n]); if (latencies.length > 500) latencies.shift(); delete stamps[n]; }
    if (n >= lastShown && draft) { lastShown = n; showPreview(ev); }
    if (dirty) askPreview();
  });

  // The hotkey as pressed, judged in the core against the main hotkey and the
  // other prompts'; refused beside the field (saving says it again).
  rmm.on("prompts.hotkey", (ev) => {
    const box = $("pb-hotkey-msg"), input = $("pb-hotkey");
    if (!box || !input || !draft || (ev.hotkey || "") !== (draft.hotkey || "")) return;
    box.textContent = ev.message || "";
    box.hidden = !ev.message;
    input.classList.toggle("invalid", !!ev.message);
    if (ev.message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  });

  function showPreview(ev) {
    const meter = $("pb-meter");
    if (!meter) return;
    builderError(ev.error || "");
    const sampled = new Set(ev.sampled || []);
    $("pb-messages").replaceChildren(...(ev.messages || []).map((m) => el("div", { class: `pb-msg ${m.role}` },
      el("span", { class: "pb-role", text: m.role }), el("div", { class: "pb-content", text: m.content }))));
    if (sampled.size) $("pb-messages").append(el("p", { class: "hint pb-sampled", text: `Sample values for: ${[...sampled].join(", ")}` }));
    $("pb-rendered").textContent = ev.text || "";
    if (ev.tokens == null) {
      meter.replaceChildren(el("span", { class: "hint", text: ev.count_error ? `Not counted: ${ev.count_error}` : "" }));
      meter.dataset.fit = "";
    } else {
      const used = Math.min(1, (ev.tokens + ev.reply_budget) / ev.n_ctx);
      const fill = el("div", { class: "pb-fill" });
      fill.style.width = `${(used * 100).toFixed(1)}%`;  // CSSOM: the CSP refuses style attributes
      const bar = el("div", { class: "pb-bar" }, fill);
      const label = { fits: "fits", tight: "tight", over: "over the context" }[ev.fit] || ev.fit;
      meter.replaceChildren(el("span", { id: "pb-tokens", text: `${ev.tokens} tokens` }),
        el("span", { class: "hint", text: ` + ${ev.reply_budget} reply of ${ev.n_ctx} · ${label} · ${ev.model}` }), bar);
      meter.dataset.fit = ev.fit;
      meter.dataset.tokens = String(ev.tokens);
    }
    for (const ul of editor.querySelectorAll(".pb-problems")) ul.replaceChildren();
    for (const p of ev.problems || []) {
      const ul = editor.querySelector(`.pb-problems[data-block="${p.block}"]`);
      if (ul) ul.append(el("li", { text: `line ${p.line}, column ${p.column}: ${p.message}` }));
    }
    const names = ev.variables;
    if (names && names.join("\n") !== lastVariables.join("\n")) renderVars(names);
  }

  function save(overwrite) {
    builderNotice("");
    rmm.call("prompts_save", draftPayload(), overwrite);
  }
  function duplicate() {
    draft = { ...JSON.parse(JSON.stringify(draft)), name: draft.name + "-copy", original: "", editable: true, source: "" };
    renderEditor();
    askPreview();
    $("pb-name").focus();
    $("pb-name").select();
  }
  function confirmBar(text, okLabel, onOk) {
    const bar = $("pb-confirm");
    const ok = el("button", { id: "pb-confirm-ok", type: "button", class: "danger", text: okLabel, onclick: () => { bar.hidden = true; onOk(); } });
    bar.replaceChildren(el("span", { text }), ok,
      el("button", { id: "pb-confirm-cancel", type: "button", text: "Cancel", onclick: () => { bar.hidden = true; } }));
    bar.hidden = false;
    ok.focus();
  }
  function confirmDelete() {
    const name = draft.original;
    confirmBar(`Delete '${name}'? Its versions stay, so it can be restored.`, "Delete", () => rmm.call("prompts_delete", name));
  }

  rmm.on("prompts.confirm_overwrite", (ev) => {
    confirmBar(`A prompt '${ev.name}' exists. Replace it? (The old one is kept as a version.)`, "Replace", () => save("yes"));
  });
  rmm.on("prompts.save_error", (ev) => builderError(ev.message));
  rmm.on("prompts.saved", (ev) => {
    if (draft && !ev.restored) {
      draft.original = ev.name;
      draft.name = ev.name;
      draft.editable = true;
      const focused = document.activeElement;
      renderEditor();  // Versions and Delete appear now that it has a file
      const same = focused && focused.id ? $(focused.id) : null;
      if (same) same.focus();
    }
    builderNotice(ev.restored ? `Restored version ${ev.restored} of '${ev.name}'.` : `Saved '${ev.name}'.`);
  });
  rmm.on("prompts.deleted", (ev) => {
    draft = null;
    put(editor, el("p", { class: "hint", text: `Deleted '${ev.name}'.` }));
    view.classList.remove("editing");
  });
  rmm.on("prompts.open", (ev) => { openDraft(ev.prompt); });
  rmm.on("prompts.versions", (ev) => {
    const ul = $("pb-version-list");
    if (!ul) return;
    ul.replaceChildren(...(ev.items.length ? ev.items.slice().reverse().map((v) => el("li", {},
      el("span", { text: `Version ${v.version} · ${new Date(v.saved * 1000).toLocaleString()}` }),
      el("button", { type: "button", class: "small", "data-version": String(v.version), text: "Restore",
                     onclick: () => confirmBar(`Restore version ${v.version} of '${ev.name}'?`, "Restore",
                                               () => rmm.call("prompts_restore", ev.name, String(v.version))) })))
      : [el("li", { class: "hint", text: "No earlier versions." })]));
    ul.hidden = false;
  });

  if (search) search.addEventListener("input", renderList);
  const newButton = $("pb-new");
  if (newButton) newButton.addEventListener("click", () => { openDraft(null); $("pb-name").focus(); });
  view.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s" && draft && draft.editable) { e.preventDefault(); save("no"); }
  });

  rmm.view("prompts", {
    // The list known already shows at once; the core's fresh one replaces it.
    show() { renderList(); rmm.call("prompts_list"); },
    focus() { (draft ? (editor.querySelector("textarea") || search) : search).focus(); },
    escape() {
      const bar = $("pb-confirm");
      if (bar && !bar.hidden) { bar.hidden = true; return true; }
      if (view.classList.contains("editing")) { view.classList.remove("editing"); search.focus(); return true; }
      return false;
    },
  });
  $("tab-prompts").addEventListener("click", () => rmm.setView("prompts"));
  // Known before the first "/" or Ctrl+P, so both show the list at once.
  window.addEventListener("pywebviewready", () => rmm.call("prompts_list"));
  // What the tests and bench/prompts.py read back (the "prompts" probe): only
  // what is on screen, as text.
  function probe() {
    const a = document.activeElement;
    const card = a && a.closest ? a.closest(".pb-block") : null;
    const varRow = a && a.closest ? a.closest(".pb-var") : null;
    const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
    return {
      view: currentView(),
      focus: a ? { id: a.id || null, cls: a.className || null, tag: a.tagName, var: a.dataset.var || (varRow && varRow.dataset.var) || null,
                   block: card ? Number(card.dataset.index) : null, value: "value" in a ? a.value : null,
                   version: a.dataset.version || null, text: a.tagName === "BUTTON" ? a.textContent : null } : null,
      form: form.hidden ? null : {
        name: formPrompt && formPrompt.name,
        fields: [...form.querySelectorAll("[data-var]")].map((c) => ({ name: c.dataset.var, tag: c.tagName, value: c.value })),
        error: ($("pf-error") || {}).textContent || "", notice: (form.querySelector(".pf-notice") || {}).textContent || "",
        text: form.innerText },
      picker: picker.hidden ? null : texts("#slash-picker li strong"),
      banner: banner.hidden ? null : texts("#chat-system span"),
      list: texts("#pb-list .pb-item strong"),
      builder: !draft ? null : {
        name: draft.name, original: draft.original, editable: draft.editable,
        blocks: draft.blocks.map((b) => ({ kind: b.kind, text: b.text, reply: b.reply || "" })),
        variables: [...document.querySelectorAll("#pb-vars .pb-var")].map((r) => r.dataset.var),
        messages: [...document.querySelectorAll("#pb-messages .pb-msg")].map((m) => ({
          role: m.querySelector(".pb-role").textContent, content: m.querySelector(".pb-content").textContent,
          html: m.querySelector(".pb-content").innerHTML })),
        rendered: ($("pb-rendered") || {}).textContent || "",
        tokens: ($("pb-meter") || { dataset: {} }).dataset.tokens || null,
        fit: ($("pb-meter") || { dataset: {} }).dataset.fit || null,
        problems: texts(".pb-problems li"),
        error: ($("pb-error") || {}).hidden === false ? $("pb-error").textContent : "",
        hotkey: ($("pb-hotkey") || {}).value || "",
        hotkey_message: ($("pb-hotkey-msg") || {}).hidden === false ? $("pb-hotkey-msg").textContent : "",
        notice: ($("pb-notice") || {}).hidden === false ? $("pb-notice").textContent : "",
        confirm: ($("pb-confirm") || {}).hidden === false ? $("pb-confirm").textContent : "",
        versions: texts("#pb-version-list li span"),
        pending: inFlight || dirty, shown: lastShown, asked: seq,
      },
      latencies: latencies.slice(-200),
      // Where each block's grip and card are in the page (a test drags them with the mouse).
      grips: [...document.querySelectorAll(".pb-grip")].map((g) => {
        const r = g.getBoundingClientRect();
        return { x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2) };
      }),
      cards: [...document.querySelectorAll(".pb-block")].map((c) => {
        const r = c.getBoundingClientRect();
        return { top: Math.round(r.top), bottom: Math.round(r.bottom) };
      }),
    };
  }
  window.rmmPrompts = { latencies, fuzzy, probe, draft: () => draft };
})();
