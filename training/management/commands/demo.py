"""The whole active-learning loop on one machine, from an empty database to a served model."""

import secrets
import signal
import socket
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Dataset, Judgement, Triplet, TripletTask
from annotation.services.annotators import annotator_for_user
from annotation.simulation.accounts import simulated_annotator_tokens
from annotation.simulation.crowd import run_crowd
from annotation.simulation.oracles import AttributeOracle, NoiseModel
from training.models import ModelVersion, SelectionRound, TrainingRun
from training.processes import start_platform, wait_for_http
from training.services.evaluation import attribute_test_accuracy
from training.services.loop import RETRY_AFTER_FAILURE, failed_recently, loop_settings_for, triplets_since_published

# Small enough to retrain in well under a minute on two CPU cores.
DEMO_TRAINING = {"epochs": 4, "image_size": 32, "embedding_dim": 32, "batch_size": 128, "num_threads": 2}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def check_port_free(port: int) -> None:
    """Raise CommandError when something already listens on 127.0.0.1:port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise CommandError(
                f"port {port} on 127.0.0.1 is in use ({error.strerror}); stop the other server "
                "(an earlier demo?) or pass --port"
            ) from error


def model_freshness_seconds(*, version: ModelVersion) -> float:
    """Seconds from the triplet that crossed the retrain threshold to the version's first selection round."""
    threshold = loop_settings_for(dataset=version.dataset).retrain_after_triplets
    previous = ModelVersion.objects.filter(dataset=version.dataset, number__lt=version.number).order_by("-number").first()
    offset = (previous.triplet_count if previous else 0) + threshold - 1
    trigger = Triplet.objects.filter(dataset=version.dataset).order_by("id")[offset : offset + 1].first()
    first_round = SelectionRound.objects.filter(model_version=version).order_by("created_at").first()
    if trigger is None or first_round is None:
        return float("nan")
    return (first_round.created_at - trigger.created_at).total_seconds()


