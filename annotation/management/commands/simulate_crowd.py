"""Run a simulated crowd of annotators against a running server, through its HTTP API."""

import argparse
import logging
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Condition, Dataset
from annotation.simulation.accounts import read_tokens_file, simulated_annotator_tokens
from annotation.simulation.crowd import run_crowd
from annotation.simulation.oracles import ORACLE_KINDS, AttributeOracle, NoiseModel, ReplayOracle

logger = logging.getLogger(__name__)

DEFAULT_ANNOTATORS = 5


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: expected a number from 0 to 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: expected 0 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: expected 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: expected more than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text}: expected 1 or more")
    return value


class Command(BaseCommand):
    help = (
        "Act as N concurrent annotators on a running server: each one requests a task over the "
        "HTTP API, thinks for a sampled time and answers as the oracle decides, with noise. "
        "Oracles: 'attributes' decides from the item attribute that each condition names "
        "(categorical: the candidate sharing the anchor's value is closer; numeric: the nearer "
        "value is closer; otherwise \"tie\"). 'replay' decides from the dataset's imported "
        "triplets by majority, and answers \"tie\" to questions with no record. "
        "Noise: each careful annotator answers the other candidate with its own error rate, "
        "drawn from a Beta distribution with mean --error-rate, and careless annotators "
        "(--careless-share of them) pick a candidate at random. The oracle's data comes from "
        "the database in DATABASE_URL, which must be the server's. It stops after --answers "
        "answers or when the server has no task left for any annotator, then prints a summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # What to annotate, and who.
        parser.add_argument("--dataset", required=True, help="Slug of the dataset to annotate.")
        parser.add_argument(
            "--condition", help="Slug of one condition, to request only its tasks. Default: all active conditions."
        )
        parser.add_argument(
            "--oracle", required=True, choices=ORACLE_KINDS, help="What decides the answers (see above)."
        )
        parser.add_argument(
            "--annotators",
            type=_positive_int,
            help=f"Number of concurrent simulated annotators. Default: one per token in --tokens-file, "
            f"else {DEFAULT_ANNOTATORS}.",
        )
        parser.add_argument(
            "--answers", type=_positive_int, help="Stop after this many answers in total. Default: no limit."
        )
        parser.add_argument(
            "--tokens-file",
            type=Path,
            help="File with one annotator API token per line. Default: create or reuse local annotators "
            "sim-<seed>-<n> in the database.",
        )

        # The noise model.
        parser.add_argument(
            "--error-rate",
            type=_fraction,
            default=0.0,
            help="Mean probability that a careful annotator answers the other candidate when the oracle "
            "picks one (0 to 1). Default: 0.",
        )
        parser.add_argument(
            "--error-rate-concentration",
            type=_non_negative_float,
            default=20.0,
            help="Concentration k of the Beta distribution of per-annotator error rates; the variance is "
            "mean * (1 - mean) / (k + 1). 0 gives every careful annotator exactly --error-rate. Default: 20.",
        )
        parser.add_argument(
            "--careless-share",
            type=_fraction,
            default=0.0,
            help="Share of annotators (0 to 1, rounded to a whole number) who pick a candidate at random. "
            "Default: 0.",
        )
        parser.add_argument(
            "--skip-rate",
            type=_fraction,
            default=0.0,
            help="Probability that an annotator skips a task (0 to 1). Default: 0.",
        )

        # Pacing and the connection.
        parser.add_argument(
            "--think-time-ms",
            type=_non_negative_float,
            default=50.0,
            help="Mean time between receiving a task and answering it, in milliseconds; each annotator "
            "has its own speed and each pause is drawn around it. 0 answers at once. Default: 50.",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the annotators' profiles and answers.")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="Base URL of the server. Default: http://127.0.0.1:8000."
        )
        parser.add_argument(
            "--timeout", type=_positive_float, default=30.0, help="Timeout of one request, in seconds. Default: 30."
        )
        parser.add_argument(
            "--max-retries",
            type=_non_negative_int,
            default=5,
            help="Retries of a request after connection errors, timeouts, 429 or 5xx. Default: 5.",
        )

    def handle(self, *args, **options) -> None:
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(
                f"dataset {options['dataset']!r} not found in the database; check --dataset, and that "
                f"DATABASE_URL names the server's database"
            )
        condition = self._condition(dataset, options["condition"])
        oracle = self._oracle(options["oracle"], dataset, condition)
        tokens = self._tokens(options)

        noise = NoiseModel(
            error_rate=options["error_rate"],
            error_rate_concentration=options["error_rate_concentration"] or None,
            careless_share=options["careless_share"],
            skip_rate=options["skip_rate"],
        )
        report = run_crowd(
            base_url=options["url"],
            dataset_slug=dataset.slug,
            condition_slug=condition.slug if condition else None,
            tokens=tokens,
            oracle=oracle,
            noise=noise,
            max_answers=options["answers"],
            think_time_ms=options["think_time_ms"],
            seed=options["seed"],
            request_timeout_s=options["timeout"],
            max_retries=options["max_retries"],
        )

        for line in report.summary_lines():
            self.stdout.write(line)
        if report.errors:
            raise CommandError(f"{report.errors} requests failed; the first errors are listed above")

    def _condition(self, dataset: Dataset, slug: str | None) -> Condition | None:
        if slug is None:
            return None
        condition = dataset.conditions.filter(slug=slug).first()
        if condition is None:
            known = ", ".join(dataset.conditions.values_list("slug", flat=True)) or "none"
            raise CommandError(f"condition {slug!r} not found in dataset {dataset.slug}; its conditions: {known}")
        if not condition.is_active:
            raise CommandError(f"condition {slug!r} is retired and has no tasks to serve; choose an active one")
        return condition

    def _oracle(self, kind: str, dataset: Dataset, condition: Condition | None) -> AttributeOracle | ReplayOracle:
        conditions = [condition] if condition else list(dataset.conditions.filter(is_active=True))
        if kind == "attributes":
            missing = [c.slug for c in conditions if not c.attribute]
            if missing:
                raise CommandError(
                    f"the attributes oracle needs Condition.attribute, which is empty for "
                    f"{', '.join(missing)} in dataset {dataset.slug}; set it, pass --condition, or use --oracle replay"
                )
            return AttributeOracle.from_dataset(dataset)

        oracle = ReplayOracle.from_dataset(dataset, condition_slug=condition.slug if condition else None)
        if oracle.question_count == 0:
            raise CommandError(
                f"dataset {dataset.slug} has no imported triplets to replay"
                + (f" for condition {condition.slug}" if condition else "")
                + "; import some, or use --oracle attributes"
            )
        self.stdout.write(
            f"replaying {oracle.record_count} imported triplets on {oracle.question_count} questions "
            f"({oracle.conflicting_question_count} with conflicting records, decided by majority)"
        )
        unrecorded = sorted({c.slug for c in conditions} - oracle.conditions)
        if unrecorded:
            logger.warning("conditions without imported triplets are answered \"tie\": %s", ", ".join(unrecorded))
        return oracle

    def _tokens(self, options: dict) -> list[str]:
        count = options["annotators"]
        if options["tokens_file"] is not None:
            try:
                tokens = read_tokens_file(options["tokens_file"])
            except ValueError as error:
                raise CommandError(str(error)) from None
            if count is None:
                return tokens
            if count > len(tokens):
                raise CommandError(
                    f"--annotators {count} needs {count} tokens, but {options['tokens_file']} contains "
                    f"{len(tokens)}; add tokens or lower --annotators"
                )
            return tokens[:count]

        count = count or DEFAULT_ANNOTATORS
        return simulated_annotator_tokens(seed=options["seed"], count=count)
