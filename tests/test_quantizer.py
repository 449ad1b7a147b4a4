"""Cross-modal quantizer: losses, determinism, save/load, collisions, cold start, artifact, CLI."""

import json

import numpy as np
import pytest
import torch

from genrec.data import load_dataset_dir
from genrec.data.synth import SynthConfig, write_synthetic_dataset
from genrec.errors import GenRecError
from genrec.quantizer import CrossModalRQVAE, CrossModalRQVAEConfig, collision_rate, resolve_collisions
from genrec.quantizer.metrics import cross_modal_agreement, entropy, utilization
from genrec.trainers import QuantizerTrainingArguments, train_quantizer

from conftest import genrec_cli

TINY = dict(num_levels=3, codebook_size=16, latent_dim=8, hidden_dims=[32], n_clusters=16)


def tiny_args(**kw):
    return QuantizerTrainingArguments(
        **{**dict(epochs=12, batch_size=128, eval_every=4, save_every=4, progress=False), **kw}
    )


@pytest.fixture(scope="module")
def missing_dir(tmp_path_factory):
    """200 items, 10% without an image embedding."""
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("qdata") / "data", SynthConfig(n_items=200, n_users=250, seed=3, missing_image_rate=0.1)
    )


@pytest.fixture(scope="module")
def artifact(missing_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "quantizer"
    model, metrics = train_quantizer(missing_dir, out, dict(TINY), tiny_args())
    return out, model, metrics


def test_artifact_contract(artifact, missing_dir):
    out, _, metrics = artifact
    for name in (
        "config.json",
        "model.safetensors",
        "sid_text.npy",
        "sid_image.npy",
        "quantizer_metrics.json",
        "collision_report.json",
        "item_codes.jsonl",
        "pseudo_labels.npz",
    ):
        assert (out / name).is_file(), name
    data = load_dataset_dir(missing_dir)
    missing = data.missing_rows("image")
    assert len(missing) > 0
    for m in ("text", "image"):
        ids = np.load(out / f"sid_{m}.npy")
        assert ids.dtype == np.int64 and ids.shape[0] == 200 and ids.shape[1] in (3, 4)
        present = ids[(ids >= 0).all(axis=1)]
        assert len(np.unique(present, axis=0)) == len(present)  # zero collisions after resolution
        assert metrics[m]["collision_rate_after"] == 0.0
        assert len(metrics[m]["utilization"]) == 3 and len(metrics[m]["entropy"]) == 3
    image = np.load(out / "sid_image.npy")
    assert (image[missing] == -1).all() and (image[np.setdiff1d(np.arange(200), missing)] >= 0).all()
    assert metrics["image"]["n_missing"] == len(missing) and metrics["text"]["n_missing"] == 0
    saved = json.loads((out / "quantizer_metrics.json").read_text())
    assert saved["image"]["collision_rate_before"] == metrics["image"]["collision_rate_before"]
    assert 0.0 <= saved["cross_modal_agreement"] <= 1.0
    report = json.loads((out / "collision_report.json").read_text())
    assert report["image"]["n_missing"] == len(missing)
    first = json.loads((out / "item_codes.jsonl").read_text().splitlines()[0])
    assert first["text"] == np.load(out / "sid_text.npy")[0].tolist()


def test_losses_decrease(artifact):
    out, _, _ = artifact
    history = json.loads((out / "quantizer_train_log.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["recon_loss"] < history[0]["recon_loss"]
    assert history[-1]["contrastive_loss"] < history[0]["contrastive_loss"]


def test_save_load_gives_identical_ids(artifact, missing_dir, tmp_path):
    from transformers import AutoModel

    _, model, _ = artifact
    emb = load_dataset_dir(missing_dir).embeddings
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModel.from_pretrained(tmp_path / "m")
    assert isinstance(loaded, CrossModalRQVAE)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    a, b = model.encode(emb), loaded.encode(emb)
    for m in ("text", "image"):
        np.testing.assert_array_equal(a[m], b[m])


def test_same_seed_same_ids_and_resume(missing_dir, artifact, tmp_path):
    out, _, _ = artifact
    # Same seed -> same IDs; stopping after 8 epochs and resuming to 12 changes nothing either.
    ckpt = tmp_path / "ckpt"
    train_quantizer(missing_dir, tmp_path / "a", dict(TINY), tiny_args(epochs=8, checkpoint_dir=str(ckpt)))
    train_quantizer(missing_dir, tmp_path / "b", dict(TINY), tiny_args(checkpoint_dir=str(ckpt), resume=True))
    for m in ("text", "image"):
        np.testing.assert_array_equal(np.load(out / f"sid_{m}.npy"), np.load(tmp_path / "b" / f"sid_{m}.npy"))
    log = json.loads((tmp_path / "b" / "quantizer_train_log.json").read_text())
    assert [h["epoch"] for h in log["history"]] == list(range(1, 13))
    # the same checkpoints resumed on another dataset's embeddings are refused, not silently continued
    other = write_synthetic_dataset(
        tmp_path / "other", SynthConfig(n_items=200, n_users=250, seed=4, missing_image_rate=0.1)
    )
    with pytest.raises(Exception, match="trained on other embeddings"):
        train_quantizer(other, tmp_path / "c", dict(TINY), tiny_args(checkpoint_dir=str(ckpt), resume=True))


def test_switching_losses_changes_loss_terms():
    rng = torch.Generator().manual_seed(0)
    emb = {"text": torch.randn(64, 12, generator=rng), "image": torch.randn(64, 10, generator=rng)}
    labels = {m: torch.randint(0, 4, (64,), generator=rng) for m in emb}
    terms = {}
    for name, kw in {
        "both": {},
        "no_con": dict(use_contrastive=False),
        "no_align": dict(use_alignment=False),
        "none": dict(use_contrastive=False, use_alignment=False),
    }.items():
        torch.manual_seed(1)
        model = CrossModalRQVAE(CrossModalRQVAEConfig(input_dims=[12, 10], **TINY, **kw))
        out = model(emb, labels)
        terms[name] = (out.loss.item(), out.contrastive_loss.item(), out.alignment_loss.item(), out.recon_loss.item())
    assert terms["both"][1] > 0 and terms["both"][2] > 0
    assert terms["no_con"][1] == 0 and terms["no_con"][2] == pytest.approx(terms["both"][2])
    assert terms["no_align"][2] == 0 and terms["no_align"][1] == pytest.approx(terms["both"][1])
    assert terms["none"][1] == terms["none"][2] == 0
    assert terms["both"][0] > terms["no_con"][0] > terms["none"][0]
    assert terms["both"][3] == pytest.approx(terms["none"][3])  # reconstruction unaffected by the switches


def test_contrastive_levels_select_the_contrasted_vectors():
    from genrec.quantizer.losses import pseudo_label_contrastive

    rng = torch.Generator().manual_seed(0)
    emb = {"text": torch.randn(64, 12, generator=rng), "image": torch.randn(64, 10, generator=rng)}
    labels = {m: torch.randint(0, 4, (64,), generator=rng) for m in emb}
    cfg = dict(TINY, input_dims=[12, 10], use_alignment=False, tau=0.1)
    torch.manual_seed(1)
    model = CrossModalRQVAE(CrossModalRQVAEConfig(**cfg))
    expected = {}
    for levels in ([0], [1, 2]):
        model.config.contrastive_levels = levels
        got = model(emb, labels).contrastive_loss.item()
        terms = [
            pseudo_label_contrastive(
                model.rqvae[m].quantize(model.rqvae[m].encoder(emb[m])).residuals[lv], labels[other], 0.1
            )
            for m, other in (("text", "image"), ("image", "text"))
            for lv in levels
        ]
        expected[tuple(levels)] = sum(t.item() for t in terms) / 3  # averaged over the L=3 levels
        assert got == pytest.approx(expected[tuple(levels)], rel=1e-5)
    # Level 0's input is the encoder output itself (the default: the latent is contrasted).
    assert CrossModalRQVAEConfig().contrastive_levels == [0]
    # MACRec's spelling: begin_cross_level=b contrasts levels b..L-1.
    assert CrossModalRQVAEConfig(num_levels=4, begin_cross_level=2).contrastive_levels == [2, 3]
    with pytest.raises(ValueError, match="contrastive_levels"):
        CrossModalRQVAEConfig(num_levels=3, contrastive_levels=[3])


def test_resolve_collisions_nearest_free_code_then_extra_level():
    # Items 0 and 1 share (0, 1); item 1 is farther from code 1, so it moves to its nearest free code.
    codes = np.array([[0, 1], [0, 1], [0, 2], [-1, -1]])
    d = np.array([[5, 0.1, 3, 4], [0.5, 0.4, 0.2, 0.9], [1, 1, 0, 1], [np.nan] * 4])
    ids, rep = resolve_collisions(codes, d)
    assert ids.tolist() == [[0, 1], [0, 0], [0, 2], [-1, -1]]  # code 2 is taken by item 2, so 0 (0.5)
    assert rep["n_moved"] == 1 and not rep["extra_level_appended"] and rep["n_missing"] == 1
    assert collision_rate(codes) == pytest.approx(1 / 3) and collision_rate(ids) == 0
    # A full prefix (M=2, three items under prefix 0): an extra disambiguation level is appended.
    full = np.array([[0, 0], [0, 0], [0, 1], [1, 0]])
    ids, rep = resolve_collisions(full, np.array([[0.1, 1], [0.2, 1], [1, 0.1], [0, 1]]))
    assert rep["extra_level_appended"] and ids.shape == (4, 3)
    assert ids.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]
    again, _ = resolve_collisions(full, np.array([[0.1, 1], [0.2, 1], [1, 0.1], [0, 1]]))
    np.testing.assert_array_equal(ids, again)


def test_a_crowded_id_spreads_over_its_prefix_before_giving_up():
    """M=2: one prefix holds M * M = 4 items (2 last-level codes x 2 disambiguation values), however
    many of them the quantizer put under one ID."""
    crowd = np.zeros((4, 2), dtype=np.int64)
    dists = np.tile([0.0, 1.0], (4, 1))
    ids, rep = resolve_collisions(crowd, dists)
    assert ids.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]]
    assert rep["n_moved"] == 1 and rep["n_spread"] == 1 and len(rep["moved"]) == 2
    with pytest.raises(GenRecError, match=r"more than 4 items share the ID prefix \(0,\)"):
        resolve_collisions(np.zeros((5, 2), dtype=np.int64), np.tile([0.0, 1.0], (5, 1)))


