"""Build a fonts dataset: greyscale glyph images rendered from installed font files.

This rebuilds the kind of fonts dataset that Conditional Similarity Networks were evaluated
on, from real fonts: one image per (font face, character), with attributes read from the font
file by fontTools, so that conditions such as character, weight, slant and typeface category
have a ground truth.

Rendering: each glyph is black (0) on white (255), mode "L", `size` x `size` pixels, like ink
on paper. Each face gets one font size, chosen so that the largest of the requested glyphs
fits inside the image less a margin; every glyph is then centred on its ink bounding box. Glyphs
of one face keep their relative sizes ("a" stays smaller than "A"), and faces are comparable.
Pillow's basic layout engine is used, so the same font file gives the same pixels with or
without libraqm.

Faces are skipped when fontTools cannot read them, when they repeat a family and style already
seen, and when their Latin code points do not show Latin letters (symbol and placeholder fonts).
Characters a face lacks in its cmap are skipped for that face only.
"""

import io
import logging
import random
import shutil
import struct
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.text import slugify
from fontTools.ttLib import TTCollection, TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont

from annotation.importers.common import condition_get_or_create
from annotation.importers.images import ImageRejected, ItemWriter, Rejection
from annotation.models import Condition, Dataset

logger = logging.getLogger(__name__)

# Upper and lower case of five letters whose shapes differ most between typefaces (the two-
# and one-storey a and g, the legs of R, the bowls of B); enough to train and test every
# condition without rendering the whole alphabet. Pass --chars for more.
DEFAULT_CHARACTERS = "AaBbEeGgRr"
DEFAULT_SIZE = 64

FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".otc"}
FALLBACK_FONT_FOLDERS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)

# (upper bound of OS/2 usWeightClass, bucket): 100-250 thin, 300 light, 400 regular,
# 500 medium, 600-700 bold, 800-900 black.
WEIGHT_CLASSES = ((250, "thin"), (350, "light"), (450, "regular"), (550, "medium"), (750, "bold"))
HEAVIEST_WEIGHT_CLASS = "black"

CATEGORIES = ("serif", "sans", "script", "mono", "unknown")

# Typeface category of common free families whose OS/2 PANOSE and family class are empty or
# wrong. Keys are lower-case family names (name ID 16, else 1). It wins over the metadata,
# because these families are listed here for exactly that reason.
FAMILY_CATEGORIES = {
    "c059": "serif",
    "cmb10": "serif",
    "cmmi10": "serif",
    "cmr10": "serif",
    "cmss10": "sans",
    "cmti10": "serif",
    "cantarell": "sans",
    "comic neue": "sans",
    "courier prime sans": "mono",
    "dejavu math tex gyre": "serif",
    "go medium": "sans",
    "humor sans": "script",
    "kristi": "script",
    "nimbus roman": "serif",
    "nimbus sans": "sans",
    "nimbus sans narrow": "sans",
    "p052": "serif",
    "roboto": "sans",
    "roboto condensed": "sans",
    "stixgeneral": "serif",
    "tex gyre adventor": "sans",
    "tex gyre bonum": "serif",
    "tex gyre chorus": "script",
    "tex gyre heros": "sans",
    "tex gyre heros cn": "sans",
    "tex gyre pagella": "serif",
    "tex gyre schola": "serif",
    "tex gyre termes": "serif",
    "urw bookman": "serif",
    "urw gothic": "sans",
    "z003": "script",
}

# Families whose files declare no slant (OS/2, head and post all declare upright) but are italic:
# the Computer Modern math and text italics that matplotlib ships.
ITALIC_FAMILIES = {"cmmi10", "cmti10"}

# Families that map Latin code points to symbols: the TeX math symbol and extension fonts that
# matplotlib ships draw "A" as a delimiter or a calligraphic letter and "a" as an arrow.
NON_TEXT_FAMILIES = {"cmex10", "cmsy10"}

# Words in a family name that give its category when nothing else does; checked in order,
# so "sans" is seen before "serif" in "Sans Serif".
NAME_KEYWORDS = (
    ("mono", "mono"),
    ("code", "mono"),
    ("courier", "mono"),
    ("script", "script"),
    ("chancery", "script"),
    ("hand", "script"),
    ("brush", "script"),
    ("sans", "sans"),
    ("gothic", "sans"),
    ("grotesk", "sans"),
    ("serif", "serif"),
    ("roman", "serif"),
    ("garamond", "serif"),
)

