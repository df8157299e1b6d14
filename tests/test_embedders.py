"""lfagent.data.embedders: names, the static encoder distilled on a tiny local transformer, its cache, and
a run + generate that agree when the run used a static encoder."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import EXAMPLE_TASK
from lfagent.data import embedders
from lfagent.data.embedders import StaticEncoder, embedder_name, get_embedder
from lfagent.errors import LFAgentError

pytest.importorskip("model2vec")

WORDS = ("free win prize call now text stop song love video great channel subscribe check out my the a is "
         "this i you to of and what who where when how why").split()
TEXTS = ["free prize call now", "i love this song", "check out my channel", "what is the video", "zzzz qqqq", ""]


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    """A 1-layer, 32-wide BERT with random (seeded) weights and a word-level vocabulary: distils in a second."""
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    transformers.BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(folder))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(str(folder))
    return folder


def test_names_are_checked_and_canonical(monkeypatch):
    monkeypatch.delenv(embedders.ENV_VAR, raising=False)
    assert embedder_name() == "minilm"
    assert embedder_name("minilm-static") == "minilm-static-256"
    assert embedder_name("minilm-static-128") == "minilm-static-128"
    monkeypatch.setenv(embedders.ENV_VAR, "minilm-static-64")
    assert embedder_name() == "minilm-static-64"
    assert embedder_name("minilm") == "minilm"  # an explicit name wins over the environment
    monkeypatch.setenv(embedders.ENV_VAR, "glove")
    with pytest.raises(LFAgentError, match=r"'glove' \(from \$LFAGENT_EMBEDDER\)"):
        embedder_name()
    with pytest.raises(LFAgentError, match="from 1 to 384"):
        embedder_name("minilm-static-999")


def test_static_vectors_are_normalised_float32_of_the_pca_width(tiny_source, tmp_path):
    enc = StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path)
    vectors = enc.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 8) and enc.dim == 8 and vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[:4], 1.0, atol=1e-5)
    assert norms[-1] == 0.0  # no token at all: zeros, not NaN
    assert not np.allclose(vectors[0], vectors[1])
    assert enc.encode([]).shape == (0, 8)


def test_static_encoder_is_deterministic_and_built_once_per_settings(tiny_source, tmp_path):
    first = StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path)
    again = StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path)
    assert first.built_now and not again.built_now and again.path == first.path
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(first.encode(TEXTS), again.encode(TEXTS))
    assert np.array_equal(first.encode(TEXTS[:2]), first.encode(TEXTS)[:2])  # a row does not depend on its batch
    # Built again elsewhere (another machine's cache): the same vectors, so generate can rebuild the run's.
    elsewhere = StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path / "other")
    assert elsewhere.built_now and elsewhere.fingerprint == first.fingerprint
    other = StaticEncoder(tiny_source, pca_dims=4, cache_dir=tmp_path)
    assert other.built_now and other.path != first.path and other.dim == 4
    assert sorted(p.name.split("-")[2] for p in (tmp_path / "embedders").iterdir()) == ["4", "8"]


def test_distilling_draws_no_bar_even_where_tqdm_is_already_imported(tiny_source, tmp_path, capfd):
    import tqdm  # as in any run: transformers and datasets import it first

    assert tqdm.__version__ and StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path).built_now
    assert "Encoding tokens" not in capfd.readouterr().err
    from model2vec.distill import inference
    from tqdm import tqdm as plain

    assert inference.tqdm is plain  # put back for anyone else


def test_a_changed_source_builds_a_new_model(tiny_source, tmp_path):
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(tiny_source, copy)
    before = StaticEncoder(copy, pca_dims=8, cache_dir=tmp_path)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    after = StaticEncoder(copy, pca_dims=8, cache_dir=tmp_path)
    assert after.built_now and after.path != before.path


def test_missing_model2vec_names_the_install_command(tiny_source, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "model2vec", None)  # import model2vec now raises ImportError
    with pytest.raises(LFAgentError, match=r"model2vec.*pip install 'lfagent\[embed\]'"):
        StaticEncoder(tiny_source, pca_dims=8, cache_dir=tmp_path)


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(LFAgentError, match="not a transformer model folder"):
        StaticEncoder(tmp_path, cache_dir=tmp_path)


def _use_tiny_source(monkeypatch, tiny_source):
    import lfagent.data.embed

    monkeypatch.setattr(lfagent.data.embed, "model_path", lambda: tiny_source)
    monkeypatch.setattr(embedders, "_loaded", {})


def test_embedder_caches_vectors_under_the_encoders_name(tiny_source, tmp_path, monkeypatch):
    from lfagent.data.embed import Embedder

    _use_tiny_source(monkeypatch, tiny_source)
    db = tmp_path / "emb.sqlite"
    embedder = Embedder(db, embedder="minilm-static-8")
    expected = get_embedder("minilm-static-8").encode(TEXTS)
    assert embedder.name == "minilm-static-8" and embedder.dim == 8
    assert np.array_equal(embedder.encode(TEXTS), expected)
    embedder.close()
    calls = []
    monkeypatch.setattr(StaticEncoder, "encode", lambda self, texts: calls.append(texts))
    again = Embedder(db, embedder="minilm-static-8")
    assert np.array_equal(again.encode(TEXTS), expected) and calls == []  # all from the sqlite cache
    again.close()


@pytest.fixture(scope="module")
def static_run(tiny_source, tmp_path_factory):
    """The example run with embeddings on and a (tiny) static encoder, then generate over its unlabeled
    file while the environment asks for another encoder: generate must follow the run, not the environment."""
    from lfagent.cli import main as cli_main
    from lfagent.generate import generate

    tmp = tmp_path_factory.mktemp("static-run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use_tiny_source(monkeypatch, tiny_source)
        monkeypatch.setenv(embedders.ENV_VAR, "minilm-static-8")
        assert cli_main(["run", str(EXAMPLE_TASK), "--out", str(tmp / "run"), "--llm", "none", "--quiet"]) == 0
        monkeypatch.setenv(embedders.ENV_VAR, "minilm-static-16")
        generate(tmp / "run", [str(EXAMPLE_TASK.parent / "unlabeled.jsonl")], tmp / "gen.jsonl", batch_size=500,
                 workers=2)
    model = json.loads((tmp / "run" / "model.json").read_text())
    silver = {str(r["id"]): r for r in map(json.loads, (tmp / "run" / "silver.jsonl").read_text().splitlines())}
    got = [json.loads(line) for line in (tmp / "gen.jsonl").read_text().splitlines()]
    return model, silver, got


def _same(row: dict, expected: dict) -> bool:
    names = list(expected["probs"])
    return (row["label"] == expected["label"] and row["covered"] == expected["covered"]
            and np.allclose([row["probs"][c] for c in names], [expected["probs"][c] for c in names], atol=1e-4))


def test_generate_labels_uncovered_rows_with_the_runs_encoder(static_run):
    model, silver, got = static_run
    assert model["labeler"]["embedder"] == "minilm-static-8" and model["uses_embeddings"] and model["labeler"]["expert"]
    assert len(got) == len(silver) and all(row["covered"] == silver[row["id"]]["covered"] for row in got)
    # Rows no LF covers get the embedding classifier alone, in the run and in generate alike.
    uncovered = [row for row in got if not row["covered"]]
    assert len(uncovered) > 50 and all(_same(row, silver[row["id"]]) for row in uncovered)


def test_generate_reproduces_the_runs_silver_with_embeddings_on(static_run):
    _, silver, got = static_run
    assert all(_same(row, silver[row["id"]]) for row in got)


def test_run_models_written_before_the_field_read_as_minilm():
    from lfagent.rundir.files import RunModel

    old = {"run_id": "r", "task": {"classes": [{"name": "a"}, {"name": "b"}], "seeds": "s.jsonl"}, "lfs": [],
           "label_model": None, "calibrator": {}, "fallback": None, "prior": [0.5, 0.5], "lf_set_hash": "h",
           "uses_embeddings": True}
    assert RunModel.model_validate(old).labeler.embedder == "minilm"


@pytest.mark.slow
def test_distilled_minilm_keeps_meaning(monkeypatch):
    """The real thing, from the bundled MiniLM (about a minute and a half to distil on 2 cores)."""
    monkeypatch.setattr(embedders, "_loaded", {})
    enc = get_embedder("minilm-static-256")
    a, b, c = enc.encode(["win a free prize, call now", "you have won a cash prize! text back",
                          "what is the capital of france?"])
    assert enc.dim == 256 and float(a @ b) > float(a @ c) + 0.1


def test_seed_separability_sees_class_structure_and_its_absence():
    from lfagent.data.embedders import seed_separability

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    centres = rng.normal(size=(3, 16))
    clear = centres[y] + 0.1 * rng.normal(size=(90, 16))
    assert seed_separability(clear, y) > 0.95
    noise = rng.normal(size=(90, 16))
    assert seed_separability(noise, y) < 0.6  # chance is 1/3
    rare = np.array([0] * 40 + [1] * 2)  # a class with two seeds still gets a two-fold estimate
    assert 0.0 <= seed_separability(rng.normal(size=(42, 4)), rare) <= 1.0
    with pytest.raises(ValueError, match="90 vectors but 89 labels"):
        seed_separability(clear, y[:-1])


def test_choose_embedder_prefers_the_fast_one_within_tolerance():
    from lfagent.data.embedders import choose_embedder

    fast = "minilm-static-256"
    assert choose_embedder({"minilm": 0.80, fast: 0.78}, preferred=fast) == fast
    assert choose_embedder({"minilm": 0.80, fast: 0.76}, preferred=fast) == "minilm"
    assert choose_embedder({"minilm": 0.80, fast: 0.76}, preferred=fast, tolerance=0.05) == fast


def test_a_read_only_cache_leaves_no_files_behind_and_refuses_writes(tmp_path):
    import sqlite3

    from lfagent.data.embed import Embedder

    path = tmp_path / "embeddings.sqlite"
    writer = Embedder(path)
    writer._store({"k": np.ones(3, dtype=np.float32)})
    writer.close()
    reader = Embedder(path, store=False)
    assert reader._db.execute("SELECT COUNT(*) FROM emb").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError):
        reader._db.execute("DELETE FROM emb")
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings.sqlite"]
    assert Embedder(tmp_path / "missing.sqlite", store=False)._db is None
