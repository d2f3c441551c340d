"""Character cards: V1/V2/V3 JSON, PNG and .charx in; V2 JSON and PNG out, field for field."""
import base64
import copy
import io
import json
import zipfile

import pytest
import yaml

from simulacra.ems import cards, png
from simulacra.ems.em import Em
from simulacra.errors import InputError
from simulacra.faculties import lore

RICH = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Seraphine",
        "description": "{{char}} keeps the lighthouse at Gull Point.\nShe trusts {{user}} slowly.\n\n",
        "personality": "dry, watchful, kind underneath",
        "scenario": "A storm night. {{user}} knocks at the lighthouse door.",
        "first_mes": "*opens the door a crack* Who's out there in this weather?\nCome in before the wind takes you.",
        "mes_example": "<START>\n{{user}}: Do you ever sleep?\n{{char}}: When the lamp does. Which is never.\n"
                       "<START>\n{{user}}: Tell me about the keeper before you.\n{{char}}: Old Ned. "
                       "He talked to the gulls.\nThey talked back, he said.\n",
        "creator_notes": "Best with a slow-paced model. Seraphine is not a pirate.",
        "system_prompt": "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}.",
        "post_history_instructions": "Keep replies under 60 words. Stay in character as {{char}}.",
        "alternate_greetings": ["*trims the wick* You again.", "The lamp's lit. Sit if you like."],
        "character_book": {
            "name": "Gull Point",
            "description": "places and people",
            "scan_depth": 4,
            "token_budget": 512,
            "recursive_scanning": True,
            "extensions": {"world_source": "gullpoint"},
            "entries": [
                {"keys": ["lamp", "light"], "content": "The lamp is a Fresnel lens older than {{char}}.",
                 "extensions": {"position": 0, "depth": 4, "selectiveLogic": 0, "probability": 100,
                                "useProbability": True, "exclude_recursion": False, "group": ""},
                 "enabled": True, "insertion_order": 100, "case_sensitive": False, "name": "lamp",
                 "priority": 10, "id": 0, "comment": "the lamp", "selective": True,
                 "secondary_keys": ["storm"], "constant": False, "position": "before_char"},
                {"keys": ["Ned"], "content": "Ned kept the light for forty years and fed the gulls.",
                 "extensions": {"selectiveLogic": 2, "scan_depth": 2, "match_whole_words": True,
                                "prevent_recursion": True},
                 "enabled": True, "insertion_order": 250, "case_sensitive": True, "name": "Ned",
                 "priority": 5, "id": 1, "comment": "", "selective": True,
                 "secondary_keys": ["ghost"], "constant": False, "position": "after_char"},
                {"keys": [], "content": "Gull Point is a rock at the end of the world.", "extensions": {},
                 "enabled": True, "insertion_order": 5, "constant": True, "id": 2, "comment": "always"},
                {"keys": ["", "  "], "content": "An entry with no usable keys.", "extensions": {},
                 "enabled": False, "insertion_order": 0, "id": 3},
                {"keys": ["fog"], "content": "Fog means ships.", "extensions": {}, "enabled": True,
                 "insertion_order": 50, "selective": False, "secondary_keys": ["ignored"], "id": 4,
                 "future_field": {"x": 1}},
            ],
        },
        "tags": ["lighthouse", "slow burn"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "fav": False, "world": "Gull Point",
                       "depth_prompt": {"prompt": "{{char}} smells of salt.", "depth": 4}},
        "an_unknown_field": [1, 2, {"three": 3}],
    },
}


def write_json(path, card):
    path.write_text(json.dumps(card))
    return path


def card_png(card, key="chara", base=None):
    payload = base64.b64encode(json.dumps(card).encode()).decode()
    return png.with_texts(base or png.blank_png(), {key: payload})


def test_v2_json_round_trip_keeps_every_field(tmp_path):
    folder = cards.import_card(write_json(tmp_path / "seraphine.json", RICH), tmp_path / "ems")
    out = cards.export_card(folder, tmp_path / "out.json")
    exported = json.loads(out.read_text())
    assert exported["spec"] == "chara_card_v2" and exported["spec_version"] == "2.0"
    for key, value in RICH["data"].items():
        assert exported["data"][key] == value, key
    assert exported["data"] == RICH["data"]


def test_v2_png_round_trip(tmp_path):
    source = tmp_path / "seraphine.png"
    source.write_bytes(card_png(RICH))
    folder = cards.import_card(source, tmp_path / "ems")
    image = (folder / "card.png").read_bytes()
    assert png.is_png(image) and "chara" not in png.read_texts(image)  # the image, without the card
    out = cards.export_card(folder, tmp_path / "out.png")
    texts = png.read_texts(out.read_bytes())
    assert json.loads(base64.b64decode(texts["chara"]))["data"] == RICH["data"]
    assert cards.read_card(out).data == RICH["data"]


