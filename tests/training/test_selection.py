"""Selection rounds on a freshly trained model: new tasks, the random share, retiring stale tasks."""

import uuid

import numpy as np
import pytest
import torch

from annotation.importers.seeding import seed_random_tasks
from annotation.models import Judgement, Lease, TripletTask
from annotation.services.answers import judgement_record
from annotation.services.leasing import task_lease_next
from tests.services.factories import make_annotator
from tests.training.conftest import TINY_SETTINGS, add_item
from training.models import LoopSettings, ModelVersion, SelectionRound
from training.services.execute import training_run_execute
from training.services.runs import training_run_request
from training import csn
from training.services.data import dataset_image_paths
from training.services.selection import answerability_model, condition_embedding, selection_rounds_for_version

TASKS_PER_ROUND = 12
RANDOM_SHARE = 0.25
SEEDED_PER_CONDITION = 30


def train_version(dataset) -> ModelVersion:
    run, _ = training_run_request(dataset=dataset, settings=TINY_SETTINGS, enqueue=False)
    return training_run_execute(run_id=run.pk)


def triple(task: TripletTask) -> tuple[int, int, int, int]:
    return (task.condition_id, task.anchor_id, task.candidate_a_id, task.candidate_b_id)


@pytest.fixture
def loop_dataset(sampled_dataset):
    """The sampled dataset with loop settings, seeded random tasks and a published version 1."""
    LoopSettings.objects.create(
        dataset=sampled_dataset, strategy="uncertainty", tasks_per_round=TASKS_PER_ROUND,
        random_share=RANDOM_SHARE, max_item_appearances=50, answers_wanted=2,
    )
    seed_random_tasks(dataset=sampled_dataset, count=SEEDED_PER_CONDITION, seed=0)
    return sampled_dataset


@pytest.mark.slow
def test_round_queues_strategy_tasks_of_the_version(loop_dataset):
    version = train_version(loop_dataset)

    rounds = selection_rounds_for_version(model_version_id=version.pk)

    tasks = TripletTask.objects.filter(dataset=loop_dataset, origin=TripletTask.Origin.STRATEGY)
    assert sorted(selection_round.condition.slug for selection_round in rounds) == ["brightness", "colour"]
    assert SelectionRound.objects.filter(dataset=loop_dataset, model_version=version).count() == 2
    assert tasks.count() == 2 * TASKS_PER_ROUND
    assert tasks.exclude(model_version=version).count() == 0
    assert tasks.exclude(status=TripletTask.Status.OPEN).count() == 0
    assert tasks.exclude(answers_wanted=2).count() == 0
    assert [selection_round.tasks_created for selection_round in rounds] == [TASKS_PER_ROUND, TASKS_PER_ROUND]


@pytest.mark.slow
def test_round_flags_the_random_share(loop_dataset):
    version = train_version(loop_dataset)

    rounds = selection_rounds_for_version(model_version_id=version.pk)

    expected = round(TASKS_PER_ROUND * RANDOM_SHARE)
    for selection_round in rounds:
        tasks = TripletTask.objects.filter(condition=selection_round.condition, origin=TripletTask.Origin.STRATEGY)
        assert tasks.filter(strategy="random").count() == expected, selection_round.condition.slug
        assert tasks.filter(strategy="uncertainty").count() == TASKS_PER_ROUND - expected
        assert selection_round.random_tasks == expected


@pytest.mark.slow
def test_round_never_repeats_an_asked_triple(loop_dataset):
    seeded = {triple(task) for task in TripletTask.objects.filter(dataset=loop_dataset)}
    version = train_version(loop_dataset)

    rounds = selection_rounds_for_version(model_version_id=version.pk)

    new_tasks = TripletTask.objects.filter(dataset=loop_dataset, origin=TripletTask.Origin.STRATEGY)
    repeated = {triple(task) for task in new_tasks} & seeded
    assert repeated == set()
    assert TripletTask.objects.filter(dataset=loop_dataset).count() == len(seeded) + sum(
        selection_round.tasks_created for selection_round in rounds
    )
    assert all(selection_round.excluded_asked > 0 for selection_round in rounds)


@pytest.mark.slow
def test_round_covers_items_without_triplets(loop_dataset):
    version = train_version(loop_dataset)
    newcomer = add_item(loop_dataset, 99, "green", 0.6)

    selection_rounds_for_version(model_version_id=version.pk)

    for condition in loop_dataset.conditions.all():
        tasks = TripletTask.objects.filter(condition=condition, origin=TripletTask.Origin.STRATEGY)
        mentioning = [task.pk for task in tasks if newcomer.pk in (task.anchor_id, task.candidate_a_id, task.candidate_b_id)]
        assert mentioning, f"no new task of {condition.slug} asks about item {newcomer.pk}"


@pytest.mark.slow
def test_strategy_tasks_are_served_before_seeded_ones(loop_dataset, django_user_model):
    version = train_version(loop_dataset)
    selection_rounds_for_version(model_version_id=version.pk)
    annotator = make_annotator(django_user_model, "first")

    lease = task_lease_next(annotator=annotator, dataset=loop_dataset)

    assert lease.task.origin == TripletTask.Origin.STRATEGY
    assert lease.task.model_version_id == version.pk
    assert lease.task.priority > 1.0


