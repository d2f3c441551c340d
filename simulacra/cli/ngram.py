"""`simulacra ngram train|eval`: the toy language models of seed 001 from the command line.

Sample from a trained model with the local engine: ``simulacra complete -m ngram:FILE ...``.
"""
from __future__ import annotations

from pathlib import Path

import typer

from simulacra.cli.app import app, console

ngram = typer.Typer(
    help="Toy n-gram language models (uniform, unigram, Markov chains): train on any text, "
    "evaluate, then sample with the model spec ngram:FILE.",
    no_args_is_help=True,
)
app.add_typer(ngram, name="ngram")

ORDER_HELP = ("How many tokens an n-gram spans, counting the predicted one: 0 = uniform over the "
              "vocabulary, 1 = unigram (token frequencies, no context), N = Markov chain that "
              "looks at the previous N-1 tokens.")


@ngram.command()
def train(
    corpus: str = typer.Argument(..., help="Text file to learn from (UTF-8), or - for stdin."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the model (gzip'd JSON)."),
    order: int = typer.Option(4, "--order", "-n", help=ORDER_HELP),
    level: str = typer.Option("char", "--level", help="Tokens: char (characters) or word (words, "
                              "spaces and punctuation; unseen words fall back to characters)."),
) -> None:
    """Train an n-gram model on a corpus and save it to a file."""
    from simulacra.lm import ngram as lm

    text = lm.read_corpus(corpus)
    with console.stderr.status(f"counting {len(text):,} characters..."):
        model = lm.train(text, order, level)
        model.save(output)
    console.out.print(f"saved {output}: order {model.order} ({_describe(model.order)}), "
                      f"{model.level} level, vocabulary {model.vocab_size:,}, "
                      f"{model.n_ngrams:,} counts")


@ngram.command("eval")
def evaluate(
    model_file: Path = typer.Argument(..., metavar="FILE", help="A model saved by ngram train."),
    text: str = typer.Argument(..., help="Text to score, or @PATH to read it from a file."),
) -> None:
    """Score text: bits per character and per-token perplexity (lower is better)."""
    from simulacra.lm import ngram as lm

    model = lm.load(model_file)
    if text.startswith("@"):
        text = lm.read_corpus(text[1:])
    if not text:
        from simulacra.errors import InputError

        raise InputError("nothing to evaluate: give some text, or @PATH of a non-empty file")
    bits, n_tokens = -model.log2prob(text), len(model.encode(text))
    console.out.print(f"bits per character: {bits / len(text):.4f}")
    console.out.print(f"perplexity: {2 ** (bits / n_tokens):.4f} per {model.level} token "
                      f"({n_tokens:,} tokens)")


def _describe(order: int) -> str:
    if order == 0:
        return "uniform"
    if order == 1:
        return "unigram"
    return f"Markov chain on the previous {order - 1} token{'s' if order > 2 else ''}"
