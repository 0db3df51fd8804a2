"""The real headless Chromium the page tests drive (Debian's package, through Playwright)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from re import Pattern

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Route, expect

from tests.support.servers import ServeProcess

RouteHandler = Callable[[Route], None]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 1000}


class Watch:
    """What must never happen on a page: a dialog (a script ran: XSS) or a CSP violation (a script tried to)."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.csp: list[str] = []

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def check(self) -> None:
        assert self.dialogs == [], f"um diálogo abriu (XSS): {self.dialogs}"
        assert self.csp == [], f"algo tentou rodar script (CSP): {self.csp}"


@contextmanager
def watched_page(
    browser: Browser, route: tuple[Pattern[str], RouteHandler] | None = None
) -> Iterator[tuple[Page, Watch]]:
    """A fresh context and page with a :class:`Watch` on it, checked when the block ends."""
    context = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
    if route is not None:
        context.route(*route)
    page = context.new_page()
    watch = Watch()
    page.on("dialog", watch.on_dialog)
    page.on("console", watch.on_console)
    try:
        yield page, watch
    finally:
        context.close()
    watch.check()


def ask_in_page(pg: Page, question: str) -> dict[str, float]:
    """Type, click "Perguntar", wait for the end of the stream; returns the page's own timings (ms)."""
    pg.fill("#question", question)
    pg.evaluate("document.body.dataset.state = ''")
    pg.get_by_role("button", name="Perguntar").click()
    expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=60_000)
    timings: dict[str, float] = pg.evaluate("window.lectureRagTimings")
    return timings


def log_in(pg: Page, server: ServeProcess) -> None:
    """Open a session as a person with the token would: the form at /login (the printed link is one-time)."""
    pg.goto(f"{server.base_url}/login")
    pg.fill("#login-token", server.token)
    pg.get_by_role("button", name="Entrar").click()
    expect(pg.locator("body")).to_have_attribute("data-token-ready", "1")


#: Text elements whose colour contrast is below WCAG AA against the background they sit on
#: (4.5:1; 3:1 for large text, 24 px or 18.66 px bold), as ``tag#id.class: ratio``.
LOW_CONTRAST_JS = """
() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    if (["SCRIPT", "STYLE", "OPTION"].includes(el.tagName)) continue;
    const style = getComputedStyle(el);
    const fg = rgb(style.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return out;
}
"""


def low_contrast(pg: Page) -> list[str]:
    """The page's visible text below WCAG AA contrast (an empty list when every text passes)."""
    found: list[str] = pg.evaluate(LOW_CONTRAST_JS)
    return found
