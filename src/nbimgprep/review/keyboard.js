// Keys for one part of the page. While the focus is inside an element with the class
// `scope` (set from Python), the keys listed in `claimed` belong to this widget, not to
// JupyterLab: each is sent to Python with the number of columns the grid shows, and its
// default (a focused button's click on Enter, the page scrolling on PageDown) is
// prevented, which also tells JupyterLab to leave it alone ("a" would insert a cell).
// Keys with Ctrl, Alt, Meta or Shift pass through, so Shift+Enter still runs the cell.

const EDITABLE = "input, textarea, select, [contenteditable]";

function columnsOf(scope) {
  const tracks = getComputedStyle(scope).gridTemplateColumns;
  return tracks && tracks !== "none" ? tracks.split(" ").length : 1;
}

function render({ model, el }) {
  el.style.display = "none";
  const scopeOf = (target) =>
    target instanceof Element ? target.closest("." + model.get("scope")) : null;

  // Capturing on window runs before JupyterLab's own listener on the document.
  const onKeyDown = (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.shiftKey || !model.get("claimed").includes(event.key)) return;
    const scope = scopeOf(event.target);
    if (scope === null || event.target.closest(EDITABLE)) return;
    event.preventDefault();
    model.send({ key: event.key, columns: columnsOf(scope) });
  };
  // A click anywhere in the scope focuses it, so the keys work after clicking a picture.
  const onPointerDown = (event) => {
    const scope = scopeOf(event.target);
    if (scope !== null && !scope.hasAttribute("tabindex")) scope.tabIndex = 0;
  };
  window.addEventListener("keydown", onKeyDown, true);
  window.addEventListener("pointerdown", onPointerDown, true);
  return () => {
    window.removeEventListener("keydown", onKeyDown, true);
    window.removeEventListener("pointerdown", onPointerDown, true);
  };
}

export default { render };
