"""Print measured stage latency (lfbench profile --json) beside the cost model's roofline (lfbench cost --json)."""

import json
import sys


def main(profile_path: str, cost_path: str) -> None:
    profile, cost = json.load(open(profile_path)), json.load(open(cost_path))
    predicted = {(c["method"], c["frames"]): c for c in cost["cells"]}
    print(f"{'method':<16}{'frames':>7}  {'stage':<9}{'measured ms':>13}{'predicted ms':>14}{'ratio':>8}")
    for cell in profile["cells"]:
        if "error" in cell:
            print(f"{cell['method']:<16}{cell['frames']:>7}  error: {cell['error']}")
            continue
        pred = predicted.get((cell["spec"], cell["frames"]), {}).get("stages", {})
        for stage, st in cell["stages"].items():
            measured = st["median_s"] * 1e3
            p = pred.get(stage, {}).get("predicted_s")
            p_ms = f"{p * 1e3:.2f}" if p is not None else "-"
            ratio = f"{measured / (p * 1e3):.2f}" if p else "-"
            print(f"{cell['method']:<16}{cell['frames']:>7}  {stage:<9}{measured:>13.2f}{p_ms:>14}{ratio:>8}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
