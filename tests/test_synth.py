"""The generated suite ``synth``: real mp4 files, answers correct by construction, and lmms-eval end to end."""

import collections
import copy
import json
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest

from liteframe_bench.errors import LfbenchError
from liteframe_bench.suites.synth import generator as g
from liteframe_bench.video import probe

PALETTE = {**g.OBJECT_COLOURS, **g.BACKGROUND_COLOURS}


def nearest_colour(rgb) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    return min(PALETTE, key=lambda name: float(np.sum((np.asarray(PALETTE[name]) - rgb) ** 2)))


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_data")
    folder = g.make("tiny", root=root, progress=False)
    assert folder == root / "synth" / "tiny"
    return folder


# ----------------------------------------------------------------------------------------------------------
# Files


def test_make_tiny_writes_real_videos_and_annotations(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    spec = g.SIZES["tiny"]
    assert manifest["generator_version"] == g.GENERATOR_VERSION and manifest["size"] == "tiny"
    assert {s: manifest["splits"][s]["seed"] for s in g.SPLITS} == spec.seeds
    root = tiny.parent.parent
    for split in g.SPLITS:
        rows = g.load("tiny", split, root=root)
        assert rows == g.items("tiny", split)  # the files hold what the annotation-only generation gives
        assert len(rows) == 5 * spec.videos[split] == manifest["splits"][split]["questions"]
        assert {r["split"] for r in rows} == {split}
        videos = sorted({r["video"] for r in rows})
        assert len(videos) == spec.videos[split]
        for video in videos:
            scene = g.Scene.from_json(next(r["scene"] for r in rows if r["video"] == video))
            info = probe(tiny / video)
            assert (info.num_frames, info.width, info.height) == (scene.num_frames, spec.width, spec.height)
            assert info.num_frames == spec.fps * spec.seconds[0] and info.fps == pytest.approx(spec.fps)
            assert len(decode_all(tiny / video)) == scene.num_frames  # every declared frame decodes
        for r in rows:  # Video-MME's fields, with its vocabulary
            assert r["duration"] in ("short", "medium", "long") and r["domain"] == "Film & Television"
            assert r["task_type"] == g.FAMILIES[r["family"]][0]
            assert [o[:3] for o in r["options"]] == ["A. ", "B. ", "C. ", "D. "] and r["answer"] in "ABCD"
    assert len(list((tiny / "videos").glob("*.mp4"))) == sum(spec.videos.values())


def test_make_is_idempotent_and_force_regenerates_identically(tmp_path):
    folder = g.make("tiny", root=tmp_path, progress=False)
    before = snapshot(folder)
    videos = {p: p.read_bytes() for p in sorted((folder / "videos").glob("*.mp4"))}
    annotations = {s: (folder / f"{s}.json").read_text() for s in g.SPLITS}

    assert g.make("tiny", root=tmp_path, progress=False) == folder
    assert snapshot(folder) == before  # nothing rewritten

    g.make("tiny", root=tmp_path, force=True, progress=False, workers=2)  # the threaded path, same files
    after = snapshot(folder)
    assert set(after) == set(before)
    assert all(after[k][0] != before[k][0] for k in before if k.endswith(".mp4"))  # really rewritten
    assert {s: (folder / f"{s}.json").read_text() for s in g.SPLITS} == annotations  # same seeds, same items
    for path, data in videos.items():
        new = path.read_bytes()
        if new != data:  # an encoder that is not bit-exact: then the frames must still agree closely
            a = decode_all(path).astype(int)
            path.write_bytes(data)
            b = decode_all(path).astype(int)
            assert a.shape == b.shape and np.abs(a - b).max() <= 8


def test_make_redoes_an_incomplete_or_stale_folder(tmp_path):
    folder = g.make("tiny", root=tmp_path, progress=False)
    victim = sorted((folder / "videos").glob("*.mp4"))[0]
    victim.unlink()
    assert not g.is_complete(folder, g.SIZES["tiny"])
    g.make("tiny", root=tmp_path, progress=False)
    assert victim.is_file() and g.is_complete(folder, g.SIZES["tiny"])

    victim.write_bytes(victim.read_bytes()[:100])  # truncated file: the byte count no longer matches
    assert not g.is_complete(folder, g.SIZES["tiny"])
    g.make("tiny", root=tmp_path, progress=False)
    assert probe(victim).num_frames == g.SIZES["tiny"].fps * g.SIZES["tiny"].seconds[0]

    (folder / "manifest.json").write_text('{"suite": "synth"}')  # a manifest of another shape
    assert not g.is_complete(folder, g.SIZES["tiny"])
    g.make("tiny", root=tmp_path, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["generator_version"] = "0"  # made by another generator version
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert not g.is_complete(folder, g.SIZES["tiny"])
    g.make("tiny", root=tmp_path, progress=False)
    assert json.loads((folder / "manifest.json").read_text())["generator_version"] == g.GENERATOR_VERSION


def test_unknown_size_and_split_are_clear_errors(tmp_path):
    with pytest.raises(LfbenchError, match=r"unknown synth size 'huge'; allowed: tiny, default"):
        g.make("huge", root=tmp_path)
    with pytest.raises(LfbenchError, match="allowed: train, eval"):
        g.items("tiny", "test")
    with pytest.raises(LfbenchError, match=r"lfbench data make synth --size tiny"):
        g.load("tiny", root=tmp_path)


def test_make_uses_lfbench_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LFBENCH_DATA", str(tmp_path))
    assert g.make("tiny", progress=False) == tmp_path / "synth" / "tiny"
    assert len(g.load("tiny")) == 5 * g.SIZES["tiny"].videos["eval"]


# ----------------------------------------------------------------------------------------------------------
# Answers correct by construction


@pytest.mark.parametrize("size", ["tiny", "default"])
def test_checker_agrees_with_every_answer(size, tiny):
    for split in g.SPLITS:
        rows = g.load(size, split, root=tiny.parent.parent) if size == "tiny" else g.items(size, split)
        assert [g.check_answer(r) for r in rows] == [r["answer"] for r in rows]
        assert {r["family"] for r in rows} == set(g.FAMILIES)
        assert len({r["question_id"] for r in rows}) == len(rows)


def test_default_size_is_several_hundred_balanced_questions():
    rows = g.items("default", "eval")
    assert 250 <= len(rows) <= 600
    by_family = collections.defaultdict(collections.Counter)
    for r in rows:
        by_family[r["family"]][r["answer"]] += 1
    for family, letters in by_family.items():  # answer positions balanced within each family
        assert set(letters) == set("ABCD") and max(letters.values()) - min(letters.values()) <= 1, (family, letters)
    assert collections.Counter(r["duration"] for r in rows) == {"short": 100, "medium": 100, "long": 100}
    assert {r["needs"] for r in rows} == {"many_frames", "fine_detail", "single_frame"}
    # long videos hold more brief events, and every event is brief
    scenes = {r["videoID"]: g.Scene.from_json(r["scene"]) for r in rows}
    for s in scenes.values():
        assert all(2 <= e.end - e.start <= 3 and 0 < e.start and e.end < s.num_frames for e in s.events)
    mean_events = {d: np.mean([len(s.events) for s in scenes.values() if s.seconds == d]) for d in (10, 60)}
    assert mean_events[60] > mean_events[10]


def test_train_and_eval_differ_and_generation_is_deterministic():
    for size in ("tiny", "default"):
        train, evals = g.items(size, "train"), g.items(size, "eval")
        assert not {r["scene"] for r in train} & {r["scene"] for r in evals}
        assert not {r["videoID"] for r in train} & {r["videoID"] for r in evals}
        assert g.items(size, "eval") == evals


def test_checker_catches_wrong_answers_and_tampered_scenes():
    rows = g.items("default", "eval")
    item = next(r for r in rows if r["family"] == "count")
    wrong = dict(item, answer="ABCD"[("ABCD".index(item["answer"]) + 1) % 4])
    assert g.check_answer(wrong) != wrong["answer"]

    scene = json.loads(item["scene"])
    m = re.fullmatch(r"How many times does an? (\w+) (\w+) briefly flash on the screen\?", item["question"])
    extra = next(e for e in scene["events"] if (e["colour"], e["shape"]) == m.groups())
    scene["events"].append(dict(extra, start=0, end=1))  # one more flash of the counted kind
    tampered = dict(item, scene=json.dumps(scene))
    try:
        assert g.check_answer(tampered) != item["answer"]
    except ValueError:  # k + 1 is not among the options: no option is true
        pass

    order = next(r for r in rows if r["family"] == "order")
    scene = json.loads(order["scene"])
    scene["events"] = [dict(e, start=-e["start"], end=-e["start"] + 1) for e in scene["events"]]  # time reversed
    try:
        assert g.check_answer(dict(order, scene=json.dumps(scene))) != order["answer"]
    except ValueError:  # the reversed order is not among the options
        pass

    glob = next(r for r in rows if r["family"] == "global" and "background" in r["question"])
    other = next(b for b in g.BACKGROUND_COLOURS if f". {b}" not in " ".join(glob["options"]))
    scene = dict(json.loads(glob["scene"]), background=other)
    with pytest.raises(ValueError, match="0 options are true"):
        g.check_answer(dict(glob, scene=json.dumps(scene)))

    appeared = copy.deepcopy(next(r for r in rows if r["family"] == "appeared"))
    appeared["options"][0], appeared["options"][1] = "A. red circle", "B. red circle"
    with pytest.raises(ValueError, match="repeated options"):
        g.check_answer(appeared)


def test_shapes_are_distinct_masks():
    for r in (3, 6, 20):
        masks = {s: g.shape_mask(s, r) for s in g.SHAPES}
        assert all(m.shape == (2 * r + 1, 2 * r + 1) and m[r, r] for m in masks.values())
        assert len({m.tobytes() for m in masks.values()}) == len(g.SHAPES)


# ----------------------------------------------------------------------------------------------------------
# Correct by construction, visually: the decoded pixels show what the scene says


def test_decoded_videos_show_the_scene(tiny):
    rows = g.load("tiny", "eval", root=tiny.parent.parent)
    scenes = {r["video"]: g.Scene.from_json(r["scene"]) for r in rows}
    for video, scene in scenes.items():
        frames = decode_all(tiny / video)
        # the whole video is the scene's rendering, up to codec error
        assert np.abs(frames.astype(int) - g.render(scene).astype(int)).mean() < 4
        # single-frame family: the background colour, from any frame (the per-channel median pixel)
        for t in (0, scene.num_frames // 2, scene.num_frames - 1):
            assert nearest_colour(np.median(frames[t].reshape(-1, 3), axis=0)) == scene.background
        dom = next(o for o in scene.objects if o.role == "dominant")
        x, y = dom.centre(5, scene.num_frames)
        assert nearest_colour(frames[5, y, x]) == dom.colour
        # many-frame families: each event's colour is at its place during the event, and only then
        for e in scene.events:
            assert nearest_colour(frames[(e.start + e.end - 1) // 2, e.y, e.x]) == e.colour
            assert nearest_colour(frames[e.start - 1, e.y, e.x]) == scene.background
            assert nearest_colour(frames[e.end, e.y, e.x]) == scene.background
    # the answers of the single-frame background questions match the decoded pixels
    for r in rows:
        if r["question"] == "What colour is the background of the video?":
            frame = decode_all(tiny / r["video"])[0]
            seen = nearest_colour(np.median(frame.reshape(-1, 3), axis=0))
            assert f"{r['answer']}. {seen}" in r["options"]


# ----------------------------------------------------------------------------------------------------------
# lmms-eval end to end


def test_simple_evaluate_synth_tiny_end_to_end(tmp_path, monkeypatch):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    import liteframe_bench.suites as suites
    from liteframe_bench.lmms_adapter import LfbenchModel

    monkeypatch.setenv("LFBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    sidecar = tmp_path / "samples.jsonl"
    lm = LfbenchModel(method="baseline", frames=8, model="tiny", sidecar=str(sidecar))
    tm = TaskManager(include_path=str(Path(suites.__file__).parent), include_defaults=False)
    assert {"synth", "synth_tiny"} <= set(tm.all_tasks)
    res = simple_evaluate(model=lm, tasks=["synth_tiny"], task_manager=tm, log_samples=True)

    n = 5 * g.SIZES["tiny"].videos["eval"]
    score = res["results"]["synth_tiny"]["synth_score,none"]
    assert isinstance(score, float) and 0.0 <= score <= 100.0  # Video-MME's scorer reports a percentage
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(rows) == n and all(r["error"] is None for r in rows)
    assert all(os.path.isfile(r["video"]) and r["video"].startswith(str(tmp_path / "data")) for r in rows)
    samples = res["samples"]["synth_tiny"]
    assert len(samples) == n
    expected = 100.0 * np.mean([s["synth_score"]["score"] for s in samples])
    assert score == pytest.approx(expected)
    first = samples[0]
    prompt = first["arguments"][0] if isinstance(first["arguments"][0], str) else first["arguments"][0][0]
    assert first["doc"]["question"] in prompt and "D. " in prompt and prompt.endswith("given choices directly.")
    assert {s["synth_score"]["task_category"] for s in samples} == {t for t, _ in g.FAMILIES.values()}
    assert g.is_complete(tmp_path / "data" / "synth" / "tiny", g.SIZES["tiny"])  # generated on first use


def test_data_check_hook_reports_a_generated_copy(tmp_path):
    from liteframe_bench import data

    report = data.check("synth", tmp_path)  # registered when liteframe_bench.suites.synth is imported
    assert not report.ok and "lfbench data make synth" in report.problems[0]
    folder = g.make("tiny", root=tmp_path, progress=False)
    report = data.check("synth", tmp_path)
    assert report.ok, report.problems
    assert report.questions == 30 and report.expected_videos == report.found_videos == 6 and report.probed
    rows = json.loads((folder / "eval.json").read_text())
    rows[0]["answer"] = "ABCD"[("ABCD".index(rows[0]["answer"]) + 1) % 4]  # a wrong answer
    (folder / "eval.json").write_text(json.dumps(rows))
    video = sorted((folder / "videos").glob("*.mp4"))[-1]
    video.write_bytes(b"\0" * video.stat().st_size)  # a broken video of the same size
    report = data.check("synth", tmp_path)
    assert not report.ok and report.unreadable_count == 1 and report.unreadable_videos[0]["video"] == str(video)
    assert len(report.problems) == 1 and report.problems[0].startswith(rows[0]["question_id"])
