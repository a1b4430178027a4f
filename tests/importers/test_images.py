"""import_images: folders and zips, attributes, duplicates, rejected files, atomic storage."""

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError
from PIL import Image

from annotation.importers.images import import_images, parse_attribute_value
from annotation.models import Dataset, Item
from tests.importers.conftest import image_bytes, stored_files, write_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(db):
    return Dataset.objects.create(name="Shoes", slug="shoes")


def noise_jpeg(size=(120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_folder_import_with_attributes(tmp_path, run_command, media_root):
    folder = tmp_path / "images"
    write_images(folder, {"12.jpg": (255, 0, 0), "sub/7.png": (0, 0, 255)})
    csv_path = tmp_path / "attributes.csv"
    csv_path.write_text("filename,colour,size,score,code\n12.jpg,red,3,0.5,007\nsub/7.png,blue,10,1e3,\nghost.png,x,1,1,1\n")

    output = run_command(
        "import_images", dataset="shoes", dir=str(folder), attributes=str(csv_path), create=True, name="Shoes"
    )

    assert "Created dataset shoes" in output
    assert "imported 2, duplicates 0, rejected 0" in output
    assert "line 4: no file matches 'ghost.png'" in output
    red = Item.objects.get(external_id="12")
    blue = Item.objects.get(external_id="sub/7")
    assert red.attributes == {"colour": "red", "size": 3, "score": 0.5, "code": "007"}
    assert blue.attributes == {"colour": "blue", "size": 10, "score": 1000.0}
    assert red.original_name == "12.jpg"
    assert (red.width, red.height) == (20, 14)
    assert red.content_hash == hashlib.sha256((folder / "12.jpg").read_bytes()).hexdigest()
    assert red.image.name.endswith(f"{red.content_hash}.jpg")
    assert (media_root / red.image.name).read_bytes() == (folder / "12.jpg").read_bytes()
    assert blue.image.name.startswith(f"items/shoes/{blue.content_hash[:2]}/")


def test_zip_import_matches_attributes_by_stem(tmp_path, run_command, dataset):
    archive_path = tmp_path / "images.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("images/a.png", image_bytes((1, 2, 3)))
        archive.writestr("images/b.jpg", image_bytes((200, 2, 3), image_format="JPEG"))
    csv_path = tmp_path / "attributes.csv"
    csv_path.write_text("image,label\na,first\nimages/b.jpg,second\n")

    output = run_command("import_images", dataset="shoes", zip=str(archive_path), attributes=str(csv_path))

    assert "imported 2, duplicates 0, rejected 0" in output
    assert Item.objects.get(external_id="images/a").attributes == {"label": "first"}
    assert Item.objects.get(external_id="images/b").attributes == {"label": "second"}
    assert Item.objects.get(external_id="images/b").image.name.endswith(".jpg")


def test_second_import_reports_duplicates(tmp_path, run_command, dataset, media_root):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (10, 10, 10), "2.png": (20, 20, 20)})
    run_command("import_images", dataset="shoes", dir=str(folder))
    files_after_first = stored_files(media_root)

    output = run_command("import_images", dataset="shoes", dir=str(folder))

    assert "imported 0, duplicates 2, rejected 0" in output
    assert Item.objects.count() == 2
    assert stored_files(media_root) == files_after_first


def test_same_image_under_two_names_is_one_item(tmp_path, dataset):
    folder = tmp_path / "images"
    write_images(folder, {"a.png": (5, 5, 5), "copy/a-again.png": (5, 5, 5)})

    report = import_images(dataset=dataset, folder=folder)

    assert report.imported == ["a"]
    assert report.duplicates == ["copy/a-again.png"]


def test_missing_dataset_names_slug_and_create(tmp_path, run_command):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1)})

    with pytest.raises(CommandError) as error:
        run_command("import_images", dataset="nowhere", dir=str(folder))

    assert "'nowhere'" in str(error.value)
    assert "--create" in str(error.value)
    assert not Dataset.objects.exists()


def test_attributes_without_file_column_rejected(tmp_path, run_command, dataset):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1)})
    csv_path = tmp_path / "attributes.csv"
    csv_path.write_text("name,colour\n1.png,red\n")

    with pytest.raises(CommandError) as error:
        run_command("import_images", dataset="shoes", dir=str(folder), attributes=str(csv_path))

    assert "file, filename, image, path" in str(error.value)
    assert not Item.objects.exists()


BROKEN_FILES = [
    ("truncated.jpg", lambda: noise_jpeg(size=(60, 60))[:1500], "corrupt or truncated"),
    ("text.png", lambda: b"this is not an image\n", "not an image"),
    ("empty.png", lambda: b"", "empty file"),
    ("bomb-warning.png", lambda: image_bytes(size=(80, 80)), "CSN_MAX_IMAGE_PIXELS=5000"),
    ("bomb-error.png", lambda: image_bytes(size=(300, 300)), "CSN_MAX_IMAGE_PIXELS=5000"),
    ("picture.tiff", lambda: image_bytes(size=(10, 10), image_format="TIFF"), "not shown by web browsers"),
]


@pytest.mark.parametrize(("name", "make_bytes", "reason"), BROKEN_FILES, ids=[case[0] for case in BROKEN_FILES])
def test_broken_file_rejected_good_imported(tmp_path, run_command, dataset, settings, name, make_bytes, reason):
    # 60x60 and smaller images pass; the bombs are 80x80 (over the limit) and 300x300 (over
    # twice the limit, where Pillow raises DecompressionBombError instead of warning).
    settings.CSN_MAX_IMAGE_PIXELS = 5000
    folder = tmp_path / "images"
    write_images(folder, {"good.png": (9, 9, 9)})
    (folder / name).write_bytes(make_bytes())

    output = run_command("import_images", dataset="shoes", dir=str(folder))

    assert "imported 1, duplicates 0, rejected 1" in output
    rejection_line = next(line for line in output.splitlines() if line.strip().startswith(f"{name}:"))
    assert reason in rejection_line
    assert list(Item.objects.values_list("external_id", flat=True)) == ["good"]


