// The chat's system prompt in its header (the #chat-system line prompts.js
// creates), editable for that chat: a click on it or Alt+S opens the editor,
// Enter saves, Shift+Enter is a new line, Esc leaves it as it was.
"use strict";

(() => {
  const rmm = window.rmm;
  const banner = document.getElementById("chat-system");
  const input = document.getElementById("input");
  let editor = null;

  function span(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function show(text) {
    editor = null;
    banner.replaceChildren(span("cs-label", "System"), span("cs-text", text || "(none)"));
    banner.title = text || "";  // as prompts.js keeps it: the text the editor starts from
    banner.hidden = !text;
  }

  function edit() {
    if (editor) { editor.focus(); return; }
    const before = banner.title || "";
    editor = document.createElement("textarea");
    editor.id = "system-editor";
    editor.rows = 3;
    editor.value = before;
    editor.placeholder = "A system prompt for this chat (Enter saves, Esc cancels)";
    editor.setAttribute("aria-label", "System prompt of this chat");
    editor.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        e.stopPropagation();
        rmm.call("set_system", editor.value);  // shown again by the chat_system event
        input.focus();
      } else if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();  // Esc ends the edit; it does not hide the popup
        show(before);
        input.focus();
      }
    });
    banner.replaceChildren(span("cs-label", "System"), editor);
    banner.hidden = false;
    editor.focus();
    editor.select();
  }

  rmm.on("chat_system", (ev) => show(ev.text));
  banner.addEventListener("click", () => { if (!editor) edit(); });
  document.addEventListener("keydown", (e) => {
    if (document.body.dataset.view !== "chat" && document.body.dataset.view) return;
    if (e.altKey && !e.ctrlKey && !e.metaKey && e.key.toLowerCase() === "s") {
      e.preventDefault();
      edit();
    }
  });

  // For the tests: the header as shown.
  rmm.systemProbe = () => ({
    shown: !banner.hidden,
    text: editor ? null : (banner.querySelector(".cs-text") || {}).textContent || null,
    editing: editor ? editor.value : null,
    focus: document.activeElement ? document.activeElement.id : null,
  });
})();