def test_import_maps_fields_onto_em_files(tmp_path):
    folder = cards.import_card(write_json(tmp_path / "c.json", RICH), tmp_path)
    assert folder.name == "seraphine"
    em = Em.load(folder)
    assert em.name == "Seraphine"
    assert (folder / "notes/description.txt").read_text().startswith("Seraphine keeps the lighthouse")
    assert "user slowly" in (folder / "notes/description.txt").read_text()
    history = (folder / "history.txt").read_text()
    assert history.startswith("---\n<Seraphine> *opens the door a crack*")
    examples = (folder / "Seraphine.chr/examples.txt").read_text()
    assert "<user> Do you ever sleep?\n<Seraphine> When the lamp does." in examples
    assert examples.count("\n---\n") == 1
    by_file = {getattr(c, "file", None): c for f, c in em.faculties}
    assert by_file["notes/post_history_instructions.txt"].depth == 0
    assert [f.name for f, _ in em.faculties] == ["notes"] * 4 + ["lore", "character", "history", "notes"]
    lore_config = next(c for f, c in em.faculties if f.name == "lore")
    assert (lore_config.scan_depth, lore_config.max_tokens, lore_config.recursive) == (4, 512, True)
    entries = lore.load_entries(folder / "lore.yaml")
    assert [e.content[:10] for e in entries] == ["The lamp i", "Ned kept t", "Gull Point", "Fog means "]
    lamp, ned, rock, fog = entries
    assert lamp.secondary_keys == ["storm"] and "Seraphine" in lamp.content
    assert (ned.logic, ned.scan_depth, ned.match_whole_words, ned.prevent_recursion, ned.order) == \
        ("not_any", 2, True, True, 250)
    assert rock.constant and fog.secondary_keys == []  # not selective: secondary keys unused
    sidecar = yaml.safe_load((folder / "card.yaml").read_text())
    assert sidecar["data"]["fields"]["tags"] == ["lighthouse", "slow burn"]
    assert sidecar["data"]["fields"]["an_unknown_field"] == [1, 2, {"three": 3}]


async def test_imported_lore_activates(tmp_path):
    from simulacra.types import Message

    em = Em.load(cards.import_card(write_json(tmp_path / "c.json", RICH), tmp_path))
    faculty, config = next((f, c) for f, c in em.faculties if f.name == "lore")
    items = [i async for i in faculty.run(em, config, [Message("user", "the storm put out the lamp")])]
    assert any("Fresnel" in i for i in items) and any("end of the world" in i for i in items)


def test_edits_in_the_em_reach_the_exported_card(tmp_path):
    folder = cards.import_card(write_json(tmp_path / "c.json", RICH), tmp_path)
    (folder / "notes/personality.txt").write_text("Seraphine is blunt now.\n")
    text = (folder / "lore.yaml").read_text().replace("Ned kept the light", "Ned tended the light")
    text = text.replace("logic: not_any", "logic: and_all")
    (folder / "lore.yaml").write_text(text + "- keys: [gull]\n  content: Seraphine feeds the gulls.\n")
    data = cards.card_data(folder)
    assert data["personality"] == "{{char}} is blunt now."
    ned = data["character_book"]["entries"][1]
    assert ned["content"].startswith("Ned tended the light")
    assert ned["extensions"]["selectiveLogic"] == 3 and ned["id"] == 1 and ned["priority"] == 5
    assert data["description"] == RICH["data"]["description"]  # untouched: exact original
    entries = data["character_book"]["entries"]
    assert [e.get("id") for e in entries] == [0, 1, 2, 3, 4, None]  # kept order, new entry last
    assert entries[-1] == {"keys": ["gull"], "content": "{{char}} feeds the gulls.", "extensions": {},
                           "enabled": True, "insertion_order": 100, "secondary_keys": [], "constant": False}


def test_v3_png_prefers_ccv3_and_imports(tmp_path):
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0",
          "data": {**copy.deepcopy(RICH["data"]), "name": "Seraphine Three", "nickname": "Sera",
                   "group_only_greetings": [], "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main",
                                                           "ext": "png"}]}}
    v3["data"]["character_book"]["entries"].append(
        {"keys": ["gull+s?"], "content": "Gulls.", "extensions": {}, "enabled": True, "insertion_order": 1,
         "use_regex": True})
    v2 = copy.deepcopy(RICH)
    source = tmp_path / "both.png"
    payload2 = base64.b64encode(json.dumps(v2).encode()).decode()
    source.write_bytes(png.with_texts(card_png(v3, "ccv3"), {"chara": payload2}))
    card = cards.read_card(source)
    assert card.spec == "chara_card_v3" and card.data["name"] == "Seraphine Three"
    folder = cards.import_card(source, tmp_path)
    assert Em.load(folder).name == "Seraphine Three"
    data = cards.card_data(folder)
    assert data["nickname"] == "Sera" and data["mes_example"] == RICH["data"]["mes_example"]
    assert lore.load_entries(folder / "lore.yaml")[-1].keys == ["/gull+s?/"]  # a regex key for lore
    assert data["character_book"] == v3["data"]["character_book"]


