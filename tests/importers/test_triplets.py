"""import_triplets: both formats, their close/far orientation, rejected rows, re-imports."""

import hashlib
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from annotation.importers import triplets as triplet_importer
from annotation.importers.triplets import ItemResolver, TripletFileInvalid, import_triplets
from annotation.models import Condition, ImportBatch, Triplet

pytestmark = pytest.mark.django_db


@pytest.fixture
def shoes(small_dataset):
    return small_dataset(slug="shoes", n_items=6, conditions=("colour",))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def triplet_names(condition_slug: str) -> list[tuple[str, str, str]]:
    return [
        (triplet.anchor.external_id, triplet.closer.external_id, triplet.farther.external_id)
        for triplet in Triplet.objects.filter(condition__slug=condition_slug).select_related(
            "anchor", "closer", "farther"
        )
    ]


def test_csv_close_column_is_closer(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n3,5,4\n")

    run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    assert triplet_names("colour") == [("0", "1", "2"), ("3", "5", "4")]


def test_indices_last_column_is_closer(tmp_path, run_command, shoes):
    # The list is reversed, so index i names item 5 - i and indices never equal ids by chance.
    images_list = write(tmp_path / "filenames.txt", "".join(f"data/shoes/{number}.jpg\n" for number in range(5, -1, -1)))
    path = write(tmp_path / "colour_tripletlist_train.txt", "0 1 2\n5 3 4\n")

    run_command(
        "import_triplets",
        str(path),
        dataset="shoes",
        condition="colour",
        format="anchor-far-close-indices",
        images_list=str(images_list),
    )

    # "0 1 2" is anchor=list[0]=5, far=list[1]=4, close=list[2]=3.
    assert triplet_names("colour") == [("5", "3", "4"), ("0", "1", "2")]


def test_wrong_header_rejected(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,far,close\n0,1,2\n")

    with pytest.raises(CommandError) as error:
        run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    assert "'head,far,close'" in str(error.value)
    assert "exactly 'head,close,far'" in str(error.value)
    assert not Triplet.objects.exists()
    assert not ImportBatch.objects.exists()


def test_bad_rows_rejected_with_line_numbers(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n99,1,2\n1,1,2\n0,1\n2,3,3\n4,0,4\n")

    output = run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    assert "Imported 1 triplets" in output
    assert "rejected 5" in output
    assert "line 3: unknown item '99'" in output
    assert "line 4: anchor and closer are the same item '1'" in output
    assert "line 5: expected 3 columns, found 2" in output
    assert "line 6: closer and farther are the same item '3'" in output
    assert "line 7: anchor and farther are the same item '4'" in output
    assert Triplet.objects.count() == 1


def test_many_rejections_summarised(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n" + "77,1,2\n" * 50)

    output = run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    assert "Rejected rows (unknown item: 50):" in output
    assert "... and 30 more" in output
    assert output.count("unknown item '77'") == 20


def test_missing_condition_created(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n")

    output = run_command("import_triplets", str(path), dataset="shoes", condition="heel-height", format="head-close-far-csv")

    condition = Condition.objects.get(dataset=shoes, slug="heel-height")
    assert "Created condition heel-height at index 1" in output
    assert condition.index == 1
    assert condition.name == "heel height"
    assert condition.prompt == "Which is more similar to the reference (heel height)?"


def test_batch_records_file_and_rows(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n2,3,4\n")

    run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    batch = ImportBatch.objects.get()
    assert batch.kind == "triplets"
    assert batch.source_name == "triplets.csv"
    assert batch.details["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert batch.details["format"] == "head-close-far-csv"
    assert batch.details["imported"] == 2
    assert set(Triplet.objects.values_list("import_batch_id", flat=True)) == {batch.pk}
    assert set(Triplet.objects.values_list("source", flat=True)) == {"import"}


def test_reimport_is_noop_unless_allowed(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n")
    run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    output = run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")
    count_after_second = Triplet.objects.count()
    run_command(
        "import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv", allow_duplicate=True
    )

    assert "already imported" in output
    assert "--allow-duplicate" in output
    assert count_after_second == 1
    assert Triplet.objects.count() == 2
    assert ImportBatch.objects.count() == 2


def test_same_file_into_other_condition_imports(tmp_path, run_command, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n")
    run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="head-close-far-csv")

    run_command("import_triplets", str(path), dataset="shoes", condition="shape", format="head-close-far-csv")

    assert Triplet.objects.filter(condition__slug="shape").count() == 1


def test_failure_midway_leaves_nothing(tmp_path, shoes, monkeypatch):
    monkeypatch.setattr(triplet_importer, "INSERT_BATCH_SIZE", 2)
    monkeypatch.setattr(triplet_importer, "COPY_BATCH_SIZE", 2)
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n1,2,3\n2,3,4\n3,4,5\n")
    calls = []

    def fail_on_second_chunk(count):
        calls.append(count)
        if len(calls) == 2:
            raise RuntimeError("simulated failure")

    with pytest.raises(RuntimeError):
        import_triplets(
            dataset=shoes,
            condition_slug="new-condition",
            path=path,
            file_format="head-close-far-csv",
            on_progress=fail_on_second_chunk,
        )

    assert calls == [2, 2]
    assert not Triplet.objects.exists()
    assert not ImportBatch.objects.exists()
    assert not Condition.objects.filter(slug="new-condition").exists()


def test_no_valid_rows_is_an_error(tmp_path, shoes):
    path = write(tmp_path / "triplets.csv", "head,close,far\n70,71,72\n")

    with pytest.raises(TripletFileInvalid) as error:
        import_triplets(dataset=shoes, condition_slug="other", path=path, file_format="head-close-far-csv")

    assert "no valid triplet rows" in str(error.value)
    assert "line 2: unknown item '70', '71', '72'" in str(error.value)
    assert not Condition.objects.filter(slug="other").exists()


def test_index_past_list_end_rejected(tmp_path, shoes):
    images_list = write(tmp_path / "filenames.txt", "0.png\n1.png\n2.png\n")
    path = write(tmp_path / "list.txt", "0 1 2\n0 1 9\nx y z\n")

    report = import_triplets(
        dataset=shoes,
        condition_slug="colour",
        path=path,
        file_format="anchor-far-close-indices",
        images_list_path=images_list,
    )

    assert report.imported == 1
    assert [str(rejection) for rejection in report.rejected] == [
        "line 2: index 9 is past the end of the images list (3 paths)",
        "line 3: expected three non-negative integers, found 'x y z'",
    ]


def test_indices_need_images_list(tmp_path, run_command, shoes):
    path = write(tmp_path / "list.txt", "0 1 2\n")

    with pytest.raises(CommandError) as error:
        run_command("import_triplets", str(path), dataset="shoes", condition="colour", format="anchor-far-close-indices")

    assert "--images-list" in str(error.value)


def test_missing_dataset_error(tmp_path, run_command, db):
    path = write(tmp_path / "triplets.csv", "head,close,far\n0,1,2\n")

    with pytest.raises(CommandError) as error:
        run_command("import_triplets", str(path), dataset="nowhere", condition="colour", format="head-close-far-csv")

    assert "'nowhere' not found" in str(error.value)


@pytest.mark.parametrize(
    ("key", "external_id"),
    [("3", "3"), ("3.png", "3"), ("images/sub/3.jpg", "3"), ("./3", "3"), ("data\\3.png", "3")],
)
def test_resolver_matches_paths_and_stems(shoes, key, external_id):
    resolver = ItemResolver(dataset=shoes)

    assert resolver.resolve(key) == shoes.items.get(external_id=external_id).pk


def test_resolver_unknown_key_is_none(shoes):
    resolver = ItemResolver(dataset=shoes)

    assert resolver.resolve("images/42.jpg") is None
