"""Held-out triplet accuracy against answers collected: random questions versus active ones.

The loop runs in one process with the platform's own training (training.csn) and
selection (training.active) code. It starts from random answers and trains. Then a strategy
chooses the next questions from a candidate pool, an oracle answers them, and the model is
retrained with a warm start, round after round. Every strategy sees the same seeds, oracle
and budget. It prints accuracy per round, the answers each strategy needs to reach a target
accuracy and the ratio to random. It writes benchmarks/results/active_<problem>.json and a
PNG plot next to it.

    .venv/bin/python benchmarks/active_vs_random.py --problem zappos --zappos-dir PATH/zappos85
    .venv/bin/python benchmarks/active_vs_random.py --problem fonts --dataset fonts --error-rate 0.1
"""

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS_DIR, markdown_table, setup_django, write_results  # noqa: E402
from training import active, csn  # noqa: E402
from training.splits import held_out_mask  # noqa: E402


@dataclass
class Problem:
    """Items, an oracle over item positions and a fixed test set of (anchor, closer, farther, row)."""

    item_ids: np.ndarray
    paths: dict[int, str]
    conditions: list[str]
    oracle: callable
    test: np.ndarray
    model: dict
    test_questions: set


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", choices=["zappos", "fonts"], required=True, help="zappos85 with the replay oracle, or a fonts dataset with the attribute oracle")
    parser.add_argument("--zappos-dir", type=Path, help="folder with images/ and triplets.csv")
    parser.add_argument("--dataset", default="fonts", help="fonts dataset slug (fonts problem)")
    parser.add_argument("--strategies", nargs="+", default=["random", "uncertainty", "bald"], choices=sorted(active.STRATEGIES), help="strategies to compare")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per strategy and seed")
    parser.add_argument("--initial", type=int, default=200, help="random answers before the first model")
    parser.add_argument("--per-round", type=int, default=200, help="answers per round")
    parser.add_argument("--rounds", type=int, default=5, help="selection rounds after the initial random questions")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per retrain")
    parser.add_argument("--batch-size", type=int, default=128, help="triplets per optimiser step; a size above the number of answers makes each epoch one full-batch step")
    parser.add_argument("--image-size", type=int, default=64, help="image width and height in pixels")
    parser.add_argument("--error-rate", type=float, default=0.0, help="oracle error rate (fonts)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--candidates-per-anchor", type=int, default=active.PoolConfig.candidates_per_anchor, help="candidate pool width per anchor")
    parser.add_argument("--power", type=float, default=None, help="draw active questions with probability ~ score ** POWER instead of the top scores")
    parser.add_argument("--answerability", action="store_true", help="weight active scores by the fitted chance of an answer rather than \"can't tell\"")
    parser.add_argument("--merge", type=Path, nargs="+", help="combine the curves of earlier result files instead of running; writes active_<problem>[_<tag>].json, replacing a file of that name")
    parser.add_argument("--tag", default="", help="suffix of the result file names, to keep several runs")
    return parser.parse_args()


def zappos_problem(folder: Path, args) -> Problem:
    """Build the replay problem: the recorded crowd answer decides, and unrecorded questions get none."""
    rows = np.loadtxt(folder / "triplets.csv", delimiter=",", skiprows=1, dtype=np.int64)
    stems = sorted(int(path.stem) for path in (folder / "images").glob("*.jpg"))
    item_ids = np.array(stems)
    paths = {stem: str(folder / "images" / f"{stem}.jpg") for stem in stems}

    answers = {(a, min(c, f), max(c, f)): c for a, c, f in rows.tolist()}
    triplets = np.column_stack([rows, np.zeros(len(rows), dtype=np.int64)])
    test = triplets[held_out_mask(triplets)][:5000]

    def oracle(condition_row, anchor, first, second, rng):
        return answers.get((anchor, min(first, second), max(first, second)))

    model = {"backbone": "resnet18-layer3", "in_channels": 3, "image_size": args.image_size, "resize_size": args.image_size}
    return Problem(item_ids, paths, ["overall"], oracle, test, model, _questions(test))


