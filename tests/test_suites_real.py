"""The real-benchmark task folders (Video-MME, MLVU dev, LongVideoBench val, HLVid) and ``lfbench.data.check``.

Each suite gets a tiny fixture written here in its real on-disk format (hub parquet / JSON + mp4 files),
evaluated end to end through lmms-eval's own ``simple_evaluate`` with the ``lfbench`` model on the tiny
backbone. Offline: no hub, no internet.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import liteframe_bench.suites as suites_pkg  # noqa: E402
from liteframe_bench import data  # noqa: E402
from liteframe_bench.testing import moving_square_video  # noqa: E402

SUITES_DIR = Path(suites_pkg.__file__).parent
TASKS = {
    "videomme": "lfb_videomme",
    "videomme_w_subtitle": "lfb_videomme_w_subtitle",
    "mlvu": "lfb_mlvu_dev",
    "longvideobench": "lfb_longvideobench_val_v",
    "hlvid": "lfb_hlvid",
}
METRICS = {
    "lfb_videomme": "videomme_perception_score,none",
    "lfb_videomme_w_subtitle": "videomme_perception_score,none",
    "lfb_mlvu_dev": "mlvu_percetion_score,none",
    "lfb_longvideobench_val_v": "lvb_acc,none",
    "lfb_hlvid": "hlvid_acc,none",
}
SUBTITLE_TEXT = "the lfbench subtitle line"


# ----------------------------------------------------------------------------------------------------------
# Fixtures in each suite's real format


def _video(path: Path, seed: int = 0) -> Path:
    return moving_square_video(path, frames=8, size=64, fps=8, seed=seed)


def _parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def make_videomme(root: Path, *, subtitles: bool = True) -> Path:
    """``videomme/test-00000-of-00001.parquet`` (hub columns) + ``data/<videoID>.mp4`` + ``subtitle/*.srt``."""
    folder = root / "videomme"
    rows = []
    for i, (vid, answer) in enumerate([("vidA", "A"), ("vidA", "C"), ("vidB", "B")]):
        rows.append(
            {
                "video_id": f"00{i}",
                "duration": "short",
                "domain": "Knowledge",
                "sub_category": "Humanity & History",
                "url": "https://example.invalid",
                "videoID": vid,
                "question_id": f"00{i}-1",
                "task_type": "Counting Problem",
                "question": f"How many squares are there ({i})?",
                "options": ["A. 1", "B. 2", "C. 3", "D. 4"],
                "answer": answer,
            }
        )
    _parquet(folder / "videomme" / "test-00000-of-00001.parquet", rows)
    for seed, vid in enumerate(["vidA", "vidB"]):
        _video(folder / "data" / f"{vid}.mp4", seed)
    if subtitles:
        (folder / "subtitle").mkdir(parents=True, exist_ok=True)
        (folder / "subtitle" / "vidA.srt").write_text(
            f'1\n00:00:00,000 --> 00:00:00,500\n<font color="white" size=".72c">{SUBTITLE_TEXT}</font>\n\n'
        )
    return folder


MLVU_TYPES = [
    ("1_plotQA", "plotQA"),
    ("2_needle", "findNeedle"),
    ("3_ego", "ego"),
    ("4_count", "count"),
    ("5_order", "order"),
    ("6_anomaly_reco", "anomaly_reco"),
    ("7_topic_reasoning", "topic_reasoning"),
]


def make_mlvu(root: Path) -> Path:
    """The MLVU download's ``json/<N>_<task>.json`` (JSON arrays) + ``video/<N>_<task>/<video>``."""
    folder = root / "mlvu"
    template = _video(root / "_template.mp4")
    for i, (stem, qtype) in enumerate(MLVU_TYPES):
        cands = ["red", "green", "blue", "yellow"]
        rec = {
            "video": f"{qtype}_{i}.mp4",
            "duration": 1.0,
            "question": f"Which colour is the square ({qtype})?",
            "candidates": cands,
            "answer": cands[i % 4],
            "question_type": qtype,
        }
        (folder / "json").mkdir(parents=True, exist_ok=True)
        (folder / "json" / f"{stem}.json").write_text(json.dumps([rec], indent=2))
        (folder / "video" / stem).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, folder / "video" / stem / rec["video"])
    template.unlink()
    return folder


def make_mlvu_real(root: Path) -> tuple[Path, dict[str, list[dict]]]:
    """A small MLVU dev copy in the download's layout with the real files' quirks: two ``2_needle.json`` records
    whose answer is not among the candidates, a record whose candidates repeat the answer, and a record with an
    empty question and no candidates."""
    folder = root / "mlvu"
    template = _video(root / "_template.mp4")
    cands = ["red", "green", "blue", "yellow"]
    records: dict[str, list[dict]] = {}
    for i, (stem, qtype) in enumerate(MLVU_TYPES):
        recs = [
            {
                "video": f"{qtype}_{k}.mp4",
                "duration": 1,
                "question": f"Which colour is the square ({qtype} {k})?",
                "candidates": cands,
                "answer": cands[(i + k) % 4],
                "question_type": qtype,
            }
            for k in range(2)
        ]
        records[stem] = recs
    records["2_needle"][0]["answer"] = "purple"
    records["2_needle"].append(dict(records["2_needle"][1], answer="Purple.", video="findNeedle_2.mp4"))
    records["5_order"][1]["candidates"] = ["blue", "red", "blue", "green"]
    records["5_order"][1]["answer"] = "blue"
    empty = {"video": "count_0.mp4", "duration": 1, "question": "", "candidates": [], "answer": ""}
    records["4_count"].append(dict(empty, question_type="count"))
    for stem, recs in records.items():
        (folder / "json").mkdir(parents=True, exist_ok=True)
        (folder / "json" / f"{stem}.json").write_text(json.dumps(recs, indent=4))
        (folder / "video" / stem).mkdir(parents=True, exist_ok=True)
        for rec in recs:
            shutil.copyfile(template, folder / "video" / stem / rec["video"])
    template.unlink()
    return folder, records


def make_lvb(root: Path) -> Path:
    """``lvb_val.json`` (hub format: candidates + correct_choice) + ``videos/<video_path>``."""
    folder = root / "longvideobench"
    recs = []
    for i, n in enumerate([5, 4, 4]):
        recs.append(
            {
                "video_id": f"v{i}",
                "question": f"What happens ({i})?",
                "question_wo_referring_query": "What happens?",
                "candidates": [f"event {k}" for k in range(n)],
                "correct_choice": i % n,
                "position": [0, 8],
                "topic_category": "NP-News-Programs",
                "question_category": ["S2E", "T2A", "E2O"][i],
                "level": "L1-Perception",
                "id": f"v{i}_0",
                "video_path": f"v{i}.mp4",
                "subtitle_path": f"v{i}_en.json",
                "duration_group": 15,
                "starting_timestamp_for_subtitles": 0,
                "duration": 1.0,
                "view_count": 10,
            }
        )
        _video(folder / "videos" / f"v{i}.mp4", i)
    (folder / "lvb_val.json").write_text(json.dumps(recs))
    return folder


def make_hlvid(root: Path) -> Path:
    """``data/test-00000-of-00001.parquet`` (bfshi/HLVid columns) + ``videos/<video_path>``."""
    folder = root / "hlvid"
    rows = []
    for i, (cat, answer) in enumerate([("av", "A"), ("av", "D"), ("household", "B")]):
        video = f"clip_{cat}_video_0_00{i}.mp4"
        rows.append(
            {
                "question_id": i,
                "category": cat,
                "video_path": video,
                "answer": answer,
                "question": f"What does the sign say ({i})?\nA. Hampden St\nB. Hampden Ave\nC. Hampden Blvd\n"
                "D. Hampden Rd\nPlease answer directly with the letter of the correct answer.",
            }
        )
        _video(folder / "videos" / video, i)
    _parquet(folder / "data" / "test-00000-of-00001.parquet", rows)
    return folder


MAKERS = {
    "videomme": make_videomme,
    "videomme_w_subtitle": make_videomme,
    "mlvu": make_mlvu,
    "longvideobench": make_lvb,
    "hlvid": make_hlvid,
}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv(data.DATA_ENV, str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return root


@pytest.fixture(scope="module")
def backbone():
    from liteframe_bench.backends.internvl import InternVL3

    return InternVL3.load("tiny")


def evaluate(task: str, sidecar: Path, backbone) -> dict:
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from liteframe_bench.lmms_adapter import LfbenchModel

    model = LfbenchModel(method="baseline", frames=4, model="tiny", sidecar=str(sidecar), backbone=backbone)
    return simple_evaluate(
        model=model,
        tasks=[task],
        task_manager=TaskManager(include_path=str(SUITES_DIR), include_defaults=False),
        log_samples=True,
    )


def sidecar_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------------------
# Task folders


def test_task_names_are_ours_and_do_not_clash_with_builtins():
    import lmms_eval.tasks

    builtin = Path(lmms_eval.tasks.__file__).parent
    ours = {}
    for yaml in SUITES_DIR.glob("*/*.yaml"):
        for line in yaml.read_text().splitlines():
            if line.startswith("task:"):
                ours[line.split(":", 1)[1].strip()] = yaml
    assert set(TASKS.values()) <= set(ours)
    names = set(TASKS.values())
    for path in builtin.rglob("*.yaml"):
        text = path.read_text(errors="replace")
        for name in names:
            assert f"task: {name}\n" not in text, f"{name} is also a built-in lmms-eval task ({path})"
    for suite, task in TASKS.items():
        assert task in data.LAYOUTS[suite].tasks


