"""What ranking returns: ``RankResult`` (catalogue rows, batched) and ``Recommendation`` (item ids, one user),
and the records ``genrec.hub_rankings.push_rankings`` publishes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..errors import GenRecError


@dataclass
class Recommendation:
    """One user's ranking: ``item_ids`` best first with ``scores``; ``sources[i]`` = modalities whose
    beam search proposed item i."""

    item_ids: list[Any]
    scores: list[float]
    sources: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"item_ids": self.item_ids, "scores": self.scores, "sources": self.sources}

    def records(self, catalog) -> list[dict]:
        """One dict per item, best first: its display fields (``ItemCatalog.describe``), score and sources; what
        the service, the Endpoints handler and the transformers pipeline task answer."""
        return [
            {**catalog.describe(item), "score": score, "sources": sources}
            for item, score, sources in zip(self.item_ids, self.scores, self.sources)
        ]


@dataclass
class RankResult:
    """Batched ranking in catalogue rows. ``rows``/``scores``: final lists per user; ``per_modality[m]``:
    (rows, scores) per user before fusion; ``invalid[m]``: beams that mapped to no item; ``beams[m]``:
    beams generated."""

    rows: list[list[int]]
    scores: list[list[float]]
    per_modality: dict[str, tuple[list[list[int]], list[list[float]]]]
    invalid: dict[str, int]
    beams: dict[str, int]
    cold_start: list[list[int]] = field(default_factory=list)  # per user: rows placed by the cold-start rule
    # per modality that read the other's IDs for some user: per user, the modality its list read (cross_modal_history)
    read: dict[str, list[str]] = field(default_factory=dict)
    # rank(rescore=True): per modality, (rows, scores) per user of every item some list proposed that has its
    # IDs, scored under it (best first); fusion reads these instead of ``per_modality``
    rescored: dict[str, tuple[list[list[int]], list[list[float]]]] = field(default_factory=dict)
    popularity_correction: float = 0.0  # the one the beams scored with (rescore scores the same way)

    @classmethod
    def concat(cls, parts: Sequence["RankResult"]) -> "RankResult":
        """The results of consecutive shards of users as one (counts summed)."""
        mods = list(parts[0].per_modality)
        if len({(tuple(p.rescored), p.popularity_correction) for p in parts}) > 1:
            raise GenRecError(
                "RankResult.concat: the parts were ranked with different settings "
                "(rescored modalities or popularity correction)"
            )
        return cls(
            rows=[r for p in parts for r in p.rows],
            scores=[s for p in parts for s in p.scores],
            per_modality={
                m: ([r for p in parts for r in p.per_modality[m][0]], [s for p in parts for s in p.per_modality[m][1]])
                for m in mods
            },
            invalid={m: sum(p.invalid[m] for p in parts) for m in mods},
            beams={m: sum(p.beams[m] for p in parts) for m in mods},
            cold_start=[c for p in parts for c in (p.cold_start or [[] for _ in p.rows])],
            read={
                m: [r for p in parts for r in p.read.get(m, [m] * len(p.rows))]
                for m in dict.fromkeys(m for p in parts for m in p.read)
            },  # a shard may have read no other
            rescored={
                m: ([r for p in parts for r in p.rescored[m][0]], [s for p in parts for s in p.rescored[m][1]])
                for m in parts[0].rescored
            },
            popularity_correction=parts[0].popularity_correction,
        )

    def to_dict(self) -> dict:
        """JSON-ready (a cache or a record; ``from_dict`` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RankResult":
        lists = ("per_modality", "rescored")  # modality -> (rows, scores): JSON turned the pairs into lists
        return cls(**{k: ({m: tuple(v) for m, v in values[k].items()} if k in lists else values[k]) for k in values})

    def sources(self, user: int) -> list[list[str]]:
        """For each item of ``rows[user]``, the modalities whose beams proposed it."""
        proposed = {m: set(rows[user]) for m, (rows, _) in self.per_modality.items()}
        added = set(self.cold_start[user]) if self.cold_start else set()
        return [
            ["cold_start"] if r in added else [m for m, found in proposed.items() if r in found]
            for r in self.rows[user]
        ]


def ranking_records(
    item_ids: Sequence[Any], user_ids: Sequence[Any], histories: Sequence[Sequence[int]], res: RankResult
) -> list[dict]:
    """``rank`` output as item-id records, one per user, in the form ``genrec.hub_rankings.push_rankings`` publishes:
    ``user_id``, ``history``, ranked ``items`` with ``scores`` and ``sources`` (modalities that proposed each),
    and the ``per_modality`` lists they came from (as the beams left them, before rescoring)."""
    ids = [str(i) for i in item_ids]

    def ranked(rows, scores):
        return {"items": [ids[r] for r in rows], "scores": list(scores)}

    return [
        {
            "user_id": str(user),
            "history": [ids[r] for r in histories[u]],
            **ranked(res.rows[u], res.scores[u]),
            "sources": res.sources(u),
            "per_modality": {m: ranked(rows[u], scores[u]) for m, (rows, scores) in res.per_modality.items()},
        }
        for u, user in enumerate(user_ids)
    ]
