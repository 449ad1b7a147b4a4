"""Constrained decoding, the fast path and fusion, on real (tiny, random) T5 models."""

import math

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList, T5ForConditionalGeneration

from genrec.generation import IDConstraint, TrieConstrainedLogitsProcessor, constrained_beam_search, fuse
from genrec.tokenizer import SemanticIDTokenizer

from conftest import tiny_t5_config

LEVELS = 3


def make_tokenizer(n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.integers(0, 8, (n_items, LEVELS))
    text[1] = text[0]  # an unresolved collision: rows 0 and 1 share a text ID
    image = rng.integers(0, 6, (n_items, LEVELS))
    image[5] = -1  # item 5 has no image
    return SemanticIDTokenizer.from_codes(
        [f"i{r}" for r in range(n_items)], {"text": text, "image": image}, codebook_size={"text": 8, "image": 6}
    )


def make_model(tok, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_t5_config(tok)
    return T5ForConditionalGeneration(cfg).eval()


def batch_inputs(tok, modalities, seed=0, max_len=6):
    rng = np.random.default_rng(seed)
    task = {"text": "seqrec", "image": "seqimage"}
    ids = [
        tok.encode_task_input(task[m], rng.integers(0, len(tok.item_ids), rng.integers(1, max_len)).tolist(), m)
        for m in modalities
    ]
    b = tok.pad([{"input_ids": x} for x in ids], return_tensors="pt")
    return b["input_ids"], b["attention_mask"]


def generate(model, tok, inputs, modalities, beams, **kw):
    proc = TrieConstrainedLogitsProcessor(tok, modalities, num_beams=beams)
    return model.generate(
        input_ids=inputs[0],
        attention_mask=inputs[1],
        logits_processor=LogitsProcessorList([proc]),
        max_new_tokens=LEVELS + 1,
        num_beams=beams,
        num_return_sequences=beams,
        length_penalty=0.0,
        early_stopping=True,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )


@pytest.mark.parametrize("mode", ["greedy", "sample", "beam"])
def test_every_generated_id_is_valid(mode):
    tok = make_tokenizer()
    model = make_model(tok)
    mods = ["text", "image", "image", "text"]
    inputs = batch_inputs(tok, mods)
    beams = 20 if mode == "beam" else 1
    torch.manual_seed(1)
    out = generate(model, tok, inputs, mods, beams, do_sample=(mode == "sample"))
    seqs = out.sequences.view(len(mods), beams, -1)
    for m, rows in zip(mods, seqs):
        for seq in rows.tolist():
            assert seq[-1] == tok.eos_token_id and len(seq) == LEVELS + 2
            assert tok.decode_rows(seq[1 : LEVELS + 1], m), (m, seq)


def test_processor_masks_exactly_the_trie():
    tok = make_tokenizer()
    proc = TrieConstrainedLogitsProcessor(tok, "image")
    v = len(tok)
    start = tok.pad_token_id
    scores = torch.zeros(3, v)
    trie = tok.trie("image")
    first = sorted({c[0] for c in trie.leaf_codes().tolist()})
    out = proc(torch.tensor([[start]] * 3), scores)
    allowed = [torch.isfinite(r).nonzero().flatten().tolist() for r in out]
    assert allowed[0] == [tok.code_token_id("image", 0, c) for c in first]  # no EOS before a full ID
    full = [tok.code_token_id("image", d, c) for d, c in enumerate(trie.leaf_codes()[0].tolist())]
    bogus = [tok.code_token_id("text", 0, 0)] * LEVELS  # off the trie: EOS keeps the set non-empty
    out = proc(torch.tensor([[start] + full, [start] + bogus, [start] + full]), torch.zeros(3, v))
    for row in out:
        assert torch.isfinite(row).nonzero().flatten().tolist() == [tok.eos_token_id]
    two = full[:2]
    out = proc(torch.tensor([[start] + two]), torch.zeros(1, v))
    expect = sorted(
        tok.code_token_id("image", 2, c[2])
        for c in trie.leaf_codes().tolist()
        if c[:2] == [x - tok.level_token_start("image", d) for d, x in enumerate(two)]
    )
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == expect


@pytest.mark.parametrize("seed,attn", [(0, "sdpa"), (1, "sdpa"), (2, "eager")])
def test_fast_path_matches_generate(seed, attn):
    tok = make_tokenizer(seed=seed)
    model = make_model(tok, seed)
    model.set_attn_implementation(attn)
    mods = ["text", "image", "text", "image", "image"]
    inputs = batch_inputs(tok, mods, seed)
    beams = 20
    g = generate(model, tok, inputs, mods, beams)
    c = IDConstraint.from_tokenizer(tok, ["image", "text"])
    fast = constrained_beam_search(
        model, *inputs, c, torch.tensor([c.modality_index(m) for m in mods]), num_beams=beams
    )
    g_tokens = g.sequences[:, 1 : LEVELS + 1].view(len(mods), beams, LEVELS)
    g_scores = g.sequences_scores.view(len(mods), beams)
    real = g_scores > -1e8  # generate pads small tries with -1e9 duplicates; the fast path with leaf -1
    assert torch.equal(real, fast.leaves >= 0)
    assert torch.equal(g_tokens[real], fast.tokens[real])
    assert torch.allclose(g_scores[real], fast.scores[real], atol=1e-4)
    assert model.config._attn_implementation == attn  # restored after the fast path
    for m, leaves, toks in zip(mods, fast.leaves.tolist(), fast.tokens.tolist()):
        for leaf, t in zip(leaves, toks):
            if leaf >= 0:
                assert c.rows_of_leaf(leaf) == tok.decode_rows(t, m)


def test_fast_path_on_a_catalogue_smaller_than_the_beam():
    tok = make_tokenizer(n_items=7)
    model = make_model(tok)
    inputs = batch_inputs(tok, ["text", "text"])
    c = IDConstraint.from_tokenizer(tok, "text")
    out = constrained_beam_search(model, *inputs, c, 0, num_beams=10, num_return_sequences=10)
    n_ids = tok.trie("text").n_leaves  # 6: rows 0 and 1 share an ID
    assert n_ids == 6
    assert (out.leaves >= 0).sum(1).tolist() == [n_ids, n_ids]
    assert torch.isinf(out.scores[:, n_ids:]).all() and (out.leaves[:, n_ids:] == -1).all()
    assert sorted(out.leaves[0, :n_ids].tolist()) == list(range(n_ids))  # every ID found, once
    # text (8 codes) and image (6 codes) in one batch: more beams than image codes at the first level
    both = IDConstraint.from_tokenizer(tok, ["text", "image"])
    mixed = constrained_beam_search(
        model, *batch_inputs(tok, ["text", "image"]), both, torch.tensor([0, 1]), num_beams=10
    )
    assert (mixed.leaves >= 0).sum(1).tolist() == [n_ids, tok.trie("image").n_leaves]


def test_fusion_worked_examples():
    text = ([3, 1, 4], [-1.0, -2.0, -3.0])
    image = ([4, 5], [-0.5, -2.5])
    # MACRec: 4 in both -> (-3 - 0.5)/2 + 1 = -0.75; others keep their score; ties by row
    assert fuse([text, image], "macrec") == ([4, 3, 1, 5], [-0.75, -1.0, -2.0, -2.5])
    rows, scores = fuse([text, image], "rrf", k=2)
    assert rows == [4, 3] and scores == pytest.approx([1 / 63 + 1 / 61, 1 / 61])
    rows, scores = fuse([text, image], "sum")
    assert rows == [4, 3, 1, 5]
    assert scores == pytest.approx([math.exp(-3) + math.exp(-0.5), math.exp(-1), math.exp(-2), math.exp(-2.5)])
    # equal scores (a collided ID) share an RRF rank, and ties break by catalogue row
    assert fuse([([9, 2], [-1.0, -1.0])], "rrf") == ([2, 9], [1 / 61, 1 / 61])
    with pytest.raises(ValueError, match="unknown fusion rule"):
        fuse([text], "max")
    # row 1 has no image ID: it counts as found by the image list too, with its own score / rank
    assert fuse([text, image], "macrec", lacking={1: [1], 7: [1]}) == ([4, 1, 3, 5], [-0.75, -1.0, -1.0, -2.5])
    rows, scores = fuse([text, image], "rrf", lacking={1: [1]})
    assert rows[:2] == [4, 1] and scores[1] == pytest.approx(2 / 62)
    # weights: the image list at 1/4. Row 4: (-3 - 0.5/4) / 1.25 + 1.25 - 1; row 5: -2.5 + 0.25 - 1
    rows, scores = fuse([text, image], "macrec", weights=[1.0, 0.25])
    assert rows == [3, 1, 4, 5] and scores == pytest.approx([-1.0, -2.0, -3.125 / 1.25 + 0.25, -3.25])
    assert fuse([text, image], "sum", weights=[1.0, 0.0]) == fuse([text], "sum")  # weight 0: the list is ignored


# ---- id_softmax="prefix": training loss and decoding share one normalisation ----------------------
def test_prefix_softmax_is_a_distribution_over_valid_ids_and_decoding_scores_it():
    from genrec.trainers.id_loss import prefix_softmax_loss

    tok = make_tokenizer(n_items=40, seed=3)
    model = make_model(tok, seed=3)
    model.config.id_softmax = "prefix"
    c = IDConstraint.from_tokenizer(tok, ["text", "image"])
    for m in ("text", "image"):
        inputs = batch_inputs(tok, [m], seed=4)
        leaves = tok.trie(m).leaf_codes().tolist()  # every distinct valid ID
        labels = torch.tensor(
            [[tok.code_token_id(m, d, x) for d, x in enumerate(code)] + [tok.eos_token_id] for code in leaves]
        )
        n = len(leaves)
        with torch.no_grad():
            logits = model(
                input_ids=inputs[0].expand(n, -1), attention_mask=inputs[1].expand(n, -1), labels=labels
            ).logits
        logp = torch.stack([-LEVELS * prefix_softmax_loss(logits[i : i + 1], labels[i : i + 1], c) for i in range(n)])
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-4)  # probability mass only on real IDs
        # the fast path scores IDs with the same normalisation (and so does generate + renormalise)
        fast = constrained_beam_search(model, *inputs, c, c.modality_index(m), num_beams=10)
        by_code = {tuple(code): lp for code, lp in zip(leaves, logp.tolist())}
        for toks, score in zip(fast.tokens[0].tolist(), fast.scores[0].tolist()):
            code = tuple(t - tok.level_token_start(m, d) for d, t in enumerate(toks))
            assert score == pytest.approx(by_code[code], abs=1e-4)
        assert fast.scores[0, 0].item() == pytest.approx(logp.max().item(), abs=1e-4)
        proc = TrieConstrainedLogitsProcessor(tok, m, num_beams=10, renormalise=True)
        g = model.generate(
            input_ids=inputs[0],
            attention_mask=inputs[1],
            logits_processor=LogitsProcessorList([proc]),
            max_new_tokens=LEVELS + 1,
            num_beams=10,
            num_return_sequences=10,
            length_penalty=0.0,
            early_stopping=True,
            return_dict_in_generate=True,
            output_scores=True,
        )
        assert torch.allclose(g.sequences_scores, fast.scores[0], atol=1e-4)


def test_prefix_softmax_loss_refuses_labels_that_are_not_ids():
    from genrec.errors import GenRecError
    from genrec.trainers.id_loss import prefix_softmax_loss

    tok = make_tokenizer()
    c = IDConstraint.from_tokenizer(tok, ["text", "image"])
    labels = torch.tensor([[tok.eos_token_id, tok.pad_token_id, tok.pad_token_id, tok.pad_token_id]])
    with pytest.raises(GenRecError, match="does not start with a semantic ID"):
        prefix_softmax_loss(torch.zeros(1, 4, len(tok)), labels, c)


def test_id_label_smoothing_spreads_over_the_legal_codes_only():
    """e of each code's target goes evenly to the codes legal after its prefix: the loss stays finite
    (illegal codes have no probability) and equals (1 - e) NLL + e x the mean of -log p over the legal codes."""
    from genrec.trainers.id_loss import packed_id_loss, prefix_softmax_loss

    tok = make_tokenizer(n_items=40, seed=3)
    c = IDConstraint.from_tokenizer(tok, ["text", "image"])
    leaves = tok.trie("text").leaf_codes().tolist()
    codes = leaves[:3]
    labels = torch.tensor([[tok.code_token_id("text", d, x) for d, x in enumerate(code)] for code in codes])
    logits = torch.randn(len(codes), LEVELS, len(tok), generator=torch.Generator().manual_seed(0))
    nll, uniform = [], []
    for row, code in enumerate(codes):
        for level in range(LEVELS):
            after_prefix = sorted({leaf[level] for leaf in leaves if leaf[:level] == code[:level]})
            legal = [tok.code_token_id("text", level, x) for x in after_prefix]
            logp = logits[row, level, legal].log_softmax(-1)
            nll.append(-logp[legal.index(labels[row, level].item())].item())
            uniform.append(-logp.mean().item())
    want = 0.9 * np.mean(nll) + 0.1 * np.mean(uniform)
    assert prefix_softmax_loss(logits, labels, c).item() == pytest.approx(np.mean(nll), abs=1e-5)
    assert prefix_softmax_loss(logits, labels, c, smoothing=0.1).item() == pytest.approx(want, abs=1e-5)
    # the one-pass loss smooths alike: a linear head whose scores are these logits
    head = torch.nn.Linear(len(tok), len(tok), bias=False)
    head.weight.data = torch.eye(len(tok))
    assert packed_id_loss(logits, labels, head, c, smoothing=0.1).item() == pytest.approx(want, abs=1e-5)


# ---- popularity correction ------------------------------------------------------------------------
def test_log_prior_sums_to_each_ids_share_and_normalises_every_node():
    tok = make_tokenizer()
    c = IDConstraint.from_tokenizer(tok, ["text", "image"])
    weights = torch.arange(1, len(tok.item_ids) + 1, dtype=torch.float64)
    prior = c.log_prior(weights)
    # at every node that has children, P(code | node) is a distribution over those children
    parent = c.trie.edge_keys // c.width
    mass = torch.zeros(c.trie.n_nodes, dtype=torch.float64).index_add_(0, parent, prior.double().exp())
    assert torch.allclose(mass[parent.unique()], torch.ones(len(parent.unique()), dtype=torch.float64), atol=1e-5)
    codes = {m: np.asarray(tok.catalog.codes[m]) for m in ("text", "image")}
    for m in ("text", "image"):
        rows = np.flatnonzero(codes[m][:, 0] >= 0)
        total = weights[rows].sum()
        for row in (0, 5, 17, len(tok.item_ids) - 1):
            if codes[m][row, 0] < 0:
                continue
            node, log_p = c.roots[c.modality_index(m)], 0.0
            for code in codes[m][row]:
                edge = c.trie.edge(node, torch.tensor(int(code)))
                log_p += prior[edge].item()
                node = c.trie.child_node(edge)
            share = sum(weights[r] for r in c.rows_of_leaf(int(c.trie.leaf_of(node)))) / total  # collided rows pool
            assert math.isclose(log_p, math.log(share), rel_tol=1e-5)
    with pytest.raises(Exception, match="positive weight per catalogue row"):
        c.log_prior(torch.zeros(len(tok.item_ids)))
    with pytest.raises(Exception, match="positive weight per catalogue row"):
        c.log_prior(torch.ones(3))


def test_popularity_penalty_subtracts_a_times_log_prior_from_every_id_score():
    tok = make_tokenizer(n_items=40)
    model = make_model(tok)
    c = IDConstraint.from_tokenizer(tok, "text")
    inputs = batch_inputs(tok, ["text", "text"])
    weights = torch.from_numpy(np.random.default_rng(3).integers(1, 50, len(tok.item_ids))).double()
    prior = c.log_prior(weights)
    beams = 64  # more than the distinct text IDs: every ID comes back, penalty or not
    plain = constrained_beam_search(model, *inputs, c, num_beams=beams)
    corrected = constrained_beam_search(model, *inputs, c, num_beams=beams, penalty=0.5 * prior)
    codes = np.asarray(tok.catalog.codes["text"])
    for b in range(2):
        base = {leaf: s for leaf, s in zip(plain.leaves[b].tolist(), plain.scores[b].tolist()) if leaf >= 0}
        got = {leaf: s for leaf, s in zip(corrected.leaves[b].tolist(), corrected.scores[b].tolist()) if leaf >= 0}
        assert set(got) == set(base) and len(got) > 20
        total = weights[np.flatnonzero(codes[:, 0] >= 0)].sum().item()
        for leaf, score in got.items():
            share = sum(weights[r].item() for r in c.rows_of_leaf(leaf)) / total
            assert math.isclose(score, base[leaf] - 0.5 * math.log(share), rel_tol=1e-4, abs_tol=1e-4)
        ranked = list(got.values())
        assert ranked == sorted(ranked, reverse=True)


def test_sparse_trie_holds_exactly_the_catalogues_prefixes():
    """Against a plain dict of prefixes: every node's children, every leaf's rows, for two roots with
    different codebook sizes, collided IDs and rows lacking a modality."""
    from genrec.tokenizer import PrefixTrie

    rng = np.random.default_rng(5)
    text = rng.integers(0, 6, (300, 3))
    image = rng.integers(0, 4, (300, 3))
    image[rng.choice(300, 30, replace=False)] = -1
    trie = PrefixTrie.build([text, image], width=6)
    for root, codes in enumerate((text, image)):
        expected: dict[tuple, set] = {}
        rows_of: dict[tuple, list] = {}
        for row, code in enumerate(codes.tolist()):
            if min(code) < 0:
                continue
            for d in range(3):
                expected.setdefault(tuple(code[:d]), set()).add(code[d])
            rows_of.setdefault(tuple(code), []).append(row)
        frontier = {(): torch.tensor(root)}
        for d in range(3):
            nxt = {}
            for prefix, node in frontier.items():
                edges = trie.edges_of(node)
                assert set(torch.nonzero(edges >= 0).flatten().tolist()) == expected[prefix]
                for c in expected[prefix]:
                    nxt[prefix + (c,)] = trie.child_node(edges[c])
            frontier = nxt
        assert set(frontier) == set(rows_of)
        for code, node in frontier.items():
            assert trie.rows_of_leaf(int(trie.leaf_of(node))) == rows_of[code]
            assert trie.lookup(list(code), root=root) == int(trie.leaf_of(node))
    assert trie.n_leaves == len({tuple(c) for c in text.tolist()}) + len(
        {tuple(c) for c in image.tolist() if min(c) >= 0}
    )


@pytest.mark.parametrize(
    "softmax,a,attn",
    [
        ("full", 0.0, "sdpa"),
        ("prefix", 0.0, "eager"),
        ("full", 0.5, "eager"),
        ("prefix", 0.5, "sdpa"),
        ("prefix", 0.5, "copied"),
    ],
)
def test_teacher_forced_id_scores_are_the_beam_scores(softmax, a, attn, monkeypatch):
    """score_ids gives every ID the beam search returned its exact beam score, under either normalisation
    and with a popularity penalty, for text- and image-ID requests of one batch; with the requests' encoder
    states shared by their IDs (T5 with sdpa or eager attention) or copied per ID (other models)."""
    import contextlib

    from genrec.generation import scoring
    from genrec.generation.scoring import score_ids

    tok = make_tokenizer(n_items=40)
    model = make_model(tok, seed=4)
    model.config.id_softmax = softmax
    if attn == "copied":
        monkeypatch.setattr(scoring, "_shared_cross_attention", lambda model: contextlib.nullcontext(False))
    else:
        model.config._attn_implementation = attn
    c = IDConstraint.from_tokenizer(tok, ["text", "image"])
    mods = ["text", "image", "image"]
    inputs = batch_inputs(tok, mods, seed=2)
    mod = torch.tensor([c.modality_index(m) for m in mods])
    weights = torch.from_numpy(np.random.default_rng(3).integers(1, 50, len(tok.item_ids))).double()
    penalty = a * c.log_prior(weights) if a else None
    out = constrained_beam_search(model, *inputs, c, mod, num_beams=64, penalty=penalty)
    owner, ids, expected = [], [], []
    for b in range(len(mods)):
        for k in range(out.leaves.shape[1]):
            if out.leaves[b, k] >= 0:
                owner.append(b)
                ids.append(out.tokens[b, k])
                expected.append(out.scores[b, k].item())
    assert len(set(owner)) == 3 and len(expected) > 60
    got = score_ids(model, *inputs, c, mod, torch.stack(ids), torch.tensor(owner), penalty)
    assert got.tolist() == pytest.approx(expected, abs=1e-4)
    # one request's candidate scored alone gives the same: scores do not depend on the batch
    alone = score_ids(model, inputs[0][2:], inputs[1][2:], c, mod[2:], ids[-1][None], torch.tensor([0]), penalty)
    assert alone.item() == pytest.approx(expected[-1], abs=1e-4)
