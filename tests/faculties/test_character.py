"""The character faculty: corpus retrieval that is relevant, ordered, cached on disk and in memory."""
import re

import numpy as np
import pytest

from simulacra.engine.embed import HashEmbedder
from simulacra.faculties import character, parse_faculty
from simulacra.types import Message

TOPICS = {
    "sailing": [
        "We reefed the mainsail as the wind rose, and the boat heeled hard to port while spray came over the bow.",
        "At the marina I coiled the halyards, checked the mooring lines and pumped the bilge dry before leaving the yacht.",
        "Tacking upwind means turning the bow through the wind so the sails fill on the other side; "
        "the jib sheet has to be released at the right moment.",
    ],
    "baking": [
        "Knead the dough for ten minutes until it is smooth and elastic, then leave it to rise in a warm bowl "
        "covered with a cloth.",
        "My sourdough starter needs feeding with flour and water every day, and it bubbles when the wild yeast is active.",
        "Bake the loaf in a hot oven until the crust is golden brown and it sounds hollow when you tap the bottom.",
    ],
    "astronomy": [
        "Through the telescope we saw the rings of Saturn and four moons of Jupiter lined up beside the planet.",
        "A supernova is the explosion of a massive star at the end of its life, briefly outshining its whole galaxy.",
        "Far from the city lights, the Milky Way stretched across the night sky and a meteor shower began after midnight.",
    ],
    "chess": [
        "White opened with the queen's gambit, offering a pawn to gain control of the center of the board.",
        "He castled kingside early, then moved his rook to the open file and checkmated my king with a knight.",
        "In the endgame, with only kings and pawns left, the player who controls the opposition usually wins.",
    ],
    "gardening": [
        "Plant the tomato seedlings after the last frost, water them deeply, and tie the stems to stakes as they grow.",
        "Compost made from kitchen scraps, leaves and grass clippings turns into rich dark soil for the vegetable beds.",
        "Prune the roses in late winter, cutting just above an outward-facing bud to keep the centre of the bush open.",
    ],
    "beekeeping": [
        "The beekeeper lit the smoker, lifted a frame from the hive and checked the brood for the queen's eggs.",
        "In late summer we extracted the honey, spinning the combs in the extractor and straining it into jars.",
        "A swarm left the colony and clustered on a branch, so we shook them into a box to start a new hive.",
    ],
    "knitting": [
        "Cast on sixty stitches with the wool, then knit two, purl two for the ribbing of the sweater cuff.",
        "I dropped a stitch three rows back and had to use a crochet hook to ladder it back up.",
        "She chose a soft merino yarn in deep blue for the scarf and used circular needles for the hat.",
    ],
    "volcanoes": [
        "Lava poured from the crater and molten rock flowed down the slopes of the volcano toward the village.",
        "Ash from the eruption darkened the sky for days and flights across the region were cancelled.",
        "Geologists measure tremors and gas emissions to predict when a volcano may erupt again.",
    ],
}

# (topic, chunk index, query, paraphrased: shares no content word with its chunk)
QUERIES = [
    ("sailing", 2, "How do I tack upwind and when do I let the jib sheet go?", False),
    ("sailing", 0, "A strong gust made our vessel lean over, so we shortened the canvas while seawater "
                   "splashed across the deck.", True),
    ("baking", 1, "How often should I feed a sourdough starter?", False),
    ("baking", 2, "How do I tell when my bread has finished cooking? The outside should darken nicely.", True),
    ("astronomy", 0, "Can you see Saturn's rings with a small telescope?", False),
    ("astronomy", 1, "What happens when a giant sun dies violently and blows apart?", True),
    ("chess", 2, "Who wins a king and pawn endgame?", False),
    ("chess", 0, "In chess, which early sacrifice lets you dominate the middle squares?", True),
    ("gardening", 2, "When should I prune my roses?", False),
    ("gardening", 1, "Rotting food waste and yard debris can feed the earth where we grow crops.", True),
    ("beekeeping", 2, "A swarm of bees left the hive, what now?", False),
    ("beekeeping", 1, "Harvest time: collecting the sweet golden syrup the insects made and bottling it.", True),
    ("knitting", 1, "I dropped a stitch, can a crochet hook fix it?", False),
    ("knitting", 2, "Picking a gentle sheep fiber in navy colour to make neck warmers and headwear.", True),
    ("volcanoes", 2, "Can geologists predict when a volcano will erupt?", False),
    ("volcanoes", 1, "The mountain blew up and a grey cloud of dust blotted out the sun, grounding planes.", True),
]

STOPWORDS = set("a an and the of to in on at for with from into as is it its my our we i you do how what "
                "when where which who can should will may be has have had so then this that while there "
                "their them they he she his her me up out over back".split())


def content_words(text: str) -> set[str]:
    return {w.removesuffix("'s") for w in re.findall(r"[a-z']+", text.lower())} - STOPWORDS


def corpus_files() -> dict[str, str]:
    return {f"mara.chr/{topic}.txt": "%%%\nformat: prose\n%%%\n" + "\n\n".join(chunks) + "\n"
            for topic, chunks in TOPICS.items()}


def config(**keys):
    return parse_faculty({"faculty": "character", **keys}, "test", "ensembles[0]")[1]


async def items(em, cfg, history):
    return [t async for t in character.FACULTY.run(em, cfg, history)]


