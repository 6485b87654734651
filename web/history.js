// Versions and the edit state in the chat view (and, below, the History view).
// Everything a chat says is put on the page as text (textContent), never as HTML.
"use strict";

(() => {
  const rmm = window.rmm;
  const $ = (id) => document.getElementById(id);
  const input = $("input");
  const messages = $("messages");

  // -- ‹ n/N ›: the versions of a message ------------------------------------------------

  function versionControl(msg) {
    const v = msg.versions;
    const box = document.createElement("div");
    box.className = "versions";
    const step = (label, target, name) => {
      const b = document.createElement("button");
      b.textContent = label;
      b.setAttribute("aria-label", name);
      b.title = name;
      b.disabled = !target;
      b.addEventListener("click", () => { if (target && !rmm.isGenerating()) rmm.call("choose_version", target); });
      return b;
    };
    const where = document.createElement("span");
    where.className = "where";
    where.textContent = `${v.index}/${v.count}`;
    box.append(step("‹", v.prev, "Previous version"), where, step("›", v.next, "Next version"));
    return box;
  }

  rmm.onMessage((el, msg) => {
    const old = el.querySelector(":scope > .versions");
    if (old) old.remove();
    if (msg.versions) el.querySelector(".body").after(versionControl(msg));
    if (msg.role === "user" && !el.querySelector(".tools .edit")) {
      const b = rmm.toolButton("Edit", () => startEdit(el));
      b.className = "edit";
      el.querySelector(".tools").appendChild(b);
    }
  });

  // -- the edit state ------------------------------------------------------------------

  const banner = document.createElement("div");
  banner.id = "edit-banner";
  banner.className = "edit-banner";
  banner.hidden = true;
  const note = document.createElement("span");
  note.textContent = "Editing a message: sending keeps the old one as a version.";
  const cancel = document.createElement("button");
  cancel.id = "edit-cancel";
  cancel.className = "small";
  cancel.textContent = "Cancel";
  cancel.title = "Cancel the edit (Esc)";
  cancel.addEventListener("click", () => cancelEdit());
  banner.append(note, cancel);
  document.querySelector(".composer").before(banner);

  let edit = null;  // { id, draft }: the question edited, and what the input held before

  function refit() { input.dispatchEvent(new Event("input")); }

  function enter(el, text) {
    edit = { id: el.dataset.id, draft: edit ? edit.draft : input.value };
    for (const other of document.querySelectorAll(".msg.editing")) other.classList.remove("editing");
    el.classList.add("editing");
    input.value = text;
    input.dataset.editing = el.dataset.id;
    banner.hidden = false;
    refit();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function startEdit(el) {
    if (rmm.isGenerating()) return;
    enter(el, el.dataset.text || "");
  }

  function leave() {
    for (const el of document.querySelectorAll(".msg.editing")) el.classList.remove("editing");
    delete input.dataset.editing;
    banner.hidden = true;
    const draft = edit ? edit.draft : "";
    edit = null;
    return draft;
  }

  // Esc and Cancel: the chat and the input exactly as before the edit.
  function cancelEdit() {
    if (!edit) return false;
    input.value = leave();
    refit();
    input.focus();
    return true;
  }

  // The edit went to the core: the input gets back what it held before.
  rmm.editSent = () => { input.value = leave(); refit(); };
  // The core refused it before storing anything: back into the edit, text included.
  rmm.editAgain = (id, text) => {
    const el = document.querySelector(`.msg[data-id="${CSS.escape(id)}"]`);
    if (el) { const draft = input.value === text ? "" : input.value; enter(el, text); if (draft) edit.draft = draft; }
  };

  // A chat opened or redrawn without the edited message: the edit ends, nothing lost.
  new MutationObserver(() => {
    if (edit && !document.querySelector(`.msg[data-id="${CSS.escape(edit.id)}"]`)) cancelEdit();
  }).observe(messages, { childList: true });

  // -- keys: every action of a message without the mouse ----------------------------------
  // Alt+R regenerates the last reply; Alt+← / Alt+→ step through the versions of the
  // last message that has some; ↑ in an empty input edits the last question.
  function lastWith(selector) {
    const all = document.querySelectorAll(selector);
    return all.length ? all[all.length - 1] : null;
  }

  document.addEventListener("keydown", (e) => {
    if (document.body.dataset.view !== "chat" && document.body.dataset.view) return;
    if (e.altKey && !e.ctrlKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
      const box = lastWith(".msg .versions");
      if (!box) return;
      e.preventDefault();
      const b = box.querySelectorAll("button")[e.key === "ArrowLeft" ? 0 : 1];
      if (!b.disabled) b.click();
    } else if (e.altKey && !e.ctrlKey && e.key.toLowerCase() === "r") {
      const b = Array.from(document.querySelectorAll(".tools .extra")).find((x) => x.textContent === "Regenerate");
      if (!b) return;
      e.preventDefault();
      b.click();
    } else if (e.key === "ArrowUp" && !e.altKey && !e.ctrlKey && !e.shiftKey
               && document.activeElement === input && !input.value && !edit) {
      const last = lastWith(".msg.user");
      if (!last) return;
      e.preventDefault();
      startEdit(last);
    }
  });

  function probe() {
    return {
      messages: Array.from(document.querySelectorAll(".msg")).map((el) => {
        const v = el.querySelector(":scope > .versions .where");
        return { id: el.dataset.id, role: el.classList.contains("user") ? "user" : "assistant",
                 text: el.querySelector(".body").innerText, versions: v ? v.textContent : null,
                 editing: el.classList.contains("editing") };
      }),
      editing: edit ? edit.id : null,
      banner: !banner.hidden,
      input: input.value,
    };
  }

  rmm.view("chat", {
    show() {},
    focus() { input.focus(); },
    escape() { return cancelEdit(); },
  });
  rmm.history = { startEdit, cancelEdit, probe, editing: () => edit && edit.id };
})();

// -- the History view (☰ and Ctrl+H) -----------------------------------------------------
// Chats grouped by when, pinned first; search as you type over titles and messages,
// with the matching words marked (built from text nodes, never HTML from a chat).
(() => {
  const rmm = window.rmm;
  const make = (tag, cls, text) => {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  };

  const view = make("section", "view history");
  view.id = "history-view";
  view.hidden = true;
  view.setAttribute("aria-label", "History");
  const top = make("div", "history-top");
  const search = make("input");
  search.id = "history-search";
  search.type = "search";
  search.placeholder = "Search chats: titles and messages";
  search.setAttribute("aria-label", "Search chats");
  search.autocomplete = "off";
  search.spellcheck = false;
  const filters = make("div", "history-filters");
  const model = make("select");
  model.id = "history-model";
  model.setAttribute("aria-label", "Model");
  const days = make("select");
  days.id = "history-days";
  days.setAttribute("aria-label", "When");
  for (const [value, label] of [["", "Any time"], ["1", "Today"], ["7", "Past 7 days"], ["30", "Past 30 days"], ["365", "Past year"]]) {
    const o = make("option", null, label);
    o.value = value;
    days.append(o);
  }
  const pinnedLabel = make("label", "history-pinned");
  const pinned = make("input");
  pinned.id = "history-pinned";
  pinned.type = "checkbox";
  pinnedLabel.append(pinned, document.createTextNode(" Pinned"));
  filters.append(model, days, pinnedLabel);
  top.append(search, filters);
  const error = make("div", "error");
  error.id = "history-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const list = make("div", "history-list");
  list.id = "history-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Chats");
  const toast = make("div", "history-toast");
  toast.id = "history-toast";
  toast.setAttribute("role", "status");
  toast.hidden = true;
  const keys = make("p", "hint history-keys",
    "↑↓ move · Enter open · F2 rename · Alt+P pin · Del delete · Ctrl+Z undo · Alt+E Markdown · Alt+J JSON · Esc back");
  view.append(top, error, list, toast, keys);
  document.getElementById("chat-view").after(view);
  const menu = document.getElementById("chats-button");
  menu.title = "History: every chat, searchable (Ctrl+H)";
  menu.setAttribute("aria-label", "History");

  let items = [];
  let selected = 0;
  let seq = 0;
  let renaming = null;
  let answered = null;  // the query the list shows the answer to
  let lastDeleted = null;
  let toastTimer = null;
  const models = new Set();

  function ask() {
    seq += 1;
    rmm.call("history_search", search.value, String(seq),
             { model: model.value || null, days: days.value ? Number(days.value) : null, pinned: pinned.checked });
  }

  function when(ts) {
    const d = new Date(ts * 1000);
    const today = new Date();
    return d.toDateString() === today.toDateString()
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : d.toLocaleDateString([], { day: "numeric", month: "short", year: d.getFullYear() === today.getFullYear() ? undefined : "numeric" });
  }

  function snippet(item) {
    const p = make("div", "snippet");
    let at = 0;
    for (const [start, end] of item.highlights || []) {
      p.append(document.createTextNode(item.snippet.slice(at, start)), make("mark", null, item.snippet.slice(start, end)));
      at = end;
    }
    p.append(document.createTextNode(item.snippet.slice(at)));
    return p;
  }

  function row(item, i) {
    const el = make("div", "history-row");
    el.setAttribute("role", "option");
    el.dataset.id = item.id;
    el.dataset.index = String(i);
    const title = make("div", "title", item.title);  // pinned ones are under "Pinned"
    const meta = make("div", "meta", [item.model, when(item.updated)].filter(Boolean).join(" · "));
    el.append(title, meta);
    if (item.snippet && item.message_id) el.append(snippet(item));
    const tools = make("div", "row-tools");
    const tool = (label, name, fn) => { const b = make("button", "small", label); b.title = name; b.addEventListener("click", (e) => { e.stopPropagation(); fn(); }); return b; };
    tools.append(tool(item.pinned ? "Unpin" : "Pin", "Pin (Alt+P)", () => pin(i)),
                 tool("Rename", "Rename (F2)", () => rename(i)),
                 tool("Markdown", "Export as Markdown (Alt+E)", () => exportAs(i, "md")),
                 tool("JSON", "Export as JSON (Alt+J)", () => exportAs(i, "json")),
                 tool("Delete", "Delete (Del)", () => remove(i)));
    el.append(tools);
    el.addEventListener("click", () => { select(i); openItem(i); });
    return el;
  }

  function draw() {
    list.replaceChildren();
    if (!items.length) {
      list.append(make("p", "hint", search.value.trim() ? "No chat has these words." : "No chats yet."));
      return;
    }
    let group = null;
    items.forEach((item, i) => {
      if (item.group !== group) { group = item.group; list.append(make("h3", "history-group", group)); }
      list.append(row(item, i));
    });
    select(Math.min(selected, items.length - 1));
  }

  function select(i) {
    selected = Math.max(0, Math.min(i, items.length - 1));
    for (const el of list.querySelectorAll(".history-row")) {
      const on = Number(el.dataset.index) === selected;
      el.classList.toggle("selected", on);
      el.setAttribute("aria-selected", String(on));
      if (on) el.scrollIntoView({ block: "nearest" });
    }
  }

  function openItem(i) {
    const item = items[i];
    if (item) rmm.call("history_open_at", item.id, item.message_id || "");
  }
  function pin(i) { const it = items[i]; if (it) rmm.call("history_pin", it.id, it.pinned ? "0" : "1"); }
  // Through the desktop's save dialog (the popup process opens it and tells the
  // core where: the page never names a file); without one, into exports/.
  function exportAs(i, fmt) {
    const it = items[i];
    if (!it) return;
    const api = window.pywebview && window.pywebview.api;
    const name = ((it.title || "").replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ").trim().slice(0, 80) || "chat")
      + "." + fmt;
    const fallback = () => rmm.call("history_export", it.id, fmt);
    if (!api || !api.save_export) { fallback(); return; }
    api.save_export(it.id, fmt, name).then((how) => {
      if (how === "no-dialog") fallback();
      else if (how === "cancelled") say("Export cancelled", false);
    }).catch(fallback);
  }
  function remove(i) { const it = items[i]; if (it) rmm.call("history_delete", it.id); }

  function rename(i) {
    const item = items[i];
    const el = list.querySelector(`.history-row[data-index="${i}"] .title`);
    if (!item || !el) return;
    const box = make("input", "rename");
    box.id = "history-rename";
    box.value = item.title;
    box.setAttribute("aria-label", "New title");
    renaming = { id: item.id, box };
    el.replaceChildren(box);
    box.focus();
    box.select();
    box.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") { e.preventDefault(); if (box.value.trim()) rmm.call("history_rename", item.id, box.value); renaming = null; search.focus(); }
      else if (e.key === "Escape") { e.preventDefault(); renaming = null; draw(); search.focus(); }
    });
  }

  function say(text, undo) {
    toast.replaceChildren(make("span", null, text));
    if (undo) {
      const b = make("button", "small", "Undo");
      b.id = "history-undo";
      b.title = "Undo (Ctrl+Z)";
      b.addEventListener("click", undoDelete);
      toast.append(b);
    }
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; lastDeleted = null; }, undo ? 8000 : 6000);
  }

  function undoDelete() {
    if (!lastDeleted) return;
    rmm.call("history_restore", lastDeleted);
    lastDeleted = null;
    toast.hidden = true;
  }

  search.addEventListener("input", ask);
  for (const el of [model, days, pinned]) el.addEventListener("change", ask);

  view.addEventListener("keydown", (e) => {
    if (renaming) return;
    if (e.key === "ArrowDown") { e.preventDefault(); select(selected + 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); select(selected - 1); }
    else if (e.key === "Enter" && e.target === search || (e.key === "Enter" && e.target.classList && e.target.classList.contains("history-row"))) { e.preventDefault(); openItem(selected); }
    else if (e.key === "F2") { e.preventDefault(); rename(selected); }
    else if (e.altKey && e.key.toLowerCase() === "p") { e.preventDefault(); pin(selected); }
    else if (e.altKey && e.key.toLowerCase() === "e") { e.preventDefault(); exportAs(selected, "md"); }
    else if (e.altKey && e.key.toLowerCase() === "j") { e.preventDefault(); exportAs(selected, "json"); }
    else if (e.key === "Delete") { e.preventDefault(); remove(selected); }
    else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && lastDeleted) { e.preventDefault(); undoDelete(); }
  });

  rmm.on("history.list", (ev) => {
    if (ev.seq != null && ev.seq < seq) return;  // an older keystroke's answer
    items = ev.items || [];
    answered = ev.query || "";
    for (const it of items) if (it.model) models.add(it.model);
    const chosen = model.value;
    model.replaceChildren(...["", ...Array.from(models).sort()].map((m) => { const o = make("option", null, m || "Any model"); o.value = m; return o; }));
    model.value = chosen;
    error.hidden = true;
    draw();
  });
  rmm.on("history.changed", () => ask());
  rmm.on("history.deleted", (ev) => { lastDeleted = ev.chat_id; say(`Deleted “${ev.title || ev.chat_id}”.`, true); ask(); });
  rmm.on("history.exported", (ev) => say(`Exported to ${ev.path}`, false));
  rmm.on("history.error", (ev) => { error.textContent = ev.message; error.hidden = false; });
  rmm.on("history.opened", (ev) => {
    rmm.setView("chat");
    const el = ev.message_id && document.querySelector(`.msg[data-id="${CSS.escape(ev.message_id)}"]`);
    if (el) {
      el.scrollIntoView({ block: "center" });
      el.classList.add("hit");
      setTimeout(() => el.classList.remove("hit"), 2500);
    }
    document.getElementById("input").focus();
  });

  rmm.view("history", {
    show() { ask(); },
    focus() { search.focus(); search.select(); },
    escape() { rmm.setView("chat"); return true; },
  });

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === "h") {
      e.preventDefault();
      rmm.setView(document.body.dataset.view === "history" ? "chat" : "history");
    }
  });

  rmm.history.probe = ((chatProbe) => () => ({
    ...chatProbe(),
    view: {
      shown: !view.hidden,
      query: search.value,
      answered,
      selected,
      renaming: renaming ? renaming.id : null,
      toast: toast.hidden ? null : toast.textContent,
      groups: Array.from(list.querySelectorAll(".history-group")).map((g) => g.textContent),
      rows: items.map((it, i) => {
        const el = list.querySelector(`.history-row[data-index="${i}"]`);
        const marks = el ? Array.from(el.querySelectorAll(".snippet mark")).map((m) => m.textContent) : [];
        const snip = el && el.querySelector(".snippet");
        return { id: it.id, title: it.title, pinned: it.pinned, message_id: it.message_id || null,
                 snippet: snip ? snip.textContent : null, marks };
      }),
    },
  }))(rmm.history.probe);
})();
