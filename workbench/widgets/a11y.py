"""What ipywidgets and plotly leave out for screen-reader and keyboard users, added in the page.

`Accessibility(names)` is an invisible widget placed in the app. In the browser it keeps, for
every workbench app on the page: `aria-pressed` on each toggle button (following its active
state, which the stylesheet also shows by a check mark and an outline, not by colour alone);
`role="status"` and `aria-live="polite"` on the status line, whose element persists while its
text changes, so the change is announced; and `role="figure"` with an accessible name on each
chart, keyed by its CSS class in `names` (other charts are named by their title). plotly's
toolbar is hidden by the stylesheet, which takes its buttons out of the tab order.
"""

from __future__ import annotations

import anywidget
import traitlets

ESM = """\
function label(root, names) {
  for (const button of root.querySelectorAll(".widget-toggle-button")) {
    const pressed = button.classList.contains("mod-active") ? "true" : "false";
    if (button.getAttribute("aria-pressed") !== pressed) {
      button.setAttribute("aria-pressed", pressed);
    }
  }
  for (const status of root.querySelectorAll(".wb-status")) {
    if (status.getAttribute("aria-live") !== "polite") {
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      status.setAttribute("aria-atomic", "true");
    }
  }
  for (const [css, name] of Object.entries(names)) {
    for (const chart of root.querySelectorAll("." + css)) {
      if (chart.getAttribute("aria-label") !== name) {
        chart.setAttribute("role", "figure");
        chart.setAttribute("aria-label", name);
      }
    }
  }
  for (const chart of root.querySelectorAll(".wb-plot:not([aria-label])")) {
    const title = chart.querySelector(".gtitle")?.textContent;  // any other chart: its title
    chart.setAttribute("role", "figure");
    chart.setAttribute("aria-label", title ? `Chart: ${title}` : "Chart");
  }
}

export default {
  render({ model, el }) {
    let queued = false;
    const update = () => {
      queued = false;
      for (const app of document.querySelectorAll(".wb-app")) label(app, model.get("names"));
    };
    const schedule = () => {
      if (!queued) {
        queued = true;
        requestAnimationFrame(update);
      }
    };
    const observer = new MutationObserver(schedule);
    observer.observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["class"],
    });
    model.on("change:names", schedule);
    el.dataset.wbAccessibility = "1";
    schedule();
    return () => observer.disconnect();
  },
};
"""


class Accessibility(anywidget.AnyWidget):
    """Invisible; `names` maps a chart's CSS class to its accessible name."""

    _esm = ESM
    names = traitlets.Dict().tag(sync=True)
