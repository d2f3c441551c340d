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

// --- loom: a tree of continuations --------------------------------------------------------------

const loom = { tree: null, nodes: new Map(), kids: new Map(), selected: null, lastChild: new Map() };
const ROOTS = "roots";

async function loadTrees(openId) {
  await guarded(async () => {
    const { trees } = await api("/api/trees");
    const list = $("tree-list");
    list.replaceChildren();
    for (const tree of trees) {
      const li = document.createElement("li");
      li.dataset.id = tree.id;
      li.className = loom.tree && loom.tree.id === tree.id ? "current" : "";
      li.append(button(tree.title, `tree ${tree.id}`, () => openTree(tree.id)));
      li.firstChild.className = "tree-link";
      list.append(li);
    }
    const wanted = openId || (loom.tree ? loom.tree.id : trees.length && trees[0].id);
    if (wanted) await openTree(wanted, openId ? null : loom.selected);
    else renderLoom();
  });
}

async function openTree(id, select = null) {
  await guarded(async () => {
    const { tree, nodes } = await api(`/api/trees/${id}`);
    if (!loom.tree || loom.tree.id !== tree.id) loom.lastChild.clear();
    loom.tree = tree;
    loom.nodes = new Map(nodes.map((n) => [n.id, n]));
    loom.kids = new Map();
    for (const node of nodes) {
      const key = node.parent_id === null ? ROOTS : node.parent_id;
      if (!loom.kids.has(key)) loom.kids.set(key, []);
      loom.kids.get(key).push(node);
    }
    loom.selected = loom.nodes.has(select) ? select : tree.root_id;
    document.querySelectorAll("#tree-list li").forEach((li) => li.classList.toggle("current", li.dataset.id == id));
    renderLoom();
  });
}

const kidsOf = (id) => loom.kids.get(id) || [];
const siblingsOf = (node) => loom.kids.get(node.parent_id === null ? ROOTS : node.parent_id) || [node];

function pathTo(id) {
  const path = [];
  for (let node = loom.nodes.get(id); node; node = loom.nodes.get(node.parent_id)) path.unshift(node);
  return path;
}

function select(id) {
  const node = loom.nodes.get(id);
  if (!node) return;
  loom.selected = id;
  if (node.parent_id !== null) loom.lastChild.set(node.parent_id, id);
  $("editor").hidden = true;
  renderLoom();
}

function renderLoom() {
  const open = Boolean(loom.tree && loom.nodes.has(loom.selected));
  $("loom-empty").hidden = open;
  for (const id of ["text", "where", "children-title", "children"]) $(id).hidden = !open;
  if (!open) return;
  const node = loom.nodes.get(loom.selected);
  $("bookmark").textContent = node.bookmarked ? "★ Bookmarked" : "☆ Bookmark";
  const siblings = siblingsOf(node);
  $("where").textContent = [`node #${node.id}`, `by ${node.author}`,
    `branch ${siblings.findIndex((n) => n.id === node.id) + 1} of ${siblings.length}`,
    `depth ${pathTo(node.id).length - 1}`, node.meta.edited_from ? `edited from #${node.meta.edited_from}` : ""]
    .filter(Boolean).join(" · ");
  renderText();
  renderChildren(node);
  $("outline").replaceChildren(outline(ROOTS, new Set(pathTo(node.id).map((n) => n.id))));
}

function renderText() {
  const article = $("text");
  article.replaceChildren();
  for (const node of pathTo(loom.selected)) {
    const span = document.createElement("span");
    span.className = "node" + (node.id === loom.selected ? " selected" : "") + (node.bookmarked ? " bookmarked" : "");
    span.dataset.id = node.id;
    span.title = `#${node.id} by ${node.author}`;
    fillText(span, node);
    span.addEventListener("click", () => select(node.id));
    article.append(span);
  }
  const here = article.querySelector(".selected");
  if (here) here.scrollIntoView({ block: "nearest" });
}

function fillText(span, node) {
  const tokens = node.meta && node.meta.tokens;
  if (!tokens || !$("show-probs").checked) {
    span.textContent = node.text || "∅";
    span.classList.toggle("blank", !node.text);
    return;
  }
  for (const token of tokens) {
    const piece = text("tok", token.t);
    if (token.lp !== null && token.lp !== undefined) {
      const p = Math.exp(token.lp);
      piece.style.backgroundColor = `rgba(234, 88, 12, ${((1 - p) * 0.55).toFixed(3)})`;
      const alternatives = (token.top || []).map(([t, lp]) => `  ${JSON.stringify(t)}  ${Math.exp(lp).toFixed(3)}`);
      piece.title = [`p = ${p.toFixed(3)}  (logprob ${token.lp.toFixed(2)})`, ...(alternatives.length ? ["alternatives:", ...alternatives] : [])].join("\n");
    }
    span.append(piece);
  }
}

