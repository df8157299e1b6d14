"""Encoding speed of the embedders (lfagent.data.embedders) on real texts, on this machine's cores.

    python benchmarks/embed_speed.py [--n 2000] [--static-n 100000] [--repeat 2] [--only minilm-static]

Texts: the train splits of youtube, sms and trec from ../shared/data, interleaved, cycled up to the
count asked (the static encoders need many more texts for a steady rate than MiniLM can do in
reasonable time). Each configuration runs in its own process, so the columns are:
  load s      import + load (and, for a static encoder whose cache folder is missing, distilling it)
  records/s   texts encoded per second, best of --repeat runs (the machine is shared: the best run is
              the one least slowed by other jobs)
  peak RSS    the child process's maximum resident set size (ru_maxrss), load and encoding included;
              every child imports torch (to set its threads), so static rows carry the ~200 MB of
              importing torch that they would not need: the generate section shows what a run holds
  other CPU   cores used by processes outside the child during its best run (load on the machine)
With --generate N: the end-to-end figure that matters, `lfagent generate` with a default run (embeddings
on: the youtube-spam example run with `--llm none`, whose embedding LFs and embedding expert need every
record embedded) over N synthetic comments, local engine, 1 and 2 workers, per embedder (MiniLM on
--generate-minilm-n records only: it would take hours on a million); measured by
benchmarks/generate_scale.py's run_generate (wall rate, steady rate, peak RSS of the process tree).
Prints a Markdown table and writes it, with the command, to benchmarks/results/embed_speed.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "embed_speed.md"
# (embedder, label, extra settings for the child)
CONFIGS = [
    ("minilm", "sentence-transformers, batch 64, 2 torch threads", {"batch_size": 64, "threads": 2}),
    ("minilm", "sentence-transformers, batch 256, 2 torch threads", {"batch_size": 256, "threads": 2}),
    ("minilm-bf16", "the same, batch 64, weights cast to bfloat16 (not an lfagent path: the ceiling on AMX)",
     {"batch_size": 64, "threads": 2}),
    ("minilm-onnx", "ONNX fp32 (torch.onnx export), onnxruntime, batch 64 sorted by length", {"threads": 2}),
    ("minilm-onnx-int8", "ONNX dynamic int8 (onnxruntime.quantization)", {"threads": 2}),
    ("minilm-static-128", "model2vec distilled, PCA 128", {}),
    ("minilm-static-256", "model2vec distilled, PCA 256", {}),
    ("minilm-static-384", "model2vec distilled, PCA 384 (no reduction)", {}),
]


def load_texts(n: int) -> list[str]:
    from evals.datasets import load_dataset

    pools = [load_dataset(name).train.texts for name in ("youtube", "sms", "trec")]
    mixed = [text for row in zip(*pools) for text in row] + [t for p in pools for t in p[min(map(len, pools)):]]
    return [mixed[i % len(mixed)] for i in range(n)]


def child(spec: dict) -> None:
    """Runs in a fresh process: load one embedder, encode the texts, print a JSON line."""
    import torch

    torch.set_num_threads(spec.get("threads", 2))
    texts = load_texts(spec["n"])
    started = time.perf_counter()
    from lfagent.data.embedders import MiniLMEncoder, get_embedder

    if spec["name"] in ("minilm", "minilm-bf16"):
        encoder = MiniLMEncoder(batch_size=spec["batch_size"])
        if spec["name"] == "minilm-bf16":
            encoder._model = encoder._load().to(torch.bfloat16)
    elif spec["name"].startswith("minilm-onnx"):
        encoder = OnnxMiniLM(spec["name"].endswith("int8"), spec["threads"])
    else:
        encoder = get_embedder(spec["name"])
    encoder.encode(texts[:32])  # the first call loads lazily; count it as loading
    load = time.perf_counter() - started
    cpu_others = _others_cpu()
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    seconds = time.perf_counter() - started
    others = (_others_cpu() - cpu_others) / seconds
    print(json.dumps({"load": load, "seconds": seconds, "n": len(vectors), "dim": int(vectors.shape[1]),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "others": others}))


class OnnxMiniLM:
    """Benchmark only: MiniLM exported to ONNX (mean pooling inside the graph), optionally int8, run with
    onnxruntime and the model's own tokenizer. Needs `pip install onnx onnxruntime` (not an lfagent extra:
    optimum, which sentence-transformers' backend="onnx" uses, would downgrade transformers here)."""

    def __init__(self, int8: bool, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from lfagent.data.embed import model_path

        path = _onnx_model(int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
        self.tokenizer.enable_truncation(256)  # MiniLM's max_seq_length
        self.tokenizer.no_padding()

    def encode(self, texts: list[str], batch_size: int = 64):
        import numpy as np

        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), 384), np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.zeros((len(rows), max(len(e.ids) for e in encoded)), np.int64)
            mask = np.zeros_like(ids)
            for j, e in enumerate(encoded):
                ids[j, :len(e.ids)], mask[j, :len(e.ids)] = e.ids, 1
            vectors = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            out[rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out


def _onnx_model(int8: bool) -> Path:
    import torch
    from transformers import AutoModel

    from lfagent.data.embed import model_path

    folder = Path(os.environ.get("LFAGENT_CACHE", Path.home() / ".cache" / "lfagent")) / "bench-onnx"
    fp32, quantized = folder / "minilm.onnx", folder / "minilm-int8.onnx"
    if not fp32.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        model = AutoModel.from_pretrained(str(model_path())).eval()

        class Pooled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state
                weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

        ids = torch.ones(2, 16, dtype=torch.long)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        torch.onnx.export(Pooled(), (ids, ids, torch.zeros_like(ids)), str(fp32), input_names=names,
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}})
    if int8 and not quantized.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8)
    return quantized if int8 else fp32