@pytest.fixture(autouse=True)
def fresh_process_cache():
    character.clear_cache()
    yield
    character.clear_cache()


def test_paraphrases_really_share_no_content_words():
    for topic, i, query, paraphrased in QUERIES:
        shared = content_words(query) & content_words(TOPICS[topic][i])
        assert bool(shared) != paraphrased, (query, shared)


@pytest.mark.slow
async def test_minilm_puts_the_matching_chunk_in_the_top_3(tmp_path, make_em):
    em = make_em(tmp_path, files=corpus_files())  # representation_model: the default MiniLM
    cfg = config(max_items=3, recent_message_attention=1)
    misses = []
    for topic, i, query, _ in QUERIES:
        top = await items(em, cfg, [Message("sam", "unrelated earlier chatter"), Message("tom", query)])
        assert len(top) == 3
        if TOPICS[topic][i] not in top:
            misses.append((query, top))
    assert not misses


class Counting(HashEmbedder):
    def __init__(self):
        super().__init__(64)
        self.texts: list[str] = []

    def _embed(self, texts):
        self.texts += texts
        return super()._embed(texts)


def test_second_start_embeds_nothing(tmp_path, make_em):
    em = make_em(tmp_path, files=corpus_files())
    cfg = config()
    first = Counting()
    built = character.corpus_index(em, cfg, embedder=first)
    assert len(first.texts) == len(built.chunks) == 24
    assert (em.state / "cache" / "embeddings.db").is_file()

    character.clear_cache()  # as if the process restarted
    second = Counting()
    rebuilt = character.corpus_index(em, cfg, embedder=second)
    assert second.texts == []
    np.testing.assert_allclose(rebuilt.index.vector(5), built.index.vector(5))


def test_index_is_kept_per_process_and_rebuilt_only_for_changed_files(tmp_path, make_em):
    em = make_em(tmp_path, files=corpus_files())
    cfg = config()
    embedder = Counting()
    built = character.corpus_index(em, cfg, embedder=embedder)
    assert character.corpus_index(em, cfg, embedder=embedder) is built
    (em.corpus_folder / "zz_new.txt").write_text("The lighthouse keeper trimmed the wick.\n")
    embedder.texts.clear()
    rebuilt = character.corpus_index(em, cfg, embedder=embedder)
    assert rebuilt is not built and len(rebuilt.chunks) == 25
    assert embedder.texts == ["The lighthouse keeper trimmed the wick."]  # the rest came from disk


async def test_most_relevant_first_and_max_items(tmp_path, make_em):
    em = make_em(tmp_path, {"representation_model": "hash"}, corpus_files())
    history = [Message("tom", "sourdough starter flour water yeast bubbles")]
    everything = await items(em, config(), history)
    assert len(everything) == 24 and everything[0] == TOPICS["baking"][1]
    assert await items(em, config(max_items=2), history) == everything[:2]
    scored = await character.retrieve(em, config(), history)
    scores = [s for _, s in scored]
    assert scores == sorted(scores, reverse=True)
    assert scored[0][0].source.name == "baking.txt" and scored[0][0].line == 6


async def test_query_is_the_recent_messages_only(tmp_path, make_em):
    em = make_em(tmp_path, {"representation_model": "hash"}, corpus_files())
    history = [Message("tom", "sourdough starter flour water yeast bubbles"), Message("sam", "lava crater molten rock")]
    assert (await items(em, config(recent_message_attention=1), history))[0] == TOPICS["volcanoes"][0]
    assert await items(em, config(recent_message_attention=0), history) == []
    assert await items(em, config(), []) == []


async def test_approximate_search_above_threshold(tmp_path, make_em):
    em = make_em(tmp_path, {"representation_model": "hash"}, corpus_files())
    history = [Message("tom", "telescope rings Saturn moons Jupiter planet")]
    exact = await items(em, config(max_items=3), history)
    approx_cfg = config(max_items=3, approximate_above=10)
    assert character.corpus_index(em, approx_cfg).index.approximate
    assert (await items(em, approx_cfg, history))[0] == exact[0] == TOPICS["astronomy"][0]


async def test_name_reads_another_corpus_and_chunk_keys(tmp_path, make_em):
    em = make_em(tmp_path, {"representation_model": "hash"},
                 {"tom.chr/log.txt": "<tom> one\n<tom> two\n<tom> three\n<tom> four\n---\n<tom> five\n"})
    history = [Message("sam", "hello")]
    assert await items(em, config(), history) == []  # mara.chr does not exist: nothing to retrieve
    got = await items(em, config(name="tom", chunk_size=2), history)
    assert sorted(got) == sorted(["<tom> one\n<tom> two", "<tom> three\n<tom> four", "<tom> five"])
    by_section = await items(em, config(name="tom", chunk_by="section"), history)
    assert len(by_section) == 2


async def test_chunks_are_rendered_in_the_em_format(tmp_path, make_em):
    em = make_em(tmp_path, {"representation_model": "hash", "message_history_format": "colon"},
                 {"mara.chr/log.txt": "<tom> ahoy there\n"})
    assert await items(em, config(), [Message("sam", "ahoy")]) == ["tom: ahoy there"]


def test_unknown_config_key_is_refused():
    from simulacra.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'chunk_size'"):
        config(chunk_sise=3)
