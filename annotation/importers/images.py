"""Import image files from a folder or a zip archive as items of a dataset.

Every file is checked with Pillow before anything is stored: unreadable, truncated and
non-image files, images over `settings.CSN_MAX_IMAGE_PIXELS` pixels (decompression bombs) and
files over `settings.CSN_MAX_IMAGE_BYTES` bytes are rejected with a reason, and the import goes
on with the next file. Items are keyed by the SHA-256 of their bytes, so importing the same
image twice stores it once. Each item is stored atomically: a failed insert deletes the file it
stored, and a failed file write leaves no row.
"""

import csv
import hashlib
import io
import logging
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image, ImageFile, UnidentifiedImageError

from annotation.models import Dataset, Item

logger = logging.getLogger(__name__)

# Formats that web browsers display, mapped to the file extension items are stored under.
WEB_IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}

# Attribute CSV columns that may name the image file, in order of preference.
FILE_COLUMNS = ("file", "filename", "image", "path")

# Folders that archivers add and that never hold dataset images.
IGNORED_DIRECTORY_NAMES = {"__MACOSX"}

EXTERNAL_ID_MAX_LENGTH = Item._meta.get_field("external_id").max_length
ORIGINAL_NAME_MAX_LENGTH = Item._meta.get_field("original_name").max_length


class ImageRejected(ValueError):
    """A file that is not imported; the message is the reason shown to the user."""


class AttributesFileInvalid(ValueError):
    pass


@dataclass(frozen=True)
class ImageCandidate:
    """One file to import: its path relative to the import root and how to read its bytes."""

    relative_path: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Rejection:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass
class ImageImportReport:
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# Checking one image ---------------------------------------------------------------------------


@contextmanager
def pillow_limits(*, max_pixels: int) -> Iterator[None]:
    """Make Pillow reject images over `max_pixels` and refuse truncated files, then restore it.

    NOTE: Image.MAX_IMAGE_PIXELS and ImageFile.LOAD_TRUNCATED_IMAGES are process-wide, so
    threads that decode images at the same time see these limits too.
    """
    previous_max_pixels = Image.MAX_IMAGE_PIXELS
    previous_load_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous_max_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = previous_load_truncated


def inspect_image(data: bytes, *, max_pixels: int) -> tuple[str, int, int]:
    """Check that `data` is a complete image of a web format; return (format, width, height).

    Raises ImageRejected with the reason otherwise.
    """
    if not data:
        raise ImageRejected("empty file (0 bytes)")

    with pillow_limits(max_pixels=max_pixels):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format or ""
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"image is {width}x{height} = {width * height} pixels, over the limit "
                        f"CSN_MAX_IMAGE_PIXELS={max_pixels}"
                    )
                image.verify()
            # verify() leaves the image unusable and skips pixel data, so decode it fully too.
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected(
                f"decompression bomb, over the limit CSN_MAX_IMAGE_PIXELS={max_pixels}: {error}"
            ) from None
        except UnidentifiedImageError:
            raise ImageRejected("not an image file that Pillow can read") from None
        # Pillow's decoders raise many exception types on malformed data (OSError, SyntaxError,
        # ValueError, struct.error, EOFError ...), and every one means the file is unusable.
        except Exception as error:
            raise ImageRejected(f"corrupt or truncated image: {error}") from None

    if image_format not in WEB_IMAGE_FORMATS:
        raise ImageRejected(
            f"format {image_format or 'unknown'} is not shown by web browsers; "
            f"convert it to PNG or JPEG (accepted: {', '.join(WEB_IMAGE_FORMATS)})"
        )
    return image_format, width, height


# Storing items --------------------------------------------------------------------------------