# (slug, name, item attribute, prompt) of the conditions a fonts dataset gets, in index order.
FONT_CONDITIONS = (
    ("character", "character", "character", "Which glyph is closer to the reference in character?"),
    ("weight", "weight", "weight_class", "Which glyph is closer to the reference in weight (thin to black)?"),
    ("italic", "slant", "italic", "Which glyph is closer to the reference in slant (italic or upright)?"),
    (
        "category",
        "typeface category",
        "category",
        "Which glyph is closer to the reference in typeface category (serif, sans, script, mono)?",
    ),
)

PROBE_FONT_SIZE = 200


class FontUnreadable(ValueError):
    pass


@dataclass
class FontFace:
    """One face of a font file, with the attributes its glyph items get."""

    path: Path
    index: int
    family: str
    style: str
    weight: int
    italic: bool
    monospace: bool
    category: str
    category_source: str
    codepoints: set[int]
    skip_reason: str = ""

    @property
    def weight_class(self) -> str:
        return weight_class_of(self.weight)

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """Faces with the same family and style are one face, whatever file they come from."""
        return (self.family.casefold(), self.style.casefold())

    @property
    def label(self) -> str:
        return f"{self.family} {self.style}"

    def attributes(self, character: str) -> dict:
        return {
            "character": character,
            "family": self.family,
            "style": self.style,
            "weight": self.weight,
            "weight_class": self.weight_class,
            "italic": self.italic,
            "monospace": self.monospace,
            "category": self.category,
            "category_source": self.category_source,
            "font_file": self.path.name,
        }


@dataclass
class FontsReport:
    font_files: int = 0
    faces_read: int = 0
    duplicate_faces: int = 0
    non_text_faces: list[Rejection] = field(default_factory=list)
    faces_selected: int = 0
    faces_used: int = 0
    unreadable: list[Rejection] = field(default_factory=list)
    missing_characters: list[str] = field(default_factory=list)
    imported: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    category_counts: Counter = field(default_factory=Counter)
    weight_class_counts: Counter = field(default_factory=Counter)
    conditions_created: list[Condition] = field(default_factory=list)


# Finding font files ---------------------------------------------------------------------------


