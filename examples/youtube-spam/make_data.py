"""Build this example from the raw UCI YouTube Spam Collection (CC BY 4.0).

Usage: python make_data.py PATH/TO/youtube-spam-collection
Writes seeds.jsonl (100 labelled), unlabeled.jsonl (no labels; the rest) and test.jsonl (400 labelled, held out
for evaluation only), split with a fixed seed.
"""
import csv
import json
import random
import sys
from pathlib import Path

source = Path(sys.argv[1])
rows, seen = [], set()
for path in sorted(source.glob("Youtube0*.csv")):
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["COMMENT_ID"] in seen:  # a few comments appear twice in the raw files
                continue
            seen.add(row["COMMENT_ID"])
            rows.append({"id": row["COMMENT_ID"], "text": row["CONTENT"],
                         "video": path.stem.split("-", 1)[1], "label": "SPAM" if row["CLASS"] == "1" else "HAM"})
random.Random(0).shuffle(rows)
seeds, test, unlabeled = rows[:100], rows[100:500], rows[500:]
here = Path(__file__).parent
for name, part, keep_label in (("seeds", seeds, True), ("test", test, True), ("unlabeled", unlabeled, False)):
    with open(here / f"{name}.jsonl", "w", encoding="utf-8") as out:
        for row in part:
            row = dict(row) if keep_label else {k: v for k, v in row.items() if k != "label"}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
print(len(seeds), len(test), len(unlabeled))
