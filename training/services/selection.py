"""Selection rounds: the published model scores candidate triples and queues the best as tasks."""

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from annotation.models import Condition, Item, Judgement, Lease, Triplet, TripletTask
from training import active, csn
from training.models import LoopSettings, ModelVersion, SelectionRound
from training.services.data import dataset_image_paths, dataset_triplet_array
from training.services.loop import loop_settings_for
from training.splits import held_out_mask

logger = logging.getLogger(__name__)

# Anchors sampled per round; every item still gets asked about while it has no judgement.
POOL_ANCHORS = 400

# The answerability model is fitted on at most this many of a condition's latest judgements.
ANSWERABILITY_JUDGEMENTS = 20_000


@dataclass
class ConditionEmbedding:
    """Item positions follow `item_ids` (ascending), so canonical order by id is kept."""

    item_ids: np.ndarray
    embedding: active.ConditionalEmbedding


def selection_rounds_for_version(*, model_version_id: int, strategy: str | None = None) -> list[SelectionRound]:
    """Run one selection round per active condition with the given (published) model version."""
    version = ModelVersion.objects.select_related("dataset").get(pk=model_version_id)
    if not version.is_published:
        logger.info("model version %s is not published; no selection round", version)
        return []

    loop_settings = loop_settings_for(dataset=version.dataset)
    checkpoint = csn.load_checkpoint(version.checkpoint_path)
    device = csn.resolve_device("auto")
    model = checkpoint.build_model(device)
    paths = dataset_image_paths(dataset=version.dataset)
    item_ids = np.array(sorted(paths), dtype=np.int64)
    image_source = csn.PathImageSource(paths)

    rounds = []
    conditions = Condition.objects.filter(dataset=version.dataset, is_active=True)
    for condition in conditions:
        if condition.slug not in checkpoint.condition_rows:
            logger.info("condition %s is newer than model %s; it keeps its random tasks", condition, version)
            continue
        embedding = condition_embedding(model, image_source, item_ids, checkpoint.condition_rows[condition.slug], device)
        rounds.append(
            selection_round_run(
                version=version, condition=condition, embedding=embedding,
                loop_settings=loop_settings, strategy=strategy or loop_settings.strategy,
            )
        )
    return rounds


def condition_embedding(model, image_source, item_ids: np.ndarray, row: int, device) -> ConditionEmbedding:
    """Embed every item for one condition: shared embedding and mask, or the condition's own network."""
    with torch.no_grad():
        mask = model.masks()[row].detach().float().cpu()
    condition_row = None if model.shares_embedding else row
    embeddings = csn.embed_items(model, image_source, item_ids.tolist(), device=device, condition_row=condition_row)
    return ConditionEmbedding(item_ids=item_ids, embedding=active.ConditionalEmbedding(embeddings.float(), mask))


def pool_config(loop_settings: LoopSettings, n_items: int) -> active.PoolConfig:
    """Build the candidate pool settings of a round from the dataset's loop settings."""
    return active.PoolConfig(n_anchors=min(POOL_ANCHORS, n_items), candidates_per_anchor=loop_settings.candidates_per_anchor)


def answer_scale(*, condition: Condition, embedding: ConditionEmbedding) -> float:
    """Fit the logistic answer model's slope on the condition's held-out triplets."""
    triplets = dataset_triplet_array(dataset=condition.dataset, condition_slugs=[condition.slug])
    held_out = triplets[held_out_mask(triplets)] if len(triplets) else triplets
    positions = _positions(embedding.item_ids, held_out[:, :3])
    if len(positions) < 10:
        logger.info("condition %s has %d held-out answers; answer scale stays 1", condition, len(positions))
        return 1.0

    gaps = active.distance_gaps(embedding.embedding.masked(), torch.as_tensor(positions), 65_536)
    return active.fit_answer_scale(gaps)


def answerability_model(*, condition: Condition, embedding: ConditionEmbedding) -> active.Answerability | None:
    """Fit the chance of an answer on the condition's latest judgements ("can't tell" counts as none).

    Skipped tasks say nothing about the question, so they are left out. Returns None while
    too few answers or "can't tell" judgements exist.
    """
    judgements = (
        Judgement.objects.filter(task__condition=condition, choice__in=[Judgement.Choice.CANDIDATE, Judgement.Choice.TIE])
        .order_by("-created_at")
        .values_list("task__anchor_id", "task__candidate_a_id", "task__candidate_b_id", "choice")[:ANSWERABILITY_JUDGEMENTS]
    )
    rows = list(judgements)
    if not rows:
        return None
    triples = np.array([row[:3] for row in rows], dtype=np.int64)
    answered = np.array([row[3] == Judgement.Choice.CANDIDATE for row in rows])
    positions, known = _known_positions(embedding.item_ids, triples)

    relative = active.relative_gaps(embedding.embedding.masked(), torch.as_tensor(positions[known]))
    return active.fit_answerability(relative, torch.as_tensor(answered[known]))