def matplotlib_font_folder() -> Path | None:
    """Return matplotlib's bundled TrueType folder (DejaVu and others), or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return folder if folder.is_dir() else None


def scan_font_folder(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in FONT_SUFFIXES and path.is_file())


def discover_font_files(*, folders: list[Path] | None = None) -> tuple[list[Path], str]:
    """Return the font files to use and a description of where they were found.

    Given folders are scanned recursively. Without folders, fontconfig's `fc-list` lists the
    installed fonts; without fc-list, the usual font folders and matplotlib's are scanned.
    Only TrueType and OpenType files (and their collections) are used, because fontTools
    reads their attributes; Type 1 and bitmap fonts are left out.
    """
    if folders:
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            raise FileNotFoundError(f"font folder not found: {', '.join(missing)}")
        files = {path.resolve() for folder in folders for path in scan_font_folder(folder)}
        return sorted(files), f"folders {', '.join(map(str, folders))}"

    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            output = subprocess.run(
                [fc_list, "--format", "%{file}\n"], capture_output=True, text=True, check=True, timeout=60
            ).stdout
        except (subprocess.SubprocessError, OSError) as error:
            logger.warning("fc-list failed (%s); scanning font folders instead", error)
        else:
            files = {
                Path(line).resolve()
                for line in output.splitlines()
                if Path(line).suffix.lower() in FONT_SUFFIXES and Path(line).is_file()
            }
            return sorted(files), "fontconfig (fc-list)"

    scanned = [folder for folder in FALLBACK_FONT_FOLDERS if folder.is_dir()]
    bundled = matplotlib_font_folder()
    if bundled:
        scanned.append(bundled)
    files = {path.resolve() for folder in scanned for path in scan_font_folder(folder)}
    return sorted(files), f"folders {', '.join(map(str, scanned)) or '(none found)'}"


# Reading attributes ---------------------------------------------------------------------------


def weight_class_of(weight: int) -> str:
    for upper_bound, name in WEIGHT_CLASSES:
        if weight <= upper_bound:
            return name
    return HEAVIEST_WEIGHT_CLASS


def name_of(font: TTFont, preferred_id: int, fallback_id: int) -> str:
    table = font["name"] if "name" in font else None
    if table is None:
        return ""
    return (table.getDebugName(preferred_id) or table.getDebugName(fallback_id) or "").strip()


def is_italic(font: TTFont, style: str) -> bool:
    os2 = font["OS/2"] if "OS/2" in font else None
    if os2 is not None and os2.fsSelection & ((1 << 0) | (1 << 9)):  # ITALIC or OBLIQUE
        return True
    if "head" in font and font["head"].macStyle & (1 << 1):
        return True
    if "post" in font and font["post"].italicAngle != 0:
        return True
    return any(word in style.casefold() for word in ("italic", "oblique"))


def is_monospace(font: TTFont, codepoints: dict[int, str]) -> bool:
    """Return whether the face is fixed-pitch: post.isFixedPitch, PANOSE, or equal advance widths."""
    if "post" in font and font["post"].isFixedPitch:
        return True
    os2 = font["OS/2"] if "OS/2" in font else None
    if os2 is not None and os2.panose.bFamilyType == 2 and os2.panose.bProportion == 9:
        return True
    if "hmtx" not in font:
        return False
    metrics = font["hmtx"].metrics
    glyphs = [codepoints[code] for code in range(0x21, 0x7F) if code in codepoints]
    widths = {metrics[glyph][0] for glyph in glyphs if glyph in metrics}
    # A font with only a few ASCII glyphs is not called monospaced on their widths alone.
    return len(glyphs) >= 20 and len(widths) == 1


def metadata_category(font: TTFont) -> tuple[str, str]:
    """Return (category, source) from OS/2 PANOSE, then from the IBM font family class."""
    os2 = font["OS/2"] if "OS/2" in font else None
    if os2 is None:
        return "unknown", "none"

    panose = os2.panose
    if panose.bFamilyType == 3:  # Latin Hand Written
        return "script", "panose"
    if panose.bFamilyType == 2:  # Latin Text: serif style 2-10 are serifs, 11-15 sans
        if 2 <= panose.bSerifStyle <= 10:
            return "serif", "panose"
        if 11 <= panose.bSerifStyle <= 15:
            return "sans", "panose"

    family_class = os2.sFamilyClass >> 8
    if family_class in (1, 2, 3, 4, 5, 7):  # old style, transitional, modern, Clarendon, slab, free-form serifs
        return "serif", "family-class"
    if family_class == 8:
        return "sans", "family-class"
    if family_class == 10:
        return "script", "family-class"
    return "unknown", "none"


def category_of(font: TTFont, family: str, monospace: bool) -> tuple[str, str]:
    """Return (category, source): mono when fixed-pitch, else the curated map, metadata, name words."""
    if monospace:
        return "mono", "fixed-pitch"
    mapped = FAMILY_CATEGORIES.get(family.casefold())
    if mapped:
        return mapped, "name-mapping"
    category, source = metadata_category(font)
    if category != "unknown":
        return category, source
    lowered = family.casefold()
    for keyword, keyword_category in NAME_KEYWORDS:
        if keyword in lowered:
            return keyword_category, "name-keywords"
    return "unknown", "none"


def non_text_reason(font: TTFont, family: str, codepoints: dict[int, str]) -> str:
    """Return why the face's Latin code points do not show Latin letters, or "" when they do.

    Symbol fonts (Standard Symbols PS, the Dingbats D050000L) declare themselves in OS/2 and
    map Latin code points to Greek letters or pictures. Fallback fonts such as Last Resort
    draw one placeholder box for whole Unicode blocks, so many letters share one glyph.
    """
    os2 = font["OS/2"] if "OS/2" in font else None
    if os2 is not None and (os2.panose.bFamilyType == 5 or (os2.sFamilyClass >> 8) == 12):
        return "symbol font (OS/2 PANOSE or family class)"
    if family.casefold() in NON_TEXT_FAMILIES:
        return "symbol font (known family)"
    letters = [codepoints[code] for code in range(0x41, 0x7B) if chr(code).isalpha() and code in codepoints]
    if len(letters) >= 10 and len(set(letters)) <= len(letters) // 2:
        return "placeholder font: most letters share one glyph"
    return ""


def face_from_font(font: TTFont, *, path: Path, index: int) -> FontFace:
    family = name_of(font, 16, 1) or path.stem
    style = name_of(font, 17, 2) or "Regular"
    codepoints = font.getBestCmap() or {}
    if "OS/2" in font:
        weight = font["OS/2"].usWeightClass
    else:
        weight = 700 if "bold" in style.casefold() else 400
    if 1 <= weight <= 9:  # some old fonts give the weight class in hundreds
        weight *= 100
    monospace = is_monospace(font, codepoints)
    category, category_source = category_of(font, family, monospace)
    return FontFace(
        path=path,
        index=index,
        family=family,
        style=style,
        weight=weight,
        italic=is_italic(font, style) or family.casefold() in ITALIC_FAMILIES,
        monospace=monospace,
        category=category,
        category_source=category_source,
        codepoints={code for code, glyph in codepoints.items() if glyph != ".notdef"},
        skip_reason=non_text_reason(font, family, codepoints),
    )


@contextmanager
def quiet_fonttools() -> Iterator[None]:
    """Silence fontTools' warnings about harmless oddities, such as old 'created' timestamps."""
    fonttools_logger = logging.getLogger("fontTools")
    previous_level = fonttools_logger.level
    fonttools_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        fonttools_logger.setLevel(previous_level)