function renderChildren(node) {
  const list = $("children");
  list.replaceChildren();
  const kids = kidsOf(node.id);
  $("children-title").textContent = kids.length ? `Continuations (${kids.length})` : "No continuations yet: press g to generate";
  const next = loom.lastChild.get(node.id);
  for (const kid of kids) {
    const li = document.createElement("li");
    li.className = "child" + (kid.id === next ? " next" : "") + (kid.bookmarked ? " bookmarked" : "");
    li.dataset.id = kid.id;
    li.append(text("preview", preview(kid.text, 240)), text("author", kid.author));
    li.addEventListener("click", () => select(kid.id));
    list.append(li);
  }
}

function outline(key, onPath) {
  const ul = document.createElement("ul");
  for (const node of kidsOf(key)) {
    const li = document.createElement("li");
    const label = text("label" + (node.id === loom.selected ? " selected" : onPath.has(node.id) ? " on-path" : ""),
                       (node.bookmarked ? "★ " : "") + preview(node.text, 36));
    label.dataset.id = node.id;
    label.addEventListener("click", () => select(node.id));
    li.append(label);
    if (kidsOf(node.id).length) li.append(outline(node.id, onPath));
    ul.append(li);
  }
  return ul;
}

function preview(s, length) {
  const flat = s.replace(/\s+/g, " ");
  if (!flat.trim()) return "(empty)";
  return flat.length > length ? flat.slice(0, length - 1) + "…" : flat;
}

async function generateHere() {
  if (!loom.tree || !state.model) return say("Pick a tree and an em or model first.", "error");
  const at = loom.selected;
  const body = { model: state.model, n: Number($("gen-n").value) || 1, max_tokens: Number($("gen-max").value) || 48 };
  const temperature = parseFloat($("gen-temp").value);
  if (!Number.isNaN(temperature)) body.temperature = temperature;
  $("generate").disabled = true;
  say(`generating ${body.n} with ${state.model}…`);
  await guarded(async () => {
    const { nodes } = await post(`/api/nodes/${at}/generate`, body);
    await openTree(loom.tree.id, at);
    say(`${nodes.length} new continuation${nodes.length === 1 ? "" : "s"}`);
  });
  $("generate").disabled = false;
}

async function bookmarkHere() {
  if (!loom.tree) return;
  await guarded(async () => {
    const { node } = await post(`/api/nodes/${loom.selected}/bookmark`);
    Object.assign(loom.nodes.get(node.id), node);
    renderLoom();
  });
}

function editHere() {
  if (!loom.tree) return;
  $("editor").hidden = false;
  $("edit-text").value = loom.nodes.get(loom.selected).text;
  $("edit-text").focus();
}

async function saveEdit() {
  await guarded(async () => {
    const { node } = await post(`/api/nodes/${loom.selected}/edit`, { text: $("edit-text").value });
    $("editor").hidden = true;
    const changed = node.id !== loom.selected;
    await openTree(loom.tree.id, node.id);
    say(changed ? "saved as a new branch; the original is kept" : "unchanged");
  });
}

async function newTree(event) {
  event.preventDefault();
  const content = $("new-tree-text").value;
  if (!content.trim()) return;
  await guarded(async () => {
    const { tree } = await post("/api/trees", { text: content });
    $("new-tree-text").value = "";
    loom.tree = null;
    await loadTrees(tree.id);
  });
}

async function exportTree() {
  if (!loom.tree) return;
  await guarded(async () => {
    const response = await fetch(`/api/trees/${loom.tree.id}/export`, { headers: headers() });
    if (!response.ok) throw await failure(response);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = `loom-${loom.tree.id}.json`;
    link.click();
    URL.revokeObjectURL(link.href);
  });
}

async function importTree(event) {
  const file = event.target.files[0];
  if (!file) return;
  await guarded(async () => {
    const response = await fetch("/api/trees/import", { method: "POST", headers: headers(), body: await file.text() });
    if (!response.ok) throw await failure(response);
    const { tree } = await response.json();
    loom.tree = null;
    await loadTrees(tree.id);
    say(`imported “${tree.title}”`);
  });
  event.target.value = "";
}

function onKey(event) {
  if (state.view !== "loom" || !loom.tree || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select")) return;
  const node = loom.nodes.get(loom.selected);
  const siblings = siblingsOf(node);
  const at = siblings.findIndex((n) => n.id === node.id);
  const kids = kidsOf(node.id);
  const remembered = loom.lastChild.get(node.id);
  const actions = {
    ArrowLeft: () => at > 0 && select(siblings[at - 1].id),
    ArrowRight: () => at < siblings.length - 1 && select(siblings[at + 1].id),
    ArrowUp: () => node.parent_id !== null && select(node.parent_id),
    ArrowDown: () => kids.length && select(kids.some((k) => k.id === remembered) ? remembered : kids[0].id),
    b: bookmarkHere,
    e: editHere,
    g: generateHere,
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

document.addEventListener("keydown", onKey);
$("generate").addEventListener("click", generateHere);
$("bookmark").addEventListener("click", bookmarkHere);
$("edit").addEventListener("click", editHere);
$("edit-save").addEventListener("click", saveEdit);
$("edit-cancel").addEventListener("click", () => { $("editor").hidden = true; });
$("export").addEventListener("click", exportTree);
$("import-file").addEventListener("change", importTree);
$("new-tree").addEventListener("submit", newTree);
$("show-probs").addEventListener("change", renderLoom);

loadModels();
