// Continue: a reply cut off at the token limit says so, and the last one offers
// Continue (Alt+C) beside that note, which makes the same reply go on from where it stopped.
"use strict";

(() => {
  const rmm = window.rmm;
  const messages = document.getElementById("messages");

  function isCut(msg) { return !msg.streaming && !!(msg.stats && msg.stats.stop_reason === "length"); }

  // The note belongs to the message; the button only to the last reply.
  rmm.onMessage((el, msg) => {
    if (msg.role !== "assistant") return;
    el.dataset.cut = isCut(msg) ? "1" : "";
    let note = el.querySelector(":scope > .cut-note");
    if (isCut(msg) && !note) {
      note = document.createElement("div");
      note.className = "cut-note";
      const said = document.createElement("span");
      said.textContent = "Cut off at the token limit.";
      note.appendChild(said);
      el.querySelector(":scope > .tools").before(note);
    } else if (!isCut(msg) && note) {
      note.remove();
    }
    setTimeout(refresh, 0);  // after the page has settled the generating state
  });

  function lastReply() {
    const all = messages.querySelectorAll(".msg");
    const last = all[all.length - 1];
    return last && last.classList.contains("assistant") && last.dataset.cut === "1" ? last : null;
  }

  function refresh() {
    for (const b of messages.querySelectorAll(".cut-note .continue")) b.remove();
    const last = lastReply();
    if (!last || rmm.isGenerating()) return;
    const b = rmm.toolButton("Continue", () => go(last));
    b.className = "continue";
    b.title = "Go on with this reply from where it stopped (Alt+C)";
    last.querySelector(":scope > .cut-note").appendChild(b);  // in sight, not only on hover
  }

  function go(el) {
    if (rmm.isGenerating()) return;
    rmm.setGenerating(true);
    refresh();
    rmm.call("continue_reply", el.dataset.id);
  }

  // For the tests: what a person sees of it (read back from the DOM).
  rmm.continueProbe = () => {
    const button = messages.querySelector(".cut-note .continue");
    return {
      notes: Array.from(messages.querySelectorAll(".msg .cut-note")).map((n) => ({
        id: n.closest(".msg").dataset.id, text: n.querySelector("span").textContent })),
      button: button ? { id: button.closest(".msg").dataset.id, text: button.textContent,
                         title: button.title, rect: (({ x, y, width, height }) => ({ x, y, width, height }))(
                           button.getBoundingClientRect()) } : null,
    };
  };

  new MutationObserver(refresh).observe(messages, { childList: true });

  document.addEventListener("keydown", (e) => {
    if (document.body.dataset.view !== "chat" && document.body.dataset.view) return;
    if (!e.altKey || e.ctrlKey || e.metaKey || e.key.toLowerCase() !== "c") return;
    const last = lastReply();
    if (!last || rmm.isGenerating()) return;
    e.preventDefault();
    go(last);
  });
})();
