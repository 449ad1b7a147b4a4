"""`genrec embed` with tiny real encoders built from configs (no downloaded weights)."""

import json

import numpy as np
import pytest
import torch

from genrec.cli import main
from genrec.data import load_dataset_dir
from genrec.data.embed import EmbedError, embed_dataset, embed_texts, item_text
from genrec.errors import DataError

WORDS = "guitar strings steel acoustic electric bass drum stick fender yamaha maple neck brand categories".split()
MAX_POS = 24  # tiny position table: a text longer than this must be truncated or the model fails

ITEMS = [
    {"item_id": "A1", "title": "acoustic guitar", "brand": "yamaha", "categories": ["guitar"], "description": ""},
    {
        "item_id": "A2",
        "title": "electric bass",
        "brand": "fender",
        "categories": ["bass", "electric"],
        "description": " ".join(["maple neck"] * 40),
    },  # far longer than MAX_POS tokens
    {"item_id": "A3", "title": "drum stick", "brand": "", "categories": []},
    {"item_id": "A4"},  # no text at all
]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizer

    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", ":"] + WORDS) + "\n")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=MAX_POS,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    (d / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in ITEMS))
    (d / "sequences.jsonl").write_text(json.dumps({"user_id": "u", "items": ["A1", "A2", "A3", "A4"]}) + "\n")
    return d


def test_item_text_order():
    assert item_text(ITEMS[0]) == "acoustic guitar. Brand: yamaha. Categories: guitar"
    assert item_text({"item_id": 1, "description": ["a", "b"], "title": "t"}) == "t. a b"
    assert item_text(ITEMS[3]) == ""


def test_text_embeddings(text_model, data_dir):
    info = embed_dataset(data_dir, text_model=str(text_model), max_length=MAX_POS, batch_size=2)
    emb = np.load(data_dir / "text_emb.npy")
    assert emb.dtype == np.float32 and emb.shape == (4, 16)
    assert np.isnan(emb[3]).all() and not np.isnan(emb[:3]).any()  # the item without text is missing
    np.testing.assert_allclose(np.linalg.norm(emb[:3], axis=1), 1.0, atol=1e-5)
    assert info["text"]["missing_rows"] == 1 and info["text"]["shape"] == [4, 16]
    assert json.loads((data_dir / "embed_info.json").read_text()) == info

    # Deterministic, and independent of batch composition (padding is masked out of the mean).
    texts = [item_text(it) for it in ITEMS]
    again = embed_texts(texts, str(text_model), max_length=MAX_POS, batch_size=1)
    np.testing.assert_allclose(again, emb, atol=1e-5)
    assert np.isnan(again[3]).all()

    # Mean pooling by hand for one item, straight from the model.
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(text_model), AutoModel.from_pretrained(text_model).eval()
    with torch.no_grad():
        hidden = model(**tok(texts[0], return_tensors="pt")).last_hidden_state[0]
    ref = hidden.mean(0) / hidden.mean(0).norm()
    np.testing.assert_allclose(emb[0], ref.numpy(), atol=1e-5)
    assert not np.allclose(emb[0], emb[2], atol=1e-3)

    data = load_dataset_dir(data_dir)
    assert data.missing_rows("text").tolist() == [3]


def test_max_length_is_capped_by_the_model(text_model):
    # The text is longer than the tiny model's position table; asking for more tokens than the model
    # takes falls back to its limit instead of failing inside the model.
    long = item_text(ITEMS[1])
    capped = embed_texts([long], str(text_model), max_length=4 * MAX_POS)
    np.testing.assert_allclose(capped, embed_texts([long], str(text_model), max_length=MAX_POS), atol=1e-6)
    assert not np.allclose(capped, embed_texts([long], str(text_model), max_length=8), atol=1e-3)


def test_image_embeddings(tmp_path, data_dir):
    Image = pytest.importorskip("PIL.Image", reason="pillow (the [embed] extra) is not installed")
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    model_dir = tmp_path / "tiny_clip"
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": 50,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(model_dir)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(model_dir)

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for item_id, ext in (("A1", "jpg"), ("A3", "png")):  # A2 and A4 have no image
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"{item_id}.{ext}")

    info = embed_dataset(data_dir, image_model=str(model_dir), images_dir=images, batch_size=1)
    emb = np.load(data_dir / "image_emb.npy")
    assert emb.dtype == np.float32 and emb.shape == (4, 8)
    assert np.isnan(emb[[1, 3]]).all() and not np.isnan(emb[[0, 2]]).any()
    np.testing.assert_allclose(np.linalg.norm(emb[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[2], atol=1e-3)
    assert info["image"]["missing_rows"] == 2

    embed_dataset(data_dir, image_model=str(model_dir), images_dir=images, batch_size=4)
    np.testing.assert_allclose(np.load(data_dir / "image_emb.npy"), emb, atol=1e-5, equal_nan=True)
    assert load_dataset_dir(data_dir).missing_rows("image").tolist() == [1, 3]

    (images / "A2.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"A2\.jpg: cannot read the image"):
        embed_dataset(data_dir, image_model=str(model_dir), images_dir=images)


def test_errors_and_cli(text_model, data_dir, tmp_path, capsys):
    with pytest.raises(EmbedError, match="nothing to do"):
        embed_dataset(data_dir)
    with pytest.raises(EmbedError, match="images folder"):
        embed_dataset(data_dir, image_model="x")
    with pytest.raises(EmbedError, match="cannot load the text tokenizer"):
        embed_dataset(data_dir, text_model=str(tmp_path / "no_such_model"))
    assert not (data_dir / "text_emb.npy").exists()

    rc = main(["embed", "--data", str(data_dir), "--text-model", str(text_model), "--max-length", str(MAX_POS)])
    assert rc == 0
    assert "text_emb.npy: 4 x 16" in capsys.readouterr().out
    rc = main(["embed", "--data", str(tmp_path / "nowhere"), "--text-model", str(text_model)])
    assert rc == 2 and "items.jsonl: missing file" in capsys.readouterr().err


def test_encoder_decoder_text_model_uses_its_encoder(text_model, tmp_path):
    from transformers import AutoTokenizer, T5Config, T5Model

    path = tmp_path / "tiny_t5"
    AutoTokenizer.from_pretrained(text_model).save_pretrained(path)
    torch.manual_seed(0)
    config = T5Config(vocab_size=8 + len(WORDS), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    T5Model(config).save_pretrained(path)
    emb = embed_texts(["acoustic guitar", "drum stick"], str(path))
    assert emb.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
