"""``RankingConfig``: every setting of how a pipeline ranks, saved beside the model (``ranking_config.json``)
so that inference settings travel with it, and overridable per call (``pipe.rank(histories, k=20)``)."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from .. import DEFAULT_NUM_BEAMS
from ..errors import GenRecError, read_json_file
from ..generation.fusion import FUSION_RULES

DEFAULT_BATCH_SIZE = 64  # requests (user x modality) per forward; our choice, fits CPU caches
# Share of the top-k slots that items added after training (add_items) may take, by shared ID prefix
# with the generated beams (genrec.ranking.cold_start): chosen on Instruments validation users, among 0.1,
# 0.2, 0.3 and 0.5, as the largest cold-item hit rate costing at most 3% of the other users' NDCG@10
# (benchmarks/results/coldstart.md); it has no effect on a catalogue without added items.
DEFAULT_COLD_START_SHARE = 0.2
# Fusion where items lack a modality (impute_missing): each modality's list is weighted by the share of the
# user's history it could read, to this power. Infinite: a list counts only for a user whose whole (read)
# history has IDs in its modality; the other modalities rank alone for the rest. Chosen on Instruments
# validation users (all 17,110) with 25/50/75% of the items stripped of their image IDs or their text IDs:
# the best mean among the powers 0, 0.5, 1, 2, 4 and infinity (benchmarks/results/coldstart.md).
HISTORY_COVERAGE_POWER = math.inf
# Fusion weight of a list that read the history in the other modality's IDs (cross_modal_history), relative to
# its modality's weight. Chosen like the power, on all 17,110 Instruments validation users: the best mean over
# the p > 0 points among 0, 0.25, 0.5, 0.75 and 1 (0.5; the five means lie within 1.4e-4 of each other).
CROSS_MODAL_WEIGHT = 0.5


# The settings a caller of a deployed model may set per request (the Endpoints handler, the pipeline task).
REQUEST_SETTINGS = ("k", "modality", "exclude_history", "num_beams", "fusion")


@dataclass(frozen=True)
class RankingConfig:
    """How ``GenRecPipeline.rank`` / ``recommend`` rank (see ``GenRecPipeline.rank`` for each setting's rule).

    ``popularity_correction`` None: the training argument recorded in ``item_prior.json`` (else 0).
    ``exclude_history`` is ``rank``'s default (False: the papers' protocol ranks history items too);
    ``recommend`` leaves the history out unless asked.
    """

    k: int = 10
    num_beams: int = DEFAULT_NUM_BEAMS
    modality: str = "fused"
    fusion: str = "macrec"
    exclude_history: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    popularity_correction: float | None = None
    cold_start_share: float = DEFAULT_COLD_START_SHARE
    impute_missing: bool = True
    modality_weights: dict[str, float] = field(default_factory=dict)
    coverage_power: float = HISTORY_COVERAGE_POWER
    cross_modal_history: bool = True
    cross_modal_weight: float = CROSS_MODAL_WEIGHT
    rescore: bool = True

    def __post_init__(self):
        problems = self._type_problems()
        if problems:
            raise GenRecError("ranking settings: " + "; ".join(problems))
        if not 1 <= self.k <= self.num_beams:  # the types are checked above
            problems.append(
                f"k={self.k} must be between 1 and num_beams={self.num_beams} (the beam width is not widened)"
            )
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.fusion not in FUSION_RULES:
            problems.append(f"unknown fusion rule {self.fusion!r}; choose from {list(FUSION_RULES)}")
        if self.popularity_correction is not None and not math.isfinite(self.popularity_correction):
            problems.append(f"popularity_correction must be a finite number, got {self.popularity_correction}")
        if not 0 <= self.cold_start_share <= 1:
            problems.append(f"cold_start_share must be in [0, 1], got {self.cold_start_share}")
        if not self.coverage_power >= 0:
            problems.append(f"coverage_power must be >= 0 (inf allowed), got {self.coverage_power}")
        if not 0 <= self.cross_modal_weight < math.inf:
            problems.append(f"cross_modal_weight must be finite and >= 0, got {self.cross_modal_weight}")
        weights = list(self.modality_weights.values())
        if weights and (
            not all(isinstance(w, (int, float)) and 0 <= w < math.inf for w in weights) or not any(weights)
        ):
            problems.append(f"modality_weights {self.modality_weights}: finite weights >= 0, at least one above 0")
        if problems:
            raise GenRecError("ranking settings: " + "; ".join(problems))

    def _type_problems(self) -> list[str]:
        """Each field must have its default's type (an int where a float is expected; None or a number for the
        popularity correction): a JSON file or a caller may hand anything."""
        problems = []
        for f in fields(self):
            value, default = getattr(self, f.name), f.default if f.default_factory is MISSING else f.default_factory()
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = (
                number
                if isinstance(default, float) or default is None and value is not None
                else isinstance(value, type(default)) and not (isinstance(value, bool) and type(default) is int)
            )
            if not ok and not (default is None and value is None):
                problems.append(
                    f"{f.name} must be {'a number' if default is None else type(default).__name__}, got {value!r}"
                )
        return problems

    def with_overrides(self, **overrides) -> "RankingConfig":
        """This config with ``overrides`` (None values mean "keep"); an unknown name is an error."""
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise GenRecError(f"unknown ranking settings {unknown}; known: {[f.name for f in fields(self)]}")
        given = {name: value for name, value in overrides.items() if value is not None}
        return replace(self, **given) if given else self

    def to_dict(self) -> dict:
        """JSON-ready: infinity as the string "inf" (JSON has no infinity)."""
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}

    def save(self, folder: str | Path) -> Path:
        from ..layout import RANKING_CONFIG_FILE

        path = Path(folder) / RANKING_CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, values: dict, where: str = "ranking settings") -> "RankingConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GenRecError(f"{where}: unknown settings {unknown}; known: {sorted(known)}")
        values = {k: (math.inf if v == "inf" else v) for k, v in values.items()}
        return cls(**values)

    @classmethod
    def load(cls, folder: str | Path, generation_config=None) -> "RankingConfig":
        """The folder's ``ranking_config.json``; a folder written before it existed ranks with the defaults and
        the beam count its ``generation_config.json`` carries."""
        from ..layout import RANKING_CONFIG_FILE

        path = Path(folder) / RANKING_CONFIG_FILE
        if path.is_file():
            return cls.from_dict(read_json_file(path, "the ranking settings object"), str(path))
        beams = getattr(generation_config, "num_beams", None)
        return cls(num_beams=beams) if isinstance(beams, int) and beams >= cls.k else cls()
