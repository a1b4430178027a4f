"""The training_runs command: request a run through the queue, list a dataset's runs."""

import io

import pytest
from django.core.management import CommandError, call_command

from training.models import LoopSettings, ModelVersion, TrainingRun


def run_command(**options) -> str:
    output = io.StringIO()
    call_command("training_runs", stdout=output, **options)
    return output.getvalue()


def test_request_queues_a_run_on_commit(make_dataset, sent_runs, django_capture_on_commit_callbacks):
    dataset = make_dataset()

    with django_capture_on_commit_callbacks(execute=True):
        output = run_command(dataset=dataset.slug, request=True, variant="fixed", reason="nightly")

    run = TrainingRun.objects.get(dataset=dataset)
    assert f"queued run {run.pk} of 'shoes' (fixed)" in output
    assert run.variant == "fixed"
    assert run.reason == "nightly"
    assert sent_runs == [([run.pk], "gpu")]


def test_request_uses_the_loop_settings(make_dataset, sent_runs):
    dataset = make_dataset()
    LoopSettings.objects.create(dataset=dataset, variant="standard", training_settings={"epochs": 2})

    run_command(dataset=dataset.slug, request=True)

    run = TrainingRun.objects.get(dataset=dataset)
    assert run.variant == "standard"
    assert run.settings == {"epochs": 2}
    assert run.reason == "training_runs command"


def test_request_joins_the_active_run(make_dataset, sent_runs):
    dataset = make_dataset()
    active = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.RUNNING)

    output = run_command(dataset=dataset.slug, request=True)

    assert f"run {active.pk} of 'shoes' is already running; the request joined it" in output
    assert TrainingRun.objects.filter(dataset=dataset).count() == 1


def test_list_prints_a_table_newest_first(make_dataset):
    dataset = make_dataset()
    older = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED, metrics={"held_out_accuracy": 0.8125})
    ModelVersion.objects.create(dataset=dataset, number=1, run=older, checkpoint_path="/v1.pt", is_published=True)
    newer = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.FAILED, reason="retry")

    lines = run_command(dataset=dataset.slug, list=True).splitlines()

    assert lines[0].split()[:3] == ["run", "status", "variant"]
    assert lines[1].split()[:3] == [str(newer.pk), "failed", "learned"]
    assert lines[1].endswith("retry")
    assert lines[2].split()[:3] == [str(older.pk), "succeeded", "learned"]
    assert "0.8125" in lines[2]
    assert len(lines) == 3


def test_list_is_the_default(make_dataset):
    dataset = make_dataset()

    assert run_command(dataset=dataset.slug) == "dataset 'shoes' has no training runs\n"


def test_list_honours_the_limit(make_dataset):
    dataset = make_dataset()
    for _ in range(3):
        TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.FAILED)

    assert len(run_command(dataset=dataset.slug, limit=2).splitlines()) == 3


def test_unknown_dataset_is_rejected(db):
    with pytest.raises(CommandError, match="dataset 'nowhere' not found"):
        run_command(dataset="nowhere", list=True)


def test_variant_without_request_is_rejected(make_dataset):
    dataset = make_dataset()

    with pytest.raises(CommandError, match="add --request"):
        run_command(dataset=dataset.slug, variant="fixed")


def test_unknown_variant_is_rejected(make_dataset):
    dataset = make_dataset()

    with pytest.raises(CommandError, match="invalid choice: 'siamese'"):
        call_command("training_runs", "--dataset", dataset.slug, "--request", "--variant", "siamese")
