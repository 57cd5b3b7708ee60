"""README.md stays short, its headline table is the reference's, and its test command is CI's."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_BYTES = 8192


def load_script():
    spec = importlib.util.spec_from_file_location("readme_headline", ROOT / "scripts" / "readme_headline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_fits_in_8_kib():
    assert README.stat().st_size <= MAX_BYTES, f"README.md is {README.stat().st_size} bytes, at most {MAX_BYTES}"


def test_headline_block_is_what_the_script_generates():
    script = load_script()
    text = README.read_text(encoding="utf-8")
    assert script.rewrite(text, script.headline()) == text, "stale: run python scripts/readme_headline.py"
    assert script.main(["--check"]) == 0


def test_the_check_sees_a_retyped_table(tmp_path):
    script = load_script()
    text = README.read_text(encoding="utf-8")
    block = script.headline()
    assert "| logistic | manual |" in block and block.startswith("Measured on ")
    retyped = script.rewrite(text, block.replace("0.9979 ± 0.0011", "0.998 ± 0.001", 1))
    assert retyped != text and script.rewrite(retyped, block) == text
    with pytest.raises(ValueError, match="markers"):
        script.rewrite("no markers here", block)


def test_the_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r'^"\$venv/bin/pytest" -q$', ci, re.MULTILINE), "CI no longer runs pytest -q from its venv"
    assert "`.venv/bin/pytest -q`" in README.read_text(encoding="utf-8")


def test_every_linked_doc_exists():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links and all((ROOT / link).exists() for link in links if "://" not in link), links