def fonts_problem(slug: str, args) -> Problem:
    """Build the attribute problem, with a per-answer error rate; undecidable questions get no answer."""
    setup_django()
    from annotation.models import Condition, Item
    from training.sampling import sample_categorical

    conditions = list(Condition.objects.filter(dataset__slug=slug, slug__in=["character", "weight", "italic"]).order_by("index"))
    items = list(Item.objects.filter(dataset__slug=slug).order_by("id"))
    item_ids = np.array([item.pk for item in items])
    position = {item.pk: index for index, item in enumerate(items)}
    values = [[str(item.attributes.get(condition.attribute)) for item in items] for condition in conditions]

    rng = np.random.default_rng(12345)
    parts = []
    for row, condition_values in enumerate(values):
        sampled = sample_categorical(condition_values, 1000, rng)
        parts.append(np.column_stack([item_ids[sampled], np.full(len(sampled), row)]))
    test = np.concatenate(parts)

    def oracle(condition_row, anchor, first, second, rng):
        anchor_value = values[condition_row][position[anchor]]
        first_same = values[condition_row][position[first]] == anchor_value
        second_same = values[condition_row][position[second]] == anchor_value
        if first_same == second_same:
            return None
        closer = first if first_same else second
        if rng.random() < args.error_rate:
            closer = second if closer == first else first
        return closer

    model = {"backbone": "small-cnn", "in_channels": 1, "image_size": args.image_size}
    paths = {item.pk: item.image.path for item in items}
    return Problem(item_ids, paths, [condition.slug for condition in conditions], oracle, test, model, _questions(test))


def _questions(triplets: np.ndarray) -> set:
    return {(int(r), int(a), int(min(c, f)), int(max(c, f))) for a, c, f, r in triplets.tolist()}


def ask(problem: Problem, questions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Answer (anchor, a, b, row) questions with the oracle; return (anchor, closer, farther, row) rows."""
    rows = []
    for anchor, first, second, row in questions.tolist():
        closer = problem.oracle(row, anchor, first, second, rng)
        if closer is not None:
            rows.append((anchor, closer, second if closer == first else first, row))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def random_questions(problem: Problem, count: int, asked: set, rng: np.random.Generator) -> np.ndarray:
    questions = []
    while len(questions) < count:
        anchor, first, second = (int(value) for value in rng.choice(problem.item_ids, 3, replace=False))
        row = int(rng.integers(len(problem.conditions)))
        key = (row, anchor, min(first, second), max(first, second))
        if key in asked or key in problem.test_questions:
            continue
        asked.add(key)
        questions.append((anchor, min(first, second), max(first, second), row))
    return np.array(questions, dtype=np.int64)


def active_questions(problem, model, strategy, args, asked, answered, seed) -> np.ndarray:
    """Let the strategy choose `args.per_round` questions, spread evenly over the conditions."""
    generator = torch.Generator().manual_seed(seed)
    source = csn.PathImageSource(problem.paths)
    masked = csn.masked_embeddings(model, source, problem.item_ids.tolist())
    positions = {int(item): index for index, item in enumerate(problem.item_ids)}
    chosen = []
    for row in range(len(problem.conditions)):
        embedding = active.ConditionalEmbedding(masked[row])
        pool = active.build_candidate_pool(embedding.masked(), active.PoolConfig(n_anchors=min(400, len(problem.item_ids)), candidates_per_anchor=args.candidates_per_anchor), generator)
        excluded = [key[1:] for key in asked | problem.test_questions if key[0] == row]
        excluded_positions = torch.tensor([[positions[a], positions[b], positions[c]] for a, b, c in excluded], dtype=torch.int64).reshape(-1, 3)
        answerability = condition_answerability(embedding, row, asked, answered, positions) if args.answerability else None
        config = active.ScoringConfig(scale=SCALES.get(row, 1.0), answerability=answerability)
        scores = active.score_triples(strategy, pool, embedding, config, generator)
        selection = active.select_tasks(
            pool, scores, args.per_round // len(problem.conditions), active.SelectionConfig(random_share=0.0, power=args.power),
            generator, asked=excluded_positions,
        )
        for anchor, first, second in problem.item_ids[selection.rows.numpy()].tolist():
            asked.add((row, anchor, first, second))
            chosen.append((anchor, first, second, row))
    return np.array(chosen, dtype=np.int64).reshape(-1, 4)


def condition_answerability(embedding, row, asked, answered, positions):
    """Fit the chance of an answer under one condition on every question asked so far."""
    answered_keys = {(r, a, min(c, f), max(c, f)) for a, c, f, r in answered.tolist()}
    keys = sorted(key for key in asked if key[0] == row)
    if not keys:
        return None
    triples = torch.tensor([[positions[a], positions[b], positions[c]] for _, a, b, c in keys], dtype=torch.int64)
    flags = torch.tensor([key in answered_keys for key in keys])
    return active.fit_answerability(active.relative_gaps(embedding.masked(), triples), flags)


# Slope of the logistic answer model per condition row, refitted by `fit_scales` every round.
SCALES: dict = {}


def fit_scales(problem, model, answered) -> None:
    """Fit each condition's answer-model slope on the answers collected so far."""
    source = csn.PathImageSource(problem.paths)
    masked = csn.masked_embeddings(model, source, problem.item_ids.tolist())
    positions = {int(item): index for index, item in enumerate(problem.item_ids)}
    for row in range(len(problem.conditions)):
        rows = answered[answered[:, 3] == row]
        if len(rows) < 10:
            continue
        triples = torch.tensor([[positions[a], positions[c], positions[f]] for a, c, f, _ in rows.tolist()])
        SCALES[row] = active.fit_answer_scale(active.distance_gaps(masked[row], triples, 65536))


def train_round(problem, answered, previous, args, seed):
    model_config = csn.CSNConfig(n_conditions=len(problem.conditions), variant="learned", embedding_dim=32, **problem.model)
    train_config = csn.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=seed, num_threads=args.threads)
    result = csn.train(
        model_config, train_config, train_triplets=answered, val_triplets=None,
        image_source=csn.PathImageSource(problem.paths), conditions=problem.conditions,
        item_ids=problem.item_ids.tolist(), init_checkpoint=previous, progress=False,
    )
    report = csn.triplet_accuracy(result.model, csn.PathImageSource(problem.paths), problem.test, conditions=problem.conditions)
    return result, report.overall


