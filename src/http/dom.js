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
