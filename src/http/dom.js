// The dashboard scripts' two DOM helpers, shared by dashboard.js, silences.js and whatif.js.
// Text always goes in as text nodes (`append`), never as HTML: event and alert fields are untrusted.

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** A new `tag` element: `class`, `on<event>` listeners and other attributes, then its children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/**
 * Makes `root`'s children one node per item, in order: an item whose `key` (its identity and
 * everything its node shows) is unchanged keeps its node, the others are built by `build`.
 * Rebuilding every row on every message made the whole page's layout run again (the alerts of a
 * fleet change twice a second; `deno task bench:dashboard`).
 */
export function renderKeyed(root, items, key, build) {
  const old = new Map();
  for (const node of root.children) if (node.renderKey !== undefined) old.set(node.renderKey, node);
  const nodes = items.map((item) => {
    const k = key(item);
    let node = old.get(k);
    if (node === undefined) {
      node = build(item);
      node.renderKey = k;
    } else old.delete(k);
    return node;
  });
  for (const node of [...root.children]) {
    if (node.renderKey === undefined || old.has(node.renderKey)) node.remove();
  }
  let at = root.firstChild;
  for (const node of nodes) {
    if (at === node) at = at.nextSibling;
    else root.insertBefore(node, at);
  }
}