def run(problem: Problem, strategy: str, seed: int, args) -> list[dict]:
    rng = np.random.default_rng(seed)
    asked: set = set()
    SCALES.clear()
    answered = ask(problem, random_questions(problem, args.initial, asked, rng), rng)
    result, accuracy = train_round(problem, answered, None, args, seed)
    curve = [{"questions": args.initial, "answers": len(answered), "accuracy": accuracy}]
    print(f"{strategy} seed {seed}: {args.initial} questions, accuracy {accuracy:.4f}", flush=True)

    for round_number in range(1, args.rounds + 1):
        if strategy == "random":
            questions = random_questions(problem, args.per_round, asked, rng)
        else:
            fit_scales(problem, result.model, answered)
            questions = active_questions(problem, result.model, strategy, args, asked, answered, seed * 1000 + round_number)
        answered = np.concatenate([answered, ask(problem, questions, rng)])
        result, accuracy = train_round(problem, answered, result.checkpoint, args, seed)
        asked_total = args.initial + round_number * args.per_round
        curve.append({"questions": asked_total, "answers": len(answered), "accuracy": accuracy})
        print(f"{strategy} seed {seed}: {asked_total} questions, accuracy {accuracy:.4f}", flush=True)
    return curve


def summarise(curves: dict, args) -> tuple[list, float]:
    """Tabulate each strategy's final accuracy and the questions it needs to reach random's final mean."""
    mean = {strategy: np.mean([[p["accuracy"] for p in curve] for curve in runs], axis=0) for strategy, runs in curves.items()}
    target = float(mean["random"][-1]) if "random" in mean else float(max(m[-1] for m in mean.values()))
    questions = [args.initial + r * args.per_round for r in range(args.rounds + 1)]
    baseline = questions_to_reach(questions, mean["random"], target) if "random" in mean else None
    rows = []
    for strategy, values in mean.items():
        needed = questions_to_reach(questions, values, target)
        ratio = f"{needed / baseline:.2f}" if needed and baseline else "-"
        rows.append([strategy, f"{values[-1]:.4f}", f"{needed:.0f}" if needed else "not reached", ratio])
    return rows, target