@pytest.mark.parametrize("suite", ["videomme", "videomme_w_subtitle", "mlvu", "longvideobench", "hlvid"])
def test_suite_end_to_end(suite, data_dir, tmp_path, backbone):
    MAKERS[suite](data_dir)
    task = TASKS[suite]
    sidecar = tmp_path / "s.jsonl"
    out = evaluate(task, sidecar, backbone)

    value = out["results"][task][METRICS[task]]
    assert isinstance(value, (int, float)) and math.isfinite(value)
    samples = out["samples"][task]
    n = {"mlvu": 7}.get(suite, 3)
    assert len(samples) == n
    records = sidecar_records(sidecar)
    assert len(records) == n and all(r["error"] is None for r in records), records
    assert all(Path(r["video"]).is_file() and Path(r["video"]).is_relative_to(data_dir) for r in records)

    # The aggregate is the official one over the per-sample scores (percent, or a fraction for LVB).
    key = METRICS[task].split(",")[0]
    per = [s[key] for s in samples]
    if suite == "longvideobench":
        correct = [p["parsed_pred"] == p["answer"] for p in per]
        assert value == pytest.approx(round(sum(correct) / n, 5))
    elif suite == "mlvu":  # mean over the 7 task types, one question each
        correct = [p["pred_answer"] == p["answer"] for p in per]
        assert value == pytest.approx(100 * sum(correct) / 7)
        assert sorted(p["task_type"] for p in per) == sorted(t for _, t in data.loader("mlvu").TASKS)
    else:
        correct = [p["pred_answer"] == p["answer"] for p in per]
        assert value == pytest.approx(100 * sum(correct) / n)

    prompt = (
        samples[0]["arguments"][0] if isinstance(samples[0]["arguments"][0], str) else samples[0]["arguments"][0][0]
    )
    expected_tail = {
        "videomme": "Answer with the option's letter from the given choices directly.",
        "videomme_w_subtitle": "The best answer is:",
        "mlvu": "Only give the best option.\nBest option: (",
        "longvideobench": "Answer with the option's letter from the given choices directly.\n",
        "hlvid": "Please answer directly with the letter of the correct answer.",
    }[suite]
    assert prompt.endswith(expected_tail), prompt