def _positions(item_ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Map item ids to positions, dropping rows that name an item without an embedding."""
    if len(rows) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    positions, known = _known_positions(item_ids, rows)
    return positions[known]


def _known_positions(item_ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map (R, 3) item ids to positions in the sorted `item_ids`; the mask marks rows whose items all have one."""
    positions = np.clip(np.searchsorted(item_ids, rows), 0, len(item_ids) - 1)
    return positions, (item_ids[positions] == rows).all(axis=1)


def asked_positions(*, condition: Condition, item_ids: np.ndarray) -> torch.Tensor:
    """Return every triple already asked under the condition as (anchor, a, b) positions."""
    rows = np.array(
        list(TripletTask.objects.filter(condition=condition).values_list("anchor_id", "candidate_a_id", "candidate_b_id")),
        dtype=np.int64,
    ).reshape(-1, 3)
    return torch.as_tensor(_positions(item_ids, rows))


def unseen_positions(*, condition: Condition, item_ids: np.ndarray) -> torch.Tensor:
    """Return a boolean mask of the items that appear in no triplet of the condition yet."""
    seen = set()
    for row in Triplet.objects.filter(condition=condition).values_list("anchor_id", "closer_id", "farther_id").iterator(chunk_size=20_000):
        seen.update(row)
    return torch.as_tensor([int(item_id) not in seen for item_id in item_ids], dtype=torch.bool)


def selection_round_run(
    *, version: ModelVersion, condition: Condition, embedding: ConditionEmbedding,
    loop_settings: LoopSettings, strategy: str, seed: int | None = None,
) -> SelectionRound:
    """Score a candidate pool for one condition and queue the chosen triples as tasks."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed if seed is not None else version.number * 1000 + condition.index)
    item_ids = embedding.item_ids
    unseen = unseen_positions(condition=condition, item_ids=item_ids)

    points = embedding.embedding.masked()
    pool = active.build_candidate_pool(points, pool_config(loop_settings, len(item_ids)), generator, unseen=unseen)
    scale = answer_scale(condition=condition, embedding=embedding) if strategy != "random" else 1.0
    answerability = (
        answerability_model(condition=condition, embedding=embedding)
        if strategy != "random" and loop_settings.weigh_answerability else None
    )
    scoring = active.ScoringConfig(scale=scale, answerability=answerability)
    scores = active.score_triples(strategy, pool, embedding.embedding, scoring, generator)
    selection = active.select_tasks(
        pool, scores, loop_settings.tasks_per_round,
        active.SelectionConfig(
            random_share=loop_settings.random_share, max_appearances_per_item=loop_settings.max_item_appearances,
            power=loop_settings.selection_power,
        ),
        generator, asked=asked_positions(condition=condition, item_ids=item_ids), must_cover=unseen,
    )

    with transaction.atomic():
        retired = retire_stale_tasks(condition=condition, version=version)
        created, random_count = _queue_tasks(version, condition, strategy, item_ids, selection, loop_settings, generator)
        selection_round = SelectionRound.objects.create(
            dataset=version.dataset, condition=condition, model_version=version, strategy=strategy,
            pool_size=selection.pool_size, excluded_asked=selection.excluded_as_asked,
            tasks_created=created, random_tasks=random_count, tasks_retired=retired,
            seconds=round(time.perf_counter() - started, 3),
        )
    logger.info(
        "selection round %s for %s with %s (%s): pool %d, %d tasks queued (%d random), %d retired, scale %.3g, %.2f s",
        selection_round.pk, condition, version, strategy, selection.pool_size, created, random_count, retired,
        scale, selection_round.seconds,
    )
    return selection_round


def retire_stale_tasks(*, condition: Condition, version: ModelVersion) -> int:
    """Retire unanswered, unleased tasks that an older model version chose for this condition."""
    active_lease = Lease.objects.filter(task=OuterRef("pk"), expires_at__gt=timezone.now(), answered_at__isnull=True)
    stale = (
        TripletTask.objects.filter(condition=condition, status=TripletTask.Status.OPEN, answers_count=0)
        .filter(origin=TripletTask.Origin.STRATEGY)
        .filter(Q(model_version__isnull=True) | ~Q(model_version=version))
        .exclude(Exists(active_lease))
    )
    return stale.update(status=TripletTask.Status.RETIRED)


def _queue_tasks(version, condition, strategy, item_ids, selection, loop_settings, generator) -> tuple[int, int]:
    """Insert the selected triples; priority puts this round before older ones, best score first."""
    rows = item_ids[selection.rows.cpu().numpy()] if len(selection.rows) else np.zeros((0, 3), dtype=np.int64)
    flags = selection.is_random_share.cpu().numpy()
    count = max(len(rows), 1)
    jitter = torch.rand(len(rows), generator=generator).numpy()

    tasks = []
    for rank, ((anchor, first, second), is_random) in enumerate(zip(rows.tolist(), flags.tolist())):
        within_round = jitter[rank] if is_random else 1.0 - rank / count
        tasks.append(
            TripletTask(
                dataset_id=version.dataset_id, condition=condition, anchor_id=anchor,
                candidate_a_id=first, candidate_b_id=second, origin=TripletTask.Origin.STRATEGY,
                strategy="random" if is_random else strategy, model_version=version,
                priority=float(version.number) + float(within_round), answers_wanted=loop_settings.answers_wanted,
            )
        )
    TripletTask.objects.bulk_create(tasks, batch_size=2000, ignore_conflicts=True)
    return len(tasks), int(flags.sum())
