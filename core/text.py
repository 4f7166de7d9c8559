"""Small text formatting shared by every front end (command line, dashboard)."""

from __future__ import annotations


def human_bytes(size: int | None) -> str:
    """``2534`` -> ``2.5 kB``: sizes for people (powers of 1000, as file managers show them)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:=^&\"'")


def escape_markdown(text: object) -> str:
    """User text (names, tags, notes, error messages) made inert for a Markdown renderer.

    Every ASCII punctuation mark is backslash-escaped (CommonMark allows it for all of them), so
    a note cannot become a link, an image, HTML, a heading, a formula or a coloured directive.
    """
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in str(text)).replace("\n", "  \n")


def parse_tags(text: str) -> list[str]:
    """``"a, b,,c "`` -> ``["a", "b", "c"]``: tags typed into one box, duplicates dropped in order."""
    return list(dict.fromkeys(t.strip() for t in text.replace(";", ",").split(",") if t.strip()))