class Command(BaseCommand):
    help = (
        "Set up the database, build the fonts dataset, start the web server, a Celery worker and "
        "beat, seed random tasks, let a simulated crowd answer through the HTTP API and the loop "
        "retrain and reselect for several rounds, printing held-out accuracy per round. The server "
        "stays up afterwards for a person to answer tasks; stop everything with Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="fonts", help="slug of the fonts dataset to build or reuse")
        parser.add_argument("--max-fonts", type=int, default=80, help="font faces to render (fewer is faster)")
        parser.add_argument("--rounds", type=int, default=3, help="crowd rounds, each followed by retraining")
        parser.add_argument("--answers-per-round", type=int, default=400, help="answers the simulated crowd gives per round (default 400)")
        parser.add_argument("--annotators", type=int, default=4, help="simulated annotators")
        parser.add_argument("--error-rate", type=float, default=0.05, help="mean error rate of the simulated crowd")
        parser.add_argument("--strategy", default="uncertainty", help="selection strategy: random, uncertainty or bald")
        parser.add_argument("--seed-tasks", type=int, default=150, help="random tasks per condition before any model")
        parser.add_argument("--port", type=int, default=8000, help="port of the web server on 127.0.0.1 (default 8000)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the font sample, the tasks, the crowd and training (default 0)")
        parser.add_argument("--round-timeout", type=float, default=900, help="seconds to wait for a retrain")
        parser.add_argument("--exit", action="store_true", help="stop the services after the rounds")

    def handle(self, *args, **options):
        check_port_free(options["port"])
        call_command("migrate", verbosity=0)
        dataset = self._dataset(options)
        password = self._accounts()
        self._configure_loop(dataset, options)

        # SIGINT is set explicitly because a shell starts background jobs with it ignored.
        # SIGHUP stays ignored under nohup.
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if stop_signal == signal.SIGHUP and signal.getsignal(stop_signal) == signal.SIG_IGN:
                continue
            signal.signal(stop_signal, _interrupt)
        services = start_platform(port=options["port"], check_seconds=5.0)
        base_url = f"http://127.0.0.1:{options['port']}"
        try:
            wait_for_http(f"{base_url}/accounts/login/", services)
            self.stdout.write(f"web server on {base_url}, Celery worker and beat running (logs in {settings.VAR_DIR / 'logs'})")
            self._rounds(dataset, base_url, services, options)
            self._print_access(dataset, base_url, password)
            if not options["exit"]:
                self._serve_until_interrupted(services)
        except KeyboardInterrupt:
            self.stdout.write("stopping the web server, worker and beat")
        finally:
            services.stop()
            self.stdout.write("web server, worker and beat stopped")

    def _dataset(self, options) -> Dataset:
        slug = options["dataset"]
        if not Dataset.objects.filter(slug=slug).exists():
            self.stdout.write(f"building the fonts dataset {slug!r} from the fonts installed on this machine")
            call_command("build_fonts_dataset", dataset=slug, max_fonts=options["max_fonts"], seed=options["seed"])
        dataset = Dataset.objects.get(slug=slug)

        if not TripletTask.objects.filter(dataset=dataset).exists():
            call_command("seed_tasks", dataset=slug, count=options["seed_tasks"], seed=options["seed"])
        return dataset

    def _accounts(self) -> str:
        """Create the admin and a local annotator, both named demo; return the password."""
        user_model = get_user_model()
        user = user_model.objects.filter(username="demo").first()
        password = secrets.token_urlsafe(9)
        if user is None:
            user = user_model.objects.create_superuser(username="demo", email="", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        annotator_for_user(user=user)
        return password

    def _configure_loop(self, dataset: Dataset, options) -> None:
        loop_settings = loop_settings_for(dataset=dataset)
        loop_settings.training_settings = {**DEMO_TRAINING, "seed": options["seed"]}
        loop_settings.strategy = options["strategy"]
        loop_settings.retrain_after_triplets = max(20, options["answers_per_round"] // 5)
        loop_settings.tasks_per_round = options["answers_per_round"]
        loop_settings.save()

    def _rounds(self, dataset: Dataset, base_url: str, services, options) -> None:
        oracle = AttributeOracle.from_dataset(dataset)
        noise = NoiseModel(error_rate=options["error_rate"])
        tokens = simulated_annotator_tokens(seed=options["seed"], count=options["annotators"])
        self.stdout.write(
            "Per round: answers so far, the published model version, its accuracy per condition on "
            "held-out answers and on triplets sampled from glyph attributes (never asked), and the "
            "seconds from the answer that triggered retraining to the new model's tasks being queued."
        )

        for number in range(1, options["rounds"] + 1):
            report = run_crowd(
                base_url=base_url, dataset_slug=dataset.slug, tokens=tokens, oracle=oracle, noise=noise,
                max_answers=options["answers_per_round"], think_time_ms=10, seed=options["seed"] + number,
                progress=False,
            )
            if report.answers == 0:
                self.stdout.write("the crowd found no tasks left; stopping the rounds")
                return
            version = self._wait_for_model(dataset, services, options["round_timeout"])
            self._print_round(number, dataset, version)

    def _wait_for_model(self, dataset: Dataset, services, timeout_s: float) -> ModelVersion | None:
        """Wait until the loop has trained on what the crowd gave and queued the next tasks."""
        threshold = loop_settings_for(dataset=dataset).retrain_after_triplets
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            services.check_alive()
            latest = TrainingRun.objects.filter(dataset=dataset).order_by("-created_at").first()
            if latest is not None and latest.status == TrainingRun.Status.FAILED and failed_recently(dataset):
                raise CommandError(
                    f"training run {latest.pk} failed: {latest.error}; automatic retraining pauses for "
                    f"{RETRY_AFTER_FAILURE}. Fix the cause, then run: manage.py training_runs --dataset "
                    f"{dataset.slug} --request"
                )
            active = TrainingRun.objects.filter(dataset=dataset, status__in=["queued", "running"]).exists()
            version = ModelVersion.objects.filter(dataset=dataset, is_published=True).first()
            selected = version is not None and SelectionRound.objects.filter(model_version=version).exists()
            if not active and triplets_since_published(dataset=dataset) < threshold and (version is None or selected):
                return version
            time.sleep(1.0)
        raise CommandError(f"no new model within {timeout_s:.0f} s; see the worker log in {settings.VAR_DIR / 'logs'}")

    def _print_round(self, number: int, dataset: Dataset, version: ModelVersion | None) -> None:
        answers = Judgement.objects.filter(task__dataset=dataset).count()
        if version is None:
            self.stdout.write(f"round {number}: {answers} answers, no model yet (fewer triplets than the retrain threshold)")
            return

        held_out = version.metrics.get("held_out_per_condition", {})
        attributes = attribute_test_accuracy(version=version)
        freshness = model_freshness_seconds(version=version)
        held_out_count = version.metrics.get("held_out_triplets", 0)
        self.stdout.write(
            f"round {number}: {answers} answers, model v{version.number} "
            f"({held_out_count} held-out answers), fresh after {freshness:.1f} s"
        )
        for slug in attributes:
            held = held_out.get(slug)
            held_text = f"{held:.3f}" if held is not None else "n/a"
            self.stdout.write(f"    {slug:<10} held-out answers {held_text}   attribute test {attributes[slug]:.3f}")

    def _print_access(self, dataset: Dataset, base_url: str, password: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"annotate at {base_url}/annotate/{dataset.slug}/"))
        self.stdout.write(f"log in as demo / {password} (also the admin: {base_url}/admin/)")

    def _serve_until_interrupted(self, services) -> None:
        self.stdout.write("the server stays up; press Ctrl-C to stop it")
        stop = threading.Event()
        while not stop.wait(2.0):
            services.check_alive()
