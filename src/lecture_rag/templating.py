"""Plain-text Jinja2 templates (prompts, the seed's record) and their fingerprints.

The answer prompts, the judge prompts and the markdown record share one set of
options: strict (a missing value is an error, not an empty string), no HTML
escaping, block tags that leave no blank lines. Runs snapshot short hashes of
the template sources, so a changed prompt makes another experiment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from jinja2 import Environment, PackageLoader, StrictUndefined


def text_templates(package: str, folder: str, *, keep_trailing_newline: bool = False) -> Environment:
    """A strict, unescaped environment over ``package/folder``."""
    return Environment(
        loader=PackageLoader(package, folder),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
        undefined=StrictUndefined,
        autoescape=False,
    )


def short_hash(text: str) -> str:
    """12 hex digits of SHA-256: enough to tell two prompt versions apart in a snapshot."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def source_hashes(env: Environment, names: Iterable[str]) -> dict[str, str]:
    """``{template name: short hash of its source}``."""
    loader = env.loader
    return {name: short_hash(loader.get_source(env, name)[0] if loader else "") for name in names}
