"""Embedders: shapes, unit norms, determinism, n-gram overlap; the real MiniLM model on paraphrases."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from socius.text.embed import (Embedder, HashingEmbedder, SentenceTransformerEmbedder, embeddings_available,
                                  make_embedder)
from socius.ecs import STR
from socius.errors import MissingExtraError

words = st.text(alphabet="abcdefgh ,.!", max_size=40)


@given(st.lists(words, max_size=20), st.integers(1, 64))
@settings(max_examples=60, deadline=None)
def test_hashing_rows_are_unit_or_zero_and_deterministic(texts, dim):
    emb = HashingEmbedder(dim=dim)
    v = emb.embed(texts)
    assert v.shape == (len(texts), dim) and v.dtype == np.float32
    norms = np.linalg.norm(v, axis=1)
    has_word = np.array([any(c.isalnum() for c in t) for t in texts], dtype=bool)
    assert np.allclose(norms[has_word], 1.0, atol=1e-5)
    assert np.all(norms[~has_word] == 0)
    assert np.array_equal(v, HashingEmbedder(dim=dim).embed(list(texts)))


@given(st.lists(words, min_size=1, max_size=12))
@settings(max_examples=40, deadline=None)
def test_hashing_row_does_not_depend_on_batch(texts):
    emb = HashingEmbedder(dim=32)
    batch = emb.embed(texts)
    for i, t in enumerate(texts[:4]):
        assert np.array_equal(batch[i], emb.embed([t])[0])


def test_hashing_input_kinds_and_case():
    emb = HashingEmbedder(dim=64)
    texts = ["The Cat sat", "dog RUNS fast"]
    a = emb.embed(texts)
    assert np.array_equal(a, emb.embed(np.asarray(texts, dtype=STR)))
    assert np.array_equal(a, emb.embed(pa.array(texts)))
    assert np.array_equal(a, emb.embed(["the cat SAT", "Dog runs FAST"]))
    with pytest.raises(TypeError, match="not one str"):
        emb.embed("one string")


def test_hashing_shared_words_are_closer():
    emb = HashingEmbedder()
    v = emb.embed(["the cat sat on the mat", "a cat sat on a mat", "interest rates rose in march"])
    assert v[0] @ v[1] > 0.3 > abs(v[0] @ v[2])
    uni = HashingEmbedder(ngrams=1).embed(["cat dog", "dog cat"])
    bi = emb.embed(["cat dog", "dog cat"])
    assert np.allclose(uni[0], uni[1]) and bi[0] @ bi[1] < 0.99  # bigrams see word order


def test_make_embedder_and_errors():
    e = make_embedder("hashing", dim=16)
    assert isinstance(e, Embedder) and e.dim == 16
    with pytest.raises(ValueError, match="unknown embedder kind"):
        make_embedder("word2vec")
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(dim=0)


@pytest.mark.skipif(embeddings_available(), reason="sentence-transformers is installed here")
def test_minilm_without_extra_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'socius\[embeddings\]'"):
        make_embedder("minilm")


@pytest.mark.embeddings
@pytest.mark.skipif(not embeddings_available(),
                    reason="needs the embeddings extra: pip install 'socius[embeddings]'")
def test_minilm_paraphrases_are_closer_than_unrelated_text():
    emb = make_embedder("minilm", device="cpu", batch_size=4)
    assert isinstance(emb, SentenceTransformerEmbedder) and emb.dim == 384
    pairs = [("A man is playing a guitar.", "Someone plays the guitar."),
             ("The weather is cold and rainy today.", "It is a chilly, wet day."),
             ("I lost my job last week.", "Last week I was fired from work."),
             ("The movie was boring and too long.", "That film dragged on and was dull.")]
    unrelated = ["Interest rates rose by half a percent.", "Penguins live in the southern hemisphere.",
                 "Bake the bread for forty minutes.", "The server returned error 404."]
    a = emb.embed([p[0] for p in pairs])
    b = emb.embed([p[1] for p in pairs])
    u = emb.embed(unrelated)
    assert a.shape == (4, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    para = np.einsum("ij,ij->i", a, b)
    cross = a @ u.T
    assert np.all(para[:, None] > cross), (para, cross)
    assert np.allclose(emb.embed([pairs[0][0]])[0], a[0], atol=1e-5)  # batching does not change a row
