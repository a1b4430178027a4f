"""Import the real zappos85 data: 85 shoe photos and crowd triplets in head,close,far order."""

import itertools
import os
from pathlib import Path

import pytest

from annotation.models import Item, Triplet

pytestmark = pytest.mark.django_db

ZAPPOS85_DIR = Path(
    os.environ.get("CSN_ZAPPOS85_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "zappos85"
)
ROWS = 2000


@pytest.mark.skipif(
    not (ZAPPOS85_DIR / "triplets.csv").is_file(),
    reason=f"zappos85 data not found at {ZAPPOS85_DIR}; set CSN_ZAPPOS85_DIR to its folder",
)
def test_zappos85_images_and_triplet_slice(tmp_path, run_command):
    triplet_slice = tmp_path / "triplets-head.csv"
    with (ZAPPOS85_DIR / "triplets.csv").open() as source:
        lines = list(itertools.islice(source, ROWS + 1))
    triplet_slice.write_text("".join(lines))
    head, close, far = lines[1].strip().split(",")

    images_output = run_command(
        "import_images", dataset="zappos85", dir=str(ZAPPOS85_DIR / "images"), create=True, name="Zappos 85"
    )
    triplets_output = run_command(
        "import_triplets", str(triplet_slice), dataset="zappos85", condition="overall", format="head-close-far-csv"
    )

    assert "imported 85, duplicates 0, rejected 0" in images_output
    assert Item.objects.filter(dataset__slug="zappos85", width=136, height=102).count() == 85
    assert f"Imported {ROWS} triplets" in triplets_output
    assert Triplet.objects.filter(condition__slug="overall").count() == ROWS
    first = Triplet.objects.select_related("anchor", "closer", "farther").order_by("id").first()
    assert (first.anchor.external_id, first.closer.external_id, first.farther.external_id) == (head, close, far)
