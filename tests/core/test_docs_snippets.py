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
