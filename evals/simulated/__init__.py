"""Simulated LLMs for the evals: what lfagent gains from a knowledgeable model, measurable on this machine.

No strong LLM runs here, so a loopback OpenAI-compatible server plays one (issue 20):

- knowledge.py  what it knows: per-class telling words from labelled rows the run never sees; record labels
- prompts.py    what a request asks (code LF, keywords, concepts, guideline, record labels), read robustly
- persona.py    how it answers: the expert (20% decoy proposals, 15% flipped labels) or the liar (all wrong)
- server.py     the HTTP server (POST /v1/chat/completions, GET /v1/models) and its environment
- systems.py    lfagent-expert, lfagent-liar and expert-label-all for `python -m evals`
"""
