// The popup page. Python renders Markdown to HTML with raw HTML disabled; this page
// only places that HTML, and the Content-Security-Policy forbids inline scripts,
// so nothing in a model's reply can run.
"use strict";

const $ = (id) => document.getElementById(id);
const els = {
  messages: $("messages"), empty: $("empty"), input: $("input"), send: $("send"),
  stop: $("stop"), model: $("model"), state: $("state"), error: $("error"),
  chats: $("chats"), chatList: $("chat-list"), chatsButton: $("chats-button"), newChat: $("new-chat"),
  chatView: $("chat-view"), modelsView: $("models-view"), tabChat: $("tab-chat"), tabModels: $("tab-models"),
};
let generating = false;
// Called with (element, message) for every whole message drawn (history.js adds to it).
const messageHooks = [];
let currentChat = null;
// The text last sent, until the core confirms it was stored (the user's message
// comes back): a send that fails before that gives it back to the input.
let pending = null;
// Other scripts of the page (models.js) hook in here: events by type, and what
// a view does when it is shown, asked to take focus, or sent Esc.
const views = {
  chat: { show() {}, focus() { els.input.focus(); }, escape() { return false; } },
};

function currentView() { return document.body.dataset.view || "chat"; }

function setView(name) {
  if (!views[name]) return;
  document.body.dataset.view = name;
  // Each view is a section#NAME-view with a tab#tab-NAME (settings.js adds one).
  for (const section of document.querySelectorAll("section.view")) section.hidden = section.id !== `${name}-view`;
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) tab.setAttribute("aria-selected", String(tab.id === `tab-${name}`));
  els.chats.hidden = true;
  views[name].show();
  views[name].focus();
}

function api() { return window.pywebview && window.pywebview.api; }

function call(method, ...args) {
  const a = api();
  if (!a || !a[method]) return Promise.resolve(null);
  return a[method](...args).catch((err) => showError(String(err && err.message || err)));
}

// What an error offers to do about it, as buttons next to the message: the popup
// never tells a person to go and type a command.
const errorActions = {
  get_model: ["Get a model", () => { showError(""); setView("models"); $("pane-browse").click(); }],
  // The Models view's "On this computer" pane: your models, and GGUF files found
  // on this computer with an Import button each.
  import_file: ["Import a file…", () => { showError(""); setView("models"); $("pane-installed").click(); }],
};

// The notice shown now, and the last error the core's state reported: when the
// state no longer reports it (another model loaded), that notice has done its job.
let shownError = "";
let stateError = null;

function showError(message, actions) {
  shownError = message || "";
  const icon = document.createElement("span");
  icon.className = "error-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = "⚠";
  const text = document.createElement("span");
  text.className = "error-text";
  text.textContent = message;
  els.error.replaceChildren(icon, text);
  const buttons = (actions || []).filter((a) => errorActions[a]).map((a) => {
    const [label, run] = errorActions[a];
    const b = toolButton(label, run);
    b.className = "small";
    b.dataset.action = a;
    return b;
  });
  if (buttons.length) {
    const row = document.createElement("span");
    row.className = "error-actions";
    row.append(...buttons);
    els.error.append(row);
  }
  const close = toolButton("×", () => showError(""));
  close.className = "error-close";
  close.title = "Dismiss";
  close.setAttribute("aria-label", "Dismiss");
  els.error.append(close);
  els.error.hidden = !message;
}

function setGenerating(on) {
  generating = on;
  els.send.hidden = on;
  els.stop.hidden = !on;
}

// The page's own clipboard first; when the web view refuses it, the popup
// process copies (GTK) and says whether it did. "Copied" only when it did.
function copyText(text, button) {
  const flash = (ok) => {
    if (!ok) showError("Could not copy to the clipboard.");
    if (!button) return;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = ok ? "Copied" : "Not copied";
    button.classList.toggle("failed", !ok);
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(() => { button.textContent = button.dataset.label; button.classList.remove("failed"); }, ok ? 900 : 2000);
  };
  const fallback = () => call("copy", text).then((ok) => flash(ok === true));
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(() => flash(true), fallback);
  } else {
    fallback();
  }
}