def test_cold_start_keeps_existing_ids_unique(artifact, missing_dir):
    out, model, _ = artifact
    emb = load_dataset_dir(missing_dir).embeddings
    existing = {m: np.load(out / f"sid_{m}.npy") for m in ("text", "image")}
    # New items that duplicate catalogue items: their raw codes all collide with existing IDs.
    new = {m: emb[m][:30] + 1e-3 for m in existing}
    new_ids = model.encode(new, existing=existing)
    for m in existing:
        assert new_ids[m].shape[1] == existing[m].shape[1]
        both = np.concatenate([existing[m], new_ids[m]])
        both = both[(both >= 0).all(axis=1)]
        assert len(np.unique(both, axis=0)) == len(both)
    assert (new_ids["image"][np.isnan(new["image"]).all(axis=1)] == -1).all()


def test_single_modality_tiger_style(synth_dir, tmp_path):
    model, metrics = train_quantizer(synth_dir, tmp_path / "q", dict(TINY), tiny_args(epochs=4), modalities=["text"])
    assert model.config.modalities == ["text"] and not model.config.cross_modal
    assert (tmp_path / "q" / "sid_text.npy").is_file() and not (tmp_path / "q" / "sid_image.npy").exists()
    assert metrics["cross_modal_agreement"] is None and metrics["text"]["collision_rate_after"] == 0


