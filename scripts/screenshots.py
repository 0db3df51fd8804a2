"""Take the README's screenshots of the web pages from the real NURC lectures (no test strings).

Ingests the NURC-SP transcripts into a temporary store, answers a few of the NURC questions with
``lecture-rag run`` (extractive answers judged by the bundled 135M model, held to its grammar),
starts a real ``lecture-rag serve`` on it (no LLM: the extractive answer, which quotes the
lectures), and photographs, with the Chromium the browser tests use, the ask page with an answer,
the lectures page and the annotation page, on a desktop (1280×1000) and a phone (390×844, touch)::

    python scripts/screenshots.py --data ../shared/data/nurc-sp/transcripts --out docs/screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import Page, sync_playwright

QUESTION = "O que caracteriza a arte do Paleolítico?"
#: The run the annotation page shows: NURC questions, one per lecture, answered and judged for real.
RUN = "aulas-nurc"
RUN_QUESTIONS = ("nurc-048", "nurc-001", "nurc-020")
QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "nurc_questions.jsonl"
TOKEN = "capturas-de-tela-da-documentacao"  # serve refuses tokens under 16 characters
SCREENS = {
    "desktop": {"viewport": {"width": 1280, "height": 1000}},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lecture_rag(*args: str, env: dict[str, str]) -> list[str]:
    return [str(Path(sys.executable).parent / "lecture-rag"), *args]


def serve(store: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = lecture_rag("serve", "--store", str(store), "--port", str(port), env=env)
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"serve saiu com código {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"serve não respondeu; veja {log}")


def shoot(base: str, out: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"], headless=True)
        for kind, options in SCREENS.items():
            context = browser.new_context(locale="pt-BR", **options)  # type: ignore[arg-type]
            page = context.new_page()
            page.goto(f"{base}/?q={quote(QUESTION)}")
            page.wait_for_selector("body[data-state=done]", timeout=120_000)
            page.locator("#answer .cite").first.click()
            page.wait_for_timeout(800)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(out / f"ask-{kind}.png"))
            page.goto(f"{base}/aulas")
            page.screenshot(path=str(out / f"aulas-{kind}.png"))
            annotate(page, base)
            page.screenshot(path=str(out / f"annotate-{kind}.png"))
            context.close()
        browser.close()


def annotate(page: Page, base: str) -> None:
    """Log in as a course team member does and open the run's first record to annotate."""
    page.goto(f"{base}/login")
    page.fill("#login-token", TOKEN)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_selector("body[data-token-ready='1']")
    page.goto(f"{base}/runs/{RUN}/annotate")
    page.fill("#annotator-input", "Ana")
    page.get_by_role("button", name="Começar").click()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_timeout(300)


def write_run_questions(path: Path) -> None:
    """The few NURC questions of the run, as the question file has them."""
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [row for qid in RUN_QUESTIONS for row in rows if row["id"] == qid]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chosen), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/nurc-sp/transcripts"))
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LECTURE_RAG_")}
    env["LECTURE_RAG_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        cmd = lecture_rag("ingest", str(args.data), "--store", str(store), env=env)
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        questions = Path(tmp) / "perguntas.jsonl"
        write_run_questions(questions)
        judged = ("--llm", "none", "--judge-llm", "gguf:bundled", "--judges", "ar,label", "--k", "5")
        cmd = lecture_rag("run", str(questions), "--name", RUN, "--store", str(store), *judged, env=env)
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        proc, base = serve(store, env, Path(tmp) / "serve.log")
        try:
            shoot(base, args.out)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"capturas em {args.out}")


if __name__ == "__main__":
    main()
