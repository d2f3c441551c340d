"""An em: a folder of plain files, loaded and checked (DESIGN.md §3)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from simulacra.ems.config import EmConfig, FacultyConfig, load_config
from simulacra.errors import ConfigError
from simulacra.types import Sampling

if TYPE_CHECKING:
    from simulacra.faculties import Faculty


@dataclass
class Em:
    folder: Path
    config: EmConfig
    faculties: list[tuple["Faculty", FacultyConfig]] = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | Path) -> "Em":
        from simulacra.faculties import parse_faculty

        path = Path(folder)
        if not path.is_dir():
            hint = f"; did you mean examples/ems/{path.name}?" if Path("examples/ems", path.name).is_dir() else ""
            raise ConfigError(f"no em folder at {path}: an em is a folder with a config.yaml "
                              f"(create one with  simulacra new NAME){hint}")
        config = load_config(path)
        source = path / "config.yaml"
        faculties = [parse_faculty(data, source, f"ensembles[{i}]") for i, data in enumerate(config.ensembles)]
        return cls(path, config, faculties)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> Path:
        """Where simulacra writes (memory, logs, caches); created on first use."""
        path = self.folder / "state"
        path.mkdir(exist_ok=True)
        return path

    @property
    def corpus_folder(self) -> Path:
        return self.folder / f"{self.name}.chr"

    def sampling(self, **overrides) -> Sampling:
        c = self.config
        values = dict(temperature=c.temperature, top_p=c.top_p, top_k=c.top_k, min_p=c.min_p,
                      frequency_penalty=c.frequency_penalty, presence_penalty=c.presence_penalty,
                      repetition_penalty=c.repetition_penalty, logit_bias=dict(c.logit_bias), seed=c.seed,
                      max_tokens=c.continuation_max_tokens, stop=tuple(c.stop_sequences))
        return Sampling(**{**values, **overrides})

    def __repr__(self) -> str:
        return f"Em({self.name!r}, {str(self.folder)!r})"