def test_metrics_on_known_codes():
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert utilization(codes, 4) == [0.5, 0.5]
    assert entropy(codes, 2) == [pytest.approx(1.0), pytest.approx(1.0)]
    other = np.array([[0, 0], [0, 0], [1, 0], [2, 0]])  # pairs sharing text code 0: (0,1) also share image 0
    assert cross_modal_agreement({"text": codes, "image": other}) == pytest.approx((1 / 2 + 1 / 1) / 2)


def test_cli_quantize_and_errors(synth_dir, tmp_path, capsys):
    from genrec.cli import main

    out = tmp_path / "q"
    r = genrec_cli(
        "quantize",
        "--data",
        synth_dir,
        "--out",
        out,
        "--levels",
        "2",
        "--codebook-size",
        "16",
        "--latent-dim",
        "8",
        "--hidden-dims",
        "32",
        "--epochs",
        "3",
        "--n-clusters",
        "16",
        "--contrastive-levels",
        "0,1",
    )
    assert "collision_rate_after" in r.stdout and "cross_modal_agreement" in r.stdout
    ids = np.load(out / "sid_text.npy")
    assert ids.shape[0] == 300 and ids.shape[1] in (2, 3)
    for argv, needle in [
        (["--data", str(tmp_path / "nope")], "does not exist"),
        (
            ["--data", str(synth_dir), "--contrastive-levels", "4"],  # the config's own check
            "quantizer settings: contrastive_levels [4] must be level indices in [0, 4)",
        ),
        (["--data", str(synth_dir), "--modalities", "audio"], "audio_emb.npy"),
    ]:
        assert main(["quantize", "--out", str(tmp_path / "x"), *argv]) == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(SystemExit) as parse_error:  # refused while parsing, one line
        main(["quantize", "--out", str(tmp_path / "x"), "--data", str(synth_dir), "--hidden-dims", "a,b"])
    assert parse_error.value.code == 2
    assert "--hidden-dims: expected comma-separated integers, got 'a,b'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def text_and_image_ids(synth_dir, tmp_path_factory):
    """Text embeddings plus image *IDs only* (no image_emb.npy): level 1 = the item's latent type."""
    import shutil

    out = tmp_path_factory.mktemp("idsonly") / "data"
    shutil.copytree(synth_dir, out)
    (out / "image_emb.npy").unlink()
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(0)
    ids = np.stack([[it["latent_type"] for it in items], *rng.integers(0, 16, (2, len(items)))], 1)
    np.save(out / "sid_image.npy", ids)
    return out, ids


