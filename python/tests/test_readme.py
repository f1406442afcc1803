"""The README's "Use from Python" example, run word for word from a folder holding the
repository's fixtures (so its outputs land in a temporary folder)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "one Python example in the section"
    return blocks[0]


def test_readme_example_runs(tmp_path: Path) -> None:
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    run = subprocess.run([sys.executable, "-c", _example()], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "flora-na: model error 2.78e-02, floor 1.99e-02"
    assert lines[1].startswith("model.layers.0.mlp.down_proj (64, 96) 8 1.96e-02 p (")
    assert lines[3] == "as-good-as-flora-na"
    assert lines[4].startswith("usage --rank sets the output rank of --method svd")
    assert re.match(r"28 tensors, error 2\.78e-02 lora_alpha \d", lines[5]), lines[5]
    assert (tmp_path / "merged" / "adapter_model.safetensors").is_file() and not (tmp_path / "merged-svd").exists()
