"""The train_csn command end to end: a run is recorded, trained and its model published."""

import io

import pytest
import torch
from django.core.management import CommandError, call_command

from training import csn

TRAIN_OPTIONS = {"backbone": "small-cnn", "embedding_dim": 8, "epochs": 1, "batch_size": 32, "device": "cpu", "threads": 1}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train(dataset, **options) -> str:
    output = io.StringIO()
    call_command("train_csn", dataset=dataset.slug, stdout=output, **{**TRAIN_OPTIONS, **options})
    return output.getvalue()


@pytest.mark.slow
def test_train_csn_publishes_version_one(sampled_dataset, settings):
    from annotation.models import Condition, Item
    from training.models import ModelVersion, TrainingRun

    output = train(sampled_dataset)

    run = TrainingRun.objects.get(dataset=sampled_dataset)
    version = ModelVersion.objects.get(dataset=sampled_dataset)
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert run.finished_at is not None
    assert version.number == 1
    assert version.is_published
    assert version.run_id == run.pk
    assert version.triplet_count == 60
    assert "held_out_accuracy" in version.metrics
    assert 0.0 <= version.metrics["held_out_accuracy"] <= 1.0
    assert version.metrics["held_out_triplets"] + version.metrics["train_triplets"] == 60
    assert version.metrics["epochs_run"] == 1
    assert run.metrics["held_out_accuracy"] == version.metrics["held_out_accuracy"]

    checkpoint_file = settings.CSN_MODEL_DIR / sampled_dataset.slug / f"run-{run.pk}.pt"
    assert version.checkpoint_path == str(checkpoint_file)
    assert checkpoint_file.exists()
    checkpoint = csn.load_checkpoint(version.checkpoint_path)
    assert checkpoint.conditions == list(
        Condition.objects.filter(dataset=sampled_dataset).order_by("index").values_list("slug", flat=True)
    )
    assert sorted(checkpoint.item_ids) == sorted(Item.objects.filter(dataset=sampled_dataset).values_list("id", flat=True))
    assert checkpoint.model_config.embedding_dim == 8

    assert f"run {run.pk} succeeded: model version 1 (published)" in output
    assert "held-out triplet accuracy" in output


@pytest.mark.slow
def test_second_run_warm_starts_and_publishes_version_two(sampled_dataset, caplog):
    from training.models import ModelVersion, TrainingRun

    train(sampled_dataset)
    first = ModelVersion.objects.get(dataset=sampled_dataset, number=1)
    caplog.set_level("INFO", logger="training.services.execute")

    output = train(sampled_dataset)

    first.refresh_from_db()
    second = ModelVersion.objects.get(dataset=sampled_dataset, number=2)
    assert second.is_published
    assert not first.is_published
    assert ModelVersion.objects.filter(dataset=sampled_dataset, is_published=True).count() == 1
    assert TrainingRun.objects.filter(dataset=sampled_dataset, status="succeeded").count() == 2
    assert f"warm start {first.checkpoint_path}" in caplog.text
    assert "model version 2 (published)" in output


@pytest.mark.slow
def test_no_warm_start_option_starts_from_scratch(sampled_dataset, caplog):
    train(sampled_dataset)
    caplog.set_level("INFO", logger="training.services.execute")

    train(sampled_dataset, no_warm_start=True)

    assert "warm start none" in caplog.text


@pytest.mark.slow
def test_no_publish_option_keeps_the_published_version(sampled_dataset):
    from training.models import ModelVersion

    train(sampled_dataset)
    output = train(sampled_dataset, no_publish=True)

    published = ModelVersion.objects.get(dataset=sampled_dataset, is_published=True)
    assert published.number == 1
    assert ModelVersion.objects.filter(dataset=sampled_dataset, number=2, is_published=False).exists()
    assert "model version 2 (not published)" in output


@pytest.mark.slow
def test_failed_run_keeps_the_published_version(sampled_dataset, monkeypatch):
    from training.models import ModelVersion, TrainingRun

    train(sampled_dataset)

    def broken_train(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(csn, "train", broken_train)
    with pytest.raises(CommandError, match="failed: CUDA out of memory"):
        train(sampled_dataset)

    failed = TrainingRun.objects.filter(dataset=sampled_dataset).order_by("-created_at").first()
    assert failed.status == TrainingRun.Status.FAILED
    assert "CUDA out of memory (simulated)" in failed.error
    assert failed.finished_at is not None
    assert ModelVersion.objects.filter(dataset=sampled_dataset).count() == 1
    assert ModelVersion.objects.get(dataset=sampled_dataset, is_published=True).number == 1


@pytest.mark.slow
def test_invalid_setting_is_rejected_before_a_run(sampled_dataset):
    """A setting the model rejects stops the command before it records a run; version 1 stays."""
    from training.models import ModelVersion, TrainingRun

    train(sampled_dataset)
    with pytest.raises(CommandError, match="embedding_dim must be at least 1"):
        train(sampled_dataset, embedding_dim=0)

    assert TrainingRun.objects.filter(dataset=sampled_dataset).count() == 1
    assert ModelVersion.objects.get(dataset=sampled_dataset, is_published=True).number == 1


def test_train_csn_without_triplets_fails_the_run(colour_dataset):
    from training.models import TrainingRun

    dataset = colour_dataset()
    with pytest.raises(CommandError, match="has no triplets to train on"):
        train(dataset)

    assert TrainingRun.objects.get(dataset=dataset).status == TrainingRun.Status.FAILED


def test_train_csn_rejects_while_a_run_is_active(sampled_dataset):
    from training.models import TrainingRun

    queued = TrainingRun.objects.create(dataset=sampled_dataset)

    with pytest.raises(CommandError, match=f"run {queued.pk} of 'swatches' is already queued"):
        train(sampled_dataset)


def test_train_csn_rejects_unknown_dataset(db):
    with pytest.raises(CommandError, match="dataset 'nowhere' not found"):
        call_command("train_csn", dataset="nowhere")


@pytest.mark.slow
def test_warm_start_takes_a_new_condition(sampled_dataset, caplog):
    from annotation.models import Condition
    from training.models import ModelVersion

    train(sampled_dataset)
    first = ModelVersion.objects.get(dataset=sampled_dataset, number=1)
    Condition.objects.create(
        dataset=sampled_dataset, slug="tone", name="tone", prompt="Which is closer in tone?", index=2,
        attribute="brightness",
    )
    call_command("sample_triplets", dataset=sampled_dataset.slug, condition=["tone"], count=20, stdout=io.StringIO())
    caplog.set_level("INFO", logger="training.services.execute")

    train(sampled_dataset)

    second = ModelVersion.objects.get(dataset=sampled_dataset, number=2)
    assert second.is_published
    assert csn.load_checkpoint(second.checkpoint_path).conditions == ["colour", "brightness", "tone"]
    assert f"warm start {first.checkpoint_path}" in caplog.text