def questions_to_reach(questions: list, values, target: float) -> float | None:
    """Questions at which the mean curve first reaches `target`, interpolated linearly between rounds."""
    for index, value in enumerate(values):
        if value < target:
            continue
        if index == 0:
            return float(questions[0])
        before, after = values[index - 1], value
        share = (target - before) / (after - before)
        return questions[index - 1] + share * (questions[index] - questions[index - 1])
    return None


def plot(curves: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for strategy, runs in curves.items():
        questions = [point["questions"] for point in runs[0]]
        values = np.array([[point["accuracy"] for point in curve] for curve in runs])
        axes.plot(questions, values.mean(axis=0), marker="o", label=strategy)
        axes.fill_between(questions, values.min(axis=0), values.max(axis=0), alpha=0.2)
    axes.set_xlabel("questions asked")
    axes.set_ylabel("held-out triplet accuracy")
    n_seeds = len(next(iter(curves.values())))
    axes.set_title(f"{args.problem}: mean over {n_seeds} seeds (band: min to max)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def strategy_label(strategy: str, args) -> str:
    """Name a curve by its strategy and, for active ones, the non-default selection settings."""
    if strategy == "random":
        return strategy
    details = []
    if args.power is not None:
        details.append(f"power {args.power:g}")
    if args.candidates_per_anchor != active.PoolConfig.candidates_per_anchor:
        details.append(f"{args.candidates_per_anchor} candidates")
    if args.answerability:
        details.append("answerability")
    return f"{strategy} ({', '.join(details)})" if details else strategy


def run_all(args) -> tuple[dict, list[str]]:
    if args.problem == "zappos" and not (args.zappos_dir and (args.zappos_dir / "triplets.csv").is_file()):
        raise SystemExit(f"--zappos-dir {args.zappos_dir} has no triplets.csv; pass the zappos85 folder with images/ and triplets.csv")
    problem = zappos_problem(args.zappos_dir, args) if args.problem == "zappos" else fonts_problem(args.dataset, args)
    print(f"{len(problem.item_ids)} items, {len(problem.test)} test triplets, conditions {problem.conditions}")
    curves = {strategy_label(strategy, args): [run(problem, strategy, seed, args) for seed in args.seeds] for strategy in args.strategies}
    return curves, [" ".join(sys.argv)]


def read_result_file(path: Path) -> dict:
    """Read one result file of this script, or exit with a message naming the file."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"result file {path} not found; pass files written by this script under benchmarks/results/")
    except json.JSONDecodeError as error:
        raise SystemExit(f"result file {path} is not JSON ({error}); pass files written by this script")
    if not isinstance(record, dict) or not record.get("curves") or "command" not in record:
        raise SystemExit(f"result file {path} has no curves; pass files written by this script")
    return record


def merge_results(args) -> tuple[dict, list[str]]:
    """Load the curves of earlier runs; they must share the schedule of questions."""
    curves, sources = {}, []
    for path in args.merge:
        record = read_result_file(path)
        schedule = [point["questions"] for point in next(iter(record["curves"].values()))[0]]
        expected = [args.initial + r * args.per_round for r in range(args.rounds + 1)]
        if schedule != expected:
            raise SystemExit(f"{path} asked questions at {schedule}, not {expected}; pass the same --initial, --per-round and --rounds")
        clash = set(curves) & set(record["curves"])
        if clash:
            raise SystemExit(f"{path} repeats the curves {sorted(clash)}; merge files of different strategies or settings")
        curves.update(record["curves"])
        sources.append(record["command"])
    return curves, sources


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    curves, sources = merge_results(args) if args.merge else run_all(args)

    rows, target = summarise(curves, args)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = f"active_{args.problem}{'_' + args.tag if args.tag else ''}"
    plot_path = RESULTS_DIR / f"{name}.png"
    plot(curves, args, plot_path)
    settings = {key: str(value) for key, value in vars(args).items()}
    record = {"settings": settings, "sources": sources, "target_accuracy": target, "curves": curves, "summary": rows}
    path = write_results(name, record)
    budget = args.initial + args.rounds * args.per_round
    source = "random's mean" if "random" in curves else "the best final mean, as no random curve ran"
    print(f"target accuracy: {target:.4f} ({source} after {budget} questions)")
    print(markdown_table(["strategy", "final accuracy", "questions to reach target", "ratio to random"], rows))
    print(f"results written to {path} and {plot_path}")


if __name__ == "__main__":
    main()
