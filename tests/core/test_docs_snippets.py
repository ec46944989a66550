"""The notebook snippets in README.md and docs/training.md run as written (fewer epochs)."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("doc, marker", [("README.md", "PhyLL("), ("docs/training.md", "PhyLL(")])
def test_the_phyll_notebook_snippet_runs_as_written(doc, marker):
    (block,) = [b for b in _python_blocks((REPO / doc).read_text()) if marker in b][:1]
    assert "epochs=200" in block
    namespace: dict = {}
    exec(compile(block.replace("epochs=200", "epochs=2"), doc, "exec"), namespace)
    model, ds = namespace["model"], namespace["ds"]
    accuracy = model.evaluate(ds.x_test, ds.y_test)
    assert 0.0 <= accuracy <= 1.0


# ``labpnn run NAME ... --set KEY=VALUE`` as the docs and docstrings show it; a continued line
# (a trailing backslash) is read with the next one.
_COMMAND = re.compile(r"labpnn (?:run|queue add) ([a-z][a-z-]+)((?:[^\n`]|\\\n)*)")


def _documented_settings() -> list[tuple[str, str, str]]:
    from labpnn.catalog import PROCEDURES

    sources = [*REPO.glob("*.md"), *REPO.glob("docs/*.md"), *REPO.glob("procedures/**/*.py")]
    found = []
    for path in sources:
        for name, rest in _COMMAND.findall(path.read_text()):
            if name not in PROCEDURES:
                continue
            for key in re.findall(r"--set ([A-Za-z_][A-Za-z0-9_]*)=", rest):
                found.append((str(path.relative_to(REPO)), name, key))
    return found


def test_every_documented_set_names_a_parameter_of_its_procedure():
    from labpnn.catalog import procedure_class

    found = _documented_settings()
    assert len(found) >= 10  # the scan itself still finds the docs' examples
    wrong = [
        f"{where}: {name} has no parameter '{key}'"
        for where, name, key in found
        if key not in procedure_class(name).parameter_specs()
    ]
    assert not wrong, wrong
