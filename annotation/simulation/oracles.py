"""Oracles: who decides which candidate is closer to the anchor in a simulated crowd.

Every oracle has one method, `answer(condition_slug, anchor_id, left_id, right_id, rng)`, that
returns `left_id`, `right_id` or `TIE` ("can't tell"). Item ids are whatever the caller keys
the oracle by: database primary keys in the crowd, external ids where a test replays a file.
Both candidates' ids must be of one orderable type, because questions are keyed by
(min, max) of the pair.

- `AttributeOracle` decides from the item attribute that each condition names.
- `ReplayOracle` decides from recorded triplets, by majority per question.
- `NoisyOracle` wraps either one with an annotator profile drawn from a `NoiseModel`.

Nothing here talks HTTP. The `from_dataset` constructors read the database and need Django
to be set up. Everything else is plain Python.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from training.sampling import MISSING_VALUES, is_numeric

if TYPE_CHECKING:
    from annotation.models import Dataset

TIE = "tie"
SKIP = "skip"

ItemId = Hashable


class OracleError(ValueError):
    """An oracle was asked something it cannot answer, such as an unknown condition."""


class Oracle(Protocol):
    def answer(
        self, condition_slug: str, anchor_id: ItemId, left_id: ItemId, right_id: ItemId, rng: random.Random
    ) -> ItemId:
        """Return `left_id` or `right_id`, whichever is closer to the anchor, or `TIE`."""
        ...


def _check_question(anchor_id: ItemId, left_id: ItemId, right_id: ItemId) -> None:
    if left_id == right_id:
        raise OracleError(f"both candidates are item {left_id!r}; a question needs two different items")
    if anchor_id in (left_id, right_id):
        raise OracleError(f"the anchor {anchor_id!r} is also a candidate; it must differ from both")


# Attributes.


def _is_missing(value: Any) -> bool:
    return value in MISSING_VALUES


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value)


class AttributeOracle:
    """Decides from item attributes: the attribute that the condition names decides.

    Categorical attribute: the candidate that shares the anchor's value is closer. Values are
    compared as strings, as `training.sampling` does, so 1 and "1" are the same value.
    Numeric attribute: the candidate whose value is nearer the anchor's is closer.

    It answers `TIE` when the attribute cannot decide: both candidates or neither share the
    anchor's value, the distances are equal, or the anchor or a candidate has no value.
    None, "" and "unknown" count as no value, and so does a non-number in a numeric attribute.

    An attribute is numeric when every value present in `attributes` is an int or float
    (booleans are not numbers here). Pass `numeric={"attribute": True}` to override.
    """

    def __init__(
        self,
        attributes: Mapping[ItemId, Mapping[str, Any]],
        condition_attributes: Mapping[str, str],
        numeric: Mapping[str, bool] | None = None,
    ):
        self._attributes = {item_id: dict(values or {}) for item_id, values in attributes.items()}
        self._condition_attributes = {slug: name for slug, name in condition_attributes.items() if name}
        self._numeric: dict[str, bool] = {}
        for name in set(self._condition_attributes.values()):
            if numeric is not None and name in numeric:
                self._numeric[name] = bool(numeric[name])
            else:
                values = [item_values.get(name) for item_values in self._attributes.values()]
                self._numeric[name] = is_numeric(values)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> AttributeOracle:
        """Build the oracle from the dataset's items and the `attribute` of its conditions."""
        conditions = dict(dataset.conditions.values_list("slug", "attribute"))
        attributes = dict(dataset.items.values_list("id", "attributes"))
        return cls(attributes, conditions)

    @property
    def conditions(self) -> frozenset[str]:
        """Slugs of the conditions that name an attribute, so this oracle can answer them."""
        return frozenset(self._condition_attributes)

    def attribute_kind(self, condition_slug: str) -> str:
        """Return "numeric" or "categorical" for the attribute deciding the condition."""
        name = self._attribute_name(condition_slug)
        return "numeric" if self._numeric[name] else "categorical"

    def _attribute_name(self, condition_slug: str) -> str:
        try:
            return self._condition_attributes[condition_slug]
        except KeyError:
            raise OracleError(
                f"condition {condition_slug!r} names no item attribute, so the attributes oracle cannot "
                f"answer it; set Condition.attribute or use the replay oracle "
                f"(conditions with an attribute: {sorted(self._condition_attributes) or 'none'})"
            ) from None

    def _value(self, item_id: ItemId, name: str) -> Any:
        try:
            values = self._attributes[item_id]
        except KeyError:
            raise OracleError(f"item {item_id!r} is not among the oracle's {len(self._attributes)} items") from None
        return values.get(name)

    def answer(
        self, condition_slug: str, anchor_id: ItemId, left_id: ItemId, right_id: ItemId, rng: random.Random
    ) -> ItemId:
        _check_question(anchor_id, left_id, right_id)
        name = self._attribute_name(condition_slug)
        anchor, left, right = (self._value(item_id, name) for item_id in (anchor_id, left_id, right_id))
        if any(_is_missing(value) for value in (anchor, left, right)):
            return TIE

        if self._numeric[name]:
            return self._answer_numeric(anchor, left, right, left_id, right_id)
        return self._answer_categorical(anchor, left, right, left_id, right_id)

    @staticmethod
    def _answer_numeric(anchor: Any, left: Any, right: Any, left_id: ItemId, right_id: ItemId) -> ItemId:
        numbers = [_as_number(value) for value in (anchor, left, right)]
        if None in numbers:
            return TIE
        anchor_number, left_number, right_number = numbers
        left_distance = abs(left_number - anchor_number)
        right_distance = abs(right_number - anchor_number)
        if left_distance < right_distance:
            return left_id
        if right_distance < left_distance:
            return right_id
        return TIE

    @staticmethod
    def _answer_categorical(anchor: Any, left: Any, right: Any, left_id: ItemId, right_id: ItemId) -> ItemId:
        left_shares = str(left) == str(anchor)
        right_shares = str(right) == str(anchor)
        if left_shares and not right_shares:
            return left_id
        if right_shares and not left_shares:
            return right_id
        return TIE


