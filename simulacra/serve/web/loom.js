// The loom view of simulacra's web UI: a tree of continuations, walked with the keyboard.
// Loaded after app.js, whose helpers ($, api, post, guarded, say, state) it uses.

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
