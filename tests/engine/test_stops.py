"""Stop sequences must hold however the text is chunked."""
from hypothesis import given, strategies as st

from simulacra.engine.stops import StopMatcher

alphabet = st.sampled_from("ab<>\n x")
texts = st.text(alphabet, max_size=40)
stop_lists = st.lists(st.text(alphabet, min_size=1, max_size=5), min_size=1, max_size=4)


def reference(text: str, stops: list[str]) -> str:
    """Cut where the first stop to complete begins (ties: the earliest start)."""
    for end in range(1, len(text) + 1):
        starts = [end - len(s) for s in stops if end >= len(s) and text[end - len(s):end] == s]
        if starts:
            return text[: min(starts)]
    return text


def stream(text: str, stops: list[str], cuts: list[int]) -> str:
    m, out, prev = StopMatcher(stops), [], 0
    for cut in sorted(set(c % (len(text) + 1) for c in cuts)) + [len(text)]:
        out.append(m.feed(text[prev:cut]))
        prev = cut
        if m.stopped:
            return "".join(out)
    return "".join(out) + m.flush()


@given(texts, stop_lists, st.lists(st.integers(0, 100), max_size=10))
def test_any_chunking_matches_reference(text, stops, cuts):
    assert stream(text, stops, cuts) == reference(text, stops)


@given(texts, stop_lists)
def test_no_part_of_a_stop_is_emitted_before_the_stop(text, stops):
    emitted = stream(text, stops, list(range(len(text))))  # one character at a time
    assert not any(s in emitted for s in stops)


def test_split_stop_across_chunks():
    m = StopMatcher(["</s>"])
    assert m.feed("hello <") == "hello "
    assert m.feed("/") == ""
    assert m.feed("s> world") == ""
    assert m.stopped


def test_false_start_is_released():
    m = StopMatcher(["\n<bob>"])
    assert m.feed("one\n<bo") == "one"
    assert m.feed("ok> fine") == "\n<book> fine"
    assert not m.stopped
