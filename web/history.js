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