# Recorded triplets.


class ReplayOracle:
    """Decides from recorded triplets (anchor, closer, farther) per condition.

    Records are counted per question, keyed by (condition, anchor, min(a, b), max(a, b)).
    When records of one question conflict, the majority decides. An even split answers
    `TIE`, because the recorded crowd could not tell either, and record order should not
    decide. A question with no record answers `TIE` too.
    """

    def __init__(self, records: Iterable[tuple[str, ItemId, ItemId, ItemId]] = ()):
        # Votes per question: (records where the lower id was closer, records where the higher was).
        self._votes: dict[tuple[str, ItemId, ItemId, ItemId], tuple[int, int]] = {}
        self.record_count = 0
        for condition_slug, anchor_id, closer_id, farther_id in records:
            self.add(condition_slug, anchor_id, closer_id, farther_id)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, *, sources: Iterable[str] = ("import",), condition_slug: str | None = None
    ) -> ReplayOracle:
        """Load the dataset's stored triplets of the given sources ("import" by default).

        Judgement triplets are left out by default, so a simulation never replays its own answers.
        """
        from annotation.models import Triplet

        triplets = Triplet.objects.filter(dataset=dataset, source__in=list(sources))
        if condition_slug is not None:
            triplets = triplets.filter(condition__slug=condition_slug)
        rows = triplets.order_by().values_list("condition__slug", "anchor_id", "closer_id", "farther_id")
        return cls(rows.iterator(chunk_size=20_000))

    def add(self, condition_slug: str, anchor_id: ItemId, closer_id: ItemId, farther_id: ItemId) -> None:
        """Count one record: under the condition, `closer_id` is closer to the anchor than `farther_id`."""
        _check_question(anchor_id, closer_id, farther_id)
        low, high = (closer_id, farther_id) if closer_id < farther_id else (farther_id, closer_id)
        key = (condition_slug, anchor_id, low, high)
        low_votes, high_votes = self._votes.get(key, (0, 0))
        if closer_id == low:
            low_votes += 1
        else:
            high_votes += 1
        self._votes[key] = (low_votes, high_votes)
        self.record_count += 1

    @property
    def question_count(self) -> int:
        """Number of distinct questions with at least one record."""
        return len(self._votes)

    @property
    def conflicting_question_count(self) -> int:
        """Number of questions whose records name both candidates as closer."""
        return sum(1 for low_votes, high_votes in self._votes.values() if low_votes and high_votes)

    @property
    def conditions(self) -> frozenset[str]:
        """Slugs of the conditions with at least one record."""
        return frozenset(key[0] for key in self._votes)

    def answer(
        self, condition_slug: str, anchor_id: ItemId, left_id: ItemId, right_id: ItemId, rng: random.Random
    ) -> ItemId:
        _check_question(anchor_id, left_id, right_id)
        low, high = (left_id, right_id) if left_id < right_id else (right_id, left_id)
        low_votes, high_votes = self._votes.get((condition_slug, anchor_id, low, high), (0, 0))
        if low_votes > high_votes:
            return low
        if high_votes > low_votes:
            return high
        return TIE