def test_bomb_limit_restored_after_import(tmp_path, dataset, settings):
    settings.CSN_MAX_IMAGE_PIXELS = 5000
    before = Image.MAX_IMAGE_PIXELS
    folder = tmp_path / "images"
    (folder).mkdir()
    (folder / "bomb.png").write_bytes(image_bytes(size=(300, 300)))

    import_images(dataset=dataset, folder=folder)

    assert Image.MAX_IMAGE_PIXELS == before


def test_file_over_byte_limit_rejected(tmp_path, run_command, dataset, settings):
    settings.CSN_MAX_IMAGE_BYTES = 1000
    folder = tmp_path / "images"
    write_images(folder, {"small.png": (9, 9, 9)})
    (folder / "large.jpg").write_bytes(noise_jpeg())

    output = run_command("import_images", dataset="shoes", dir=str(folder))

    assert "imported 1, duplicates 0, rejected 1" in output
    assert "large.jpg: file is" in output
    assert "CSN_MAX_IMAGE_BYTES=1000" in output


def test_zip_entries_escaping_root_rejected(tmp_path, run_command, dataset, media_root):
    archive_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("good.png", image_bytes((3, 3, 3)))
        archive.writestr("../evil.png", image_bytes((4, 4, 4)))
        archive.writestr(zipfile.ZipInfo("/abs/evil.png"), image_bytes((5, 5, 5)))
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")

    output = run_command("import_images", dataset="shoes", zip=str(archive_path))

    assert "imported 1, duplicates 0, rejected 3" in output
    assert "../evil.png: path escapes the archive root" in output
    assert "/abs/evil.png: absolute path" in output
    assert "link.png: symbolic link" in output
    assert list(Item.objects.values_list("external_id", flat=True)) == ["good"]
    assert not (tmp_path / "evil.png").exists()
    assert len(stored_files(media_root)) == 1


def test_zip_entry_over_byte_limit_rejected(tmp_path, dataset, settings):
    settings.CSN_MAX_IMAGE_BYTES = 1000
    archive_path = tmp_path / "big.zip"
    with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.png", b"\0" * 100_000)

    report = import_images(dataset=dataset, zip_path=archive_path)

    assert [rejection.name for rejection in report.rejected] == ["big.png"]
    assert "over the limit CSN_MAX_IMAGE_BYTES=1000" in report.rejected[0].reason


def test_storage_failure_leaves_no_row_or_file(tmp_path, run_command, dataset, media_root, monkeypatch):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1)})
    original_save = FileSystemStorage._save

    def save_half_then_fail(self, name, content):
        # Write part of the file, as a full disk would, then fail.
        path = Path(self.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.read()[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", save_half_then_fail)
    with pytest.raises(CommandError) as error:
        run_command("import_images", dataset="shoes", dir=str(folder))
    monkeypatch.setattr(FileSystemStorage, "_save", original_save)

    assert "No space left on device" in str(error.value)
    assert not Item.objects.exists()
    assert stored_files(media_root) == []


def test_database_failure_deletes_stored_file(tmp_path, dataset, media_root, monkeypatch):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1)})

    def fail_save(self, *args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(Item, "save", fail_save)
    with pytest.raises(DatabaseError):
        import_images(dataset=dataset, folder=folder)

    assert not Item.objects.exists()
    assert stored_files(media_root) == []


def test_integrity_error_rejects_and_deletes_file(tmp_path, dataset, media_root, monkeypatch):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1)})

    def fail_save(self, *args, **kwargs):
        raise IntegrityError("duplicate key")

    monkeypatch.setattr(Item, "save", fail_save)
    report = import_images(dataset=dataset, folder=folder)

    assert [rejection.name for rejection in report.rejected] == ["1.png"]
    assert "insert failed" in report.rejected[0].reason
    assert stored_files(media_root) == []


def test_external_id_clash_rejected(tmp_path, dataset):
    first = tmp_path / "first"
    second = tmp_path / "second"
    write_images(first, {"1.png": (1, 1, 1)})
    write_images(second, {"1.png": (2, 2, 2)})
    import_images(dataset=dataset, folder=first)

    report = import_images(dataset=dataset, folder=second)

    assert report.imported == []
    assert "already belongs to a different image" in report.rejected[0].reason


def test_hidden_files_and_attributes_csv_skipped(tmp_path, dataset):
    folder = tmp_path / "images"
    write_images(folder, {"1.png": (1, 1, 1), ".thumbs/1.png": (2, 2, 2)})
    (folder / ".DS_Store").write_bytes(b"\0\1")
    csv_path = folder / "attributes.csv"
    csv_path.write_text("file,colour\n1.png,grey\n")

    report = import_images(dataset=dataset, folder=folder, attributes_csv=csv_path)

    assert report.imported == ["1"]
    assert report.rejected == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_folder_symlink_to_file_followed(tmp_path, dataset):
    source = tmp_path / "source"
    write_images(source, {"real.png": (7, 7, 7)})
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "linked.png").symlink_to(source / "real.png")

    report = import_images(dataset=dataset, folder=folder)

    assert report.imported == ["linked"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), ("-2", -2), ("0.5", 0.5), ("1e3", 1000.0), ("007", "007"), ("red", "red"), ("0", 0), ("0.25", 0.25)],
)
def test_attribute_value_parsing(text, expected):
    value = parse_attribute_value(text)

    assert value == expected
    assert type(value) is type(expected)
