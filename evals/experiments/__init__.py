"""One-off analyses behind figures quoted in closing notes and the README: each prints its own table.

end_model_all_rows.py  the end model trained on every extra row's silver label, not only covered rows
vocab_keywords.py      an LLM's surest words (the vocabulary probe) added as keyword LFs to --llm none
llm_lf_ablation.py     one lfagent run with an LLM, refitted with each kept LLM LF dropped
"""