def test_v1_json_imports_and_exports_as_v2(tmp_path):
    v1 = {"name": "Bob", "description": "{{char}} fixes bikes.", "personality": "patient",
          "scenario": "", "first_mes": "Flat tyre again?", "mes_example": "", "avatar": "none"}
    folder = cards.import_card(write_json(tmp_path / "bob.json", v1), tmp_path)
    assert (folder / "notes/description.txt").read_text() == "Bob fixes bikes.\n"
    data = json.loads(cards.export_card(folder, tmp_path / "bob2.json").read_text())["data"]
    assert {k: data[k] for k in v1} == v1
    assert data["tags"] == [] and data["extensions"] == {} and data["system_prompt"] == ""


def test_charx_imports_card_and_assets(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("card.json", json.dumps({"spec": "chara_card_v3", "spec_version": "3.0",
                                            "data": {**RICH["data"], "assets": [
                                                {"type": "icon", "uri": "embeded://assets/icon/images/main.png",
                                                 "name": "main", "ext": "png"}]}}))
        z.writestr("assets/icon/images/main.png", png.blank_png())
        z.writestr("../evil.txt", "nope")
    source = tmp_path / "s.charx"
    source.write_bytes(buffer.getvalue())
    folder = cards.import_card(source, tmp_path / "ems")
    assert (folder / "card.png").read_bytes() == png.blank_png()
    assert (folder / "assets/assets/icon/images/main.png").is_file()
    assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))


def test_native_em_exports_a_card(tmp_path):
    from simulacra.ems.scaffold import new_em

    folder = new_em("pip", tmp_path)
    data = cards.card_data(folder)
    assert data["name"] == "pip" and data["description"].startswith("{{char}} is a curious")
    assert data["first_mes"] == "Hello! What shall we talk about?"
    assert data["mes_example"].startswith("<START>\n{{user}}: hello, who are you?\n{{char}}: I'm {{char}}.")
    out = cards.export_card(folder, tmp_path / "pip.png", as_png=False)
    assert cards.read_card(out).data == data  # .png suffix: a PNG whatever the flag


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON (line 1"),
    (b'{"name": "x\xff"}', "not UTF-8"),
    (b"[1, 2]", "a character card is a JSON object"),
    (b'{"spec": "chara_card_v9", "data": {}}', "unknown card spec 'chara_card_v9'"),
    (b'{"spec": "chara_card_v2", "data": "x"}', "needs a 'data' object"),
    (b'{"description": "no name"}', "it has no name"),
    (png.blank_png(), "no character card (no 'chara' or 'ccv3'"),
    (png.with_texts(png.blank_png(), {"chara": "!!!not base64"}), "not base64"),
    (png.blank_png()[:-6], "truncated PNG"),
    (b"PK\x03\x04garbage", "not a valid .charx"),
])
def test_malformed_cards_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "card.bin"
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        cards.read_card(path)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not list(tmp_path.glob("*/config.yaml"))


def test_corrupt_png_checksum(tmp_path):
    data = bytearray(card_png(RICH))
    data[40] ^= 0xFF
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad checksum"):
        cards.read_card(tmp_path / "c.png")


def test_import_refuses_existing_folder(tmp_path):
    source = write_json(tmp_path / "c.json", RICH)
    cards.import_card(source, tmp_path)
    with pytest.raises(Exception, match="already exists"):
        cards.import_card(source, tmp_path)


def test_png_text_chunks_of_every_kind():
    import struct
    import zlib

    itxt = png.chunk(b"iTXt", b"k3\x00\x01\x00en\x00\x00" + zlib.compress("ünï".encode()))
    ztxt = png.chunk(b"zTXt", b"k2\x00\x00" + zlib.compress(b"zipped"))
    base = png.with_texts(png.blank_png(), {"k1": "plain"})
    end = base.rindex(b"IEND") - 4
    data = base[:end] + ztxt + itxt + base[end:]
    assert png.read_texts(data) == {"k1": "plain", "k2": "zipped", "k3": "ünï"}
    assert struct.unpack(">II", png.blank_png()[16:24]) == (1, 1)
