"""Celery routing and the beat schedule of the training loop."""

from django.conf import settings

from config.celery_app import app


def test_train_run_is_routed_to_the_gpu_queue():
    route = app.amqp.router.route({}, "training.tasks.train_run")

    assert route["queue"].name == "gpu"


def test_other_tasks_use_the_default_queue():
    route = app.amqp.router.route({}, "training.tasks.check_retraining")

    assert route["queue"].name == "default"


def test_worker_queues_are_default_and_gpu():
    assert {queue.name for queue in app.conf.task_queues} == {"default", "gpu"}


def test_beat_schedules_check_retraining():
    entries = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == "training.tasks.check_retraining"]

    assert len(entries) == 1
    assert entries[0]["schedule"] == settings.CSN_RETRAIN_CHECK_SECONDS


def test_training_tasks_are_registered():
    app.loader.import_default_modules()

    assert {"training.tasks.train_run", "training.tasks.selection_after_publish", "training.tasks.check_retraining"} <= set(app.tasks)