def test_ids_only_modality_drives_the_contrastive_loss(text_and_image_ids, tmp_path):
    from genrec.quantizer.kmeans import id_prefix_labels
    from genrec.quantizer.losses import pseudo_label_contrastive

    data_dir, image_ids = text_and_image_ids
    labels = id_prefix_labels(image_ids, 1)
    assert (labels[:, None] == labels[None, :]).tolist() == (image_ids[:, None, 0] == image_ids[None, :, 0]).tolist()
    assert id_prefix_labels(np.array([[1, 2], [-1, -1], [1, 3]]), 1).tolist() == [0, -1, 0]

    # Forward: the text latent is contrasted on the image-ID labels, and the gradient reaches the encoder.
    emb = torch.from_numpy(load_dataset_dir(data_dir).embeddings["text"][:64])
    torch.manual_seed(1)
    model = CrossModalRQVAE(
        CrossModalRQVAEConfig(modalities=["text"], input_dims=[emb.shape[1]], id_modalities=["image"], **TINY)
    )
    assert model.config.cross_modal and model.config.contrastive_partners == ["image"]
    out = model({"text": emb}, {"image": torch.from_numpy(labels[:64])})
    net = model.rqvae["text"]
    expected = (
        pseudo_label_contrastive(net.quantize(net.encoder(emb)).residuals[0], torch.from_numpy(labels[:64]), 0.1)
        / TINY["num_levels"]
    )
    assert out.contrastive_loss.item() == pytest.approx(expected.item(), rel=1e-5) and expected.item() > 0
    out.contrastive_loss.backward()
    assert net.encoder[0].weight.grad.abs().sum() > 0

    # Training from a dataset that has the image IDs but no image embeddings: only text IDs are written,
    # and their agreement with the image IDs is reported.
    model, metrics = train_quantizer(data_dir, tmp_path / "q", dict(TINY), tiny_args(epochs=4), id_modalities=["image"])
    log = json.loads((tmp_path / "q" / "quantizer_train_log.json").read_text())
    assert all(r["contrastive_loss"] > 0 for r in log["history"])
    assert model.config.id_modalities == ["image"] and not (tmp_path / "q" / "sid_image.npy").exists()
    assert metrics["cross_modal_agreement"] is not None and metrics["text"]["collision_rate_after"] == 0
    _, plain = train_quantizer(data_dir, tmp_path / "p", dict(TINY), tiny_args(epochs=4))
    assert plain["cross_modal_agreement"] is None
    assert not np.array_equal(np.load(tmp_path / "q" / "sid_text.npy"), np.load(tmp_path / "p" / "sid_text.npy"))


