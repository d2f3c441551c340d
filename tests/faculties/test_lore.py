"""Lore: SillyTavern World Info semantics, rule by rule, and the lore.yaml format."""
import pytest
import yaml

from simulacra.errors import ConfigError
from simulacra.faculties import lore, parse_faculty
from simulacra.faculties.lore import Entry, activate, compile_rules
from simulacra.types import Message


def config(**keys) -> lore.Config:
    return parse_faculty({"faculty": "lore", **keys}, "test", "ensembles[0]")[1]


def active(entries: list[dict], messages: list[str], count_tokens=None, **keys) -> list[str]:
    """The names of the entries that make it in, in yield order."""
    cfg = config(**keys)
    rules = compile_rules([Entry(**{"content": e.get("name", "x"), **e}) for e in entries], cfg)
    return [e.name for e in activate(rules, messages, cfg, count_tokens)]


def test_any_primary_key_activates():
    entries = [{"name": "bell", "keys": ["bell", "belfry"]}, {"name": "tide", "keys": ["tide"]}]
    assert active(entries, ["up in the BELFRY"]) == ["bell"]
    assert active(entries, ["nothing here"]) == []


@pytest.mark.parametrize("logic, secondary_hits, expected", [
    ("and_any", 0, False), ("and_any", 1, True), ("and_any", 2, True),
    ("and_all", 1, False), ("and_all", 2, True),
    ("not_any", 0, True), ("not_any", 1, False),
    ("not_all", 1, True), ("not_all", 2, False), ("not_all", 0, True),
    ("AND ALL", 2, True),  # SillyTavern's spelling
])
def test_secondary_key_logic(logic, secondary_hits, expected):
    entry = {"name": "e", "keys": ["king"], "secondary_keys": ["crown", "throne"], "logic": logic}
    text = "the king " + " ".join(["crown", "throne"][:secondary_hits])
    assert active([entry], [text]) == (["e"] if expected else [])
    assert active([entry], ["crown throne"]) == []  # secondaries alone never activate


def test_constant_is_always_in_and_disabled_never():
    entries = [{"name": "always", "constant": True}, {"name": "off", "keys": ["x"], "enabled": False}]
    assert active(entries, ["x"]) == ["always"]
    assert active(entries, []) == ["always"]


def test_case_sensitivity_global_and_per_entry():
    entries = [{"name": "a", "keys": ["Rome"]}, {"name": "b", "keys": ["Paris"], "case_sensitive": False}]
    assert active(entries, ["rome and paris"]) == ["a", "b"]
    assert active(entries, ["rome and paris"], case_sensitive=True) == ["b"]
    assert active(entries, ["Rome"], case_sensitive=True) == ["a"]


def test_whole_words():
    entries = [{"name": "cat", "keys": ["cat"]}, {"name": "sea", "keys": ["sea"], "match_whole_words": False}]
    assert active(entries, ["concatenate the seas"]) == ["cat", "sea"]
    assert active(entries, ["concatenate the seas"], match_whole_words=True) == ["sea"]
    assert active(entries, ["a cat."], match_whole_words=True) == ["cat"]


def test_regex_keys():
    entries = [{"name": "r", "keys": ["/drown(ed|ing)/i"]}]
    assert active(entries, ["the DROWNED bell"]) == ["r"]
    assert active(entries, ["drown"]) == []


def test_scan_depth_global_and_per_entry():
    entries = [{"name": "old", "keys": ["anchor"]}, {"name": "deep", "keys": ["anchor"], "scan_depth": 3}]
    messages = ["anchor", "one", "two"]
    assert active(entries, messages, scan_depth=2) == ["deep"]
    assert active(entries, messages, scan_depth=3) == ["old", "deep"]
    assert active(entries, messages, recent_message_attention=3) == ["old", "deep"]  # the default depth
    assert active([{"name": "n", "keys": ["two"]}], messages, scan_depth=0) == []


def test_recursion_is_bounded_and_flags_hold():
    chain = [
        {"name": "a", "keys": ["alpha"], "content": "see beta"},
        {"name": "b", "keys": ["beta"], "content": "see gamma"},
        {"name": "c", "keys": ["gamma"], "content": "see delta"},
        {"name": "d", "keys": ["delta"], "content": "end"},
    ]
    assert active(chain, ["alpha"]) == ["a", "b", "c", "d"]
    assert active(chain, ["alpha"], max_recursion=1) == ["a", "b"]
    assert active(chain, ["alpha"], recursive=False) == ["a"]
    stop = [dict(chain[0], prevent_recursion=True)] + chain[1:]
    assert active(stop, ["alpha"]) == ["a"]
    excluded = [chain[0], dict(chain[1], exclude_recursion=True)] + chain[2:]
    assert active(excluded, ["alpha"]) == ["a"]
    assert active(excluded, ["beta"]) == ["b", "c", "d"]  # a direct mention still works


