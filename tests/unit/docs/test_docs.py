"""The documentation: the CLI reference matches the app, the site builds with every link resolved, nothing was lost.

The README became short (issue 25, item 9); its sections moved to docs/. These
tests keep the move honest: each section of the long README still heads a docs
page, the generated CLI reference is the app's current one, and MkDocs in
strict mode builds the site (a broken internal link fails it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "cli_reference.py"
#: Every heading of the README before it moved to docs/ (commit bbfbced); each must still head some docs page.
OLD_README_HEADINGS = [
    "Install and test (fresh Debian machine, Python 3.11)", "Quick start", "The data flow", "Ingesting lectures",
    "Speech-to-text", "From YouTube and other sites", "Configuration", "Retrieval", "Ranking and the cited second",
    "Answers and LLMs", "Plugging in an LLM (recipes)", "Evaluation", "Judges against people", "Web app",
    "Several replicas", "Beyond one machine: PostgreSQL, replicas, Ray", "Several web replicas",
    "Batch work on Ray", "Benchmarks",
]  # fmt: skip
README_COMMANDS = ["make install   #", "make test      #"]
MAX_README_LINES = 150


def _headings(text: str) -> list[str]:
    """Markdown headings outside fenced code blocks."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)]


def test_every_section_of_the_old_readme_heads_a_docs_page() -> None:
    docs = [h.lower() for page in (REPO / "docs").rglob("*.md") for h in _headings(page.read_text(encoding="utf-8"))]
    missing = [h for h in OLD_README_HEADINGS if not any(h.lower() in d for d in docs)]
    assert missing == [], f"seções do README antigo sem página em docs/: {missing}"


def test_the_readme_is_short_and_keeps_the_install_and_test_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= MAX_README_LINES
    for command in README_COMMANDS:
        assert command in readme


def test_the_committed_cli_reference_matches_the_app(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    made = subprocess.run([sys.executable, str(SCRIPT), str(fresh)], capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    committed = (REPO / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, "docs/reference/cli.md desatualizado: rode 'make docs'"
    assert "### `lecture-rag annotate`" in committed and "#### `lecture-rag corpus list`" in committed


def _build(docs: Path, site: Path) -> subprocess.CompletedProcess[str]:
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}").replace("site_dir: site", f"site_dir: {site}")
    yml = docs.parent / "mkdocs.yml"
    yml.write_text(config, encoding="utf-8")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "-f", str(yml)], capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(docs.parent)},
    )  # fmt: skip


def test_the_site_builds_strictly_and_a_broken_link_fails_it(tmp_path: Path) -> None:
    import shutil

    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    built = _build(docs, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "course-team" / "index.html").exists()
    page = docs / "course-team.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[quebrado](nao-existe.md)\n", encoding="utf-8")
    broken = _build(docs, tmp_path / "site2")
    assert broken.returncode != 0 and "nao-existe.md" in broken.stderr