def test_ids_only_modality_errors(text_and_image_ids, synth_dir, tmp_path):
    data_dir, _ = text_and_image_ids
    with pytest.raises(Exception, match="sid_image.npy"):  # synth_dir has image embeddings but no image IDs
        train_quantizer(
            synth_dir, tmp_path / "a", dict(TINY), tiny_args(epochs=1), modalities=["text"], id_modalities=["image"]
        )
    with pytest.raises(ValueError, match="must differ"):
        CrossModalRQVAEConfig(modalities=["text", "image"], id_modalities=["image"])
    assert (
        genrec_cli(
            "quantize",
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path / "c"),
            "--id-modalities",
            "image",
            "--id-label-levels",
            "0",
            check=False,
        ).returncode
        == 2
    )


def test_kmeans_on_large_inputs_fits_a_sample_and_labels_every_row(monkeypatch):
    from genrec.quantizer import kmeans as km

    rng = np.random.default_rng(0)
    centres_true = rng.normal(size=(4, 3)).astype(np.float32) * 10
    x = centres_true[rng.integers(0, 4, 2000)] + rng.normal(size=(2000, 3)).astype(np.float32) * 0.1
    monkeypatch.setattr(km, "MAX_FIT_ROWS", 300)
    monkeypatch.setattr(km, "ASSIGN_CHUNK", 128)
    centres, labels = km.kmeans(x, 4, seed=1)
    assert labels.shape == (2000,)
    np.testing.assert_array_equal(labels, ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1))
    # the four well-separated clusters are recovered from the 300-row sample
    assert len({tuple(np.round(c)) for c in centres}) == 4 and adjusted_rand(labels, x, centres_true) == 1.0
    again, labels2 = km.kmeans(x, 4, seed=1)
    np.testing.assert_array_equal(labels, labels2)
    assert len(km.sample_rows(2000, 1)) == 300 and km.sample_rows(200, 1).tolist() == list(range(200))


def adjusted_rand(labels, x, centres_true):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(((x[:, None] - centres_true[None]) ** 2).sum(-1).argmin(1), labels)


def test_quantizer_profiles_are_yaml_data_files_and_flags_override_them(tmp_path):
    """Issue 34: `genrec quantize` had a hand flag table and no profiles."""
    from genrec.errors import GenRecError
    from genrec.trainers import bundled_profiles, load_profile

    assert bundled_profiles("quantizer") == ["default", "demo", "tiny"]
    assert load_profile("demo", "quantizer") == {
        "model": {"num_levels": 3, "codebook_size": 64},
        "args": {"epochs": 80},
    }
    mine = tmp_path / "q.yaml"
    mine.write_text("model: {num_levels: 2, codebok_size: 8}\nargs: {epoch: 3}\n")
    with pytest.raises(GenRecError, match=r"unknown settings \['codebok_size', 'args.epoch'\]"):
        load_profile(mine, "quantizer")
    with pytest.raises(GenRecError, match="unknown quantizer profile 'huge'"):
        load_profile("huge", "quantizer")


def test_quantizer_settings_are_documented_config_fields():
    """`genrec quantize`'s flags come from two dataclasses through GenRecParser (issue 34): every field has its
    help, and every model setting is a CrossModalRQVAEConfig field (a renamed config field cannot leave a flag
    that sets nothing)."""
    from dataclasses import fields

    from genrec.cli.parser import GenRecParser, given_settings
    from genrec.quantizer import CrossModalRQVAEConfig
    from genrec.trainers import QuantizerModelArguments, QuantizerTrainingArguments

    for settings in (QuantizerModelArguments, QuantizerTrainingArguments):
        assert all(f.metadata.get("help") for f in fields(settings)), settings
    assert {f.name for f in fields(QuantizerModelArguments)} <= {f.name for f in fields(CrossModalRQVAEConfig)}
    p = GenRecParser(prog="q")
    p.add_settings(QuantizerTrainingArguments, "training", spellings={"learning_rate": "--lr"})
    args = p.parse_args(["--lr", "0.01", "--save-every", "5"])
    assert given_settings(args, QuantizerTrainingArguments) == {"learning_rate": 0.01, "save_every": 5}
    assert given_settings(p.parse_args([]), QuantizerTrainingArguments) == {}
