"""Figures in the README must be the ones the benchmark wrote: the quoted headline may not drift."""

from tests.conftest import ROOT


def _headline(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Measured by `python -m bench`"))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.startswith("- ") or not line.strip():
            block.append(line)
        else:
            break
    return [line for line in block if line.strip()]


def test_readme_quotes_the_benchmark_headline_verbatim():
    quoted = _headline((ROOT / "README.md").read_text())
    measured = _headline((ROOT / "docs" / "benchmarks.md").read_text())
    assert len(quoted) > 5
    assert quoted == measured
