"""Server-rendered pages (Jinja2, autoescaped) and the bundled static files.

Pages carry no inline script: each loads its own file from /static, and data
the script needs (a run name) travels in ``data-*`` attributes, escaped by
Jinja2. Static files are read into memory at startup and served by name from
that table, so no request path is ever joined to a directory.

``/login`` opens a browser session: from the one-time code of the link
``serve`` prints (``GET /login?code=…``, dead after that use) or from the
token typed in its form (``POST``). The session is an HttpOnly,
SameSite=Strict cookie; the page then moves on to a local address, so the
code does not stay in the address bar. Failed logins are throttled per
client address; ``POST /logout`` ends the session.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from importlib import resources as pkg_resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from lecture_rag.evaluate.summary import RunOverview, run_summary
from lecture_rag.links import hhmmss, safe_url
from lecture_rag.records import Piece, Segment
from lecture_rag.report.plots import confusion_heatmap, score_histograms
from lecture_rag.web.api import open_run, resources_of
from lecture_rag.web.llm_health import LABELS as LLM_LABELS
from lecture_rag.web.media import MediaLinks
from lecture_rag.web.payloads import labels_out
from lecture_rag.web.security import (
    SESSION_COOKIE,
    can_read,
    client_address,
    has_session,
    login_throttle,
    safe_next,
    token_matches,
)

router = APIRouter(include_in_schema=False)

NAV = (("/", "Perguntar"), ("/aulas", "Aulas"), ("/runs", "Rodadas"))
#: The latest second a lecture page opens at (a month of video; anything beyond is a typo or a probe).
MAX_SECOND = 31 * 24 * 3600


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("lecture_rag.web", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["hhmmss"] = hhmmss
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["pathseg"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = when
    env.filters["web_url"] = lambda value: safe_url(value, relative=False)  # only http(s) links reach a page
    return env


def _num(value: Any, digits: int = 3) -> str:
    return "n/d" if value is None else f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    return "n/d" if value is None else f"{100 * float(value):.1f}%"


@lru_cache(maxsize=1)
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of the package's static folder, by name, with its content type."""
    folder = pkg_resources.files("lecture_rag.web").joinpath("static")
    out: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        if entry.is_file():
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            out[entry.name] = (entry.read_bytes(), kind)
    return out


MONTHS = ("jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez")


def when(value: Any) -> str:
    """An ISO timestamp as people read it ("5 dez 2026, 14:03"); anything else unchanged."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M}"


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = has_session(request)  # the page's script fetches the token of a session (common.js)
    state = resources_of(request).llm_health.state()  # cached: a dead LLM never delays a page
    html = (
        templates()
        .get_template(name)
        .render(
            nav=NAV,
            path=request.url.path,
            session=session,
            llm_state=state,
            llm_label=LLM_LABELS[state],
            llm_name=resources_of(request).configured_llm,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


def _login_first(request: Request) -> Response | None:
    """A redirect to /login when this server needs a login to read runs and the request has none."""
    if can_read(request, None):
        return None
    return RedirectResponse("/login?next=" + quote(request.url.path, safe="/"), status_code=303)


def _login_page(request: Request, status: int = 200, message: str = "", target: str = "/") -> HTMLResponse:
    page = render(request, "login.html", status=status, message=message, next=target)
    page.headers["Cache-Control"] = "no-store"
    return page


def _start_session(request: Request, session: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _throttled(request: Request, target: str) -> Response | None:
    """429 with Retry-After while this client must wait after failed logins (see LoginThrottle)."""
    wait = login_throttle(request).wait(client_address(request))
    if not wait:
        return None
    message = f"Tentativas de login demais deste endereço. Tente de novo em {wait} segundos."
    page = _login_page(request, status=429, message=message, target=target)
    page.headers["Retry-After"] = str(wait)
    return page


def _login_failed(request: Request, message: str, target: str) -> Response:
    login_throttle(request).failed(client_address(request))
    return _login_page(request, status=401, message=message, target=target)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, code: str | None = None, next: str | None = None) -> Response:
    target = safe_next(next)
    if code is None:
        return _login_page(request, target=target)
    if throttled := _throttled(request, target):
        return throttled
    session = resources_of(request).sessions.redeem(code)
    if session is None:
        message = (
            "Este link de login já foi usado ou expirou (cada link vale uma vez). "
            "Informe o token do servidor abaixo, ou reinicie 'lecture-rag serve' para ter um link novo."
        )
        return _login_failed(request, message, target)
    login_throttle(request).succeeded(client_address(request))
    return _start_session(request, session, target)


@router.post("/login", response_class=HTMLResponse)
async def login_with_token(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    if throttled := _throttled(request, target):
        return throttled
    if not token_matches(token, resources_of(request).token):
        return _login_failed(request, "Token inválido. Confira o token do servidor.", target)
    login_throttle(request).succeeded(client_address(request))
    return _start_session(request, resources_of(request).sessions.open(), target)


@router.post("/logout")
def logout(request: Request) -> Response:
    """End this browser's session: the cookie is deleted and the session revoked (a copy of it is dead too)."""
    resources_of(request).sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Clear-Site-Data"] = '"storage"'  # the tab's copy of the token (sessionStorage)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    found = static_files().get(name)
    if found is None:
        raise HTTPException(404, "Arquivo não encontrado.")
    body, kind = found
    return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def ask_page(request: Request) -> HTMLResponse:
    res = resources_of(request)
    videos, segments = res.counts()
    return render(
        request,
        "ask.html",
        extractive=res.engine.llm is None,
        videos=videos,
        segments=segments,
        k=res.settings.retrieval.k,
        mode=res.settings.retrieval.mode,
        problem=res.problem,
    )