function decorateCode(body) {
  for (const pre of body.querySelectorAll("pre")) {
    if (pre.querySelector(".copy")) continue;
    const b = document.createElement("button");
    b.className = "copy";
    b.textContent = "Copy";
    b.addEventListener("click", () => copyText(pre.querySelector("code") ? pre.querySelector("code").innerText : pre.innerText, b));
    pre.appendChild(b);
  }
}

function toolButton(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function messageElement(msg) {
  let el = document.querySelector(`.msg[data-id="${CSS.escape(msg.id)}"]`);
  if (!el) {
    el = document.createElement("div");
    el.className = `msg ${msg.role}`;
    el.dataset.id = msg.id;
    const body = document.createElement("div");
    body.className = "body";
    el.appendChild(body);
    const tools = document.createElement("div");
    tools.className = "tools";
    tools.appendChild(toolButton("Copy", (e) => copyText(el.dataset.text || body.innerText, e.target)));
    el.appendChild(tools);
    els.messages.appendChild(el);
    els.empty.hidden = true;
  }
  return el;
}

// The transcript follows new text only while the person is at its bottom: one
// who scrolls up to read is not pulled down; "Jump to latest" takes them back.
let following = true;
const jump = document.createElement("button");
jump.id = "jump-latest";
jump.className = "jump-latest";
jump.type = "button";
jump.textContent = "Jump to latest ↓";
jump.hidden = true;
els.messages.after(jump);
function atBottom() { return els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight <= 2; }
function toLatest() { els.messages.scrollTop = els.messages.scrollHeight; following = true; jump.hidden = true; }
function followOrOffer() { if (following) toLatest(); else jump.hidden = false; }
// Scroll events come from the person (wheel, keys, the bar) and from toLatest,
// which leaves the view at the bottom: only a scroll away from it stops following.
// A wheel or key moving up stops it at once: the smooth scroll's first frame can
// come after the next batch, whose toLatest would otherwise cancel it, and for a
// moment after it a frame still within 2 px of the bottom must not restart it.
let movedUpAt = -1e9;
function personMovesUp() {
  if (els.messages.scrollHeight <= els.messages.clientHeight) return;
  movedUpAt = performance.now();
  following = false;
  jump.hidden = false;
}
els.messages.addEventListener("wheel", (e) => { if (e.deltaY < 0) personMovesUp(); }, { passive: true });
els.messages.addEventListener("keydown", (e) => {
  if (["ArrowUp", "PageUp", "Home"].includes(e.key)) personMovesUp();
});
// Content that grows below the view (a finished reply's buttons) is not the
// person moving away: only a scroll that went up stops following.
let lastTop = 0;
els.messages.addEventListener("scroll", () => {
  const top = els.messages.scrollTop;
  if (atBottom()) { if (performance.now() - movedUpAt > 400) following = true; }
  else if (top < lastTop - 1) following = false;
  lastTop = top;
  jump.hidden = following;
});
jump.addEventListener("click", () => { toLatest(); els.input.focus(); });

// A batch of a streaming reply: the newly completed blocks are appended once,
// the unfinished tail is replaced. All of it comes from markdown-it with html off.
function streamMessage(msg) {
  const el = messageElement(msg);
  const body = el.querySelector(".body");
  let tail = body.querySelector(":scope > .tail");
  if (!tail) { tail = document.createElement("div"); tail.className = "tail"; body.appendChild(tail); }
  if (msg.append_html) tail.insertAdjacentHTML("beforebegin", msg.append_html);
  tail.innerHTML = msg.tail_html || "";
  decorateCode(body);
  el.classList.add("cursor");
  el.classList.remove("interrupted");
  followOrOffer();
}

function renderMessage(msg) {
  if (msg.streaming) { streamMessage(msg); return; }
  const el = messageElement(msg);
  const body = el.querySelector(".body");
  el.dataset.text = msg.text || "";
  if (msg.role === "assistant") {
    body.innerHTML = msg.html || "";  // produced by markdown-it with html disabled; replaces the streamed one
    decorateCode(body);
  } else {
    body.textContent = msg.text || "";
  }
  el.classList.toggle("interrupted", !!msg.interrupted);
  el.classList.toggle("cursor", !!msg.streaming);
  let stats = el.querySelector(".stats");
  if (msg.stats) {
    if (!stats) { stats = document.createElement("div"); stats.className = "stats"; el.appendChild(stats); }
    const s = msg.stats;
    stats.textContent = `${s.completion_tokens} tokens · ${s.decode_tok_s} tok/s · first token ${s.ttft_s}s`;
  }
  for (const hook of messageHooks) hook(el, msg);  // history.js: ‹ n/N › and Edit
  updateLastTools();
  if (msg.role === "user") toLatest();  // what the person just sent, and its reply, in view
  else followOrOffer();
}

function updateLastTools() {
  for (const b of document.querySelectorAll(".tools .extra")) b.remove();
  const all = document.querySelectorAll(".msg");
  const last = all[all.length - 1];
  if (!last || generating) return;
  const tools = last.querySelector(".tools");
  if (last.classList.contains("assistant")) {
    const b = toolButton("Regenerate", () => { setGenerating(true); call("regenerate"); });
    b.title = "Another reply; this one stays as a version (Alt+R)";
    b.classList.add("extra");
    tools.appendChild(b);
  }
}

function clearMessages() {
  for (const el of document.querySelectorAll(".msg")) el.remove();
  els.empty.hidden = false;
  toLatest();
}

// When each reply's batches reach the page, with the tokens generated so far:
// bench/popup_speed.py reads it through the "stream_times" probe to time the
// popup path where a person sees it. Only the latest few replies are kept.
const streamTimes = {};
function timeStream(msg) {
  if (msg.role !== "assistant") return;
  const now = performance.now();
  let t = streamTimes[msg.id];
  if (!t) {
    const ids = Object.keys(streamTimes);
    if (ids.length >= 20) delete streamTimes[ids[0]];
    t = streamTimes[msg.id] = { first: now, firstTokens: msg.tokens || 0, batches: 0 };
  }
  if (msg.streaming) { t.last = now; t.lastTokens = msg.tokens || 0; t.batches++; }
  else { t.done = now; t.stats = msg.stats || null; }
}

const handlers = {
  state(ev) {
    // The picker follows the models folder (the core sends the list again on
    // show and when models come or go); the model in use stays listed.
    const names = ev.models || [];
    if (ev.model && !names.includes(ev.model)) names.push(ev.model);
    const option = (value, label) => { const o = document.createElement("option"); o.value = value; o.textContent = label; return o; };
    // A readable name (the file's, without folders and .gguf), the full one as its tooltip.
    const readable = (n) => n.split("/").pop().replace(/\.gguf$/i, "");
    // A server's models (SERVER:MODEL) go in a group under the server's name.
    const engines = ev.engines || [];
    const server = (n) => { const i = n.indexOf(":"); return i > 0 && engines.includes(n.slice(0, i)) ? n.slice(0, i) : ""; };
    const entry = (n) => { const s = server(n); const o = option(n, readable(s ? n.slice(s.length + 1) : n)); o.title = n; return o; };
    const groups = new Map();
    for (const n of names) { const s = server(n); if (s) groups.set(s, [...(groups.get(s) || []), n]); }
    els.model.replaceChildren(...names.filter((n) => !server(n)).map(entry), ...[...groups].map(([s, ns]) => {
      const g = document.createElement("optgroup"); g.label = s; g.append(...ns.map(entry)); return g;
    }));
    if (!names.length) els.model.append(option("", "No models yet"));
    els.model.value = ev.model || "";
    // A model arrived: the "no model yet" message and its buttons have done their job.
    if (names.length && els.error.querySelector('[data-action="get_model"]')) showError("");
    const labels = { idle: ev.model ? "ready" : "no model", loading: "loading…", generating: "writing…", error: "error" };
    els.state.textContent = labels[ev.status] || ev.status || "";
    if (ev.error) showError(ev.error);
    else if (stateError && shownError === stateError) showError("");
    stateError = ev.error || null;
    els.model.title = ev.model || "Model";
  },
  chat(ev) {
    currentChat = ev.chat_id;
    clearMessages();
    for (const m of ev.messages || []) renderMessage(m);
    setGenerating(false);
  },
  message(ev) {
    if (ev.message.role === "user") pending = null;
    renderMessage(ev.message);
    timeStream(ev.message);  // after the DOM has the batch
    if (ev.chat_id) currentChat = ev.chat_id;
    if (ev.message.role === "assistant" && !ev.message.streaming) { setGenerating(false); updateLastTools(); }
  },
  remove(ev) {
    const el = document.querySelector(`.msg[data-id="${CSS.escape(ev.id)}"]`);
    if (el) el.remove();
  },
  chats(ev) {
    els.chatList.replaceChildren(...(ev.items || []).map((c) => {
      const li = document.createElement("li");
      li.textContent = c.title || c.id;
      li.title = c.id;
      if (c.id === currentChat) li.classList.add("current");
      li.addEventListener("click", () => { els.chats.hidden = true; call("open_chat", c.id); });
      return li;
    }));
  },
  error(ev) {
    const back = ev.text != null ? ev.text : pending && pending.text;
    if (back && !els.input.value) {  // nothing was stored: the text goes back, not lost
      els.input.value = back;
      if (pending && pending.editing) window.rmm.editAgain(pending.editing, back);
      autosize();
    }
    pending = null;
    showError(ev.message, ev.actions);
    setGenerating(false);
    updateLastTools();
  },
  focus() { call("refresh"); views[currentView()].focus(); },
  view(ev) { setView(ev.name); },
  prefill(ev) { els.input.value = ev.text || ""; autosize(); els.input.focus(); },
};

window.rmm = {
  receive(ev) {
    try { (handlers[ev.type] || (() => {}))(ev); } catch (err) { console.error(err); }
  },
  // Several views may listen to one event (Settings and the Architect both stop
  // recording keys on "hidden"): a second handler runs after the first.
  on(type, fn) {
    const before = handlers[type];
    handlers[type] = before ? (ev) => { try { before(ev); } finally { fn(ev); } } : fn;
  },
  view(name, hooks) { views[name] = hooks; },
  hooks(name) { return views[name]; },  // to wrap a view's hooks (prompts.js: the form takes focus)
  call, setView, streamTimes, toolButton,
  onMessage(fn) { messageHooks.push(fn); },
  isGenerating() { return generating; },
  setGenerating,  // continue.js: Continue starts a reply as Regenerate does
  editSent() {}, editAgain() {},  // history.js: the edit state
};

function send() {
  const text = els.input.value;
  if (!text.trim() || generating) return;
  const editing = els.input.dataset.editing || "";  // the id of the question edited
  pending = { text, editing };
  els.input.value = "";
  delete els.input.dataset.editing;
  autosize();
  showError("");
  setGenerating(true);
  if (editing) { window.rmm.editSent(); call("edit_message", editing, text); } else call("send", text);
}

function autosize() {
  els.input.style.height = "auto";
  els.input.style.height = Math.min(els.input.scrollHeight, 160) + "px";
}

els.input.addEventListener("input", autosize);
els.input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
els.send.addEventListener("click", send);
els.stop.addEventListener("click", () => call("stop"));
els.newChat.addEventListener("click", () => call("new_chat"));
els.model.addEventListener("change", () => call("set_model", els.model.value));
els.tabChat.addEventListener("click", () => setView("chat"));
els.tabModels.addEventListener("click", () => setView("models"));
els.chatsButton.addEventListener("click", () => {
  if (views.history) { setView(currentView() === "history" ? "chat" : "history"); return; }  // history.js
  els.chats.hidden = !els.chats.hidden;
  if (!els.chats.hidden) call("list_chats");
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") {
    e.preventDefault();
    if (!els.chats.hidden) { els.chats.hidden = true; return; }
    if (views[currentView()].escape()) return;
    call("hide");
  } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "m") {
    e.preventDefault();
    setView(currentView() === "chat" ? "models" : "chat");
  } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "n" && currentView() === "chat") {
    e.preventDefault();
    call("new_chat");
  }
});
window.addEventListener("blur", () => call("blurred"));
window.addEventListener("pywebviewready", () => call("ready"));
