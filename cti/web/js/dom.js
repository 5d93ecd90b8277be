// Building and replacing DOM without innerHTML: text always goes through textContent (no markup injection).

/** h("button", {type: "button", onclick: fn, class: "x", "aria-label": "..."}, child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `container`, keeping keyboard focus on the element with the same data-key, and what
 *  the person typed or chose in form fields that carry a data-key (a re-render never eats their input). */
export function replace(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  const typed = new Map();
  for (const field of container.querySelectorAll("input[data-key], select[data-key], textarea[data-key]")) {
    if (field.dataset.touched) typed.set(field.dataset.key, field.value);
  }
  container.replaceChildren();
  append(container, children);
  for (const field of container.querySelectorAll("input[data-key], select[data-key], textarea[data-key]")) {
    if (typed.has(field.dataset.key)) { field.value = typed.get(field.dataset.key); field.dataset.touched = "1"; }
    field.addEventListener("input", () => { field.dataset.touched = "1"; });
  }
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