def test_videomme_subtitles_come_from_the_local_copy(data_dir, tmp_path, backbone):
    make_videomme(data_dir)
    out = evaluate("lfb_videomme_w_subtitle", tmp_path / "s.jsonl", backbone)
    prompts = {s["doc"]["videoID"]: str(s["arguments"]) for s in out["samples"]["lfb_videomme_w_subtitle"]}
    assert SUBTITLE_TEXT in prompts["vidA"]
    assert "No subtitles available" in prompts["vidB"] and SUBTITLE_TEXT not in prompts["vidB"]


@pytest.mark.parametrize("ext", [".mkv", ".MP4"])
def test_videomme_subtitles_are_timed_on_the_real_video_file(ext, data_dir):
    from liteframe_bench.suites.videomme import layout, utils

    folder = make_videomme(data_dir)
    (folder / "data" / "vidA.mp4").unlink()
    _video(folder / "data" / f"vidA{ext}")
    doc = {"videoID": "vidA", "question": "How many squares?", "options": ["A. 1", "B. 2", "C. 3", "D. 4"]}
    assert layout.video_path(doc, folder) == folder / "data" / f"vidA{ext}"
    prompt = utils.doc_to_text_subtitle(doc, {"frame_num": 32})
    assert SUBTITLE_TEXT in prompt

    from lmms_eval.tasks.videomme import utils as official

    assert official.extract_subtitles.__module__ == official.__name__  # restored after the call


