"""Could `generate` serve a static encoder distilled from the run's fine-tuned one? (issue 19's 5,000
records/s with the default run: only static vectors reach that on 2 cores, benchmarks/results/embed_speed.md)

    python -m evals.experiments.static_of_finetuned [--datasets youtube,sms,trec] [--draws 10]

Per tuning draw (10 and up: the benchmark reports 0-4), the draw's 100 seeds, test rows scored with evals'
headline metric, each encoder with a balanced logistic head (fewshot.fit_head) on:
- tuned: MiniLM fine-tuned on the seeds as the run's final expert encoder is (setfit-seeds' score);
- static-of-tuned: model2vec static vectors (PCA 256) distilled from that fine-tuned encoder, head on the seeds;
- static-of-tuned, student: the same vectors, head trained on the tuned head's labels of the draw's 2,000
  other train rows (its unlabeled pool without the test rows), as a run could train it to stand in for the
  expert on records it never saw;
- static: the same distillation of MiniLM as shipped (`minilm-static-256`), head on the seeds;
- frozen: MiniLM as shipped, head on the seeds;
- tf-idf student: word 1-2-gram tf-idf (fitted on the pool), a balanced logistic regression (C=10) trained
  on the tuned head's labels of the pool, as fast as static vectors and blind to nothing a bag of bigrams sees;
- static + tf-idf student: both feature sets side by side, the same student.
Single-label datasets only.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from evals.datasets import make_draw
from evals.experiments.common import score_on_test, tuning_draw_args, tuning_draws

COLUMNS = ("tuned", "static-of-tuned", "static-of-tuned, student", "static", "frozen", "tf-idf student",
           "static + tf-idf student")


def main(argv: list[str] | None = None) -> int:
    from lfagent.data.embed import model_path
    from lfagent.data.embedders import StaticEncoder
    from lfagent.fit.fewshot import encode, fine_tune_encoder, fit_head, head_proba, load_encoder, save_encoder
    from lfagent.fit.fold_fit import PipelineConfig
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args = tuning_draw_args(parser, "youtube,sms,trec", "10", argv)
    options = PipelineConfig().fine_tune_options()["options"]  # the run's final encoder: its steps, precision
    print("| dataset | draw | " + " | ".join(COLUMNS) + " |\n|---|---|" + "---|" * len(COLUMNS), flush=True)
    with tempfile.TemporaryDirectory(prefix="static-of-tuned-") as tmp:
        static = StaticEncoder(model_path(), pca_dims=256, cache_dir=tmp)
        frozen = load_encoder()
        for data, seed in tuning_draws(args):
            draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=seed)
            texts = [data.train.texts[i] for i in draw.seed_rows]
            y = data.train.y[draw.seed_rows]
            # The students learn from the draw's other train rows only: scored on test rows they never saw, as
            # generate meets new records (the run's own records it reads from the cache).
            pool = [data.train.texts[i] for i in draw.extra_rows]

            if data.multi_label:
                raise SystemExit(f"{data.name}: single-label datasets only")

            def student(X, labels, X_test):
                model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000, random_state=seed)
                probs = model.fit(X, labels).predict_proba(X_test)
                full = np.zeros((X_test.shape[0], data.k))
                full[:, model.classes_] = probs  # a class the teacher never chose gets probability 0
                return score_on_test(full, data)

            def score(seed_vectors, test_vectors, labels=y):
                head = fit_head(seed_vectors, labels, multi_label=False, k=data.k, seed=seed)
                return score_on_test(head_proba(head, test_vectors), data)

            tuned = fine_tune_encoder(texts, y, multi_label=False, seed=0, **options)
            folder = Path(tmp) / f"{data.name}-{seed}"
            save_encoder(tuned, folder)
            of_tuned = StaticEncoder(folder, pca_dims=256, cache_dir=tmp)
            tuned_seeds, tuned_test = encode(tuned, texts), encode(tuned, data.test.texts)
            teacher = fit_head(tuned_seeds, y, multi_label=False, k=data.k, seed=seed)
            taught = head_proba(teacher, encode(tuned, pool)).argmax(axis=1)
            static_pool, static_test = of_tuned.encode(pool), of_tuned.encode(data.test.texts)
            tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(pool)
            tfidf_pool, tfidf_test = tfidf.transform(pool), tfidf.transform(data.test.texts)
            cells = [score(tuned_seeds, tuned_test),
                     score(of_tuned.encode(texts), static_test),
                     score(static_pool, static_test, taught),
                     score(static.encode(texts), static.encode(data.test.texts)),
                     score(encode(frozen, texts), encode(frozen, data.test.texts)),
                     student(tfidf_pool, taught, tfidf_test),
                     student(hstack([tfidf_pool, csr_matrix(static_pool)]).tocsr(), taught,
                             hstack([tfidf_test, csr_matrix(static_test)]).tocsr())]
            print(f"| {data.name} | {seed} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