@pytest.mark.slow
def test_newer_round_retires_untouched_stale_tasks(loop_dataset, django_user_model):
    first_version = train_version(loop_dataset)
    selection_rounds_for_version(model_version_id=first_version.pk)
    colour = loop_dataset.conditions.get(slug="colour")

    answering, holding, leasing = (make_annotator(django_user_model, name) for name in ("answering", "holding", "leasing"))
    answered_lease = task_lease_next(annotator=answering, dataset=loop_dataset, condition=colour)
    judgement_record(
        annotator=answering, task=answered_lease.task, choice=answered_lease.task.candidate_a_id,
        client_token=uuid.uuid4(), response_ms=800,
    )
    task_lease_next(annotator=holding, dataset=loop_dataset, condition=colour)
    leased = task_lease_next(annotator=leasing, dataset=loop_dataset, condition=colour).task
    answered = answered_lease.task
    assert leased.pk != answered.pk
    assert Lease.objects.filter(task=leased, annotator__user__username="leasing", answered_at__isnull=True).exists()

    second_version = train_version(loop_dataset)
    rounds = selection_rounds_for_version(model_version_id=second_version.pk)

    answered.refresh_from_db()
    leased.refresh_from_db()
    old_tasks = TripletTask.objects.filter(model_version=first_version)
    assert answered.status == TripletTask.Status.OPEN
    assert leased.status == TripletTask.Status.OPEN
    assert old_tasks.filter(status=TripletTask.Status.RETIRED).count() == old_tasks.count() - 2
    assert sum(selection_round.tasks_retired for selection_round in rounds) == old_tasks.count() - 2
    assert TripletTask.objects.filter(origin=TripletTask.Origin.RANDOM).exclude(status=TripletTask.Status.OPEN).count() == 0
    assert TripletTask.objects.filter(model_version=second_version, status=TripletTask.Status.OPEN).count() == 2 * TASKS_PER_ROUND


@pytest.mark.slow
def test_unpublished_version_runs_no_round(loop_dataset):
    version = train_version(loop_dataset)
    ModelVersion.objects.filter(pk=version.pk).update(is_published=False)

    assert selection_rounds_for_version(model_version_id=version.pk) == []
    assert not TripletTask.objects.filter(origin=TripletTask.Origin.STRATEGY).exists()


@pytest.mark.slow
def test_round_skips_condition_newer_than_model(loop_dataset):
    from annotation.models import Condition

    version = train_version(loop_dataset)
    newer = Condition.objects.create(dataset=loop_dataset, slug="shape", name="shape", prompt="Shape?", index=2)

    rounds = selection_rounds_for_version(model_version_id=version.pk)

    assert newer.pk not in {selection_round.condition_id for selection_round in rounds}
    assert len(rounds) == 2


@pytest.mark.slow
def test_round_uses_loop_selection_settings(loop_dataset):
    version = train_version(loop_dataset)
    strategy_tasks = TripletTask.objects.filter(dataset=loop_dataset, origin=TripletTask.Origin.STRATEGY)

    selection_rounds_for_version(model_version_id=version.pk)
    greedy = {triple(task) for task in strategy_tasks.filter(strategy="uncertainty")}
    strategy_tasks.delete()
    SelectionRound.objects.all().delete()
    LoopSettings.objects.filter(dataset=loop_dataset).update(selection_power=1.0, candidates_per_anchor=4)

    rounds = selection_rounds_for_version(model_version_id=version.pk)

    sampled = {triple(task) for task in strategy_tasks.filter(strategy="uncertainty")}
    n_items = loop_dataset.items.count()
    assert len(sampled) == len(greedy) == 2 * (TASKS_PER_ROUND - round(TASKS_PER_ROUND * RANDOM_SHARE))
    assert sampled != greedy
    assert all(selection_round.pool_size <= n_items * 6 for selection_round in rounds)


def judge_by_family(task: TripletTask, annotator) -> Judgement:
    """Answer a colour task as the attributes decide: the same-family candidate, or a tie."""
    family = task.anchor.attributes["family"]
    same = [item for item in (task.candidate_a, task.candidate_b) if item.attributes["family"] == family]
    decided = len(same) == 1
    return Judgement.objects.create(
        task=task, annotator=annotator, choice=Judgement.Choice.CANDIDATE if decided else Judgement.Choice.TIE,
        chosen_item=same[0] if decided else None, left_item=task.candidate_a, right_item=task.candidate_b,
        client_token=uuid.uuid4(),
    )


@pytest.mark.slow
def test_answerability_fitted_from_ties(loop_dataset, django_user_model):
    version = train_version(loop_dataset)
    colour = loop_dataset.conditions.get(slug="colour")
    checkpoint = csn.load_checkpoint(version.checkpoint_path)
    paths = dataset_image_paths(dataset=loop_dataset)
    item_ids = np.array(sorted(paths), dtype=np.int64)
    embedding = condition_embedding(
        checkpoint.build_model(torch.device("cpu")), csn.PathImageSource(paths), item_ids,
        checkpoint.condition_rows["colour"], torch.device("cpu"),
    )
    annotator = make_annotator(django_user_model, "judge")
    tasks = list(TripletTask.objects.filter(condition=colour).select_related("anchor", "candidate_a", "candidate_b"))

    assert answerability_model(condition=colour, embedding=embedding) is None
    judgements = [judge_by_family(task, annotator) for task in tasks]
    ties = sum(judgement.choice == Judgement.Choice.TIE for judgement in judgements)
    model = answerability_model(condition=colour, embedding=embedding)

    LoopSettings.objects.filter(dataset=loop_dataset).update(weigh_answerability=True)
    rounds = selection_rounds_for_version(model_version_id=version.pk)

    assert 5 <= ties <= len(tasks) - 5
    assert model is not None
    assert 0.0 < float(model.probability(torch.tensor([0.5]))) < 1.0
    assert [selection_round.tasks_created for selection_round in rounds] == [TASKS_PER_ROUND, TASKS_PER_ROUND]