def test_missing_and_corrupt_videos_are_counted_wrong_and_recorded(data_dir, tmp_path, backbone):
    folder = make_videomme(data_dir)
    (folder / "data" / "vidA.mp4").write_text("this is not a video\n")  # corrupt: a text file named .mp4
    (folder / "data" / "vidB.mp4").unlink()  # missing
    sidecar = tmp_path / "s.jsonl"
    out = evaluate("lfb_videomme", sidecar, backbone)

    assert out["results"]["lfb_videomme"]["videomme_perception_score,none"] == 0.0
    samples = out["samples"]["lfb_videomme"]
    assert len(samples) == 3
    for s in samples:
        score = s["videomme_perception_score"]
        assert score["pred_answer"] == "" and score["score"] == 0.0
    records = {r["doc_id"]: r for r in sidecar_records(sidecar)}
    assert len(records) == 3
    by_video = {s["doc"]["videoID"]: records[s["doc_id"]] for s in samples}
    assert "vidA.mp4" in by_video["vidA"]["error"] and "VideoError" in by_video["vidA"]["error"]
    assert "vidB.mp4" in by_video["vidB"]["error"] and "no such file" in by_video["vidB"]["error"]
    assert all(r["prediction"] == "" for r in records.values())


def test_videomme_w_subtitle_survives_bad_subtitle_and_corrupt_video(data_dir, tmp_path, backbone):
    folder = make_videomme(data_dir)
    (folder / "data" / "vidA.mp4").write_text("not a video")  # vidA has a subtitle file
    (folder / "subtitle" / "vidB.srt").write_text("1\na line without a time range\ntext\n\n")  # malformed .srt
    sidecar = tmp_path / "s.jsonl"
    out = evaluate("lfb_videomme_w_subtitle", sidecar, backbone)
    samples = out["samples"]["lfb_videomme_w_subtitle"]
    assert len(samples) == 3
    prompts = {s["doc"]["videoID"]: str(s["arguments"]) for s in samples}
    assert "No subtitles available" in prompts["vidB"]
    records = {r["doc_id"]: r for r in sidecar_records(sidecar)}
    errors = {s["doc"]["videoID"]: records[s["doc_id"]]["error"] for s in samples}
    assert "VideoError" in errors["vidA"] and errors["vidB"] is None