def store_item(
    *,
    dataset: Dataset,
    data: bytes,
    content_hash: str,
    file_extension: str,
    external_id: str,
    original_name: str,
    attributes: dict,
) -> Item:
    """Save the image file and insert its row; a failure of either leaves neither behind.

    The file is written first because the row needs its name. If the write fails, no row is
    inserted. If the insert fails, the stored file is deleted and the error re-raised.
    """
    item = Item(
        dataset=dataset,
        content_hash=content_hash,
        external_id=external_id,
        original_name=original_name,
        attributes=attributes,
    )
    filename = f"{content_hash}.{file_extension}"
    storage = item.image.storage
    target_name = item.image.field.generate_filename(item, filename)
    target_existed = storage.exists(target_name)

    try:
        item.image.save(filename, ContentFile(data, name=filename), save=False)
    except Exception:
        # FileSystemStorage leaves a partly written file behind when a write fails midway.
        if not target_existed and storage.exists(target_name):
            storage.delete(target_name)
        raise

    try:
        with transaction.atomic():
            item.save()
    except BaseException:
        storage.delete(item.image.name)
        raise
    return item


class ItemWriter:
    """Add images to one dataset, skipping content already there and rejecting id clashes."""

    def __init__(self, *, dataset: Dataset):
        self.dataset = dataset
        self.max_pixels = settings.CSN_MAX_IMAGE_PIXELS
        rows = Item.objects.filter(dataset=dataset).values_list("content_hash", "external_id")
        self.external_id_by_hash = dict(rows)
        self.external_ids = set(self.external_id_by_hash.values())

    def add(self, *, data: bytes, external_id: str, original_name: str, attributes: dict) -> Item | None:
        """Store `data` as a new item; return None when the dataset already has these bytes.

        Raises ImageRejected when the file is not a usable image or the external id is taken.
        """
        content_hash = hashlib.sha256(data).hexdigest()
        if content_hash in self.external_id_by_hash:
            return None

        if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
            raise ImageRejected(f"external id is longer than {EXTERNAL_ID_MAX_LENGTH} characters")
        if external_id in self.external_ids:
            raise ImageRejected(
                f"external id {external_id!r} already belongs to a different image in dataset "
                f"{self.dataset.slug!r}; rename the file or delete the old item"
            )
        image_format, _, _ = inspect_image(data, max_pixels=self.max_pixels)

        try:
            item = store_item(
                dataset=self.dataset,
                data=data,
                content_hash=content_hash,
                file_extension=WEB_IMAGE_FORMATS[image_format],
                external_id=external_id,
                original_name=original_name[:ORIGINAL_NAME_MAX_LENGTH],
                attributes=attributes,
            )
        except IntegrityError as error:
            # Another import added the same image or id between our check and the insert.
            if Item.objects.filter(dataset=self.dataset, content_hash=content_hash).exists():
                self.external_id_by_hash[content_hash] = external_id
                return None
            raise ImageRejected(f"insert failed: {error}") from None

        self.external_id_by_hash[content_hash] = external_id
        self.external_ids.add(external_id)
        return item


# Sources: folders and zip archives ------------------------------------------------------------


def is_ignored_name(relative_path: str) -> bool:
    parts = PurePosixPath(relative_path).parts
    return any(part.startswith(".") or part in IGNORED_DIRECTORY_NAMES for part in parts)


def read_file_checked(path: Path, *, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageRejected(f"file is {size} bytes, over the limit CSN_MAX_IMAGE_BYTES={max_bytes}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageRejected(f"cannot read file: {error}") from None


def folder_candidates(*, root: Path, exclude: set[Path]) -> list[ImageCandidate]:
    """List every file under `root`, recursively, except hidden files and `exclude`.

    Symbolic links to files are followed: the folder belongs to whoever runs the import, unlike
    the contents of a zip archive.
    """
    max_bytes = settings.CSN_MAX_IMAGE_BYTES
    excluded = {path.resolve() for path in exclude}
    candidates = []
    for directory, directory_names, file_names in os.walk(root):
        directory_names[:] = sorted(
            name for name in directory_names if not name.startswith(".") and name not in IGNORED_DIRECTORY_NAMES
        )
        for file_name in sorted(file_names):
            path = Path(directory) / file_name
            relative_path = path.relative_to(root).as_posix()
            if is_ignored_name(relative_path) or path.resolve() in excluded:
                continue
            candidates.append(
                ImageCandidate(
                    relative_path=relative_path,
                    read=lambda path=path: read_file_checked(path, max_bytes=max_bytes),
                )
            )
    return sorted(candidates, key=lambda candidate: candidate.relative_path)


def zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Return why a zip entry must not be extracted, or None when it is safe."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path in the archive; entries must be relative"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path escapes the archive root with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link; archives must contain the image files themselves"
    if info.flag_bits & 0x1:
        return "encrypted entry; extract it and import the folder instead"
    return None


def read_zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, max_bytes: int) -> bytes:
    if info.file_size > max_bytes:
        raise ImageRejected(
            f"entry is {info.file_size} bytes uncompressed, over the limit CSN_MAX_IMAGE_BYTES={max_bytes}"
        )
    try:
        with archive.open(info) as entry:
            # Read one byte past the limit, because the size in the header may be false.
            data = entry.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ImageRejected(f"corrupt zip entry: {error}") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"entry is over the limit CSN_MAX_IMAGE_BYTES={max_bytes} once uncompressed")
    return data


