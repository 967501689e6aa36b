"""The status line's `data-idle` stays 0 while the page has sent input the kernel has not
yet handled.

The kernel writes `data-idle="1"` when no request, detail or warm-up work runs, but it only
knows about the clicks it has handled: after a burst of clicks it may still be working
through them (ipywidgets sends one update at a time and merges the rest), so the line said
idle for a moment while the board showed a variant the page was no longer asking for.
`InFlight(watched)` is an invisible widget that, in the browser, counts what each watched
widget has sent and the kernel has not yet answered with "idle" (ipywidgets' own count of
unanswered updates, `_pending_msgs`, and any merged update waiting behind them, plus button
clicks, which are custom messages), and while that is not zero sets `data-idle="0"` (and
`data-sending="1"`) on the app's status lines that say "done" (a failed one already says the
last thing tried went wrong), keeping the kernel's own value in `data-kernel-idle`; once all
is answered the line is again exactly as the kernel wrote it.
A front end without those counters leaves the line alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import anywidget
import ipywidgets as w
import traitlets

ESM = """\
export default {
  async render({ model, el }) {
    let custom = 0;  // custom messages (button clicks) the kernel has not answered yet
    const models = [];
    const busy = () => custom > 0 || models.some((m) => m._pending_msgs > 0 || m._msg_buffer);
    const mark = () => {
      const root = el.closest(".wb-app") || document;
      const sending = busy();
      for (const line of root.querySelectorAll(".wb-status-line")) {
        if (sending && line.dataset.kernelIdle === undefined && line.dataset.state === "done") {
          line.dataset.kernelIdle = line.dataset.idle;
          line.dataset.sending = "1";
          line.dataset.idle = "0";
        } else if (!sending && line.dataset.kernelIdle !== undefined) {
          line.dataset.idle = line.dataset.kernelIdle;  // the line as the kernel wrote it
          delete line.dataset.kernelIdle;
          delete line.dataset.sending;
        }
      }
      return sending;
    };
    let timer = null;
    const watch = () => {  // until the kernel has answered everything sent
      if (mark() && timer === null) {
        timer = setInterval(() => {
          if (!mark()) {
            clearInterval(timer);
            timer = null;
          }
        }, 20);
      }
    };
    const track = (m) => {
      models.push(m);
      if (m.get("_model_name") !== "ButtonModel") return;  // clicks are custom messages
      const send = m.send.bind(m);
      m.send = (content, callbacks, buffers) => {
        custom += 1;
        const status = callbacks?.iopub?.status;
        const answered = (message) => {
          status?.(message);
          if (message.content?.execution_state === "idle") {
            custom = Math.max(0, custom - 1);
            watch();
          }
        };
        const iopub = { ...callbacks?.iopub, status: answered };
        const result = send(content, { ...callbacks, iopub }, buffers);
        watch();
        return result;
      };
    };
    for (const id of model.get("watched")) {
      try {
        track(await model.widget_manager.get_model(id));
      } catch (error) {
        console.warn("workbench: cannot watch widget", id, error);
      }
    }
    const events = ["click", "change", "input", "keydown"];
    for (const type of events) document.addEventListener(type, watch);
    const observer = new MutationObserver(watch);  // a new status line from the kernel
    observer.observe(el.closest(".wb-app") || document.body, { subtree: true, childList: true });
    el.dataset.wbInflight = "1";
    return () => {
      for (const type of events) document.removeEventListener(type, watch);
      observer.disconnect();
      if (timer !== null) clearInterval(timer);
    };
  },
};
"""


class InFlight(anywidget.AnyWidget):
    """Invisible; `watched` holds the model ids of the widgets whose input it waits for."""

    _esm = ESM
    watched = traitlets.List(traitlets.Unicode()).tag(sync=True)


def descendants(widget: w.Widget) -> Iterator[w.Widget]:
    """`widget` and every widget inside it (through `children`)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from descendants(child)