def test_missing_annotation_is_one_clear_error(data_dir, tmp_path, backbone):
    from liteframe_bench.suites.hlvid import utils

    with pytest.raises(data.TaskDataExit) as err:
        utils.process_docs(None)
    msg = str(err.value)
    assert isinstance(err.value.error, data.DataMissingError) and err.value.code == msg
    assert str(data_dir / "hlvid" / "data" / "test-00000-of-00001.parquet") in msg
    assert "lfbench data check hlvid" in msg and "bfshi/HLVid" in msg

    # Through lmms-eval: the message arrives at once, not as a tenacity RetryError after 5 attempts.
    import time

    t0 = time.perf_counter()
    with pytest.raises(data.TaskDataExit, match="lfbench data check mlvu") as err:
        evaluate("lfb_mlvu_dev", tmp_path / "s.jsonl", backbone)
    assert time.perf_counter() - t0 < 5
    assert str(data_dir / "mlvu" / "json" / "1_plotQA.json") in str(err.value)


# ----------------------------------------------------------------------------------------------------------
# Scorers


def test_longvideobench_empty_response_is_wrong_not_a_random_guess():
    from liteframe_bench.suites.longvideobench import utils

    doc = {
        "id": "x",
        "duration_group": 15,
        "question_category": "S2E",
        "correct_choice": 0,
        **{f"option{k}": "N/A" if k > 1 else f"o{k}" for k in range(5)},
    }
    for _ in range(20):  # a random guess among two options would be right about half the time
        assert utils.process_results(doc, [""])["lvb_acc"]["parsed_pred"] == ""
    assert utils.process_results(doc, ["A"])["lvb_acc"]["parsed_pred"] == "A"
    results = [utils.process_results(doc, [r])["lvb_acc"] for r in ["A", "B", "", "The answer is A"]]
    assert utils.aggregate_results(results) == pytest.approx(0.5)
    assert "decord" not in __import__("sys").modules  # the placeholder never outlives the import


@pytest.mark.parametrize(
    "response,letter",
    [("B", "B"), ("The answer is C.", "C"), ("(D) Hampden Rd", "D"), ("", ""), ("none of these", ""), ("A.", "A")],
)
def test_hlvid_letter_extraction(response, letter):
    from liteframe_bench.suites.hlvid import utils

    assert utils.extract_letter(response) == letter
    doc = {"question_id": "1", "category": "av", "answer": "B"}
    assert utils.process_results(doc, [response])["hlvid_acc"]["score"] == float(letter == "B")


def test_hlvid_aggregate_and_prompt():
    from liteframe_bench.suites.hlvid import layout, utils

    rows = [
        {"category": "av", "score": 1.0},
        {"category": "av", "score": 0.0},
        {"category": "h", "score": 1.0},
        {"category": "h", "score": 1.0},
    ]
    assert utils.aggregate_results(rows) == pytest.approx(75.0)
    assert utils.aggregate_results([]) == 0.0
    text = utils.doc_to_text({"question": "What is it?", "options": ["x", "y", "z", "w"]}, {})
    assert text == f"What is it?\nA. x\nB. y\nC. z\nD. w\n{utils.INSTRUCTION}"
    assert [layout.answer_letter(a) for a in ["B", "(c)", "D. Rd", "E", "Banana"]] == ["B", "C", "D", "", ""]


def test_hlvid_options_are_not_appended_to_a_question_that_lists_them():
    from liteframe_bench.suites.hlvid import utils

    listed = "What does the sign say?\nA. Hampden St\nB. Hampden Ave\nC. Hampden Blvd\nD. Hampden Rd"
    options = ["Hampden St", "Hampden Ave", "Hampden Blvd", "Hampden Rd"]
    assert utils.doc_to_text({"question": listed, "options": options}, {}) == f"{listed}\n{utils.INSTRUCTION}"
    parens = "What is it?\n(A) x\n(B) y\n(C) z\n(D) w"
    assert utils.doc_to_text({"question": parens, "options": ["x", "y", "z", "w"]}, {}).count("x") == 1
    partial = "Is it A. or B.?"  # letters in the stem, not option lines
    assert utils.doc_to_text({"question": partial, "options": ["x", "y", "z", "w"]}, {}).endswith(
        f"\nA. x\nB. y\nC. z\nD. w\n{utils.INSTRUCTION}"
    )