def zip_candidates(*, archive: zipfile.ZipFile) -> tuple[list[ImageCandidate], list[Rejection]]:
    """List the archive's file entries; entries that could escape the import root are rejected."""
    max_bytes = settings.CSN_MAX_IMAGE_BYTES
    candidates = []
    rejected = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        problem = zip_entry_problem(info)
        if problem:
            rejected.append(Rejection(info.filename, problem))
            continue
        relative_path = PurePosixPath(info.filename.replace("\\", "/")).as_posix()
        if is_ignored_name(relative_path):
            continue
        candidates.append(
            ImageCandidate(
                relative_path=relative_path,
                read=lambda info=info: read_zip_entry(archive, info, max_bytes=max_bytes),
            )
        )
    return sorted(candidates, key=lambda candidate: candidate.relative_path), rejected


# Attributes CSV -------------------------------------------------------------------------------


INTEGER_PATTERN = re.compile(r"[+-]?(0|[1-9][0-9]*)")
FLOAT_PATTERN = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


def parse_attribute_value(text: str) -> int | float | str:
    """Parse a CSV cell as int or float where it is a number; keep other text as it is.

    Numbers with leading zeros, such as "007", stay text, because they are usually codes.
    """
    value = text.strip()
    if INTEGER_PATTERN.fullmatch(value):
        return int(value)
    if FLOAT_PATTERN.fullmatch(value) and not re.match(r"[+-]?0[0-9]", value):
        return float(value)
    return value


def path_stem(path: str) -> str:
    return PurePosixPath(path).stem


class AttributeTable:
    """Rows of an attributes CSV, found by relative path, by file name or by file stem."""

    def __init__(self, *, path: Path):
        self.path = path
        self.rows: dict[int, dict] = {}
        self.file_by_line: dict[int, str] = {}
        self.lines_by_key: dict[str, dict[str, list[int]]] = {"path": {}, "name": {}, "stem": {}}
        self.matched_lines: set[int] = set()
        self._load()

    def _load(self) -> None:
        try:
            handle = self.path.open(newline="", encoding="utf-8-sig")
        except OSError as error:
            raise AttributesFileInvalid(f"cannot open attributes file {self.path}: {error}") from None
        with handle:
            reader = csv.DictReader(handle)
            columns = [column.strip() for column in (reader.fieldnames or [])]
            file_column = next(
                (column for wanted in FILE_COLUMNS for column in columns if column.lower() == wanted), None
            )
            if file_column is None:
                raise AttributesFileInvalid(
                    f"attributes file {self.path} has no column naming the image; add one of "
                    f"{', '.join(FILE_COLUMNS)} (found columns: {', '.join(columns) or 'none'})"
                )
            reader.fieldnames = columns
            for row in reader:
                line = reader.line_num
                file_value = (row.pop(file_column) or "").strip().replace("\\", "/").removeprefix("./")
                if not file_value:
                    continue
                attributes = {
                    key: parse_attribute_value(value)
                    for key, value in row.items()
                    if key and value is not None and value.strip() != ""
                }
                self.rows[line] = attributes
                self.file_by_line[line] = file_value
                self.lines_by_key["path"].setdefault(file_value, []).append(line)
                self.lines_by_key["name"].setdefault(PurePosixPath(file_value).name, []).append(line)
                self.lines_by_key["stem"].setdefault(path_stem(file_value), []).append(line)

    def lookup(self, relative_path: str) -> dict:
        """Return the attributes of the file at `relative_path`; {} when no row names it.

        The relative path is tried first, then the file name, then the stem. A name or stem that
        several rows share is ambiguous and matches nothing.
        """
        keys = (
            ("path", relative_path),
            ("name", PurePosixPath(relative_path).name),
            ("stem", path_stem(relative_path)),
        )
        for kind, key in keys:
            lines = self.lines_by_key[kind].get(key, [])
            if len(lines) == 1 or (kind == "path" and lines):
                line = lines[-1]
                self.matched_lines.add(line)
                return dict(self.rows[line])
        return {}

    def unmatched(self) -> list[str]:
        return [
            f"{self.path.name} line {line}: no file matches {self.file_by_line[line]!r}"
            for line in sorted(self.rows)
            if line not in self.matched_lines
        ]


