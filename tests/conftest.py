"""Shared fixtures. An em folder in tmp: ``make_em(tmp_path, config={...}, files={...})``."""
from pathlib import Path

import pytest
import yaml

from simulacra.ems.em import Em


@pytest.fixture
def make_em():
    def make(root: Path, config: dict | None = None, files: dict[str, str] | None = None, name: str = "mara") -> Em:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config or {}))
        for rel, text in (files or {}).items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return Em.load(folder)

    return make