@pytest.mark.parametrize(
    "response,lenient,strict",
    [
        ("B", "B", "B"),
        ("B.", "B", "B"),
        ("(B) Hampden Ave", "B", "B"),
        ("B. Hampden Ave", "B", "B"),
        (" B)\n", "B", "B"),
        ("B\nbecause the sign says so", "B", "B"),
        ("Hampden Blvd", "B", ""),
        ("Both signs", "B", ""),
        ("Cannot tell", "C", ""),
        ("A cat crosses", "A", ""),
        ("The answer is B.", "B", ""),
        ("", "", ""),
    ],
)
def test_hlvid_strict_letter_extraction(response, lenient, strict):
    from liteframe_bench.suites.hlvid import utils

    assert utils.extract_letter(response) == lenient  # lmms-eval's extractor: letters inside words count
    assert utils.extract_letter_strict(response) == strict
    doc = {"question_id": "1", "category": "av", "answer": "B"}
    assert utils.process_results_strict(doc, [response])["hlvid_acc"]["score"] == float(strict == "B")


def test_hlvid_strict_task_end_to_end(data_dir, tmp_path, backbone):
    from liteframe_bench.suites.hlvid import utils

    make_hlvid(data_dir)
    out = evaluate("lfb_hlvid_strict", tmp_path / "s.jsonl", backbone)
    samples = out["samples"]["lfb_hlvid_strict"]
    assert len(samples) == 3
    for smp in samples:
        response = smp["resps"][0][0] if isinstance(smp["resps"][0], list) else smp["resps"][0]
        assert smp["hlvid_acc"]["pred_answer"] == utils.extract_letter_strict(response)
    expected = 100 * sum(s["hlvid_acc"]["score"] for s in samples) / 3
    assert out["results"]["lfb_hlvid_strict"]["hlvid_acc,none"] == pytest.approx(expected)


