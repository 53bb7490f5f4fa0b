"""Where a batch run's jobs come from: manifests, folders, shards."""

from __future__ import annotations

import json

import pytest

from harmony.batch.jobs import Shard, jobs_from_source
from harmony.errors import HarmonyError


def test_csv_and_json_lines_manifests_resolve_paths_beside_themselves(tmp_path):
    (tmp_path / "list.csv").write_text(
        "image,mask,output,note\na/c1.png,m/m1.png,,x\nc2.jpg,m2.png,o/two.png,\n"
    )
    rows = [
        {"image": "a/c1.png", "mask": "m/m1.png"},
        {"image": "c2.jpg", "mask": "m2.png", "output": "o/two.png"},
    ]
    (tmp_path / "list.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n\n")
    out = tmp_path / "out"
    for manifest in ("list.csv", "list.jsonl"):
        jobs = jobs_from_source(tmp_path / manifest, out)
        assert [(j.key, j.image, j.mask, j.output) for j in jobs] == [
            ("a/c1.png", tmp_path / "a/c1.png", tmp_path / "m/m1.png", out / "c1.png"),
            ("c2.jpg", tmp_path / "c2.jpg", tmp_path / "m2.png", tmp_path / "o/two.png"),
        ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("picture,mask\na.png,b.png\n", "must name the columns image,mask"),
        ("image,mask\na.png,\n", "line 2: no mask, output"),
        ("image,mask,output\na.png,m.png,x.png\nb.png,n.png,x.png\n", "written twice: .*x.png"),
        ("image,mask,output\na.png,m.png,a.png\n", "is one of the inputs"),
        ("image,mask\n", "lists no composites"),
    ],
)
def test_a_malformed_manifest_is_refused_before_any_work(tmp_path, content, message):
    (tmp_path / "list.csv").write_text(content)
    with pytest.raises(HarmonyError, match=message):
        jobs_from_source(tmp_path / "list.csv", None)


def test_a_bad_json_line_and_a_missing_source_are_named(tmp_path):
    (tmp_path / "list.jsonl").write_text('{"image": "a.png", "mask": "m.png"}\n[1]\n{oops\n')
    with pytest.raises(HarmonyError, match=r"2 bad line.*line 2: not an object.*line 3"):
        jobs_from_source(tmp_path / "list.jsonl", tmp_path)
    with pytest.raises(HarmonyError, match="does not exist"):
        jobs_from_source(tmp_path / "nothing", tmp_path)


def test_shards_partition_the_jobs_stably(tmp_path):
    rows = "".join(f"c{i}.png,m{i}.png\n" for i in range(300))
    (tmp_path / "list.csv").write_text("image,mask\n" + rows)
    jobs = jobs_from_source(tmp_path / "list.csv", tmp_path / "out")
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    taken = [{job.key for job in jobs if shard.holds(job)} for shard in shards]
    assert set().union(*taken) == {job.key for job in jobs}
    assert sum(map(len, taken)) == len(jobs) and all(70 < len(part) < 130 for part in taken)
    again = [{job.key for job in reversed(jobs[:150]) if shard.holds(job)} for shard in shards]
    # neither the order nor the other jobs change a job's shard
    assert all(later <= part for later, part in zip(again, taken, strict=True))
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(HarmonyError, match="a shard is I/N"):
            Shard.parse(bad)
