"""build_fonts_dataset on matplotlib's bundled fonts (DejaVu, STIX, Computer Modern)."""

import numpy as np
import pytest
from django.core.management.base import CommandError
from PIL import Image

from annotation.importers import fonts
from annotation.importers.fonts import discover_font_files, matplotlib_font_folder, weight_class_of
from annotation.models import Condition, Item

pytestmark = pytest.mark.django_db

FONT_FOLDER = matplotlib_font_folder()
needs_matplotlib_fonts = pytest.mark.skipif(FONT_FOLDER is None, reason="matplotlib with its bundled fonts is not installed")


def glyph(family: str, style: str, character: str) -> Item:
    return Item.objects.get(
        dataset__slug="fonts",
        attributes__family=family,
        attributes__style=style,
        attributes__character=character,
    )


@pytest.fixture
def built(run_command, db):
    """Build the dataset from matplotlib's fonts with A, g and a character DejaVu lacks."""
    return run_command("build_fonts_dataset", dataset="fonts", fonts=[str(FONT_FOLDER)], chars="Ag\u4e2d", size=48)


@needs_matplotlib_fonts
def test_glyph_images_are_centred_greyscale(built):
    item = glyph("DejaVu Sans", "Book", "A")

    with Image.open(item.image.path) as image:
        pixels = np.asarray(image)
        assert image.mode == "L"
        assert image.size == (48, 48)
    assert (item.width, item.height) == (48, 48)
    assert pixels[0, 0] == 255  # white background
    assert pixels.min() == 0  # black ink
    rows, columns = np.nonzero(pixels < 128)
    assert abs((rows.min() + rows.max()) / 2 - 23.5) <= 1.5
    assert abs((columns.min() + columns.max()) / 2 - 23.5) <= 1.5
    assert max(rows.max() - rows.min(), columns.max() - columns.min()) <= 48 - 2 * 3


@needs_matplotlib_fonts
def test_font_attributes(built):
    regular = glyph("DejaVu Sans", "Book", "A").attributes
    assert regular["weight"] == 400
    assert regular["weight_class"] == "regular"
    assert regular["italic"] is False
    assert regular["monospace"] is False
    assert regular["category"] == "sans"
    assert regular["font_file"] == "DejaVuSans.ttf"
    assert glyph("DejaVu Sans", "Bold Oblique", "A").attributes["weight_class"] == "bold"
    assert glyph("DejaVu Sans", "Bold Oblique", "A").attributes["italic"] is True
    assert glyph("DejaVu Serif", "Book", "g").attributes["category"] == "serif"
    assert glyph("DejaVu Sans Mono", "Book", "g").attributes["category"] == "mono"
    assert glyph("DejaVu Sans Mono", "Book", "g").attributes["monospace"] is True
    assert glyph("cmti10", "Regular", "A").attributes["italic"] is True


@needs_matplotlib_fonts
def test_missing_characters_skipped(built):
    assert "'中' not in the font's cmap" in built
    assert not Item.objects.filter(attributes__character="\u4e2d", attributes__family="DejaVu Sans").exists()
    assert not Item.objects.filter(attributes__family="DejaVu Sans Display").exists()


@needs_matplotlib_fonts
def test_symbol_and_placeholder_faces_skipped(built):
    assert "cmsy10 Regular: symbol font" in built
    assert "Last Resort High-Efficiency Regular: placeholder font" in built
    assert not Item.objects.filter(attributes__family__in=["cmsy10", "cmex10", "Last Resort High-Efficiency"]).exists()


@needs_matplotlib_fonts
def test_conditions_created(built):
    conditions = list(Condition.objects.filter(dataset__slug="fonts").order_by("index"))

    assert [(c.slug, c.attribute, c.index) for c in conditions] == [
        ("character", "character", 0),
        ("weight", "weight_class", 1),
        ("italic", "italic", 2),
        ("category", "category", 3),
    ]
    assert conditions[0].prompt == "Which glyph is closer to the reference in character?"
    assert "Created condition category at index 3" in built


@needs_matplotlib_fonts
def test_summary_counts(built):
    assert "Fonts found: 40 files" in built
    assert "Faces per category: serif " in built
    assert f"imported {Item.objects.filter(dataset__slug='fonts').count()} glyphs" in built


@needs_matplotlib_fonts
def test_rerun_is_noop(built, run_command):
    count = Item.objects.count()

    output = run_command("build_fonts_dataset", dataset="fonts", fonts=[str(FONT_FOLDER)], chars="Ag\u4e2d", size=48)

    assert f"imported 0 glyphs, duplicates {count}" in output
    assert Item.objects.count() == count
    assert Condition.objects.filter(dataset__slug="fonts").count() == 4


@needs_matplotlib_fonts
def test_max_fonts_sample_is_seeded(run_command, db):
    options = {"fonts": [str(FONT_FOLDER)], "chars": "A", "max_fonts": 3, "seed": 5}
    run_command("build_fonts_dataset", dataset="first", **options)
    run_command("build_fonts_dataset", dataset="second", **options)

    def families(slug):
        return sorted(Item.objects.filter(dataset__slug=slug).values_list("attributes__family", "attributes__style"))

    assert len(families("first")) <= 3
    assert families("first") == families("second")


def test_unreadable_font_reported(tmp_path, run_command, db):
    (tmp_path / "broken.ttf").write_bytes(b"not a font at all")
    if FONT_FOLDER is not None:
        (tmp_path / "DejaVuSans.ttf").write_bytes((FONT_FOLDER / "DejaVuSans.ttf").read_bytes())

    output = run_command("build_fonts_dataset", dataset="fonts", fonts=[str(tmp_path)], chars="A")

    assert "1 unreadable" in output
    assert "broken.ttf" in output


def test_missing_font_folder_rejected(tmp_path, run_command, db):
    with pytest.raises(CommandError) as error:
        run_command("build_fonts_dataset", dataset="fonts", fonts=[str(tmp_path / "nowhere")])

    assert "font folder not found" in str(error.value)


@needs_matplotlib_fonts
def test_discovery_falls_back_without_fc_list(monkeypatch):
    monkeypatch.setattr(fonts.shutil, "which", lambda name: None)
    monkeypatch.setattr(fonts, "FALLBACK_FONT_FOLDERS", ())

    files, origin = discover_font_files()

    assert (FONT_FOLDER / "DejaVuSans.ttf").resolve() in files
    assert str(FONT_FOLDER) in origin


@pytest.mark.parametrize(
    ("weight", "expected"),
    [(100, "thin"), (200, "thin"), (300, "light"), (400, "regular"), (500, "medium"), (600, "bold"), (700, "bold"), (800, "black"), (900, "black")],
)
def test_weight_classes(weight, expected):
    assert weight_class_of(weight) == expected