def test_order_higher_is_yielded_first():
    entries = [{"name": "low", "keys": ["x"], "order": 10}, {"name": "high", "keys": ["x"], "order": 300},
               {"name": "mid", "keys": ["x"], "order": 100}, {"name": "mid2", "keys": ["x"], "order": 100}]
    assert active(entries, ["x"]) == ["high", "mid", "mid2", "low"]


def one_token_per_char(text: str) -> int:
    return len(text)


def test_budget_constant_first_then_order_then_closes():
    entries = [
        {"name": "c", "constant": True, "content": "cccc", "order": 1},
        {"name": "hi", "keys": ["x"], "content": "hhhh", "order": 200},
        {"name": "big", "keys": ["x"], "content": "b" * 20, "order": 150},
        {"name": "lo", "keys": ["x"], "content": "ll", "order": 100},
    ]
    # separator "\n" costs 1 between items: c(4) + hi(1+4) = 9; big does not fit, and closes the budget
    assert active(entries, ["x"], one_token_per_char, max_tokens=20) == ["hi", "c"]
    assert active(entries, ["x"], one_token_per_char, max_tokens=4) == ["c"]
    assert active(entries, ["x"], one_token_per_char, max_tokens=100) == ["hi", "big", "lo", "c"]


def test_budget_prefers_direct_mentions_over_recursive_ones():
    entries = [
        {"name": "direct", "keys": ["x"], "content": "mentions rec", "order": 1},
        {"name": "rec", "keys": ["rec"], "content": "r", "order": 999},
        {"name": "direct2", "keys": ["x"], "content": "dd", "order": 2},
    ]
    assert active(entries, ["x"], one_token_per_char, max_tokens=15) == ["direct2", "direct"]
    assert active(entries, ["x"], one_token_per_char) == ["rec", "direct2", "direct"]


async def test_lore_file_format_and_run(tmp_path, make_em):
    data = {"entries": [
        {"name": "Bell", "keys": "bell", "content": "The harbour bell rings before storms.", "order": 50},
        {"name": "Tom", "keys": ["tom"], "content": "Tom keeps the lighthouse.", "order": 200},
        {"name": "World", "constant": True, "content": "It is the year 1820."},
    ]}
    em = make_em(tmp_path, files={"lore.yaml": yaml.safe_dump(data)})
    history = [Message("tom", "did you hear the bell?")]  # speaker names are scanned too
    got = [t async for t in lore.FACULTY.run(em, config(), history)]
    assert got == ["Tom keeps the lighthouse.", "It is the year 1820.", "The harbour bell rings before storms."]
    assert [t async for t in lore.FACULTY.run(em, config(), [])] == ["It is the year 1820."]


async def test_missing_file(tmp_path, make_em):
    em = make_em(tmp_path)
    assert [t async for t in lore.FACULTY.run(em, config(), [])] == []
    with pytest.raises(ConfigError, match="world.yaml does not exist"):
        [t async for t in lore.FACULTY.run(em, config(file="world.yaml"), [])]


@pytest.mark.parametrize("text, message", [
    ("entries:\n  - name: Bell\n    keys: [bell]\n    contnet: x\n",
     r"lore\.yaml: unknown key 'entry 1 \('Bell'\)\.contnet' \(did you mean 'content'\?\)"),
    ("entries:\n  - keys: [a]\n    content: ok\n  - name: Two\n    content: no keys\n",
     r"lore\.yaml: entry 2 \('Two'\) has no keys"),
    ("entries:\n  - keys: ['/[unclosed/']\n    content: x\n", r"lore\.yaml: entry 1: bad regex key"),
    ("entries:\n  - keys: [a]\n    content: x\n    logic: maybe\n", r"lore\.yaml: entry 1\.logic"),
    ("entries:\n  - keys: [a]\n    content: x\n   bad: indent\n", r"lore\.yaml:4: "),
    ("entries:\n  - keys: [a]\n", r"lore\.yaml: entry 1 has no content"),
    ("entries: {a: 1}\n", "must be a list"),
    ("entrys: []\n", "unknown key 'entrys'"),
])
async def test_parse_errors_name_file_and_entry(tmp_path, make_em, text, message):
    em = make_em(tmp_path, files={"lore.yaml": text})
    with pytest.raises(ConfigError, match=message):
        [t async for t in lore.FACULTY.run(em, config(), [])]


def test_edits_to_the_file_are_seen(tmp_path):
    path = tmp_path / "lore.yaml"
    path.write_text("entries:\n  - keys: [a]\n    content: one\n")
    assert [e.content for e in lore.load_entries(path)] == ["one"]
    path.write_text("entries:\n  - keys: [a]\n    content: two, longer\n")
    assert [e.content for e in lore.load_entries(path)] == ["two, longer"]
