"""Fail when a page of the built docs loads a script or stylesheet from the network (issue 19: docs offline).

Usage: python scripts/check_offline_docs.py build/docs
Lists each remote <script src> or <link rel=stylesheet href> (http:, https: or protocol-relative //) with its page,
and exits 1 if there is any; links the reader follows (<a href>) are not loads and are allowed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REMOTE = re.compile(r"""^(https?:)?//""", re.I)
SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']""", re.I)
STYLESHEET = re.compile(r"""<link\b[^>]*\brel\s*=\s*["'][^"']*stylesheet[^"']*["'][^>]*>""", re.I)
HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""", re.I)


def remote_loads(html: str) -> list[str]:
    found = [src for src in SCRIPT.findall(html) if REMOTE.match(src)]
    for tag in STYLESHEET.findall(html):
        href = HREF.search(tag)
        if href and REMOTE.match(href.group(1)):
            found.append(href.group(1))
    return found


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "build/docs")
    pages = sorted(site.rglob("*.html"))
    if not pages:
        print(f"check_offline_docs: no HTML pages under {site}", file=sys.stderr)
        return 1
    bad = [(page, url) for page in pages for url in remote_loads(page.read_text(encoding="utf-8", errors="replace"))]
    for page, url in bad:
        print(f"{page.relative_to(site)}: loads {url} from the network", file=sys.stderr)
    if bad:
        print(f"check_offline_docs: {len(bad)} remote load(s) in {len(pages)} pages", file=sys.stderr)
        return 1
    print(f"check_offline_docs: {len(pages)} pages, no script or stylesheet from the network")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
