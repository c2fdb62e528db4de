"""Rewrites the README's configuration table from ``veil.formats.config_schema``.

Run after adding or changing a key: ``.venv/bin/python scripts/update-readme-config.py``.
The table starts at the line ``| section | key | default | meaning |`` and ends
at the first line after it that is not a table row.
"""

from __future__ import annotations

from pathlib import Path

from veil.formats.config_schema import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    lines = README.read_text().splitlines(keepends=True)
    start = lines.index("| section | key | default | meaning |\n")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    README.write_text("".join(lines[:start]) + markdown_table() + "".join(lines[end:]))


if __name__ == "__main__":
    main()