# The import -----------------------------------------------------------------------------------


def external_id_for(relative_path: str) -> str:
    """Return the external id of a file: its path relative to the import root, without extension."""
    return PurePosixPath(relative_path).with_suffix("").as_posix()


def import_candidates(
    *,
    dataset: Dataset,
    candidates: list[ImageCandidate],
    attributes: AttributeTable | None,
    report: ImageImportReport,
    on_progress: Callable[[int], None] | None,
) -> None:
    writer = ItemWriter(dataset=dataset)
    for candidate in candidates:
        name = candidate.relative_path
        try:
            data = candidate.read()
            item = writer.add(
                data=data,
                external_id=external_id_for(name),
                original_name=PurePosixPath(name).name,
                attributes=attributes.lookup(name) if attributes else {},
            )
        except ImageRejected as rejection:
            report.rejected.append(Rejection(name, str(rejection)))
            logger.warning("rejected %s for dataset %s: %s", name, dataset.slug, rejection)
        else:
            if item is None:
                report.duplicates.append(name)
            else:
                report.imported.append(item.external_id)
        if on_progress:
            on_progress(1)


def import_images(
    *,
    dataset: Dataset,
    folder: Path | None = None,
    zip_path: Path | None = None,
    attributes_csv: Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImageImportReport:
    """Import every image file in `folder` (recursively) or in the zip archive `zip_path`.

    `on_start` receives the number of files found, `on_progress` is called once per file.
    Raises AttributesFileInvalid for an unusable CSV, zipfile.BadZipFile for a broken archive,
    and OSError or a database error when storage fails; items stored before that remain whole.
    """
    if (folder is None) == (zip_path is None):
        raise ValueError("pass exactly one of folder and zip_path")

    attributes = AttributeTable(path=attributes_csv) if attributes_csv else None
    report = ImageImportReport()
    logger.info("importing images into %s from %s", dataset.slug, folder or zip_path)

    if folder is not None:
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} not found or not a folder")
        exclude = {attributes_csv} if attributes_csv else set()
        candidates = folder_candidates(root=folder, exclude=exclude)
        if on_start:
            on_start(len(candidates))
        import_candidates(
            dataset=dataset, candidates=candidates, attributes=attributes, report=report, on_progress=on_progress
        )
    else:
        with zipfile.ZipFile(zip_path) as archive:
            candidates, report.rejected = zip_candidates(archive=archive)
            for rejection in report.rejected:
                logger.warning("rejected %s for dataset %s: %s", rejection.name, dataset.slug, rejection.reason)
            if on_start:
                on_start(len(candidates))
            import_candidates(
                dataset=dataset, candidates=candidates, attributes=attributes, report=report, on_progress=on_progress
            )

    if attributes:
        report.warnings.extend(attributes.unmatched())
        for warning in report.warnings:
            logger.warning("%s", warning)
    logger.info(
        "imported %d images into %s: %d duplicates, %d rejected",
        len(report.imported),
        dataset.slug,
        len(report.duplicates),
        len(report.rejected),
    )
    return report
