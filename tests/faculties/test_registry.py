"""Every registered faculty, built-in or plugin, runs against an em folder and yields strings."""
import pytest

from simulacra.ems.em import Em
from simulacra.faculties import Faculty, registry
from simulacra.types import Message

# A working config for each faculty whose keys are not all optional. A plugin that needs more
# than {"faculty": name} adds itself here.
MINIMAL = {
    "notes": {"text": "Mara keeps the harbour."},
}

FILES = {
    "mara.chr/tavern.txt": "<mara> The tide turns at noon.\n<tom> Then we sail at noon.\n",
    "history.txt": "<mara> Morning.\n<tom> Morning, Mara.\n",
    "lore.yaml": "entries:\n  - keys: [tide]\n    content: Tides here run twelve feet.\n",
    "state/scratchpad.yaml": "facts:\n  tom: a sailor who asks about tides\n",
}


def _memories(folder):
    from simulacra.engine.embed import HashEmbedder
    from simulacra.memory import MemoryStore

    with MemoryStore.for_em(folder, HashEmbedder()) as store:
        store.add("tom asked when the tide turns")


# Faculties that read state simulacra writes in a binary file get it made here.
SETUP = {"memory": _memories}


def test_the_builtins_are_registered():
    assert {"character", "history", "lore", "notes"} <= set(registry())
    assert all(isinstance(f, Faculty) and f.name == name for name, f in registry().items())


@pytest.mark.parametrize("name", sorted(registry()))
async def test_every_faculty_yields_strings(name, tmp_path, make_em, monkeypatch):
    monkeypatch.setenv("SIMULACRA_MODEL", "fake:Aye.")
    ensembles = [{"faculty": name, **MINIMAL.get(name, {})}]
    em = make_em(tmp_path, {"representation_model": "hash", "continuation_model": "fake:Aye.",
                            "ensembles": ensembles}, FILES)
    SETUP.get(name, lambda folder: None)(em.folder)
    em = Em.load(em.folder)  # through the real config path: entry point -> schema -> faculty
    [(faculty, config)] = em.faculties
    history = [Message("tom", "When does the tide turn?"), Message("mara", "At noon.")]
    items = [item async for item in faculty.run(em, config, history)]
    assert items, f"{name} yielded nothing for an em that has what it reads"
    assert all(isinstance(i, str) and i for i in items)