def _others_cpu() -> float:
    """CPU seconds used on the machine by every process except this one (from /proc/stat and our own)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(map(int, fields)) - int(fields[3]) - int(fields[4])) / ticks  # minus idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy - own.ru_utime - own.ru_stime


def measure(name: str, settings: dict, n: int, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        spec = {"name": name, "n": n, "batch_size": settings.get("batch_size", 64),
                "threads": settings.get("threads", 2)}
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                             text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode != 0:
            raise SystemExit(f"{name} failed:\n{out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def generate_rows(n: int, minilm_n: int, names: list[str], work: Path, batch_size: int) -> list[str]:
    sys.path.insert(0, str(REPO))  # run as a script, this file's folder is on the path, not the repository
    from benchmarks.generate_scale import TASK, ensure_corpus, run_generate

    rows = []
    for name in names:
        run = work / f"yt-run-{name}"
        model = run / "model.json"
        if not model.is_file() or json.loads(model.read_text()).get("embedder", "minilm") != name:
            subprocess.run([sys.executable, "-m", "lfagent.cli", "run", str(TASK), "--out", str(run), "--llm", "none",
                            "--quiet"], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(REPO), "LFAGENT_EMBEDDER": name})
        size = minilm_n if name == "minilm" else n
        corpus = ensure_corpus(work, size)
        for workers in (1, 2):
            r = run_generate(run, corpus, work / f"out-{name}-{workers}.parquet", "local", workers, batch_size)
            rows.append(f"| {name} | {workers} | {size:,} | {r['wall']:.1f} | {size / r['wall']:,.0f} | "
                        f"{r['steady']:,.0f} | {r['tree_rss_kb'] / 1024:,.0f} MB | {r['tree_pss_kb'] / 1024:,.0f} MB "
                        f"| {r['other_cores']:.2f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts for MiniLM")
    parser.add_argument("--static-n", type=int, default=100_000, help="texts for the static encoders")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated embedder names to run")
    parser.add_argument("--generate", type=int, default=0, metavar="N", help="also time `lfagent generate` on N records")
    parser.add_argument("--generate-minilm-n", type=int, default=5000)
    parser.add_argument("--generate-batch-size", type=int, default=10_000,
                        help="records per batch: a worker labels whole batches, so 2 workers need 2 batches or more")
    parser.add_argument("--generate-embedders", default="minilm,minilm-static-256")
    parser.add_argument("--work", default="/tmp/lfagent-embed-bench")
    parser.add_argument("--distill", action="store_true",
                        help="also time distilling minilm-static-256 from scratch (a fresh cache folder)")
    parser.add_argument("--no-encode", action="store_true", help="skip the encoder rows (only --generate/--distill)")
    parser.add_argument("--results", default=str(RESULTS), help="where the Markdown goes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, label, settings in CONFIGS:
        if args.no_encode or (only and name not in only):
            continue
        n = args.static_n if name.startswith("minilm-static") else args.n
        r = measure(name, settings, n, args.repeat)
        rows.append(f"| {name} | {label} | {r['dim']} | {r['n']:,} | {r['load']:.1f} | {r['n'] / r['seconds']:,.0f} "
                    f"| {r['rss_mb']:,.0f} MB | {r['others']:.2f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["| embedder | how | dim | texts | load s | records/s | peak RSS | other CPU |",
                       "|---|---|---|---|---|---|---|---|", *rows]) if rows else "(encoder rows skipped)"
    command = "python benchmarks/embed_speed.py " + shlex.join(sys.argv[1:])
    text = (f"# Embedder encoding speed\n\n`{command}` on {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average before: "
            f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}\n\n{table}\n")
    print("\n" + table)
    if args.distill:
        code = ("import json, tempfile, time; from lfagent.data.embedders import StaticEncoder; "
                "from lfagent.data.embed import model_path; t = time.perf_counter(); "
                "e = StaticEncoder(model_path(), pca_dims=256, cache_dir=tempfile.mkdtemp()); "
                "print(json.dumps({'seconds': time.perf_counter() - t, 'built': e.built_now}))")
        busy = _others_cpu()
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - started
        result = json.loads(out.stdout.strip().splitlines()[-1])
        line = (f"Distilling minilm-static-256 from the bundled MiniLM (every one of its ~29.5k vocabulary tokens "
                f"through the transformer, then PCA): {result['seconds']:.0f} s in a fresh process; the machine's "
                f"busy CPU meanwhile averaged {(_others_cpu() - busy) / wall:.2f} cores.")
        text += f"\n## Distilling\n\n{line}\n"
        print("\n" + line)
    if args.generate:
        rows = generate_rows(args.generate, args.generate_minilm_n, args.generate_embedders.split(","),
                             Path(args.work), args.generate_batch_size)
        gen = "\n".join(["| run's embedder | workers | records | wall s | records/s (wall) | records/s (steady) "
                         "| tree RSS peak | tree PSS peak | other CPU |", "|---|---|---|---|---|---|---|---|---|", *rows])
        text += ("\n## `lfagent generate`, default run (embeddings on)\n\nThe youtube-spam example run "
                 "(`--llm none`, embedding LFs and expert), synthetic comments, local engine, batch "
                 f"{args.generate_batch_size:,}, "
                 f"Parquet output.\n\n{gen}\n")
        print("\n" + gen)
    if not only:
        results = Path(args.results)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(text)
        print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