# Noise.


@dataclass(frozen=True)
class AnnotatorProfile:
    """One simulated annotator's behaviour, drawn from a `NoiseModel`.

    `error_rate` is the probability of answering the other candidate when the oracle picks
    one: 0.5 for a careless annotator, who picks at random.
    """

    error_rate: float
    careless: bool
    skip_rate: float = 0.0


@dataclass(frozen=True)
class NoiseModel:
    """Deviations of simulated annotators from the oracle.

    Each annotator gets an `AnnotatorProfile` from `draw_profiles`:

    - Careless annotators, `round(careless_share * count)` of them chosen at random, pick the
      left or right candidate with probability 1/2 each, whatever the question. They never
      answer "can't tell".
    - Every other annotator has an error rate: `error_rate` itself when
      `error_rate_concentration` is None or 0, else a draw from Beta(mean * k, (1 - mean) * k)
      with mean `error_rate` and k the concentration. The draws have mean `error_rate` and
      variance mean * (1 - mean) / (k + 1), so a larger k gives more alike annotators.
      Such an annotator answers the other candidate with probability equal to their error
      rate when the oracle picks one, and "can't tell" whenever the oracle does.
    - Any annotator skips a question with probability `skip_rate` before looking at it.
    """

    error_rate: float = 0.0
    error_rate_concentration: float | None = 20.0
    careless_share: float = 0.0
    skip_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "careless_share", "skip_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate_concentration is not None and self.error_rate_concentration < 0:
            raise ValueError(
                f"error_rate_concentration must be positive, or 0 or None for one fixed rate; "
                f"got {self.error_rate_concentration}"
            )

    @property
    def is_noiseless(self) -> bool:
        """Whether every annotator answers exactly as the oracle does."""
        return self.error_rate == 0 and self.careless_share == 0 and self.skip_rate == 0

    def draw_error_rate(self, rng: random.Random) -> float:
        """Draw one careful annotator's error rate."""
        mean = self.error_rate
        if not self.error_rate_concentration or mean in (0.0, 1.0):
            return mean
        concentration = self.error_rate_concentration
        return rng.betavariate(mean * concentration, (1.0 - mean) * concentration)

    def draw_profiles(self, count: int, rng: random.Random) -> list[AnnotatorProfile]:
        """Draw `count` annotator profiles, exactly `round(careless_share * count)` of them careless."""
        careless = set(rng.sample(range(count), round(self.careless_share * count)))
        profiles = []
        for index in range(count):
            if index in careless:
                profiles.append(AnnotatorProfile(error_rate=0.5, careless=True, skip_rate=self.skip_rate))
            else:
                profiles.append(
                    AnnotatorProfile(error_rate=self.draw_error_rate(rng), careless=False, skip_rate=self.skip_rate)
                )
        return profiles


class NoisyOracle:
    """An oracle's answers as one annotator with the given profile gives them (see `NoiseModel`).

    Unlike a plain oracle, it can also return `SKIP`.
    """

    def __init__(self, oracle: Oracle, profile: AnnotatorProfile):
        self.oracle = oracle
        self.profile = profile

    def answer(
        self, condition_slug: str, anchor_id: ItemId, left_id: ItemId, right_id: ItemId, rng: random.Random
    ) -> ItemId:
        if self.profile.skip_rate and rng.random() < self.profile.skip_rate:
            return SKIP
        if self.profile.careless:
            return left_id if rng.random() < 0.5 else right_id

        truth = self.oracle.answer(condition_slug, anchor_id, left_id, right_id, rng)
        if truth == TIE:
            return TIE
        if self.profile.error_rate and rng.random() < self.profile.error_rate:
            return right_id if truth == left_id else left_id
        return truth


ORACLE_KINDS = ("attributes", "replay")


def oracle_for_dataset(kind: str, dataset: Dataset, *, condition_slug: str | None = None) -> Oracle:
    """Build the noise-free oracle of the given kind ("attributes" or "replay") from the database."""
    if kind == "attributes":
        return AttributeOracle.from_dataset(dataset)
    if kind == "replay":
        return ReplayOracle.from_dataset(dataset, condition_slug=condition_slug)
    raise ValueError(f"unknown oracle {kind!r}; expected one of {', '.join(ORACLE_KINDS)}")
