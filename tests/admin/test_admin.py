"""Admin pages: every changelist and change page loads with data present, and the admin actions work."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import (
    Annotator,
    ImportBatch,
    Judgement,
    Lease,
    Triplet,
    TripletTask,
)
from training.models import LoopSettings, ModelVersion, SelectionRound, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def filled_dataset(make_dataset, annotator):
    """A dataset with one row of every model the admin shows, plus a second, empty dataset."""
    dataset = make_dataset(n_items=6, conditions=("colour", "shape"))
    make_dataset(slug="empty", n_items=0, conditions=())
    colour, shape = dataset.conditions.order_by("index")
    items = list(dataset.items.order_by("id"))

    answered = TripletTask.objects.create(
        dataset=dataset, condition=colour, anchor=items[0], candidate_a=items[1], candidate_b=items[2],
        status=TripletTask.Status.DONE, answers_count=1,
    )
    TripletTask.objects.create(
        dataset=dataset, condition=colour, anchor=items[3], candidate_a=items[4], candidate_b=items[5],
        origin=TripletTask.Origin.STRATEGY, strategy="uncertainty",
    )
    TripletTask.objects.create(
        dataset=dataset, condition=shape, anchor=items[0], candidate_a=items[1], candidate_b=items[2]
    )

    Lease.objects.create(
        task=answered, annotator=annotator, left_item=items[2], right_item=items[1],
        expires_at=timezone.now() + timedelta(minutes=10), answered_at=timezone.now(),
    )
    judgement = Judgement.objects.create(
        task=answered, annotator=annotator, choice=Judgement.Choice.CANDIDATE, chosen_item=items[1],
        left_item=items[2], right_item=items[1], response_ms=1200, client_token=uuid.uuid4(),
    )
    Triplet.objects.create(
        dataset=dataset, condition=colour, anchor=items[0], closer=items[1], farther=items[2],
        source=Triplet.Source.JUDGEMENT, judgement=judgement, annotator=annotator,
    )

    batch = ImportBatch.objects.create(dataset=dataset, kind="csv", source_name="triplets.csv")
    Triplet.objects.create(
        dataset=dataset, condition=shape, anchor=items[3], closer=items[4], farther=items[5],
        source=Triplet.Source.IMPORT, import_batch=batch,
    )

    run = TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.SUCCEEDED, metrics={"val_accuracy": 0.8125, "epochs": 3},
        started_at=timezone.now() - timedelta(minutes=5), finished_at=timezone.now(),
    )
    version = ModelVersion.objects.create(
        dataset=dataset, number=1, run=run, checkpoint_path="models/shoes/v1.pt",
        metrics=run.metrics, triplet_count=2, is_published=True, published_at=timezone.now(),
    )
    LoopSettings.objects.create(dataset=dataset)
    SelectionRound.objects.create(
        dataset=dataset, condition=colour, model_version=version, strategy="uncertainty",
        pool_size=400, tasks_created=1, seconds=0.25,
    )
    return dataset


ADMIN_MODELS = [
    ("annotation", "dataset"),
    ("annotation", "item"),
    ("annotation", "condition"),
    ("annotation", "annotator"),
    ("annotation", "importbatch"),
    ("annotation", "triplettask"),
    ("annotation", "lease"),
    ("annotation", "judgement"),
    ("annotation", "triplet"),
    ("training", "trainingrun"),
    ("training", "modelversion"),
    ("training", "loopsettings"),
    ("training", "selectionround"),
]


@pytest.mark.parametrize("app_label,model_name", ADMIN_MODELS)
def test_changelist_and_change_page_load(admin_client, filled_dataset, app_label, model_name):
    from django.apps import apps

    model = apps.get_model(app_label, model_name)
    obj = model.objects.order_by("pk").first()

    changelist = admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    change = admin_client.get(reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk]))

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "?q=3",
        "?dataset__id__exact=1",
        "?status__exact=open",
        "?origin__exact=strategy",
        "?strategy=uncertainty",
    ],
)
def test_task_changelist_filters(admin_client, filled_dataset, query):
    response = admin_client.get(reverse("admin:annotation_triplettask_changelist") + query)

    assert response.status_code == 200


def test_item_search_by_external_id(admin_client, filled_dataset):
    response = admin_client.get(reverse("admin:annotation_item_changelist") + "?q=4")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert response.context["cl"].result_list[0].external_id == "4"


def test_item_thumbnail_uses_image_route(admin_client, filled_dataset):
    item = filled_dataset.items.order_by("id").first()

    response = admin_client.get(reverse("admin:annotation_item_changelist"))

    assert f"/api/v1/items/{item.pk}/image/{item.content_hash}/" in response.content.decode()
    assert admin_client.get(f"/api/v1/items/{item.pk}/image/{item.content_hash}/").status_code == 200


def test_dataset_counts(admin_client, filled_dataset):
    response = admin_client.get(reverse("admin:annotation_dataset_changelist"))

    rows = {dataset.slug: dataset for dataset in response.context["cl"].result_list}
    shoes = rows["shoes"]
    assert shoes.item_total == 6
    assert shoes.condition_total == 2
    assert shoes.open_task_total == 2
    assert shoes.judgement_total == 1
    assert shoes.triplet_total == 2
    empty = rows["empty"]
    assert (empty.item_total, empty.condition_total, empty.open_task_total) == (0, 0, 0)
    assert (empty.judgement_total, empty.triplet_total) == (0, 0)


def test_block_and_unblock_actions(admin_client, filled_dataset, annotator, django_user_model):
    other = Annotator.objects.create(user=django_user_model.objects.create_user(username="other"))
    url = reverse("admin:annotation_annotator_changelist")

    response = admin_client.post(
        url, {"action": "block_annotators", "_selected_action": [annotator.pk]}, follow=True
    )

    assert response.status_code == 200
    annotator.refresh_from_db()
    other.refresh_from_db()
    assert annotator.is_blocked
    assert not other.is_blocked
    assert "Blocked 1 annotator" in response.content.decode()

    admin_client.post(url, {"action": "unblock_annotators", "_selected_action": [annotator.pk]})

    annotator.refresh_from_db()
    assert not annotator.is_blocked


def test_annotator_links_to_judgements(admin_client, filled_dataset, annotator):
    response = admin_client.get(reverse("admin:annotation_annotator_changelist"))

    judgements_url = reverse("admin:annotation_judgement_changelist") + f"?annotator__id__exact={annotator.pk}"
    assert judgements_url in response.content.decode()
    filtered = admin_client.get(judgements_url)
    assert filtered.context["cl"].result_count == 1


def test_judgements_are_read_only(admin_client, filled_dataset):
    judgement = Judgement.objects.get()

    change = admin_client.get(reverse("admin:annotation_judgement_change", args=[judgement.pk]))
    add = admin_client.get(reverse("admin:annotation_judgement_add"))

    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert add.status_code == 403


def test_condition_list_edits_prompt_and_active(admin_client, filled_dataset):
    conditions = list(filled_dataset.conditions.order_by("pk"))
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for number, condition in enumerate(conditions):
        data[f"form-{number}-id"] = str(condition.pk)
        data[f"form-{number}-prompt"] = f"New prompt {number}"
        if number == 0:
            data[f"form-{number}-is_active"] = "on"

    response = admin_client.post(reverse("admin:annotation_condition_changelist"), data)

    assert response.status_code == 302
    first, second = (condition for condition in filled_dataset.conditions.order_by("pk"))
    assert first.prompt == "New prompt 0"
    assert first.is_active
    assert not second.is_active


def test_training_run_duration_and_metrics(admin_client, filled_dataset):
    response = admin_client.get(reverse("admin:training_trainingrun_changelist"))

    html = response.content.decode()
    assert "val_accuracy=0.8125" in html
    assert "0:05:00" in html or "0:04:59" in html


def loop_settings_form(loop_settings: LoopSettings, **changes) -> dict:
    data = {
        "dataset": loop_settings.dataset_id, "enabled": "on", "retrain_after_triplets": 200,
        "variant": "learned", "training_settings": "{}", "strategy": "uncertainty",
        "selection_power": "", "candidates_per_anchor": 8, "weigh_answerability": "on", "tasks_per_round": 200,
        "random_share": 0.1, "max_item_appearances": 20, "answers_wanted": 1,
    }
    return {**data, **changes}


def test_loop_settings_edit_selection(admin_client, filled_dataset):
    loop_settings = LoopSettings.objects.get(dataset=filled_dataset)
    url = reverse("admin:training_loopsettings_change", args=[loop_settings.pk])

    response = admin_client.post(url, loop_settings_form(loop_settings, strategy="bald", selection_power="2"))

    assert response.status_code == 302
    loop_settings.refresh_from_db()
    assert loop_settings.strategy == "bald"
    assert loop_settings.selection_power == 2.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "smartest"}, "Select a valid choice. smartest is not one of the available choices."),
        ({"selection_power": "-1"}, "Selection power -1 must be positive"),
        ({"random_share": "1.5"}, "Random share 1.5 lies outside 0 to 1"),
        ({"candidates_per_anchor": "1"}, "Candidates per anchor 1 make no pair"),
    ],
)
def test_loop_settings_reject_bad_values(admin_client, filled_dataset, changes, message):
    loop_settings = LoopSettings.objects.get(dataset=filled_dataset)
    url = reverse("admin:training_loopsettings_change", args=[loop_settings.pk])

    response = admin_client.post(url, loop_settings_form(loop_settings, **changes))

    assert response.status_code == 200
    assert message in response.content.decode()
    loop_settings.refresh_from_db()
    assert loop_settings.strategy == "uncertainty"
    assert loop_settings.selection_power is None


def test_loop_settings_clean_names_unknown_strategy(filled_dataset):
    from django.core.exceptions import ValidationError

    loop_settings = LoopSettings.objects.get(dataset=filled_dataset)
    loop_settings.strategy = "smartest"

    with pytest.raises(ValidationError, match="Unknown strategy 'smartest'; choose one of bald, random, uncertainty"):
        loop_settings.full_clean()