def test_hlvid_readme_extraction_gives_the_layout_the_loader_reads(data_dir, tmp_path):
    import re
    import subprocess
    import tarfile

    readme = (SUITES_DIR / "hlvid" / "README.md").read_text()
    script = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert "/path/to/download/videos_part_*.tar" in script
    folder = make_hlvid(data_dir)
    download = tmp_path / "download"
    download.mkdir()
    for i, video in enumerate(sorted((folder / "videos").iterdir())):
        with tarfile.open(download / f"videos_part_000{i}.tar", "w") as tar:
            tar.add(video, arcname=f"videos/{video.name}")  # the hub archives' entry names
    shutil.rmtree(folder / "videos")
    script = script.replace("/path/to/download", str(download))
    res = subprocess.run(["bash", "-euc", script], env=dict(os.environ), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert not (folder / "videos" / "videos").exists()
    report = data.check("hlvid")
    assert report.ok and report.found_videos == 3, report.to_json()


def test_mlvu_docs_match_lmms_eval_dev_format(data_dir):
    make_mlvu(data_dir)
    docs = data.load_docs("mlvu")
    plot = next(d for d in docs if d["task_type"] == "plotQA")
    assert plot["question"] == "Which colour is the square (plotQA)?\n(A) red\n(B) green\n(C) blue\n(D) yellow\n"
    assert plot["answer"] == "A" and plot["video_name"] == "1_plotQA/plotQA_0.mp4"
    needle = next(d for d in docs if d["task_type"] == "needle")  # file 2_needle.json, question_type findNeedle
    assert needle["answer"] == "B"


def test_mlvu_real_quirks_keep_every_question_and_score_as_official(data_dir, tmp_path, backbone, caplog):
    folder, records = make_mlvu_real(data_dir)
    n = sum(len(r) for r in records.values())
    docs = {d["question_id"]: d for d in data.load_docs("mlvu")}
    assert len(docs) == n == 16
    assert docs["needle_0"]["answer"] == docs["needle_2"]["answer"] == "@"
    assert docs["order_1"]["answer"] == "C"  # "blue" is candidates A and C: the last copy's letter
    empty = docs["count_2"]
    assert empty["question"] == "\n" and empty["candidates"] == [] and empty["answer"] == "@"

    from lmms_eval.tasks.mlvu.utils import mlvu_process_results

    def correct(doc, response):
        score = mlvu_process_results(doc, [response])["mlvu_percetion_score"]
        return score["pred_answer"] == score["answer"]

    assert correct(docs["order_1"], "C") and not correct(docs["order_1"], "A")
    assert not any(correct(docs[q], r) for q in ("needle_0", "count_2") for r in ("A", "B", "", "@"))

    sidecar = tmp_path / "s.jsonl"
    with caplog.at_level("WARNING", logger="liteframe_bench.data"):
        out = evaluate("lfb_mlvu_dev", sidecar, backbone)
    assert f"mlvu: {folder / 'json' / '2_needle.json'}: record 0: answer 'purple'" in caplog.text
    samples = out["samples"]["lfb_mlvu_dev"]
    assert len(samples) == n and len(sidecar_records(sidecar)) == n
    assert all(r["error"] is None for r in sidecar_records(sidecar))
    per_type: dict[str, list[bool]] = {}
    for smp in samples:
        score = smp["mlvu_percetion_score"]
        per_type.setdefault(score["task_type"], []).append(score["pred_answer"] == score["answer"])
    assert {t: len(v) for t, v in per_type.items()} == {t: len(records[stem]) for stem, t in data.loader("mlvu").TASKS}
    expected = sum(100 * sum(v) / len(v) for v in per_type.values()) / 7
    assert out["results"]["lfb_mlvu_dev"]["mlvu_percetion_score,none"] == pytest.approx(expected)


def test_mlvu_real_quirks_check_passes_with_warnings(data_dir, capsys):
    from liteframe_bench.cli import main

    folder, _ = make_mlvu_real(data_dir)
    assert main(["data", "check", "mlvu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["questions"] == 16 and report["problems"] == []
    needle, count, order = (str(folder / "json" / f"{stem}.json") for stem in ("2_needle", "4_count", "5_order"))
    warnings = report["warnings"]
    assert len(warnings) == 4
    assert warnings[0].startswith(f"{needle}: record 0: answer 'purple' is not one of its candidates")
    assert warnings[1].startswith(f"{needle}: record 2: answer 'Purple.'")
    assert warnings[2] == f"{count}: record 2: empty question and no candidates: kept, scored wrong"
    assert warnings[3].startswith(f"{order}: record 1: the answer 'blue' is repeated as candidates A, C: scored as C")

    assert main(["data", "check", "mlvu", "--no-probe"]) == 0
    text = capsys.readouterr().out
    assert "OK" in text and text.count("warning:") == 4 and "INCOMPLETE" not in text


def test_check_says_malformed_not_missing_for_an_unreadable_annotation(data_dir, capsys):
    from liteframe_bench.cli import main

    folder = make_mlvu(data_dir)
    bad = folder / "json" / "3_ego.json"
    bad.write_text('[{"video": "ego_2.mp4", "question": ')
    report = data.check("mlvu")
    assert not report.ok and report.missing_annotation == [] and report.annotation_error
    assert f"annotation file {bad} is malformed: cannot parse (JSONDecodeError" in report.annotation_error

    bad.write_bytes(b"\xff\xfe not utf-8")
    assert main(["data", "check", "mlvu", "--no-probe"]) == 1
    text = capsys.readouterr().out
    assert "MALFORMED" in text and "is malformed" in text and "UnicodeDecodeError" in text
    assert "MISSING" not in text


# ----------------------------------------------------------------------------------------------------------
# lfbench data check


@pytest.mark.parametrize("suite", ["videomme", "videomme_w_subtitle", "mlvu", "longvideobench", "hlvid"])
def test_check_complete_copy_is_ok(suite, data_dir):
    MAKERS[suite](data_dir)
    report = data.check(suite)
    assert report.ok, report.to_json()
    n_videos = {"videomme": 2, "videomme_w_subtitle": 2, "mlvu": 7}.get(suite, 3)
    assert report.expected_videos == report.found_videos == n_videos
    assert report.missing_count == report.unreadable_count == 0 and report.probed
    assert json.loads(report.to_json())["ok"] is True
    if suite == "videomme_w_subtitle":
        assert report.notes == [report.notes[0]] and report.notes[0].startswith("1 of 2 videos have a subtitle")


def test_check_lists_missing_and_unreadable_videos(data_dir):
    folder = make_hlvid(data_dir)
    videos = folder / "videos"
    (videos / "clip_av_video_0_000.mp4").unlink()
    (videos / "clip_av_video_0_001.mp4").write_text("not a video")
    report = data.check("hlvid", data_dir)
    assert not report.ok and report.annotation_found
    assert report.expected_videos == 3 and report.found_videos == 2
    assert report.missing_videos == [str(videos / "clip_av_video_0_000.mp4")] and report.missing_count == 1
    assert [u["path"] for u in report.unreadable_videos] == [str(videos / "clip_av_video_0_001.mp4")]
    assert "corrupt" in report.unreadable_videos[0]["reason"] or "not a video" in report.unreadable_videos[0]["reason"]
    assert any(str(videos) in p for p in report.problems)

    unprobed = data.check("hlvid", data_dir, probe_videos=False)
    assert unprobed.unreadable_count == 0 and not unprobed.probed and unprobed.missing_count == 1

    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(data.render_check(report))
    text = console.export_text()
    assert "INCOMPLETE" in text and "clip_av_video_0_000.mp4" in text and "clip_av_video_0_001.mp4" in text


def test_check_names_the_missing_annotation_and_where_it_goes(data_dir):
    folder = make_mlvu(data_dir)
    (folder / "json" / "3_ego.json").unlink()
    report = data.check("mlvu")
    assert not report.ok and not report.annotation_found and report.expected_videos is None
    assert report.missing_annotation == [str(folder / "json" / "3_ego.json")]
    assert any(str(folder / "json" / "3_ego.json") in p and "MLVU/MVLU" in p for p in report.problems)

    empty = data.check("longvideobench", data_dir / "nowhere")
    assert not empty.ok and empty.missing_annotation == [str(data_dir / "nowhere" / "longvideobench" / "lvb_val.json")]
    assert any("does not exist" in p for p in empty.problems)


def test_check_malformed_annotation(data_dir):
    folder = make_lvb(data_dir)
    (folder / "lvb_val.json").write_text('[{"id": 1}]')
    report = data.check("longvideobench")
    assert not report.ok and any("lacks" in p and "video_path" in p for p in report.problems)


def test_unknown_suite_lists_the_allowed_ones():
    with pytest.raises(data.DataError) as err:
        data.check("videommee")
    for name in ("videomme", "videomme_w_subtitle", "mlvu", "longvideobench", "hlvid", "synth"):
        assert name in str(err.value)


def test_synth_is_checked_through_a_registered_hook(monkeypatch):
    import liteframe_bench.suites.synth  # noqa: F401  (registered before the registry is emptied, whatever ran first)

    monkeypatch.setattr(data, "_CHECKS", {})
    with pytest.raises(data.DataError, match="synth"):
        data.check("synth")
    sentinel = data.CheckReport(suite="synth", root="x", annotation=[], annotation_found=True, ok=True)
    data.register_check("synth", lambda root=None, *, probe_videos=True: sentinel)
    assert data.check("synth") is sentinel