def read_faces(path: Path) -> list[FontFace]:
    """Read every face of a font file or collection; raise FontUnreadable when fontTools cannot."""
    with quiet_fonttools():
        return read_faces_of_file(path)


def read_faces_of_file(path: Path) -> list[FontFace]:
    try:
        with path.open("rb") as handle:
            is_collection = handle.read(4) == b"ttcf"
        if is_collection:
            with TTCollection(str(path), lazy=True) as collection:
                return [face_from_font(font, path=path, index=index) for index, font in enumerate(collection.fonts)]
        with TTFont(str(path), lazy=True) as font:
            return [face_from_font(font, path=path, index=0)]
    # fontTools raises TTLibError for bad headers, and assorted errors on damaged tables.
    except (TTLibError, OSError, KeyError, ValueError, AssertionError, AttributeError, IndexError, struct.error) as error:
        raise FontUnreadable(f"{type(error).__name__}: {error}") from None


# Rendering ------------------------------------------------------------------------------------


def load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(face.path), size, index=face.index, layout_engine=ImageFont.Layout.BASIC)


def render_face(face: FontFace, characters: list[str], *, size: int) -> dict[str, bytes]:
    """Render each character as a PNG; characters whose glyph has no ink are left out.

    Raises OSError when FreeType cannot load the face.
    """
    margin = max(1, size // 16)
    probe = load_font(face, PROBE_FONT_SIZE)
    boxes = {character: probe.getbbox(character) for character in characters}
    extents = [max(right - left, bottom - top) for left, top, right, bottom in boxes.values()]
    largest = max(extents, default=0)
    if largest <= 0:
        return {}

    font_size = max(1, int(PROBE_FONT_SIZE * (size - 2 * margin) / largest))
    font = load_font(face, font_size)
    rendered = {}
    for character in characters:
        left, top, right, bottom = font.getbbox(character)
        if right <= left or bottom <= top:
            continue
        image = Image.new("L", (size, size), 255)
        origin = ((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top)
        ImageDraw.Draw(image).text(origin, character, fill=0, font=font)
        if image.getextrema()[0] == 255:  # nothing drawn
            continue
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        rendered[character] = buffer.getvalue()
    return rendered


# The build ------------------------------------------------------------------------------------


def glyph_external_id(face: FontFace, character: str) -> str:
    family = slugify(face.family) or slugify(face.path.stem) or "font"
    style = slugify(face.style) or "regular"
    return f"{family}/{style}/u{ord(character):04x}"


def ensure_font_conditions(*, dataset: Dataset) -> list[Condition]:
    """Create the character, weight, italic and category conditions that are missing; return new ones."""
    created = []
    for slug, name, attribute, prompt in FONT_CONDITIONS:
        condition, was_created = condition_get_or_create(
            dataset=dataset, slug=slug, name=name, prompt=prompt, attribute=attribute
        )
        if was_created:
            created.append(condition)
    return created


def select_faces(
    *, font_files: list[Path], report: FontsReport, max_fonts: int | None, seed: int | None
) -> list[FontFace]:
    """Read all faces, drop unreadable and duplicate ones, and sample `max_fonts` of the rest."""
    faces_by_key: dict[tuple, FontFace] = {}
    for path in font_files:
        try:
            faces = read_faces(path)
        except FontUnreadable as error:
            report.unreadable.append(Rejection(str(path), str(error)))
            logger.warning("skipped font %s: %s", path, error)
            continue
        for face in faces:
            report.faces_read += 1
            if face.skip_reason:
                report.non_text_faces.append(Rejection(face.label, face.skip_reason))
                continue
            if face.dedupe_key in faces_by_key:
                report.duplicate_faces += 1
                continue
            faces_by_key[face.dedupe_key] = face

    faces = sorted(faces_by_key.values(), key=lambda face: (face.family, face.style, str(face.path)))
    if max_fonts is not None and len(faces) > max_fonts:
        faces = sorted(random.Random(seed).sample(faces, max_fonts), key=lambda face: (face.family, face.style))
    return faces


def build_fonts_dataset(
    *,
    dataset: Dataset,
    font_folders: list[Path] | None = None,
    characters: str = DEFAULT_CHARACTERS,
    size: int = DEFAULT_SIZE,
    max_fonts: int | None = None,
    seed: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FontsReport:
    """Render `characters` in every usable font face into items of `dataset`, and add its conditions.

    Faces without a character in their cmap are skipped for that character. Glyph images the
    dataset already has (same SHA-256) are skipped, so re-runs add only what is new.
    `on_start` receives the number of faces, `on_progress` is called once per face.
    """
    unique_characters = list(dict.fromkeys(characters))
    if not unique_characters:
        raise ValueError("no characters to render; pass at least one")
    if size < 8:
        raise ValueError(f"image size {size} is too small; use at least 8 pixels")

    report = FontsReport()
    font_files, origin = discover_font_files(folders=font_folders)
    report.font_files = len(font_files)
    logger.info("building fonts dataset %s from %d font files found in %s", dataset.slug, len(font_files), origin)

    faces = select_faces(font_files=font_files, report=report, max_fonts=max_fonts, seed=seed)
    report.faces_selected = len(faces)
    report.conditions_created = ensure_font_conditions(dataset=dataset)

    if on_start:
        on_start(len(faces))
    writer = ItemWriter(dataset=dataset)
    for face in faces:
        render_into_dataset(face=face, characters=unique_characters, size=size, writer=writer, report=report)
        if on_progress:
            on_progress(1)

    logger.info(
        "fonts dataset %s: %d faces used, %d glyphs imported, %d duplicates",
        dataset.slug,
        report.faces_used,
        report.imported,
        report.duplicates,
    )
    return report


def render_into_dataset(
    *, face: FontFace, characters: list[str], size: int, writer: ItemWriter, report: FontsReport
) -> None:
    available = [character for character in characters if ord(character) in face.codepoints]
    for character in characters:
        if character not in available:
            report.missing_characters.append(f"{face.label}: {character!r} not in the font's cmap")
    if not available:
        return

    try:
        glyphs = render_face(face, available, size=size)
    except OSError as error:
        report.unreadable.append(Rejection(f"{face.path}#{face.index}", f"FreeType cannot load it: {error}"))
        logger.warning("skipped font %s face %d: %s", face.path, face.index, error)
        return
    for character in available:
        if character not in glyphs:
            report.missing_characters.append(f"{face.label}: {character!r} has an empty glyph")
    if not glyphs:
        return

    report.faces_used += 1
    report.category_counts[face.category] += 1
    report.weight_class_counts[face.weight_class] += 1
    for character, data in glyphs.items():
        external_id = glyph_external_id(face, character)
        try:
            item = writer.add(
                data=data,
                external_id=external_id,
                original_name=f"{face.path.name} U+{ord(character):04X}",
                attributes=face.attributes(character),
            )
        except ImageRejected as rejection:
            report.rejected.append(Rejection(external_id, str(rejection)))
            continue
        if item is None:
            report.duplicates += 1
        else:
            report.imported += 1
