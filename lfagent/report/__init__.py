"""The run's human-facing outputs: dataset card (Markdown), HTML report with plots.

    write_run_card(run_dir)                       -> RUN_DIR/CARD.md
    write_dataset_card(run_dir, out_path, ...)    -> OUT.card.md beside `lfagent generate` output
    write_report(run_dir, out=None)               -> RUN_DIR/report.html
"""
from lfagent.report.card import card_facts, render_card, write_dataset_card, write_run_card
from lfagent.rundir.read import RunArtifacts, load_run


def write_report(run_dir, out=None, *, embeddings: bool = True, sandbox: bool = True):
    """Write the self-contained HTML report (matplotlib is imported only here)."""
    from lfagent.report.html import write_report as _write

    return _write(run_dir, out, embeddings=embeddings, sandbox=sandbox)


__all__ = ["RunArtifacts", "card_facts", "load_run", "render_card", "write_dataset_card", "write_report",
           "write_run_card"]
