// simulacra's web UI: one page, two views. Chat talks to /v1/chat/completions (streamed);
// the loom talks to /api/trees and /api/nodes. Plain DOM, no build step, nothing from a CDN.
// Text from models and people is only ever set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  key: localStorage.getItem("simulacra.key") || "",
  model: localStorage.getItem("simulacra.model") || "",
  view: "chat",
};

// --- the server ---------------------------------------------------------------------------------

function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  if (state.key) h.Authorization = "Bearer " + state.key;
  return h;
}

async function failure(response) {
  let message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    message = (body.error && body.error.message) || message;
  } catch (_) { /* not JSON: keep the status line */ }
  const error = new Error(message);
  error.status = response.status;
  return error;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw await failure(response);
  return response.json();
}

const post = (path, body) => api(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });

function say(text, kind = "info") {
  const status = $("status");
  status.textContent = text;
  status.className = text ? kind : "";
}

async function guarded(work) {
  try {
    return await work();
  } catch (error) {
    say(error.message, "error");
    if (error.status === 401) askKey();
  }
}

function askKey() {
  const key = window.prompt("This server wants an API key:", state.key);
  if (key === null) return;
  state.key = key.trim();
  localStorage.setItem("simulacra.key", state.key);
  loadModels();
}

// --- the em / model picker ----------------------------------------------------------------------

async function loadModels() {
  await guarded(async () => {
    const cards = (await api("/v1/models")).data;
    const select = $("model");
    select.replaceChildren();
    const groups = [["ems", (c) => c.owned_by === "simulacra-em"], ["models", (c) => c.owned_by !== "simulacra-em"]];
    for (const [label, fits] of groups) {
      const chosen = cards.filter(fits);
      if (!chosen.length) continue;
      const group = document.createElement("optgroup");
      group.label = label;
      for (const card of chosen) group.append(new Option(card.id, card.id));
      select.append(group);
    }
    if (cards.some((c) => c.id === state.model)) select.value = state.model;
    state.model = select.value;
    say(cards.length ? "" : "This server has no ems or models to run.", cards.length ? "info" : "error");
  });
}

$("model").addEventListener("change", (e) => {
  state.model = e.target.value;
  localStorage.setItem("simulacra.model", state.model);
});
$("key-button").addEventListener("click", askKey);

// --- views --------------------------------------------------------------------------------------

function show(view) {
  state.view = view;
  for (const name of ["chat", "loom"]) {
    $(name + "-view").hidden = name !== view;
    $("tab-" + name).setAttribute("aria-selected", String(name === view));
  }
  if (view === "loom") loadTrees();
}

document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));

// --- chat: the conversation is a small tree, so edits and retries branch ---------------------------

const chat = { nodes: [], root: { id: -1, children: [], active: 0 }, busy: false };

function chatNode(parent, role, content) {
  const node = { id: chat.nodes.length, role, content, parent, children: [], active: 0 };
  chat.nodes.push(node);
  parent.children.push(node);
  parent.active = parent.children.length - 1;
  return node;
}

function chatPath() {
  const path = [];
  for (let node = chat.root; node.children.length; ) {
    node = node.children[node.active];
    path.push(node);
  }
  return path;
}

function renderChat() {
  const box = $("messages");
  box.replaceChildren();
  for (const node of chatPath()) box.append(messageView(node));
  box.scrollTop = box.scrollHeight;
}

function messageView(node) {
  const div = document.createElement("div");
  div.className = "message " + node.role;
  div.dataset.id = node.id;
  const head = document.createElement("div");
  head.className = "meta";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = node.role === "user" ? "you" : node.model || state.model;
  head.append(who);
  const siblings = node.parent.children;
  if (siblings.length > 1) {
    const at = siblings.indexOf(node);
    head.append(button("‹", "previous branch", () => turn(node.parent, at - 1), at === 0),
                text("branch", `${at + 1}/${siblings.length}`),
                button("›", "next branch", () => turn(node.parent, at + 1), at === siblings.length - 1));
  }
  if (!chat.busy) {
    head.append(button("✎", "edit: makes a new branch", () => editMessage(node, div)));
    if (node.role === "assistant") head.append(button("↻", "retry: another reply", () => reply(node.parent)));
  }
  const body = document.createElement("div");
  body.className = "content";
  body.textContent = node.content;
  div.append(head, body);
  return div;
}

function button(label, title, onclick, disabled = false) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "icon";
  b.textContent = label;
  b.title = title;
  b.disabled = disabled;
  b.addEventListener("click", onclick);
  return b;
}

function text(className, content) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = content;
  return span;
}

function turn(parent, index) {
  parent.active = index;
  renderChat();
}

function editMessage(node, div) {
  const area = document.createElement("textarea");
  area.value = node.content;
  area.rows = Math.min(12, node.content.split("\n").length + 1);
  const save = button("Save as a branch", "", () => {
    const branch = chatNode(node.parent, node.role, area.value);
    if (node.role === "user") reply(branch);
    else renderChat();
  });
  save.className = "";
  const cancel = button("Cancel", "", renderChat);
  cancel.className = "quiet";
  div.querySelector(".content").replaceChildren(area, save, cancel);
  area.focus();
}

async function send(event) {
  event.preventDefault();
  const input = $("chat-input");
  const content = input.value.trim();
  if (!content || chat.busy) return;
  input.value = "";
  const path = chatPath();
  await reply(chatNode(path.length ? path[path.length - 1] : chat.root, "user", content));
}

async function reply(parent) {
  if (chat.busy) return;
  chat.busy = true;
  const node = chatNode(parent, "assistant", "");
  node.model = state.model;
  renderChat();
  const view = () => $("messages").querySelector(`.message[data-id="${node.id}"]`);
  view().classList.add("streaming");
  const messages = chatPath().slice(0, -1).map((m) => ({ role: m.role, content: m.content }));
  await guarded(async () => {
    say("");
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: state.model, messages, stream: true }),
    });
    if (!response.ok) throw await failure(response);
    for await (const event of serverEvents(response)) {
      if (event.error) throw new Error(event.error.message);
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) {
        node.content += delta.content;
        view().querySelector(".content").textContent = node.content;
        $("messages").scrollTop = $("messages").scrollHeight;
      }
    }
  });
  chat.busy = false;
  renderChat();
}

async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

$("chat-form").addEventListener("submit", send);
$("chat-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) send(e);
});
$("new-chat").addEventListener("click", () => {
  chat.nodes = [];
  chat.root = { id: -1, children: [], active: 0 };
  renderChat();
});

// Both scripts (this one and loom.js) have run by the time the document is parsed.
document.addEventListener("DOMContentLoaded", loadModels);