@router.api_route("/aulas", methods=["GET", "HEAD"], response_class=HTMLResponse)
def videos_page(request: Request) -> HTMLResponse:
    """The lectures, with where each transcript came from (users judge its quality by it)."""
    links = MediaLinks.of(request)
    return render(request, "videos.html", videos=[links.video(v) for v in resources_of(request).store.list_videos()])


@router.get("/aulas/{video_id}", response_class=HTMLResponse)
def lecture_page(
    request: Request, video_id: str, t: Annotated[float | None, Query(ge=0, le=MAX_SECOND)] = None
) -> HTMLResponse:
    """One lecture: its player on top, its transcript with times, the line at ``?t=SECONDS`` highlighted.

    A citation opens this page at its second; any line plays from its own.
    """
    store = resources_of(request).store
    video = store.get_video(video_id)
    if video is None:
        raise HTTPException(404, "Aula não encontrada.")
    video = MediaLinks.of(request).video(video)
    lines = transcript_lines(store.segments(video_id))
    cited = cited_line(lines, t)
    second = int(max(0.0, t if t is not None else 0.0))
    return render(request, "lecture.html", video=video, player=video.player, lines=lines, cited=cited, second=second)


def transcript_lines(segments: Sequence[Segment]) -> list[Piece]:
    """The lecture's text as timed lines, once: windows overlap, so a line another window already gave is skipped."""
    out: list[Piece] = []
    for segment in sorted(segments, key=lambda s: s.start):
        for piece in segment.pieces():
            if out and piece.start < out[-1].end - _OVERLAP_SLACK_S:
                continue
            out.append(piece)
    return out


#: Interpolated pieces (no cue marks) of overlapping windows start a little apart; this much is the same line.
_OVERLAP_SLACK_S = 0.5


def cited_line(lines: Sequence[Piece], second: float | None) -> int:
    """Index of the line said at ``second`` (the last one starting at or before it); -1 when none.

    Links carry whole seconds (``#t=12`` for a line said at 12.44 s), so a
    line starts "at or before" when its whole second does.
    """
    if second is None or not lines:
        return -1
    found = 0
    for i, line in enumerate(lines):
        if int(line.start) <= second:
            found = i
        else:
            break
    return found


@router.api_route("/runs", methods=["GET", "HEAD"], response_class=HTMLResponse)
def runs_page(request: Request) -> Response:
    return _login_first(request) or render(request, "runs.html", runs=resources_of(request).runs.summaries())


@router.get("/runs/{name}/annotate", response_class=HTMLResponse)
def annotate_page(request: Request, name: str) -> Response:
    if login := _login_first(request):
        return login
    scheme, items = open_run(resources_of(request), name)
    return render(request, "annotate.html", run=name, total=len(items), labels=labels_out(scheme))


def _svg_data_uri(svg: str) -> str:
    """Plots go in as images: an SVG image runs no script and needs no inline-style exception in the CSP."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _plots(summary: RunOverview) -> dict[str, str]:
    plots: dict[str, str] = {}
    agreement = summary.agreement
    if agreement and agreement.n:
        plots["confusion"] = _svg_data_uri(confusion_heatmap(agreement.confusion, agreement.labels))
    if summary.ar_by_manual_label:
        plots["histogram"] = _svg_data_uri(score_histograms(summary.ar_by_manual_label))
    return plots


@router.get("/runs/{name}/agreement", response_class=HTMLResponse)
def agreement_page(request: Request, name: str) -> Response:
    if login := _login_first(request):
        return login
    scheme, items = open_run(resources_of(request), name)
    summary = run_summary(items, scheme)
    return render(request, "agreement.html", run=name, s=summary, plots=_plots(summary))
